// Package modproxy implements the GOPROXY protocol as the go command uses it:
// an http.Handler that answers $module/@v/list, .info, .mod, .zip, @latest and
// proxies checksum databases under /sumdb/, from a store first and from
// upstreams on a miss.
//
// Immutable files (.mod, .zip, .info of a canonical version, sumdb lookups and
// full tiles) are fetched once per key however many clients ask (the body is
// streamed to all of them while it is written), verified, committed atomically
// and never fetched again. Mutable answers (list, @latest, .info of a query)
// are cached for a short TTL and served stale, with a header saying so, when
// every upstream fails.
package modproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"
	"golang.org/x/sync/singleflight"

	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/sumdb"
)

// Config configures a Proxy. The zero value of each optional field is a
// working default.
type Config struct {
	// Store holds the cached files. Required.
	Store store.Store
	// Fetcher fetches from the upstream chain. Required (a chain of "off" makes
	// the proxy serve only its store).
	Fetcher *source.Fetcher

	// ListTTL is how long a module's version list and @latest answer are served
	// from the cache before the upstream is asked again. Default 1 minute.
	ListTTL time.Duration
	// NegativeTTL is how long an upstream "not found" is remembered. Default 1 minute.
	NegativeTTL time.Duration
	// FetchTimeout bounds one upstream fetch of one file, including the body.
	// Clients that give up do not cancel a fetch others wait for. Default 10 minutes.
	FetchTimeout time.Duration
	// MaxStoreSize bounds the bytes of module files in the store (0: no limit).
	// Past it, whole module versions go, least recently used first, down to 90%.
	// It needs a store that can list its files (the disk store).
	MaxStoreSize int64

	// MaxFetches caps upstream fetches running at once; more wait their turn.
	// It protects the upstream (and berth's disk) from a cold-build storm.
	// Default 64.
	MaxFetches int

	// Offline serves only what the store holds and answers 404 for the rest, so
	// the go command's own fall-through works.
	Offline bool

	// SumDBKey is the verifier key ("name+hash+key") of the checksum database
	// every fetched .mod and .zip is checked against before it is stored; the
	// database is read through this proxy's own /sumdb/<name>/ (store first,
	// then the upstream that proxies it). Empty means no verification.
	SumDBKey string
	// NoSumDB reports module paths that are not checked (private modules, as
	// GONOSUMDB/GOPRIVATE say). Nil means every module is checked.
	NoSumDB func(modulePath string) bool
	// WarmSumDB verifies the checksum database's latest tree when the proxy
	// starts, so that the first files to verify do not wait for it. A
	// long-running server sets it; a batch that may have all it needs does not.
	WarmSumDB bool
	// PrefetchLookups looks up, in the background, the checksum-database
	// records of the requirements of every go.mod fetched from the upstream,
	// so that when the go command asks for them next (it loads the module
	// graph a go.mod at a time), their verification needs no round trip.
	PrefetchLookups bool
	// PrefetchMinRTT: lookups are made ahead only while upstream lookups
	// take at least this long on average. 0 means 15ms; negative, always.
	PrefetchMinRTT time.Duration

	// Logger receives one line per upstream fetch and per error. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the proxy's metrics. Nil means no registration.
	Registerer prometheus.Registerer
}

// Proxy is the GOPROXY protocol handler.
type Proxy struct {
	cfg Config
	st  store.Store
	log *slog.Logger
	m   *metrics

	ctx    context.Context // parent of background fetches; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // upstream fetches: graceful shutdown waits for them
	bg     sync.WaitGroup // background work nobody waits for: Close stops it

	// prefetchQ holds module versions whose checksum-database records are
	// looked up ahead of the clients that will ask for them; nil: none.
	prefetchQ  chan module.Version
	prefetchMu sync.Mutex        // guards newest and lookupRTT
	newest     map[string]string // highest version of each module path seen required
	lookupRTT  time.Duration     // moving average of upstream lookup times

	mu      sync.Mutex
	flights map[string]*flight

	mutable singleflight.Group
	hot     *hotCache // small immutable files
	mem     *memCache // @latest, query .info, sumdb latest
	neg     *memCache // negative answers

	sumdbMu   sync.Mutex
	sumdbBase map[string]sumdbState

	verifier *sumdb.Verifier // nil: no checksum verification
	fetchSem chan struct{}   // bounds concurrent upstream fetches
	evict    *evictor        // nil: no size limit
}

// acquireFetch takes one of MaxFetches slots; release with releaseFetch.
func (p *Proxy) acquireFetch(ctx context.Context) error {
	select {
	case p.fetchSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Proxy) releaseFetch() { <-p.fetchSem }

// New returns a Proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	if cfg.Store == nil {
		return nil, errors.New("modproxy: Config.Store is required")
	}
	if cfg.Fetcher == nil || cfg.Fetcher.Chain == nil {
		return nil, errors.New("modproxy: Config.Fetcher with a Chain is required")
	}
	if cfg.ListTTL <= 0 {
		cfg.ListTTL = time.Minute
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = time.Minute
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PrefetchMinRTT == 0 {
		cfg.PrefetchMinRTT = defaultPrefetchMinRTT
	}
	if cfg.MaxFetches <= 0 {
		cfg.MaxFetches = 64
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		cfg:       cfg,
		st:        cfg.Store,
		log:       cfg.Logger,
		m:         newMetrics(cfg.Registerer),
		ctx:       ctx,
		cancel:    cancel,
		flights:   map[string]*flight{},
		hot:       newHotCache(),
		mem:       newMemCache(20000),
		neg:       newMemCache(20000),
		sumdbBase: map[string]sumdbState{},
		fetchSem:  make(chan struct{}, cfg.MaxFetches),
	}
	online := !cfg.Offline && !cfg.Fetcher.Chain.Off
	if cfg.SumDBKey != "" {
		v, err := sumdb.NewVerifier(ctx, cfg.SumDBKey, p.readSumDB)
		if err != nil {
			cancel()
			return nil, err
		}
		p.verifier = v
		if cfg.WarmSumDB && online {
			// Verify the database's latest tree now, off any client's path:
			// its edge tiles can take the upstream seconds to produce.
			p.bg.Add(1)
			go func() {
				defer p.bg.Done()
				start := time.Now()
				if err := v.Warm(ctx); err != nil {
					if ctx.Err() == nil {
						p.log.Warn("cannot read the checksum database's latest tree yet; files are verified when it can be read",
							"name", v.Name(), "err", err)
					}
					return
				}
				p.log.Info("checksum database tree verified", "name", v.Name(), "size", v.Tree().N, "ms", time.Since(start).Milliseconds())
			}()
		}
	}
	if p.verifier != nil && cfg.PrefetchLookups && online {
		p.prefetchQ = make(chan module.Version, prefetchQueue)
		for range prefetchWorkers {
			p.bg.Add(1)
			go p.prefetchLoop()
		}
	}
	p.startEvictor()
	return p, nil
}

const (
	prefetchWorkers = 8    // lookups ahead of clients at once
	prefetchQueue   = 4096 // more waiting than this are dropped
	// defaultPrefetchMinRTT is the average lookup time from which looking up
	// requirements ahead pays: measured with a 40 ms upstream it saved 2.5 s
	// of a 19 s cold graph download; with a 4 ms one it cost 0.75 s of CPU.
	defaultPrefetchMinRTT = 15 * time.Millisecond
)

// noteLookupTime adds one upstream lookup time to the moving average.
func (p *Proxy) noteLookupTime(d time.Duration) {
	p.prefetchMu.Lock()
	defer p.prefetchMu.Unlock()
	if p.lookupRTT == 0 {
		p.lookupRTT = d
		return
	}
	p.lookupRTT += (d - p.lookupRTT) / 8
}

// newestRequired records mv as required and reports whether its version is
// the highest seen required for its path. Minimal version selection keeps the
// highest, so a lower one is seldom asked for and is not looked up ahead.
func (p *Proxy) newestRequired(mv module.Version) bool {
	p.prefetchMu.Lock()
	defer p.prefetchMu.Unlock()
	if p.newest == nil || len(p.newest) >= 100000 {
		p.newest = map[string]string{}
	}
	if cur, ok := p.newest[mv.Path]; ok && semver.Compare(mv.Version, cur) <= 0 {
		return false
	}
	p.newest[mv.Path] = mv.Version
	return true
}

// prefetchLoop looks up queued records until the proxy closes.
func (p *Proxy) prefetchLoop() {
	defer p.bg.Done()
	for {
		select {
		case mv := <-p.prefetchQ:
			p.verifier.Prefetch(p.ctx, mv.Path, mv.Version)
		case <-p.ctx.Done():
			return
		}
	}
}

// prefetchRequirements queues the lookups of the modules a verified go.mod
// requires. The queue is bounded; when it is full the rest are skipped (their
// lookups then happen when they are fetched, as without prefetching).
func (p *Proxy) prefetchRequirements(gomod []byte) {
	if p.prefetchQ == nil {
		return
	}
	p.prefetchMu.Lock()
	rtt := p.lookupRTT
	p.prefetchMu.Unlock()
	if rtt < p.cfg.PrefetchMinRTT {
		// A near upstream answers a lookup about as fast as the proxy could
		// look it up ahead; lookups of versions never asked for would then
		// cost CPU and gain nothing.
		return
	}
	f, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		return
	}
	for _, r := range f.Require {
		if !p.checkSum(r.Mod.Path) || !p.newestRequired(r.Mod) {
			continue
		}
		select {
		case p.prefetchQ <- r.Mod:
		default:
			return
		}
	}
}

// Close cancels running upstream fetches (their temporary files are removed)
// and waits for them to end.
func (p *Proxy) Close() error {
	p.cancel()
	p.wg.Wait()
	p.bg.Wait()
	return nil
}

// Wait blocks until no upstream fetch is running or ctx is done; it is used
// during graceful shutdown to let fetches that clients wait for finish.
func (p *Proxy) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The hot path: a small immutable file already in memory, asked for by its
	// canonical path (the URL path of a store key is "/" + the key), with no
	// range or condition. No parsing, no wrapper, counters resolved in advance.
	if path := r.URL.Path; len(path) > 1 && path[0] == '/' && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !conditional(r) {
		if e := p.hot.get(path[1:]); e != nil {
			e.serve(w, r)
			p.m.hotServed(e.kind, r.Method == http.MethodGet, len(e.body))
			if p.evict != nil {
				p.evict.touch(path[1:])
			}
			return
		}
	}
	rw := &recorder{ResponseWriter: w, code: 200}
	req, err := p.serve(rw, r)
	ep := "other"
	if err == nil {
		ep = req.Kind.String()
	}
	p.m.request(ep, rw.code)
	if rw.bytes > 0 {
		p.m.servedBytes.WithLabelValues(ep).Add(float64(rw.bytes))
	}
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) (Request, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "method %s not allowed: the GOPROXY protocol uses GET and HEAD", truncate(r.Method, 16))
		return Request{}, errors.New("method")
	}
	if r.URL.RawQuery != "" && r.URL.Path == "/" {
		httpError(w, http.StatusNotFound, "not a GOPROXY path")
		return Request{}, errors.New("query")
	}
	req, err := ParsePath(r.URL.Path)
	if err != nil {
		var pe *PathError
		if errors.As(err, &pe) {
			httpError(w, pe.Status, "%s", pe.Error())
		} else {
			httpError(w, http.StatusBadRequest, "%v", err)
		}
		return Request{}, err
	}
	switch {
	case req.Kind == KindSumDB:
		p.serveSumDB(w, r, req)
	case req.Immutable():
		p.serveImmutable(w, r, req, nil)
	case req.Kind == KindList:
		p.serveList(w, r, req)
	default: // @latest and .info of a query
		p.serveMem(w, r, req, p.cfg.Fetcher.Chain.Upstreams)
	}
	return req, nil
}

// httpError writes a short text/plain error the go command prints as
// "server response:".
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("ETag")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	msg := fmt.Sprintf(format, args...)
	msg = strings.ReplaceAll(msg, "\n", " ")
	io.WriteString(w, msg+"\n")
}

func contentType(k Kind) string {
	switch k {
	case KindInfo, KindLatest:
		return "application/json"
	case KindZip:
		return "application/zip"
	}
	return "text/plain; charset=utf-8"
}

const immutableCacheControl = "public, max-age=31536000, immutable"

// serveFile answers from a committed store file with http.ServeContent, which
// handles HEAD, Range, If-Range and If-None-Match, and uses sendfile for *os.File.
func serveFile(w http.ResponseWriter, r *http.Request, f store.File, kind Kind, cacheControl string) {
	info, err := f.Stat()
	if err != nil {
		httpError(w, http.StatusInternalServerError, "store: %v", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType(kind))
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", etagFor(info.Size(), info.ModTime()))
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok && info.Size() >= corkMin && r.Method == http.MethodGet {
		setCork(c, true)
		defer setCork(c, false)
	}
	http.ServeContent(w, r, "", info.ModTime(), f)
}

// corkMin is the smallest file sent with TCP_CORK on.
const corkMin = 256 << 10

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it lets the proxy reach a
// request's connection to send large files in full segments.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// serveImmutable answers a request whose answer never changes: from the store,
// or by joining (or starting) the one upstream fetch of its key.
// ups restricts the upstreams asked (sumdb requests); nil means the whole chain.
func (p *Proxy) serveImmutable(w http.ResponseWriter, r *http.Request, req Request, ups []source.Upstream) {
	ep := req.Kind.String()
	if e := p.hot.get(req.Key); e != nil {
		p.m.hit(req.Kind)
		if p.evict != nil {
			p.evict.touch(req.Key)
		}
		e.serve(w, r)
		return
	}
	if f, err := p.st.Open(r.Context(), req.Key); err == nil {
		p.m.hit(req.Kind)
		if p.evict != nil {
			p.evict.touch(req.Key)
		}
		defer f.Close()
		if info, err := f.Stat(); err == nil && info.Size() <= hotMaxFile {
			body := make([]byte, info.Size())
			if _, err := io.ReadFull(f, body); err == nil {
				p.hot.put(req.Key, req.Kind, body, info.ModTime()).serve(w, r)
				return
			}
			f.Seek(0, io.SeekStart)
		}
		serveFile(w, r, f, req.Kind, immutableCacheControl)
		return
	} else if !errors.Is(err, fs.ErrNotExist) {
		p.log.Error("store read failed", "key", req.Key, "err", err)
		httpError(w, http.StatusInternalServerError, "store: cannot read %s: %v", req.Key, err)
		return
	}
	if p.cfg.Offline || p.cfg.Fetcher.Chain.Off {
		httpError(w, http.StatusNotFound, "not found: %s@%s is not in berth's store and berth is offline", req.Module, req.Version)
		return
	}
	if p.answerNegative(w, req.UpstreamPath(), req.Kind) {
		return
	}
	p.m.misses.WithLabelValues(ep).Inc()
	fl, hit := p.join(req, ups)
	if hit {
		// Committed between our miss and join.
		p.serveImmutable(w, r, req, ups)
		return
	}
	defer fl.release()
	select {
	case <-fl.ready:
	case <-r.Context().Done():
		return
	}
	if err := fl.earlyErr(); err != nil {
		p.writeFetchError(w, req, err)
		return
	}
	if content, size, modTime, ok := fl.verifiedContent(); ok {
		// The body is whole and verified; only the commit (fsync, rename) is
		// left. Answer as from a hit, with the ETag the committed file will
		// have, without waiting for the disk.
		h := w.Header()
		h.Set("Content-Type", contentType(req.Kind))
		h.Set("Cache-Control", immutableCacheControl)
		h.Set("ETag", etagFor(size, modTime))
		http.ServeContent(w, r, "", modTime, content)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType(req.Kind))
	if n := fl.expectedSize(); n >= 0 {
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	h.Set("Cache-Control", immutableCacheControl)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	var off int64
	wrote := false
	for {
		n, err := fl.readAt(r.Context(), *buf, off)
		if n > 0 {
			wrote = true
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return // client went away; the fetch goes on for the others
			}
			off += int64(n)
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			if !wrote {
				p.writeFetchError(w, req, err)
				return
			}
			// Headers (maybe a Content-Length) are out: break the connection
			// so the client sees a failed transfer, never a short "complete" file.
			panic(http.ErrAbortHandler)
		}
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// writeFetchError maps an upstream failure to what the go command acts on:
// 404 for "not found" (so a "," list falls through), 502 otherwise.
func (p *Proxy) writeFetchError(w http.ResponseWriter, req Request, err error) {
	var se *storeError
	if errors.As(err, &se) {
		w.Header().Set("Retry-After", "30")
		httpError(w, http.StatusServiceUnavailable, "berth: %v", err)
		return
	}
	if errors.Is(err, source.ErrNotFound) {
		httpError(w, http.StatusNotFound, "not found: %v", err)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		httpError(w, http.StatusGatewayTimeout, "berth: upstream fetch of %s timed out: %v", req.UpstreamPath(), err)
		return
	}
	httpError(w, http.StatusBadGateway, "berth: upstream fetch of %s failed: %v", req.UpstreamPath(), err)
}

// join returns the running flight for req.Key or starts one. hit reports that
// the key was committed meanwhile and the caller should read the store.
func (p *Proxy) join(req Request, ups []source.Upstream) (fl *flight, hit bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fl := p.flights[req.Key]; fl != nil {
		fl.acquire()
		return fl, false
	}
	if f, err := p.st.Open(context.Background(), req.Key); err == nil {
		f.Close()
		return nil, true
	}
	fl = newFlight(req.Key, req.Kind)
	fl.acquire() // the caller's reference; the writer holds the initial one
	p.flights[req.Key] = fl
	p.wg.Add(1)
	go p.fetch(fl, req, ups)
	return fl, false
}

// fetch runs one upstream fetch: stream into a temporary file, verify, commit.
func (p *Proxy) fetch(fl *flight, req Request, ups []source.Upstream) {
	defer p.wg.Done()
	ep := req.Kind.String()
	start := time.Now()
	p.m.inflight.Inc()
	defer p.m.inflight.Dec()
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.FetchTimeout)
	defer cancel()

	if (req.Kind == KindMod || req.Kind == KindZip) && p.checkSum(req.Module) {
		// Look the version up in the checksum database while the body downloads,
		// so that verification at the end is only local hashing.
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.verifier.Prefetch(ctx, req.Module, req.Version)
		}()
	}
	var upName string
	written, tmp, err := p.fetchInto(ctx, fl, req, ups, &upName)
	if err == nil && req.Kind == KindSumDB && strings.Contains(req.Key, "/lookup/") {
		p.noteLookupTime(time.Since(start))
	}
	if err == nil && tmp == nil {
		// A small body, verified in memory: clients have it; now the disk.
		fl.complete(nil)
		if req.Kind == KindMod {
			p.prefetchRequirements(fl.mem)
		}
		p.commitSmall(ctx, req, fl.mem, fl.modTime)
	} else if err == nil {
		// Verified: release the held-back bytes to the waiting clients now, and
		// make the file durable after, off their path. The flight stays joinable
		// until the store answers for the key.
		fl.complete(nil)
		if cerr := p.st.Commit(ctx, req.Key, tmp); cerr != nil {
			p.log.Error("cannot commit a verified file to the store; clients got it, the next request fetches it again",
				"key", req.Key, "err", cerr)
			os.Remove(tmp.Name())
		} else if req.Kind == KindSumDB {
			p.storeNarrowerTiles(ctx, req, tmp, written)
		} else {
			p.committed(ctx, req.Key, written)
		}
	}

	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, source.ErrNotFound):
		result = "not_found"
		p.neg.put(req.UpstreamPath(), []byte(err.Error()))
	case errors.As(err, new(*rejectError)):
		result = "rejected"
		var re *rejectError
		errors.As(err, &re)
		p.m.rejected.WithLabelValues(ep, re.reason).Inc()
	default:
		result = "error"
	}
	p.m.upstream.WithLabelValues(ep, result).Inc()
	p.m.fetchDurations.WithLabelValues(ep).Observe(time.Since(start).Seconds())
	attrs := []any{"key", req.Key, "upstream", upName, "result", result, "bytes", written, "ms", time.Since(start).Milliseconds()}
	switch result {
	case "ok", "not_found":
		p.log.Info("upstream fetch", attrs...)
	default:
		p.log.Warn("upstream fetch failed; nothing was cached", append(attrs, "err", err)...)
	}
	// From now on the store answers for the key. A failed flight leaves the
	// table before its clients learn of the failure, so that a client retrying
	// at once starts a new fetch instead of joining the failed one.
	p.mu.Lock()
	delete(p.flights, req.Key)
	p.mu.Unlock()
	if err != nil {
		fl.complete(err)
	}
	fl.release()
}

// storeError is a failure to write the store (disk full, I/O error): berth
// answers 503, keeps serving what it has, and recovers when writes work again.
type storeError struct {
	op  string
	err error
}

func (e *storeError) Error() string {
	msg := "store: " + e.op + ": " + e.err.Error()
	if errors.Is(e.err, syscall.ENOSPC) {
		msg += " (the store's disk is full: free space or set a smaller --max-store-size; cached files are still served)"
	}
	return msg
}
func (e *storeError) Unwrap() error { return e.err }

// rejectError is an upstream body refused by verification.
type rejectError struct {
	reason string
	err    error
}

func (e *rejectError) Error() string { return e.err.Error() }
func (e *rejectError) Unwrap() error { return e.err }

func reject(reason string, format string, args ...any) error {
	return &rejectError{reason: reason, err: fmt.Errorf(format, args...)}
}

func maxSize(k Kind) int64 {
	switch k {
	case KindZip:
		return modzip.MaxZipFile
	case KindMod:
		return modzip.MaxGoMod
	}
	return 16 << 20
}

// fetchInto streams the upstream body into a temporary file that waiting
// clients read as it grows, and verifies it. On success it returns the open
// temporary file, not yet committed; on failure the file is gone.
func (p *Proxy) fetchInto(ctx context.Context, fl *flight, req Request, ups []source.Upstream, upName *string) (int64, *os.File, error) {
	if ups == nil {
		ups = p.cfg.Fetcher.Chain.Upstreams
	}
	if err := p.acquireFetch(ctx); err != nil {
		return 0, nil, err
	}
	// The slot covers the transfer only: verification reads the checksum
	// database through the proxy, which needs slots of its own.
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(p.releaseFetch) }
	defer release()
	resp, up, err := p.cfg.Fetcher.GetFrom(ctx, ups, req.UpstreamPath())
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	*upName = up.String()
	limit := maxSize(req.Kind)
	if resp.ContentLength > limit {
		return 0, nil, reject("too_large", "%s@%s %s from %s is %d bytes, over the limit of %d", req.Module, req.Version, req.Kind, up, resp.ContentLength, limit)
	}
	if req.Kind != KindZip && resp.ContentLength >= 0 && resp.ContentLength <= smallBody {
		// Small bodies (.info, .mod, checksum lookups and tiles) are read and
		// verified in memory, so no disk operation is on the client's path.
		*upName = up.String()
		body := make([]byte, resp.ContentLength)
		n, rerr := io.ReadFull(resp.Body, body)
		p.m.upstreamBytes.Add(float64(n))
		if rerr != nil {
			return int64(n), nil, reject("truncated", "%s from %s: got %d bytes, Content-Length said %d: %v", req.UpstreamPath(), up, n, resp.ContentLength, rerr)
		}
		release()
		if err := p.verify(ctx, req, body, ""); err != nil {
			return int64(n), nil, err
		}
		fl.startMem(body, time.Now())
		return int64(n), nil, nil
	}
	tmp, err := p.st.TempFile(req.Key)
	if err != nil {
		return 0, nil, &storeError{op: "creating a file for " + req.Key, err: err}
	}
	committed := false
	if resp.ContentLength > 0 {
		// Reserve the space before the first byte goes to a client, so a full
		// disk is a clean 503 instead of a broken transfer.
		if err := reserve(tmp, resp.ContentLength); err != nil {
			p.st.Discard(tmp)
			return 0, nil, &storeError{op: fmt.Sprintf("reserving %d bytes for %s", resp.ContentLength, req.Key), err: err}
		}
	}
	defer func() {
		if !committed {
			// Unlink the file now; the flight closes it with its last
			// reference, so a client still reading never meets a closed file.
			os.Remove(tmp.Name())
		}
	}()
	fl.start(tmp, resp.ContentLength)

	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	var written int64
	for {
		n, rerr := resp.Body.Read(*buf)
		if n > 0 {
			if written+int64(n) > limit {
				return written, nil, reject("too_large", "%s from %s exceeds the limit of %d bytes", req.UpstreamPath(), up, limit)
			}
			if _, werr := tmp.Write((*buf)[:n]); werr != nil {
				return written, nil, &storeError{op: "writing " + req.Key, err: werr}
			}
			written += int64(n)
			p.m.upstreamBytes.Add(float64(n))
			fl.advance(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return written, nil, fmt.Errorf("reading %s from %s after %d bytes: %w", req.UpstreamPath(), up, written, rerr)
		}
	}
	if resp.ContentLength >= 0 && written != resp.ContentLength {
		return written, nil, reject("truncated", "%s from %s: got %d bytes, Content-Length said %d", req.UpstreamPath(), up, written, resp.ContentLength)
	}
	release()
	var small []byte
	if req.Kind != KindZip {
		small = make([]byte, written)
		if _, err := tmp.ReadAt(small, 0); err != nil && err != io.EOF {
			return written, nil, &storeError{op: "reading back " + req.Key, err: err}
		}
	}
	if err := p.verify(ctx, req, small, tmp.Name()); err != nil {
		return written, nil, err
	}
	committed = true
	return written, tmp, nil
}

// checkSum reports whether a module's files are checked against the checksum database.
func (p *Proxy) checkSum(mod string) bool {
	return p.verifier != nil && (p.cfg.NoSumDB == nil || !p.cfg.NoSumDB(mod))
}

// sumReject turns a verification failure into a refusal: a mismatch is a
// poisoned or corrupt answer; a database that cannot be read means the file
// cannot be trusted yet.
func sumReject(err error) error {
	var me *sumdb.MismatchError
	if errors.As(err, &me) {
		return &rejectError{reason: "checksum_mismatch", err: err}
	}
	return &rejectError{reason: "sumdb_unavailable", err: fmt.Errorf("cannot verify against the checksum database: %w", err)}
}

// verify checks a complete upstream body before it is committed: body holds
// it for .info and .mod, zipFile names the file of a .zip.
func (p *Proxy) verify(ctx context.Context, req Request, body []byte, zipFile string) error {
	switch req.Kind {
	case KindInfo:
		var info struct{ Version string }
		if err := json.Unmarshal(body, &info); err != nil {
			return reject("bad_info", "%s: upstream .info is not JSON: %v", req.UpstreamPath(), err)
		}
		if info.Version != req.Version {
			return reject("bad_info", "%s: upstream .info names version %q, not %q", req.UpstreamPath(), info.Version, req.Version)
		}
	case KindMod:
		if _, err := modfile.ParseLax("go.mod", body, nil); err != nil {
			return reject("bad_mod", "%s: upstream go.mod does not parse: %v", req.UpstreamPath(), err)
		}
		if p.checkSum(req.Module) {
			if err := p.verifier.VerifyMod(ctx, req.Module, req.Version, body); err != nil {
				return sumReject(err)
			}
		}
	case KindZip:
		if _, err := modzip.CheckZip(module.Version{Path: req.Module, Version: req.Version}, zipFile); err != nil {
			return reject("bad_zip", "%s: upstream zip is not a valid module zip: %v", req.UpstreamPath(), err)
		}
		if p.checkSum(req.Module) {
			if err := p.verifier.VerifyZip(ctx, req.Module, req.Version, zipFile); err != nil {
				return sumReject(err)
			}
		}
	}
	return nil
}

// recorder captures the status and body size for metrics while keeping the
// io.ReaderFrom fast path (sendfile) of the underlying writer.
type recorder struct {
	http.ResponseWriter
	code        int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.wroteHeader = true
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.bytes += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// smallBody is the largest body (other than a zip) read and verified in memory.
const smallBody = 64 << 10

// commitSmall writes a small verified body to the store with the modification
// time its clients' ETag promised, and keeps it in the memory cache.
func (p *Proxy) commitSmall(ctx context.Context, req Request, body []byte, modTime time.Time) {
	tmp, err := p.st.TempFile(req.Key)
	if err == nil {
		_, err = tmp.Write(body)
		if err == nil {
			err = os.Chtimes(tmp.Name(), modTime, modTime)
		}
		if err == nil {
			err = p.st.Commit(ctx, req.Key, tmp)
		}
		if err != nil {
			p.st.Discard(tmp)
		} else {
			tmp.Close()
		}
	}
	if err != nil {
		p.log.Error("cannot commit a verified file to the store; clients got it, the next request fetches it again", "key", req.Key, "err", err)
		return
	}
	p.hot.put(req.Key, req.Kind, body, modTime)
	if req.Kind == KindSumDB {
		p.storeNarrowerTiles(ctx, req, bytes.NewReader(body), int64(len(body)))
	} else {
		p.committed(ctx, req.Key, int64(len(body)))
	}
}
