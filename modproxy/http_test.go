package modproxy

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/internal/testmod"
)

func get(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

// TestConcurrentMissOneFetch: 64 clients ask at once for one uncached zip; the
// upstream sees exactly one request and all 64 get the same correct bytes.
func TestConcurrentMissOneFetch(t *testing.T) {
	mods := []testmod.Module{{Path: "example.test/big", Version: "v1.0.0", Files: map[string]string{
		"big.go":   "package big\n",
		"data.txt": strings.Repeat("berth streams this body to every waiting client\n", 40000), // ~2 MB
	}}}
	up := testmod.NewUpstream(t, mods)
	want, err := os.ReadFile(filepath.Join(up.Dir, "example.test/big/@v/v1.0.0.zip"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var px *testProxy
	const n = 64
	// Hold the upstream's answer until all 64 requests have missed the store and
	// joined, so they really share one in-flight fetch.
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ".zip") {
			deadline := time.Now().Add(10 * time.Second)
			for metric(t, reg, "berth_proxy_cache_misses_total", "endpoint", "zip") < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		return false
	})
	px = startProxy(t, up.URL(), t.TempDir(), func(c *Config) { c.Registerer = reg })

	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(px.URL + "/example.test/big/@v/v1.0.0.zip")
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				errs[i] = fmt.Errorf("status %d", resp.StatusCode)
			}
			bodies[i], errs[i] = io.ReadAll(resp.Body)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		if !bytes.Equal(bodies[i], want) {
			t.Fatalf("client %d got %d bytes, want the %d-byte zip", i, len(bodies[i]), len(want))
		}
	}
	if c := up.Count("/example.test/big/@v/v1.0.0.zip"); c != 1 {
		t.Fatalf("upstream fetches of the zip: %d, want 1", c)
	}
	// The fetch's counters move after its clients have their bytes: wait for it.
	if err := px.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, reg, "berth_proxy_upstream_fetches_total", "endpoint", "zip", "result", "ok"); got != 1 {
		t.Fatalf("berth_proxy_upstream_fetches_total{zip,ok} = %v, want 1", got)
	}
	// And the next request is a hit with a strong ETag and a Content-Length.
	resp, body := get(t, "GET", px.URL+"/example.test/big/@v/v1.0.0.zip")
	if !bytes.Equal(body, want) || resp.Header.Get("ETag") == "" || resp.ContentLength != int64(len(want)) {
		t.Fatalf("warm zip: %d bytes, ETag %q, Content-Length %d", len(body), resp.Header.Get("ETag"), resp.ContentLength)
	}
}

// TestHTTPBehaviour covers what the go command and other clients rely on:
// statuses, escaping, HEAD, Range and conditional requests, and bad input.
func TestHTTPBehaviour(t *testing.T) {
	up := testmod.NewUpstream(t, testModules())
	storeDir := t.TempDir()
	px := startProxy(t, up.URL(), storeDir, nil)
	zipURL := px.URL + "/example.test/lib/@v/v1.0.0.zip"
	want, _ := os.ReadFile(filepath.Join(up.Dir, "example.test/lib/@v/v1.0.0.zip"))

	t.Run("cold and warm zip", func(t *testing.T) {
		for range 2 {
			resp, body := get(t, "GET", zipURL)
			if resp.StatusCode != 200 || !bytes.Equal(body, want) || resp.Header.Get("Content-Type") != "application/zip" {
				t.Fatalf("status %d, %d bytes, type %q", resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
			}
		}
	})
	t.Run("range and if-range", func(t *testing.T) {
		resp, _ := get(t, "HEAD", zipURL)
		etag := resp.Header.Get("ETag")
		if resp.Header.Get("Accept-Ranges") != "bytes" || !strings.HasPrefix(etag, `"`) {
			t.Fatalf("Accept-Ranges %q ETag %q", resp.Header.Get("Accept-Ranges"), etag)
		}
		resp, body := get(t, "GET", zipURL, "Range", "bytes=10-", "If-Range", etag)
		if resp.StatusCode != 206 || !bytes.Equal(body, want[10:]) {
			t.Fatalf("range: status %d, %d bytes", resp.StatusCode, len(body))
		}
		resp, _ = get(t, "GET", zipURL, "If-None-Match", etag)
		if resp.StatusCode != 304 {
			t.Fatalf("If-None-Match: status %d", resp.StatusCode)
		}
	})
	t.Run("escaped path with %21", func(t *testing.T) {
		resp, body := get(t, "GET", px.URL+"/example.test/%21upper/@v/v1.0.0-%21r%21c1.info")
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"v1.0.0-RC1"`) {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	})
	t.Run("list and latest", func(t *testing.T) {
		resp, body := get(t, "GET", px.URL+"/example.test/lib/@v/list")
		if resp.StatusCode != 200 || string(body) != "v1.0.0\nv1.1.0\n" {
			t.Fatalf("list: %d %q", resp.StatusCode, body)
		}
		resp, _ = get(t, "GET", px.URL+"/example.test/lib/@latest")
		if resp.StatusCode != 404 { // the fake upstream has no @latest
			t.Fatalf("latest: %d", resp.StatusCode)
		}
	})
	t.Run("not found falls through", func(t *testing.T) {
		for _, p := range []string{"/example.test/nope/@v/list", "/example.test/nope/@v/v1.0.0.zip", "/example.test/lib/@v/v1.9.9.mod"} {
			for range 2 { // the second answer comes from the negative cache
				resp, body := get(t, "GET", px.URL+p)
				if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.HasSuffix(string(body), "\n") {
					t.Fatalf("%s: %d %q %q", p, resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
			}
			if c := up.Count(p); c != 1 {
				t.Errorf("%s asked upstream %d times; want 1 (negative cache)", p, c)
			}
		}
	})
	t.Run("bad input", func(t *testing.T) {
		cases := map[string]int{
			"/example.test/Lib/@v/list":                        400,
			"/example.test/lib/@v/v1.0.0.exe":                  404,
			"/example.test/lib/@v/..%2f..%2f..%2fetc%2fpasswd": 400,
			"/example.test/lib/@v/%2e%2e/x.zip":                400,
			"/" + strings.Repeat("x/", 1500) + "@v/list":       400,
			"/example.test/lib/@v/v1.0.0%00.zip":               400,
			"/sumdb/sum.berth.test/tile/../../etc":             400,
		}
		for p, code := range cases {
			resp, body := get(t, "GET", px.URL+p)
			if resp.StatusCode != code || bytes.Contains(body, []byte("root:")) {
				t.Errorf("GET %.80s: %d %q; want %d", p, resp.StatusCode, body, code)
			}
		}
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "BREW"} {
			resp, _ := get(t, m, zipURL)
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s: %d Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
		// Nothing outside the store was written.
		filepath.WalkDir(storeDir, func(p string, d os.DirEntry, err error) error {
			if strings.Contains(p, "..") || strings.Contains(p, "etc") {
				t.Errorf("unexpected store path %s", p)
			}
			return nil
		})
	})
	t.Run("bad upstream body is refused and not cached", func(t *testing.T) {
		up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/example.test/lib/@v/v1.1.0.zip" {
				w.Header().Set("Content-Length", "100")
				io.WriteString(w, "not a zip, and short")
				return true
			}
			return false
		})
		defer up.SetHook(nil)
		resp, err := http.Get(px.URL + "/example.test/lib/@v/v1.1.0.zip")
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 {
				t.Fatalf("a truncated upstream zip reached the client whole: %q", b)
			}
		}
		if _, err := os.Stat(filepath.Join(storeDir, "example.test/lib/@v/v1.1.0.zip")); err == nil {
			t.Fatal("a truncated upstream zip was stored")
		}
		up.SetHook(nil)
		resp2, body := get(t, "GET", px.URL+"/example.test/lib/@v/v1.1.0.zip")
		if resp2.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("after the fault: %d", resp2.StatusCode)
		}
	})
}

// TestLargeFileCorked: a stored file large enough to be sent with TCP_CORK
// arrives whole, as do a range of it, a conditional request answered 304, and
// HEAD (the cork is cleared when the handler returns).
func TestLargeFileCorked(t *testing.T) {
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	up := testmod.NewUpstream(t, []testmod.Module{{Path: "example.test/big", Version: "v1.0.0",
		Files: map[string]string{"blob.bin": string(blob), "big.go": "package big\n"}}})
	px := startProxy(t, up.URL(), t.TempDir(), nil)
	want, err := os.ReadFile(filepath.Join(up.Dir, "example.test/big/@v/v1.0.0.zip"))
	if err != nil || len(want) < corkMin {
		t.Fatalf("fixture zip: %d bytes, %v", len(want), err)
	}
	url := px.URL + "/example.test/big/@v/v1.0.0.zip"
	get(t, "GET", url) // the cold fetch; the answers below come from the store
	for i := 0; i < 3; i++ {
		resp, b := get(t, "GET", url)
		if resp.StatusCode != 200 || !bytes.Equal(b, want) {
			t.Fatalf("GET: %d, %d bytes, want %d", resp.StatusCode, len(b), len(want))
		}
		etag := resp.Header.Get("ETag")
		if resp, _ := get(t, "GET", url, "If-None-Match", etag); resp.StatusCode != 304 {
			t.Fatalf("conditional GET: %d", resp.StatusCode)
		}
		if resp, b := get(t, "GET", url, "Range", "bytes=1000-1999"); resp.StatusCode != 206 || !bytes.Equal(b, want[1000:2000]) {
			t.Fatalf("range GET: %d, %d bytes", resp.StatusCode, len(b))
		}
		if resp, b := get(t, "HEAD", url); resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != int64(len(want)) {
			t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
		}
	}
}
