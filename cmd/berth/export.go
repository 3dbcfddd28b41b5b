package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/airgap"
	"github.com/berth-dev/berth/modproxy/source"
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

berth import verifies every module version with the checksum data in the
bundle alone, so each one needs its lookup. A store filled by berth warm or
berth proxy has them; a module cache filled from a complete go.sum has almost
none. What the store lacks is fetched from the upstream (--upstream, else
GOPROXY), with the tiles that check it, into a temporary directory, and
carried in the bundle; the store itself is never written. With no upstream
reachable, export refuses and says what to run.

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
	sumdbFlag := f.String("sumdb", "", "checksum `database` the bundle is verified against on import, recorded in the manifest:\nname, name+hash+key, or off (default: $GOSUMDB, else `go env GOSUMDB`)")
	nosumdb := f.String("nosumdb", "", "comma-separated module path `patterns` not verified (private modules): they need no checksum data\n(default: $GONOSUMDB, else $GOPRIVATE, else their `go env` values)")
	upstream := f.String("upstream", "", "GOPROXY-style `list` of proxies to fetch the checksum data the store lacks from\n(default: $GOPROXY, else `go env GOPROXY`); asked only when data is missing")
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
	sumKey, noSum, err := sumdbConfig(ctx, *sumdbFlag, *nosumdb)
	if err != nil {
		fmt.Fprintf(stderr, "berth export: %v\n", err)
		return 2
	}
	log, _ := newLogger(stderr, "text", "error")
	cfg := airgap.ExportConfig{StoreDir: *storeDir, Patterns: f.Args(), SumDB: dbNameOf(sumKey), SumDBKey: sumKey, NoSumDB: noSum, Logger: log}
	// The upstream is only asked for checksum data the store lacks; one that
	// is not configured matters only then.
	var noSource error
	if sumKey != "" {
		chain, err := upstreamChain(ctx, *upstream, false, log)
		switch {
		case err != nil:
			noSource = err
		case chain.Off || len(chain.Upstreams) == 0:
			noSource = fmt.Errorf("the upstream is %s", chain)
		default:
			cfg.Source = &source.Fetcher{Chain: chain, Client: source.NewClient(nil), UserAgent: "berth/" + versionNumber(), Logger: log}
		}
	}
	prog := newProgress(stderr, "berth export", "files")
	cfg.Progress = prog.update

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
	prog.finish()
	if err != nil {
		var me *airgap.MissingSumError
		if errors.As(err, &me) {
			fmt.Fprintf(stderr, "berth %v%s\n", err, missingSumAdvice(me, noSource, args))
			return 1
		}
		fmt.Fprintf(stderr, "berth export: %v\n", err)
		return 1
	}
	pat := "all modules"
	if len(cfg.Patterns) > 0 {
		pat = "modules matching " + strings.Join(cfg.Patterns, ",")
	}
	fetched := ""
	if res.SumDBFetched > 0 {
		fetched = fmt.Sprintf(" (checksum data of %d of them fetched from the upstream)", res.SumDBFetched)
	}
	fmt.Fprintf(stderr, "berth export: %s: %d module versions (%s)%s, %d files, %s uncompressed, %s bundle\n",
		out, res.Modules, pat, fetched, len(res.Manifest.Files), humanBytes(res.Bytes), humanBytes(size))
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

// missingSumAdvice says what to run when module versions lack checksum data
// and the upstream did not give it: the same export with an upstream, or
// unverified.
func missingSumAdvice(me *airgap.MissingSumError, noSource error, args []string) string {
	const unverified = "or add --sumdb off to export them unverified"
	switch {
	case me.Err == nil:
		why := ""
		if noSource != nil {
			why = " (" + noSource.Error() + ")"
		}
		// The upstream to name is the user's own: berth names none.
		cmd := []string{"berth", "export", "--upstream", "YOUR-MODULE-PROXY-URL"}
		for i := 0; i < len(args); i++ {
			switch a := args[i]; {
			case a == "--upstream" || a == "-upstream":
				i++ // and its value
			case strings.HasPrefix(a, "--upstream=") || strings.HasPrefix(a, "-upstream="):
			default:
				cmd = append(cmd, a)
			}
		}
		return why + ": run " + shellJoin(cmd) + ", " + unverified
	case me.NotFound():
		return ": list private modules in --nosumdb, " + unverified
	}
	return ": run the same berth export again where the upstream is reachable, " + unverified
}

// shellJoin quotes args for a POSIX shell, so that a command we suggest can
// be pasted as it is.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+%") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
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
