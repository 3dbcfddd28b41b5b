package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-dev/berth/internal/goenv"
	"github.com/berth-dev/berth/modproxy"
	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/netkit"
	"github.com/berth-dev/berth/store"
)

const proxyAbout = `
Usage: berth proxy [flags]

Run a caching Go module proxy. Point the go command at it:

    GOPROXY=http://<berth-host>:3000 go mod download

berth serves the GOPROXY protocol ($module/@v/list, .info, .mod, .zip, @latest)
and proxies checksum databases (/sumdb/<name>/...), so a build whose only
reachable host is berth works with GOSUMDB on. Immutable files are fetched once,
verified, written atomically and kept; version lists and @latest are refreshed
after --list-ttl and served stale when every upstream fails.

Upstreams follow GOPROXY syntax: "," falls through to the next entry on 404/410
only, "|" on any error; "off" serves only the store. By default berth uses your
own Go configuration: $GOPROXY, else "go env GOPROXY".

The store uses the module cache's own layout, so it is also a GOPROXY=file://
tree, and an existing module cache can be served as it is:

    berth proxy --store "$(go env GOMODCACHE)/cache/download" --offline

Endpoints besides the protocol: /healthz (liveness), /readyz (readiness: the
store answers and, on disk, is writable; fails first during shutdown; its body
has a "store" object, and with --lease a "lease" object with the backend's state,
which never fails it), /metrics (Prometheus).
On SIGTERM: /readyz fails, --drain-delay passes, the listener closes, running
requests and upstream fetches get --shutdown-timeout to finish; nothing partial
is ever left in the store. A second SIGTERM or SIGINT ends berth at once.
On SIGINT (Ctrl-C at a terminal) berth stops at once: no drain, running
requests and fetches are cut, and nothing partial is left in the store either.

Examples:
    berth proxy                                   # :3000, ./berth-store, your GOPROXY
    berth proxy --listen :8080 --store /var/cache/berth \
                --upstream 'https://proxy.corp.example,https://mirror.example'
    docker run -p 3000:3000 -v berth:/store -e BERTH_UPSTREAM="$(go env GOPROXY)" \
               -e BERTH_SUMDB="$(go env GOSUMDB)" berth proxy --store /store

(The image has no go command to ask for your configuration: pass it in.)
`

func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("proxy", proxyAbout+proxyAccessHelp, stdout, stderr)
	listen := f.String("listen", ":3000", "`address` to listen on; the default listens on all interfaces,\nsince a proxy bound to 127.0.0.1 in a container is unreachable from outside it")
	storeDir := f.String("store", "./berth-store", storeUsage)
	leaseSpec := f.String("lease", "", leaseUsage)
	upstream := f.String("upstream", "", "GOPROXY-style `list` of upstream proxies, e.g. 'https://a,https://b|https://c', or off\n(default: $GOPROXY, else `go env GOPROXY`)")
	listTTL := f.Duration("list-ttl", time.Minute, "how long @v/list and @latest answers are served before the upstream is asked again")
	negTTL := f.Duration("negative-ttl", time.Minute, "how long an upstream 404/410 is remembered")
	fetchTimeout := f.Duration("fetch-timeout", 10*time.Minute, "limit for one upstream fetch of one file, body included")
	sumdbFlag := f.String("sumdb", "", "checksum `database` every fetched .mod and .zip is verified against before it is stored,\nas in GOSUMDB: name, name+hash+key, or off (default: $GOSUMDB, else `go env GOSUMDB`)")
	nosumdb := f.String("nosumdb", "", "comma-separated module path `patterns` not verified (private modules)\n(default: $GONOSUMDB, else $GOPRIVATE, else their `go env` values)")
	maxStore := f.String("max-store-size", "", "bound the store's module files to this `size` (e.g. 20GiB, 500MB); least recently\nused module versions are removed first, whole (default: no limit)")
	offline := f.Bool("offline", false, "serve only what the store holds; answer 404 for the rest")
	prefetch := f.Bool("prefetch", true, "when a go.mod is fetched, look up the checksum-database records of the modules it\nrequires before clients ask for them: saves a round trip per module when the upstream is\nfar away, costs some lookups of versions never asked for")
	drain := f.Duration("drain-delay", 5*time.Second, "on SIGTERM, how long /readyz fails before the listener closes,\nso load balancers stop sending new requests first (0: none)")
	shutdown := f.Duration("shutdown-timeout", 20*time.Second, "after the drain delay, how long running requests and upstream fetches get to finish;\nberth exits within drain + shutdown of the signal: keep that inside the orchestrator's\ngrace period (docker stop: 10s, Kubernetes: 30s)")
	logFormat := f.String("log-format", "text", "log `format`: text or json")
	logLevel := f.String("log-level", "info", "log `level`: debug, info, warn or error")
	authFile := f.String("auth-file", "", "client tokens and their scopes, one a line (see berth token --help); without this `file`\nevery client may read everything; read again when it changes")
	tlsCert := f.String("tls-cert", "", "serve https with this certificate chain (PEM `file`, read again when it changes)")
	tlsKey := f.String("tls-key", "", "the private key of --tls-cert (PEM `file`)")
	priv := addPrivateFlags(f)
	if code, ok := f.Parse(args); !ok {
		return code
	}
	if len(f.Args()) > 0 {
		return f.Usagef("unexpected argument %q: berth proxy takes flags only", f.Args()[0])
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return f.Usagef("%v", err)
	}

	chain, err := upstreamChain(ctx, *upstream, *offline, log)
	if err != nil {
		return f.Usagef("%v", err)
	}

	maxBytes, err := parseSize(*maxStore)
	if err != nil {
		return f.Usagef("--max-store-size=%s: %v", quoteArg(*maxStore), err)
	}
	sumKey, noSum, err := sumdbConfig(ctx, *sumdbFlag, *nosumdb)
	if err != nil {
		return f.Usagef("%v", err)
	}
	if err := priv.parseRoutes(); err != nil {
		return f.Usagef("%v", err)
	}
	acc, err := newAccess(*authFile, *tlsCert, *tlsKey, log)
	var accUsage *accessUsageError
	if errors.As(err, &accUsage) {
		return f.Usagef("%v", err)
	} else if err != nil {
		fmt.Fprintf(stderr, "berth proxy: %v\n", err)
		return 1
	}

	// The registry comes first so that the store's series are in it; making
	// it starts nothing.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st, where, closeStore, err := openStore(ctx, *storeDir, reg)
	if err != nil {
		fmt.Fprintf(stderr, "berth proxy: %v\n", err)
		return 1
	}
	defer closeStore()
	// One proxy per disk store: two would each sweep, count and evict the
	// other's files as if they were alone. (An S3 store is shared by design.)
	if d, ok := st.(*store.Disk); ok {
		unlock, err := d.Lock()
		if err != nil {
			if errors.Is(err, store.ErrLocked) {
				fmt.Fprintf(stderr, "berth proxy: %v: a store serves one berth proxy at a time; stop the other or give this one its own --store\n", err)
			} else {
				fmt.Fprintf(stderr, "berth proxy: %v\n", err)
			}
			return 1
		}
		defer unlock()
	}
	ls, backend, err := openLease(*leaseSpec, st)
	if err != nil {
		return f.Usagef("%v", err)
	}
	if backend != nil {
		defer backend.Close()
	}
	// Everything that can fail at start fails before anything runs in the
	// background, so a fatal error is the last line berth prints: the store
	// and its lock, then the listener (connections wait in the backlog until
	// Serve), then the core.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		msg, usage := listenError(*listen, err)
		if usage {
			return f.Usagef("%s", msg)
		}
		fmt.Fprintf(stderr, "berth proxy: %s\n", msg)
		return 1
	}
	defer ln.Close()

	ps, err := priv.setup(ctx, &source.Fetcher{Chain: chain, Client: source.NewClient(reg), UserAgent: "berth/" + versionNumber(),
		Logger: log}, st, *storeDir, noSum, reg, log)
	if err != nil {
		return f.Usagef("%v", err)
	}
	px, err := modproxy.New(modproxy.Config{Config: cache.Config{
		Store:           st,
		Source:          ps.Source,
		Ledger:          ps.Ledger,
		Lease:           ls,
		ListTTL:         *listTTL,
		NegativeTTL:     *negTTL,
		FetchTimeout:    *fetchTimeout,
		Offline:         *offline || chain.Off,
		SumDBKey:        sumKey,
		WarmSumDB:       true,
		PrefetchLookups: *prefetch,
		MaxStoreSize:    maxBytes,
		NoSumDB:         ps.NoSumDB,
		Logger:          log,
		Registerer:      reg,
	}, Fetched: acc.audit()})
	if err != nil {
		fmt.Fprintf(stderr, "berth proxy: %v\n", err)
		return 1
	}
	defer px.Close()
	if backend != nil {
		log.Info("fetches are leased across the replicas sharing the store", "lease", backend.String(), "store", where)
	}
	if sumKey == "" {
		log.Warn("checksum verification is off: fetched files are stored unverified (set --sumdb)")
	}
	// Temporary files not written to for a minute belong to no live writer
	// (writers touch them with every chunk): a crash left them. Nothing else
	// needs repair: committed files are whole by construction.
	go func() {
		n, err := store.RemoveTemp(st, time.Minute)
		switch {
		case err != nil:
			log.Warn("cannot remove temporary files left by an earlier crash; they only take space", "store", where, "err", err)
		case n > 0:
			log.Info("removed stray temporary files left by an earlier crash", "count", n, "store", where)
		}
	}()

	var health netkit.Health
	health.AddLiveness("process", time.Second, func(context.Context) error { return nil })
	health.AddReadiness(storeCheck, 2*time.Second, func(ctx context.Context) error { return store.Check(ctx, st) })
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", health.LiveHandler())
	mux.Handle("GET /readyz", &readiness{health: &health, store: st, where: where, core: px.Core(), lease: backend})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", px)

	srv := &http.Server{
		Handler:           acc.handler(px.Guard(mux)), // paths with "//" or ".." reach the proxy, not the mux's redirect
		ConnContext:       modproxy.ConnContext,
		TLSConfig:         acc.tlsConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("berth proxy listening", "addr", ln.Addr().String(), "store", where, "upstream", chain.String(), "offline", *offline, "list_ttl", listTTL.String())
	// One budget for the whole stop: drain + shutdown-timeout from the signal,
	// shared by the HTTP shutdown and the upstream fetches that follow it.
	stopStarted := make(chan time.Time, 1)
	go func() { <-ctx.Done(); stopStarted <- time.Now() }()
	drainDelay := *drain
	if drainDelay == 0 {
		drainDelay = -1 // netkit reads 0 as its default; 0 here means no drain
	}
	stopWatch := acc.watch(ctx)
	defer stopWatch()
	serr := netkit.Serve(ctx, srv, ln, netkit.ServeOptions{
		Health:          &health,
		DrainDelay:      drainDelay,
		ShutdownTimeout: *shutdown,
		Logger:          log,
	})
	if ctx.Err() == nil {
		// The server stopped without being asked to.
		log.Error("server stopped", "err", serr)
		return 1
	}
	// After SIGINT (netkit.ErrStopNow) the fetches are not waited for:
	// px.Close below cancels them with the connections.
	if !errors.Is(context.Cause(ctx), netkit.ErrStopNow) {
		deadline := (<-stopStarted).Add(max(*drain, 0) + *shutdown)
		wctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		if err := px.Wait(wctx); err != nil {
			log.Warn("upstream fetches still running at the shutdown deadline were cancelled; nothing partial is kept")
		}
	}
	if serr != nil {
		log.Warn("shutdown deadline reached: remaining connections were closed", "err", serr)
	}
	px.Close() // background work may log as it stops: before "stopped"
	log.Info("stopped")
	return 0
}

// upstreamChain resolves the upstream list from the flag, else from the
// user's Go configuration (GOPROXY, go env GOPROXY); offline with no flag
// means "off". The list is parsed as the go command parses GOPROXY, and an
// error names where the list came from. A final "direct" (fetched from
// version control) is one INFO line; entries after it, which the go command
// never reads either, a warning.
func upstreamChain(ctx context.Context, flag string, offline bool, log *slog.Logger) (*source.Chain, error) {
	up, from, origin := flag, "--upstream", ""
	switch {
	case up != "":
	case offline:
		up = "off"
	default:
		vals, origins, err := goenv.Read(ctx, nil, "", "GOPROXY")
		if err != nil {
			return nil, fmt.Errorf("no upstream configured: %w; set --upstream or BERTH_UPSTREAM", err)
		}
		if up = vals["GOPROXY"]; up == "" {
			return nil, errors.New("no upstream configured: GOPROXY is empty; set --upstream or BERTH_UPSTREAM")
		}
		origin = origins["GOPROXY"].String()
		from = "GOPROXY from " + origin
	}
	chain, err := source.Parse(up)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	if chain.Direct() {
		log.Info("the upstream list ends in direct: what no proxy of it has is fetched from version control with the go command", "upstream", chain.String(), "from", from)
	}
	if len(chain.Ignored) > 0 {
		log.Warn("upstream entries after direct are ignored, as the go command ignores them", "entries", strings.Join(chain.Ignored, ","), "from", from, "goproxy_from", origin)
	}
	return chain, nil
}

// sumdbConfig resolves the checksum database and the excluded patterns from the
// flags, else from the user's Go configuration, as the go command would:
// GOSUMDB, and GONOSUMDB defaulting to GOPRIVATE.
func sumdbConfig(ctx context.Context, flagDB, flagNo string) (key string, noSum func(string) bool, err error) {
	var names []string
	if flagDB == "" {
		names = append(names, "GOSUMDB")
	}
	if flagNo == "" {
		names = append(names, "GONOSUMDB", "GOPRIVATE")
	}
	var vals map[string]string
	var origins map[string]goenv.Origin
	if len(names) > 0 {
		// With no go command, what the environment holds is still used.
		vals, origins, _ = goenv.Read(ctx, nil, "", names...)
	}
	db, from := flagDB, "--sumdb"
	if db == "" {
		db, from = vals["GOSUMDB"], "GOSUMDB from "+origins["GOSUMDB"].String()
		if db == "" {
			db = "off"
		}
	}
	sdb, err := goenv.ParseSumDB(db)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", from, err)
	}
	if !sdb.Off {
		key = sdb.Key
	}
	patterns := goenv.Patterns(flagNo)
	if flagNo == "" {
		patterns = goenv.NoSumDB(vals)
	}
	if patterns != "" {
		noSum = patterns.Match
	}
	return key, noSum, nil
}

// parseSize parses a size such as 500MB, 20GiB or 1048576 ("" is 0: no limit).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)) {
			num, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<62 {
		return 0, errors.New("want a size: a number with an optional unit such as 500MB or 20GiB")
	}
	return int64(n * float64(mult)), nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level=%s: want debug, info, warn or error", quoteArg(level))
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format=%s: want text or json", quoteArg(format))
}
