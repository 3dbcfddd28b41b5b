// Command mktree writes generated Go modules into a directory in the module
// cache layout (a GOPROXY=file:// tree) for the proxy benchmarks: a small
// module (for warm .mod serving) and modules with zips of given sizes made of
// incompressible data.
//
//	go run ./bench/proxy/mktree -dir /tmp/tree -zip-mb 7 -zip-mb 100
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/testmod"
)

type sizes []int

func (s *sizes) String() string { return fmt.Sprint(*s) }
func (s *sizes) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 450 {
		return fmt.Errorf("want a size in MB from 1 to 450")
	}
	*s = append(*s, n)
	return nil
}

func main() {
	dir := flag.String("dir", "", "output `directory`")
	var zs sizes
	flag.Var(&zs, "zip-mb", "add a module whose zip is about this many MB (repeatable)")
	many := flag.Int("n", 0, "add this many small distinct modules bench.test/m<i> v1.0.0 (for cold storms)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "mktree: -dir is required")
		os.Exit(2)
	}
	mods := []testmod.Module{{Path: "bench.test/small", Version: "v1.0.0", Files: map[string]string{
		"small.go": "package small\n",
	}}}
	for _, mb := range zs {
		data := make([]byte, mb<<20)
		rand.Read(data)
		mods = append(mods, testmod.Module{
			Path: fmt.Sprintf("bench.test/zip%dmb", mb), Version: "v1.0.0",
			Files: map[string]string{"blob.bin": string(data), "doc.go": "package blob\n" + strings.Repeat("// x\n", 1)},
		})
	}
	for i := range *many {
		mods = append(mods, testmod.Module{Path: fmt.Sprintf("bench.test/m%d", i), Version: "v1.0.0",
			Files: map[string]string{"m.go": fmt.Sprintf("package m%d\n\nconst N = %d\n", i, i)}})
	}
	built, err := testmod.Build(mods)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mktree:", err)
		os.Exit(1)
	}
	if err := testmod.WriteTree(*dir, built); err != nil {
		fmt.Fprintln(os.Stderr, "mktree:", err)
		os.Exit(1)
	}
}
