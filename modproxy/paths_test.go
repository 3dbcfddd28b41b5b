package modproxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
)

// TestRawDotPaths: request lines with "..", "." or empty elements, sent
// raw (no client cleans them), get the one-line text/plain 400 of every bad
// path, both from the handler and through a mux mounted as berth proxy
// mounts it (behind Guard), never a redirect with an HTML body.
func TestRawDotPaths(t *testing.T) {
	px := startProxy(t, "off", t.TempDir(), nil)
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	mux.Handle("/", px)
	muxed := httptest.NewServer(px.Guard(mux))
	t.Cleanup(muxed.Close)
	for _, base := range []string{px.URL, muxed.URL} {
		addr := strings.TrimPrefix(base, "http://")
		for _, p := range []string{
			"/example.test/../x/@v/list",
			"//example.test/x/@v/list",
			"/example.test//x/@v/list",
			"/example.test/./x/@v/v1.0.0.info",
			"/example.test/%2e%2e/x/@v/list",
			"/example.test/x/@v/../../y/@v/list",
			"//sumdb/sum.example.test/supported",
			"/sumdb/sum.example.test/lookup/example.test/../x@v1.0.0",
		} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n", p)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("GET %s: %v", p, err)
			}
			body, _ := io.ReadAll(resp.Body)
			c.Close()
			lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
			if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || len(lines) != 1 ||
				!strings.Contains(string(body), "invalid request path") {
				t.Errorf("%s GET %s: %d %q %q; want a one-line text/plain 400", base, p, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		}
	}
	// The mux's own routes and ordinary paths are untouched.
	if resp, _ := get(t, "GET", muxed.URL+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz behind Guard: %d", resp.StatusCode)
	}
	if resp, _ := get(t, "GET", muxed.URL+"/example.test/x/@v/list"); resp.StatusCode != 404 {
		t.Errorf("a clean path behind Guard: %d, want the offline 404", resp.StatusCode)
	}
}

// TestPrefixProbesRefusedRemembered: the go command asks for the list and
// @latest of every prefix of a package path. An upstream that refuses one
// with a 4xx says it is no module, as a 404 does: berth answers 404,
// remembers it for NegativeTTL like a 404 (no second upstream request), and
// logs it at debug, with the upstream's URL. A 429 is a failure, not a
// refusal: it is not remembered.
func TestPrefixProbesRefusedRemembered(t *testing.T) {
	up := testmod.NewUpstream(t, testModules())
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/example.test/@v/list", "/example.test/@latest":
			http.Error(w, "not a module path", http.StatusForbidden)
		case "/example.test/busy/@v/list":
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "/example.test/gone/@v/list":
			http.Error(w, "gone", http.StatusGone)
		default:
			return false
		}
		return true
	})
	logs := &syncBuffer{}
	px := startProxy(t, up.URL(), t.TempDir(), func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.NegativeTTL = time.Hour
	})
	for _, p := range []string{"/example.test/@v/list", "/example.test/@latest", "/example.test/gone/@v/list", "/example.test/busy/@v/list"} {
		for range 3 {
			if resp, body := get(t, "GET", px.URL+p); resp.StatusCode != 404 {
				t.Errorf("GET %s: %d %q; want 404", p, resp.StatusCode, body)
			}
		}
	}
	for _, p := range []string{"/example.test/@v/list", "/example.test/@latest", "/example.test/gone/@v/list"} {
		if n := up.Count(p); n != 1 {
			t.Errorf("upstream asked for %s %d times; want 1", p, n)
		}
	}
	if n := up.Count("/example.test/busy/@v/list"); n < 3 {
		t.Errorf("upstream asked for a list it answered 429 %d times for 3 requests: a 429 was remembered", n)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		refusedProbe := strings.Contains(line, "path=example.test/@") || strings.Contains(line, "path=example.test/gone/")
		switch {
		case refusedProbe && !strings.Contains(line, "level=DEBUG"):
			t.Errorf("a refused probe logged above debug: %s", line)
		case refusedProbe && !strings.Contains(line, "upstream="+up.URL()):
			t.Errorf("a refused probe's line does not name the upstream: %s", line)
		}
	}
	if !strings.Contains(logs.String(), "path=example.test/busy/@v/list") || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a 429 was not logged as a failure:\n%s", logs.String())
	}
}
