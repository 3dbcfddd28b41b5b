package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/airgap"
	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

const warmAbout = `
Usage: berth warm [flags] [PATH | module@version ...]

Fill berth's store with every module a build needs, so that the build works
later with no network: from berth proxy --offline, or from the store used
directly as GOPROXY=file://<store>, or after berth export / berth import
across an air gap.

Each PATH is a go.sum (every "mod ver h1:" line stores the .info, .mod and
.zip; a "mod ver/go.mod h1:" line the .mod only), a go.mod (its require
lines), a file with the output of "go list -m all" ("-" reads it from standard
input), or a directory (its go.sum, else its go.mod). With no argument, the
current directory. A module@version argument names one module version.

Files are fetched through the same code as berth proxy: each .mod and .zip is
verified against the checksum database before it is stored, and the checksum
database lookups are stored too, so the store carries what the go command
and berth import need offline. Files already in the store are not fetched
again: running warm twice is a no-op. On a terminal a progress bar is drawn;
a summary follows. Exit status 1 if any module version failed.

Examples:
    berth warm --store /var/cache/berth                 # ./go.sum
    berth warm --store ./store ./go.sum tools/go.sum
    go list -m all | berth warm --store ./store -
    berth warm --store ./store golang.org/x/mod@v0.42.0
    berth warm --upstream https://proxy.corp.example --sumdb off ./go.sum
`

func runWarm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("warm", warmAbout, stdout, stderr)
	storeDir := f.String("store", "./berth-store", "`directory` of the store (created if missing; module cache layout)")
	upstream := f.String("upstream", "", "GOPROXY-style `list` of upstream proxies, e.g. 'https://a,https://b|https://c'\n(default: $GOPROXY, else `go env GOPROXY`)")
	sumdbFlag := f.String("sumdb", "", "checksum `database` every fetched .mod and .zip is verified against before it is stored,\nas in GOSUMDB: name, name+hash+key, or off (default: $GOSUMDB, else `go env GOSUMDB`)")
	nosumdb := f.String("nosumdb", "", "comma-separated module path `patterns` not verified (private modules)\n(default: $GONOSUMDB, else $GOPRIVATE, else their `go env` values)")
	jobs := f.Int("jobs", 8, "how many module versions are fetched at once")
	fetchTimeout := f.Duration("fetch-timeout", 10*time.Minute, "limit for one upstream fetch of one file, body included")
	logLevel := f.String("log-level", "warn", "`level` of the proxy's log lines: debug, info (one line per upstream fetch), warn or error")
	if code, ok := f.Parse(args); !ok {
		return code
	}
	if *jobs < 1 {
		return f.Usagef("--jobs=%d: want a whole number of at least 1", *jobs)
	}
	inputs := f.Args()
	if len(inputs) == 0 {
		inputs = []string{"."}
	}
	var needs airgap.Needs
	for _, in := range inputs {
		if err := airgap.ReadInput(in, &needs); err != nil {
			fmt.Fprintf(stderr, "berth warm: %v\n", err)
			return 2
		}
	}
	if needs.Len() == 0 {
		fmt.Fprintln(stderr, "berth warm: the inputs name no module versions; nothing to do")
		return 0
	}
	log, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		return f.Usagef("%v", err)
	}
	chain, err := upstreamChain(ctx, *upstream, false, log)
	if err != nil {
		fmt.Fprintf(stderr, "berth warm: %v\n", err)
		return 2
	}
	if chain.Off {
		fmt.Fprintln(stderr, "berth warm: the upstream is off: warm needs an upstream to fetch from (set --upstream)")
		return 2
	}
	sumKey, noSum, err := sumdbConfig(ctx, *sumdbFlag, *nosumdb)
	if err != nil {
		fmt.Fprintf(stderr, "berth warm: %v\n", err)
		return 2
	}
	if sumKey == "" {
		fmt.Fprintln(stderr, "berth warm: warning: checksum verification is off: files are stored unverified and berth import will not be able to verify them (set --sumdb)")
	}
	st, err := store.OpenDisk(*storeDir)
	if err != nil {
		fmt.Fprintf(stderr, "berth warm: %v\n", err)
		return 1
	}
	core, err := cache.New(cache.Config{
		Store:        st,
		Source:       &source.Fetcher{Chain: chain, Client: source.NewClient(nil), UserAgent: "berth/" + versionNumber(), Logger: log},
		FetchTimeout: *fetchTimeout,
		SumDBKey:     sumKey,
		NoSumDB:      noSum,
		Logger:       log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "berth warm: %v\n", err)
		return 1
	}
	defer core.Close()

	list := needs.List()
	prog := newProgress(stderr, "berth warm", "modules")
	prog.tenths = true
	res := airgap.Warm(ctx, airgap.WarmConfig{
		Cache:    core,
		SumDBKey: sumKey,
		NoSumDB:  noSum,
		Jobs:     *jobs,
		Progress: func(done, total int, bytes int64) { prog.update("", done, total, bytes) },
	}, list)
	prog.finish()

	fmt.Fprintf(stdout, "berth warm: %d module versions into %s: fetched %d, already present %d, failed %d; %d files, %s in %s\n",
		len(list), st.Root(), res.Fetched, res.Present, len(res.Failed), res.Files, humanBytes(res.Bytes), res.Duration.Round(time.Millisecond))
	if res.SumDBErr != nil {
		fmt.Fprintf(stderr, "berth warm: the store's checksum data is incomplete, so berth import would refuse an export of it: %v\nRun the same berth warm again with the upstream reachable.\n", res.SumDBErr)
		if len(res.Failed) == 0 {
			return 1
		}
	}
	if len(res.Failed) > 0 {
		fmt.Fprintln(stderr, "failed:")
		for _, e := range res.Failed {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
		fmt.Fprintln(stderr, "Check the upstream (berth doctor), then run the same berth warm again: what is stored is not fetched twice.")
		return 1
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// dbNameOf returns the database name of a verifier key ("name+hash+key").
func dbNameOf(key string) string {
	name, _, _ := strings.Cut(key, "+")
	return name
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
