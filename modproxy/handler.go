// Package modproxy is the HTTP face of berth's module proxy: an http.Handler
// that speaks the GOPROXY protocol as the go command uses it ($module/@v/list,
// .info, .mod, .zip, @latest, and checksum databases under /sumdb/).
//
// It parses and validates the path (package proto), asks the core (package
// cache) for the answer in Go terms, and renders it: a stored file with
// http.ServeContent (sendfile, ranges, ETag), a small immutable file from its
// own memory, a fetch still streaming with its hold-back, or an error mapped
// to the status the go command acts on, in one place (writeError). Client
// metrics (requests, hits, bytes served) are counted here; fetches and what
// became of them are the core's. Nothing inside berth calls ServeHTTP: warm,
// export and the verifier use the core.
package modproxy

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
	"sync"

	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
)

// Config configures a Proxy: the configuration of the core it builds and
// owns. The zero value of each optional field is a working default.
type Config struct {
	cache.Config

	// Fetched, if set, is called for each request answered by a fetch rather
	// than from the store (its Content is not a Hit): the edge's hook for an
	// audit line of who asked first (auth.Audit).
	Fetched func(r *http.Request, req proto.Request)
}

// Proxy is the GOPROXY protocol handler over one core.
type Proxy struct {
	c   *cache.Cache
	log *slog.Logger
	m   *metrics
	hot *hotCache // small immutable files, rendered

	fetched func(*http.Request, proto.Request)
}

// New returns a Proxy with its own core built from cfg.
func New(cfg Config) (*Proxy, error) {
	p := &Proxy{hot: newHotCache(), log: cfg.Logger, fetched: cfg.Fetched}
	if p.log == nil {
		p.log = slog.Default()
	}
	cc := cfg.Config
	removed := cc.Removed
	cc.Removed = func(key string) {
		p.hot.remove(key)
		if removed != nil {
			removed(key)
		}
	}
	c, err := cache.New(cc)
	if err != nil {
		return nil, err
	}
	p.c = c
	p.m = newMetrics(cfg.Registerer)
	return p, nil
}

// Core returns the proxy's core, for callers that need it in Go terms (warm,
// readiness).
func (p *Proxy) Core() *cache.Cache { return p.c }

// Close stops the core: running fetches are cancelled and waited for.
func (p *Proxy) Close() error { return p.c.Close() }

// Wait blocks until no fetch is running or ctx is done (graceful shutdown).
func (p *Proxy) Wait(ctx context.Context) error { return p.c.Wait(ctx) }

// Guard returns a handler that answers a small immutable file already in
// memory itself, sends requests whose path has an empty, "." or ".." element
// ("//x", "/a/../b") to the proxy, which answers them the one-line 400 it
// gives every bad path, and all others to next: the mux the proxy is mounted
// in. An http.ServeMux would otherwise redirect the dotted paths to the
// cleaned path with an HTML body; and its match, which allocates, is most of
// what a hit costs berth on top of net/http. Answering hot files before it is
// the answer the mux would route to the proxy: a hot file's path is a store
// key, clean and under "/" with no pattern of its own.
func (p *Proxy) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path := r.URL.Path; len(path) > 1 {
			if p.serveHot(w, r) {
				return
			}
			if proto.HasDotElem(path) {
				p.ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.serveHot(w, r) {
		return
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

// serveHot answers r if it is the hot path: a small immutable file already in
// memory, asked for by its canonical path (the URL path of a store key is "/"
// + the key), with no range or condition. No parsing, no wrapper, header
// values and counters resolved in advance.
func (p *Proxy) serveHot(w http.ResponseWriter, r *http.Request) bool {
	path := r.URL.Path
	if len(path) <= 1 || path[0] != '/' || (r.Method != http.MethodGet && r.Method != http.MethodHead) || conditional(r) {
		return false
	}
	e := p.hot.get(path[1:])
	if e == nil {
		return false
	}
	e.serve(w, r)
	p.m.hotServed(e.kind, r.Method == http.MethodGet, len(e.body))
	p.c.Touch(path[1:])
	return true
}

// serve answers one request; the error is that of a request that is not a
// GOPROXY request (for the metrics' endpoint label).
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) (proto.Request, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "method %s not allowed: the GOPROXY protocol uses GET and HEAD", truncate(r.Method, 16))
		return proto.Request{}, errors.New("method")
	}
	if r.URL.RawQuery != "" && r.URL.Path == "/" {
		httpError(w, http.StatusNotFound, "not a GOPROXY path")
		return proto.Request{}, errors.New("query")
	}
	req, err := proto.ParsePath(r.URL.Path)
	if err != nil {
		p.writeError(w, req, err)
		return proto.Request{}, err
	}
	ct, err := p.c.Get(r.Context(), req)
	if err != nil {
		if r.Context().Err() == nil {
			p.writeError(w, req, err)
		}
		return req, nil
	}
	defer ct.Close()
	if ct.Hit {
		p.m.hit(req.Kind)
	} else {
		p.m.misses.WithLabelValues(req.Kind.String()).Inc()
		if p.fetched != nil {
			p.fetched(r, req)
		}
	}
	p.render(w, r, req, ct)
	return req, nil
}

const immutableCacheControl = "public, max-age=31536000, immutable"

// render writes a Content: from memory, a file, or a fetch still streaming.
func (p *Proxy) render(w http.ResponseWriter, r *http.Request, req proto.Request, ct *cache.Content) {
	cacheControl := immutableCacheControl
	if ct.Mutable {
		cacheControl = "no-cache"
		if ct.Stale {
			w.Header().Set("X-Berth-Stale", "true")
			w.Header().Set("Warning", `110 berth "Response is Stale: every upstream failed"`)
		}
	}
	switch {
	case ct.Streaming():
		p.stream(w, r, req, ct)
	case ct.ModTime.IsZero():
		// A fresh mutable answer or a tile cut from a wider one: no validator.
		writeBody(w, r, req.Kind, ct.Bytes(), cacheControl)
	case !ct.Mutable && ct.Hit && ct.Bytes() != nil && req.Key != "":
		p.hot.put(req.Key, req.Kind, ct.Bytes(), ct.ModTime).serve(w, r)
	default:
		h := w.Header()
		h.Set("Content-Type", contentType(req.Kind))
		h.Set("Cache-Control", cacheControl)
		h.Set("ETag", etagFor(ct.Size, ct.ModTime))
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok && ct.File() != nil && ct.Size >= corkMin && r.Method == http.MethodGet {
			setCork(c, true)
			defer setCork(c, false)
		}
		http.ServeContent(w, r, "", ct.ModTime, ct.Seeker())
	}
}

// stream sends a body while its fetch runs. Once headers are out, a failed
// fetch breaks the connection, so the client sees a failed transfer, never a
// short "complete" file.
func (p *Proxy) stream(w http.ResponseWriter, r *http.Request, req proto.Request, ct *cache.Content) {
	h := w.Header()
	h.Set("Content-Type", contentType(req.Kind))
	if ct.Size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(ct.Size, 10))
	}
	h.Set("Cache-Control", immutableCacheControl)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	var off int64
	for {
		n, err := ct.ReadAt(r.Context(), *buf, off)
		if n > 0 {
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return // the client went away; the fetch goes on for the others
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
			if off == 0 {
				p.writeError(w, req, err)
				return
			}
			// The status and part of the body are out: all the client can be
			// told is a broken connection, which looks like a flaky network.
			// Say here what it was.
			p.log.Warn("client saw a broken transfer: the file failed after its first bytes were sent, so the connection was cut",
				"module", req.Module, "version", req.Version, "file", req.Kind.String(), "sent", off, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// writeError maps an error to what the go command acts on, in one place:
// 400/404 for bad paths, 404 for "not found" (so a "," list falls through),
// 403 for a checksum-database lookup of a private module, 503 when the store
// cannot be written, 504 for a timed-out fetch, 502 for every other failure
// of the source or of verification (a git host refusing berth's credentials
// among them: never 404, which would send the go command elsewhere).
func (p *Proxy) writeError(w http.ResponseWriter, req proto.Request, err error) {
	var pe *proto.PathError
	var se *cache.StoreError
	var nf *cache.NotFoundError
	var pr *cache.PrivateError
	var ae *source.AuthError
	switch {
	case errors.As(err, &pe):
		httpError(w, pe.Status, "%s", pe.Error())
	case errors.As(err, &pr):
		httpError(w, http.StatusForbidden, "berth: %v", err)
	case errors.As(err, &ae):
		httpError(w, http.StatusBadGateway, "berth: %v", err)
	case errors.As(err, &se):
		w.Header().Set("Retry-After", "30")
		httpError(w, http.StatusServiceUnavailable, "berth: %v", err)
	case errors.As(err, &nf):
		httpError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, cache.ErrNotFound):
		httpError(w, http.StatusNotFound, "not found: %v", err)
	case errors.Is(err, context.DeadlineExceeded):
		httpError(w, http.StatusGatewayTimeout, "berth: upstream fetch of %s timed out: %v", req.UpstreamPath(), err)
	default:
		httpError(w, http.StatusBadGateway, "berth: upstream fetch of %s failed: %v", req.UpstreamPath(), err)
	}
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

func writeBody(w http.ResponseWriter, r *http.Request, kind proto.Kind, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", contentType(kind))
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func contentType(k proto.Kind) string {
	switch k {
	case proto.KindInfo, proto.KindLatest:
		return "application/json"
	case proto.KindZip:
		return "application/zip"
	}
	return "text/plain; charset=utf-8"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// corkMin is the smallest file sent with TCP_CORK on.
const corkMin = 256 << 10

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it lets the proxy reach a
// request's connection to send large files in full segments.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
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

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}
