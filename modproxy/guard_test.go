package modproxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHotBehindGuard: Guard answers a file in the hot cache before the mux
// it wraps; what a client sees and what the metrics count are the same as
// when the mux routes the request to the proxy: status, every header but
// Date, body, for GET and HEAD, cold and warm, and conditional requests
// (which take ServeContent). The mux's own routes still answer.
func TestHotBehindGuard(t *testing.T) {
	// Two offline stores with the same files and times, so that ETag and
	// Last-Modified agree.
	files := map[string]string{
		"example.test/lib/@v/v1.0.0.mod":  "module example.test/lib\n\ngo 1.21\n",
		"example.test/lib/@v/v1.0.0.info": `{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}`,
	}
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
	run := func(guard bool) (answers []string, reg *prometheus.Registry) {
		dir := t.TempDir()
		for k, v := range files {
			p := filepath.Join(dir, filepath.FromSlash(k))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		reg = prometheus.NewRegistry()
		px := startProxy(t, "off", dir, func(c *Config) { c.Registerer = reg })
		mux := http.NewServeMux()
		mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
		mux.Handle("/", px)
		var h http.Handler = mux
		if guard {
			h = px.Guard(mux)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		mod := srv.URL + "/example.test/lib/@v/v1.0.0.mod"
		var etag string
		for i, rq := range []struct{ method, url, hk, hv string }{
			{"GET", mod, "", ""}, // from the store, then in the hot cache
			{"GET", mod, "", ""},
			{"HEAD", mod, "", ""},
			{"GET", mod, "If-None-Match", "etag"},
			{"GET", mod, "Range", "bytes=2-5"},
			{"GET", srv.URL + "/example.test/lib/@v/v1.0.0.info", "", ""},
			{"GET", srv.URL + "/example.test/lib/@v/v1.0.0.info", "", ""},
			{"GET", srv.URL + "/healthz", "", ""},
		} {
			hv := rq.hv
			if hv == "etag" {
				hv = etag
			}
			var hdr []string
			if rq.hk != "" {
				hdr = []string{rq.hk, hv}
			}
			resp, body := get(t, rq.method, rq.url, hdr...)
			if i == 1 {
				etag = resp.Header.Get("ETag")
			}
			resp.Header.Del("Date")
			var b bytes.Buffer
			resp.Header.Write(&b)
			answers = append(answers, resp.Status+"\n"+b.String()+"\n"+string(body))
		}
		return answers, reg
	}
	muxed, regMux := run(false)
	guarded, regGuard := run(true)
	for i := range muxed {
		if muxed[i] != guarded[i] {
			t.Errorf("answer %d behind the mux:\n%s\nbehind Guard:\n%s", i, muxed[i], guarded[i])
		}
	}
	if muxed[3][:3] != "304" || muxed[4][:3] != "206" || !strings.HasPrefix(muxed[7], "200 OK") || !strings.HasSuffix(muxed[7], "\nok") {
		t.Errorf("conditional, range, healthz: %q %q %q", muxed[3][:3], muxed[4][:3], muxed[7])
	}
	for _, s := range []struct{ name, ep, code string }{
		{"berth_proxy_requests_total", "mod", "200"},
		{"berth_proxy_requests_total", "mod", "304"},
		{"berth_proxy_requests_total", "mod", "206"},
		{"berth_proxy_requests_total", "info", "200"},
		{"berth_proxy_cache_hits_total", "mod", ""},
		{"berth_proxy_cache_hits_total", "info", ""},
		{"berth_proxy_served_bytes_total", "mod", ""},
		{"berth_proxy_served_bytes_total", "info", ""},
	} {
		labels := []string{"endpoint", s.ep}
		if s.code != "" {
			labels = append(labels, "code", s.code)
		}
		m, g := metric(t, regMux, s.name, labels...), metric(t, regGuard, s.name, labels...)
		if m != g || m == 0 {
			t.Errorf("%s%v: %v behind the mux, %v behind Guard", s.name, labels, m, g)
		}
	}
}
