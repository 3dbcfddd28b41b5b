package modproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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

