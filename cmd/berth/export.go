package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/airgap"
	"github.com/berth-dev/berth/store"
)

const exportAbout = `
Usage: berth export --store DIR -o FILE.tar.zst [PATTERN...]

Write berth's store, or the modules of it whose paths match the patterns, as
one bundle to carry across an air gap; load it there with berth import.

A bundle is a tar stream compressed with zstd. It holds the module files
(.info, .mod, .zip and version lists) in the module cache layout, the whole
checksum database data of the store (lookups, tiles, "supported"), and, last,
a manifest (berth-bundle.json) with every file's size and SHA-256 and the
checksum database the store was verified against. Unpacked, it is a berth
store and a GOPROXY=file:// tree; berth import also verifies it.

PATTERNs are module path patterns as in GOPRIVATE: path.Match globs matching
a path prefix ("example.com/team", "*.corp.example", "golang.org/x/*").
With none, every module is exported. Temporary files and module cache
bookkeeping (.ziphash, .lock) are never exported.

The bundle is written to a temporary file beside FILE and renamed into place
when complete; "-o -" writes to standard output.

Examples:
    berth warm   --store ./store ./go.sum
    berth export --store ./store -o deps.tar.zst
    berth export --store ./store -o x.tar.zst 'golang.org/x/*' example.com/team
    berth export --store "$(go env GOMODCACHE)/cache/download" -o modcache.tar.zst
`

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("export", exportAbout, stdout, stderr)
	storeDir := f.String("store", "./berth-store", "`directory` of the store to export")
	var short string
	f.fs.StringVar(&short, "o", "", "shorthand for --output `file`")
	output := f.String("output", "", "bundle `file` to write (conventionally .tar.zst); - for standard output")
	sumdbFlag := f.String("sumdb", "", "checksum `database` the store was verified against, recorded in the manifest:\nname, name+hash+key, or off (default: $GOSUMDB, else `go env GOSUMDB`)")
	if code, ok := f.Parse(args); !ok {
		return code
	}
	out := *output
	if short != "" {
		out = short
	}
	if out == "" {
		return f.Usagef("say where to write the bundle with -o FILE.tar.zst")
	}
	sumKey, _, err := sumdbConfig(ctx, *sumdbFlag, "-")
	if err != nil {
		fmt.Fprintf(stderr, "berth export: %v\n", err)
		return 2
	}
	cfg := airgap.ExportConfig{StoreDir: *storeDir, Patterns: f.Args(), SumDB: dbNameOf(sumKey), SumDBKey: sumKey}

	var res airgap.ExportResult
	var size int64
	if out == "-" {
		cw := &countWriter{w: bufio.NewWriterSize(stdout, 256<<10)}
		res, err = airgap.Export(ctx, cfg, cw)
		if err == nil {
			err = cw.w.(*bufio.Writer).Flush()
		}
		size = cw.n
	} else {
		res, size, err = exportToFile(ctx, cfg, out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "berth export: %v\n", err)
		return 1
	}
	pat := "all modules"
	if len(cfg.Patterns) > 0 {
		pat = "modules matching " + strings.Join(cfg.Patterns, ",")
	}
	fmt.Fprintf(stderr, "berth export: %s: %d module versions (%s), %d files, %s uncompressed, %s bundle\n",
		out, res.Modules, pat, len(res.Manifest.Files), humanBytes(res.Bytes), humanBytes(size))
	if res.SumDBIncomplete != nil {
		fmt.Fprintf(stderr, "berth export: note: the store's checksum tiles do not cover its lookups in every order (%v);\n"+
			"  the bundle imports and builds with a go.sum work, but the go command without a go.sum may ask for tiles it lacks:\n"+
			"  run berth warm over this store with the upstream reachable first\n", res.SumDBIncomplete)
	}
	if n := len(res.Skipped); n > 0 {
		fmt.Fprintf(stderr, "berth export: %d files of the store are not part of a bundle and were left out (for example %s)\n", n, res.Skipped[0])
	}
	return 0
}

// exportToFile writes the bundle to a temporary file beside name, syncs it and
// renames it into place, so a failed export never leaves a partial bundle.
func exportToFile(ctx context.Context, cfg airgap.ExportConfig, name string) (airgap.ExportResult, int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), store.TempName("export-*"))
	if err != nil {
		return airgap.ExportResult{}, 0, fmt.Errorf("cannot write beside %s: %w (choose another -o)", name, err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 256<<10)
	res, err := airgap.Export(ctx, cfg, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	var size int64
	if info, serr := tmp.Stat(); serr == nil {
		size = info.Size()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		return res, 0, err
	}
	return res, size, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
