//go:build unix

// Command hashcost measures the least CPU checksum verification costs for a
// store: it checks and hashes every module zip in it once, as berth does
// before it releases a fetched zip (golang.org/x/mod/zip's CheckZip, then the
// h1: hash of the unpacked files, with sumdb.HashZip), and prints the CPU
// seconds spent, and what the same takes with x/mod's dirhash.HashZip.
//
//	go run ./bench/proxy/hashcost STORE
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/sumdb"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hashcost STORE")
		os.Exit(2)
	}
	root := os.Args[1]
	var zips []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".zip") && !store.IsTemp(filepath.Base(p)) {
			zips = append(zips, p)
		}
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hashcost:", err)
		os.Exit(1)
	}
	type job struct{ path, version, file string }
	var jobs []job
	for _, z := range zips {
		rel, _ := filepath.Rel(root, z)
		mod, ver, ok := strings.Cut(filepath.ToSlash(rel), "/@v/")
		if !ok {
			continue
		}
		mp, err1 := module.UnescapePath(mod)
		mv, err2 := module.UnescapeVersion(strings.TrimSuffix(ver, ".zip"))
		if err1 != nil || err2 != nil {
			continue
		}
		jobs = append(jobs, job{mp, mv, z})
	}
	run := func(hash func(string) (string, error)) time.Duration {
		start := cpu()
		for _, j := range jobs {
			if err := checkZip(j.path, j.version, j.file); err != nil {
				fmt.Fprintln(os.Stderr, "hashcost:", err)
				os.Exit(1)
			}
			if _, err := hash(j.file); err != nil {
				fmt.Fprintln(os.Stderr, "hashcost:", err)
				os.Exit(1)
			}
		}
		return cpu() - start
	}
	viaDirhash := run(func(f string) (string, error) { return dirhash.HashZip(f, dirhash.Hash1) })
	viaBerth := run(sumdb.HashZip)
	fmt.Printf("%.2f CPU-s for %d zips (%.2f with golang.org/x/mod/sumdb/dirhash)\n", viaBerth.Seconds(), len(jobs), viaDirhash.Seconds())
}

func checkZip(path, version, file string) error {
	_, err := modzip.CheckZip(module.Version{Path: path, Version: version}, file)
	return err
}
