package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-dev/berth/airgap"
	"github.com/berth-dev/berth/store"
)

const importAbout = `
Usage: berth import [flags] FILE

Load a bundle written by berth export into berth's store, on the far side of
an air gap. Nothing reaches the store unless the whole bundle checks out:

  - the archive is unpacked into a staging directory inside the store;
    absolute or ".." names, links, devices, duplicate names, files berth
    never stores, and files over the size limits are refused;
  - every file must be listed in the manifest with the same size and SHA-256;
  - every .mod and .zip is verified against the checksum database, using only
    the checksum data the bundle carries and the verifier key you trust
    (--sumdb, else GOSUMDB): a bundle made for another key is refused; zips
    pass golang.org/x/mod/zip's checks; every lookup and tile is checked
    against the signed tree head;
  - then each file is committed atomically (temporary file, fsync, rename);
    files already in the store with the same content are skipped.

A refused bundle leaves the store unchanged and exits with status 1; the
refusal names the first three problems, counts the rest and says what to do.
On a terminal a progress bar is drawn; a summary follows.
"-" reads the bundle from standard input.

After the import, serve the store offline:
    berth proxy --store DIR --offline
or use it directly:
    GOPROXY=file://DIR GOSUMDB=<same as --sumdb> go build ./...

Examples:
    berth import --store /var/cache/berth deps.tar.zst
    berth import --store ./store --nosumdb 'example.com/private/*' deps.tar.zst
    ssh build-host cat deps.tar.zst | berth import --store ./store -
`

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("import", importAbout, stdout, stderr)
	storeDir := f.String("store", "./berth-store", "`directory` of the store to import into (created if missing)")
	sumdbFlag := f.String("sumdb", "", "checksum `database` every .mod and .zip is verified against, as in GOSUMDB:\nname, name+hash+key, or off (default: $GOSUMDB, else `go env GOSUMDB`)")
	nosumdb := f.String("nosumdb", "", "comma-separated module path `patterns` not verified (private modules)\n(default: $GONOSUMDB, else $GOPRIVATE, else their `go env` values)")
	maxSize := f.Int("max-size-gb", 64, "refuse bundles whose files add up to more than this many GiB uncompressed")
	if code, ok := f.Parse(args); !ok {
		return code
	}
	if len(f.Args()) != 1 {
		return f.Usagef("give exactly one bundle FILE, or - for standard input")
	}
	name := f.Args()[0]
	sumKey, noSum, err := sumdbConfig(ctx, *sumdbFlag, *nosumdb)
	if err != nil {
		fmt.Fprintf(stderr, "berth import: %v\n", err)
		return 2
	}
	if sumKey == "" {
		fmt.Fprintln(stderr, "berth import: warning: checksum verification is off (--sumdb off): module files are imported unverified")
	}
	var in io.Reader = os.Stdin
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "berth import: %v\n", err)
			return 1
		}
		defer file.Close()
		in = file
	}
	st, err := store.OpenDisk(*storeDir)
	if err != nil {
		fmt.Fprintf(stderr, "berth import: %v\n", err)
		return 1
	}
	prog := newProgress(stderr, "berth import", "files")
	res, err := airgap.Import(ctx, airgap.ImportConfig{
		Store:    st,
		SumDBKey: sumKey,
		NoSumDB:  noSum,
		MaxTotal: int64(*maxSize) << 30,
		Progress: prog.update,
	}, in)
	prog.finish()
	if err != nil {
		var re *airgap.RefusedError
		if errors.As(err, &re) {
			fmt.Fprintf(stderr, "berth import: %s: bundle refused, the store is unchanged:\n", name)
			for _, r := range re.Reasons {
				fmt.Fprintf(stderr, "  %s\n", r)
			}
			if re.More > 0 {
				fmt.Fprintf(stderr, "  and %d more\n", re.More)
			}
			fmt.Fprintln(stderr, re.Hint)
			return 1
		}
		fmt.Fprintf(stderr, "berth import: %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "berth import: %s into %s: %d files (%s), %d module versions verified against %s; added %d, already present %d, kept existing %d, lists merged %d\n",
		name, st.Root(), len(res.Manifest.Files), humanBytes(res.Bytes), res.Modules, orOff(dbNameOf(sumKey)),
		res.Added, res.Identical, res.KeptExisting, res.Merged)
	if len(res.Unverified) > 0 {
		fmt.Fprintf(stdout, "berth import: %d module versions NOT verified (--nosumdb or verification off): %s\n", len(res.Unverified), fewOf(res.Unverified))
	}
	if res.TilesSkipped > 0 {
		fmt.Fprintf(stdout, "berth import: %d checksum tiles left out: no tree head in the bundle covers them (the go command fetches what it needs from lookups it has)\n", res.TilesSkipped)
	}
	return 0
}

// fewOf lists the first few of names and counts the rest.
func fewOf(names []string) string {
	const few = 3
	if len(names) <= few {
		return strings.Join(names, " ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:few], " "), len(names)-few)
}

func orOff(s string) string {
	if s == "" {
		return "nothing (off)"
	}
	return s
}
