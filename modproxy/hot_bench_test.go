package modproxy

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/store"
)

const benchKey = "bench.test/small/@v/v1.0.0.mod"

// benchHandler is berth proxy's handler stack over an offline store holding
// one small .mod, with it in the hot cache: Guard, a mux with the side
// endpoints, the proxy at "/" (as cmd/berth builds it without an auth file).
func benchHandler(b *testing.B) http.Handler {
	b.Helper()
	dir := b.TempDir()
	p := filepath.Join(dir, filepath.FromSlash(benchKey))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("module bench.test/small\n\ngo 1.21\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	st, err := store.OpenDisk(dir)
	if err != nil {
		b.Fatal(err)
	}
	px, err := New(Config{Config: cache.Config{Store: st, Offline: true,
		Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { px.Close() })
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", ok)
	mux.Handle("GET /readyz", ok)
	mux.Handle("GET /metrics", ok)
	mux.Handle("/", px)
	return px.Guard(mux)
}

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkHotHit is the handler's own cost for a warm .mod: what berth adds
// to net/http's per-request work.
func BenchmarkHotHit(b *testing.B) {
	h := benchHandler(b)
	r, err := http.NewRequest("GET", "http://berth/"+benchKey, nil)
	if err != nil {
		b.Fatal(err)
	}
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, r) // into the hot cache
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkHotHitParallel is BenchmarkHotHit from every P at once: what the
// shared state of a hit (the cache's index, the counters) costs when the
// cores contend for it.
func BenchmarkHotHitParallel(b *testing.B) {
	h := benchHandler(b)
	r, err := http.NewRequest("GET", "http://berth/"+benchKey, nil)
	if err != nil {
		b.Fatal(err)
	}
	h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkHotHitHTTP is a warm .mod over a real loopback keep-alive
// connection through net/http's server, as wrk asks it: the client side is a
// raw connection that allocates nothing, so allocs/op are the server's.
func BenchmarkHotHitHTTP(b *testing.B) { benchHTTP(b, benchHandler(b)) }

// BenchmarkFloorHTTP is BenchmarkHotHitHTTP with a handler that only sets
// the same header values (built once) and writes the same bytes: net/http's
// own cost, the floor under BenchmarkHotHitHTTP (bench/proxy/floor is the
// same handler as a server, for wrk).
func BenchmarkFloorHTTP(b *testing.B) {
	body := []byte("module bench.test/small\n\ngo 1.21\n")
	hType := []string{"text/plain; charset=utf-8"}
	hCache := []string{"public, max-age=31536000, immutable"}
	hETag := []string{`"x-dn9dc5gri8qt"`}
	hLast := []string{"Tue, 01 Dec 2026 11:44:20 GMT"}
	hRange := []string{"bytes"}
	hLen := []string{"33"}
	benchHTTP(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = hType
		h["Cache-Control"] = hCache
		h["Etag"] = hETag
		h["Last-Modified"] = hLast
		h["Accept-Ranges"] = hRange
		h["Content-Length"] = hLen
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	}))
}

func benchHTTP(b *testing.B, h http.Handler) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ConnContext: ConnContext, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /" + benchKey + " HTTP/1.1\r\nHost: berth\r\n\r\n")
	// Every answer has the same length (Date has a fixed width): learn it once.
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("module ")) {
		b.Fatalf("warm-up: %s %q", resp.Status, body)
	}
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	var n int
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		k, err := br.Read(buf[n:])
		n += k
		if err != nil {
			break
		}
	}
	c.SetReadDeadline(time.Time{})
	if n == 0 || !bytes.HasSuffix(buf[:n], body) {
		b.Fatalf("second answer: %q", buf[:n])
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			b.Fatal(err)
		}
	}
}
