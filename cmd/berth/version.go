package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at link time with -ldflags "-X main.version=v1.2.3"; otherwise the
// module version from the build info is used.
var version = ""

// versionNumber returns the version alone, such as v1.2.3 or (devel).
func versionNumber() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func versionString() string {
	return fmt.Sprintf("berth %s %s %s/%s", versionNumber(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

const versionAbout = `
Usage: berth version

Print berth's version, the Go version it was built with, and its OS and architecture.
`

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("version", versionAbout, stdout, stderr)
	if code, ok := f.Parse(args); !ok {
		return code
	}
	if len(f.Args()) > 0 {
		return f.Usagef("unexpected argument %q: berth version takes none", f.Args()[0])
	}
	fmt.Fprintln(stdout, versionString())
	return 0
}
