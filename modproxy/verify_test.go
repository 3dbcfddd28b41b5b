package modproxy

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/internal/testmod"
)

// TestPoisonedUpstreamRefused: an upstream that answers with files whose hashes
// differ from the checksum database's records is refused, the client gets a
// 502 naming both hashes, nothing is stored, and the next good answer passes.
func TestPoisonedUpstreamRefused(t *testing.T) {
	up := testmod.NewUpstream(t, testModules())
	evil, err := testmod.Build([]testmod.Module{{Path: "example.test/lib", Version: "v1.1.0", Files: map[string]string{
		"lib.go": "package lib\n\nfunc Hello() string { return \"pwned\" }\n",
		"go.mod": "module example.test/lib\n\ngo 1.22\n",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	poisoned := map[string][]byte{
		"/example.test/lib/@v/v1.1.0.mod": evil[0].Mod,
		"/example.test/lib/@v/v1.1.0.zip": evil[0].Zip,
	}
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if b, ok := poisoned[r.URL.Path]; ok {
			w.Write(b)
			return true
		}
		return false
	})
	storeDir := t.TempDir()
	reg := prometheus.NewRegistry()
	px := startProxy(t, up.URL(), storeDir, func(c *Config) {
		c.SumDBKey = up.GOSUMDB()
		c.Registerer = reg
		c.NegativeTTL = 1
	})
	for p := range poisoned {
		resp, err := http.Get(px.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "checksum mismatch") ||
			!strings.Contains(string(body), evil[0].ModSum[:10]) && !strings.Contains(string(body), evil[0].Sum[:10]) {
			t.Errorf("%s: %d %q; want 502 naming the mismatch and both hashes", p, resp.StatusCode, body)
		}
		if _, err := os.Stat(filepath.Join(storeDir, strings.TrimPrefix(p, "/"))); err == nil {
			t.Errorf("%s: a poisoned file was stored", p)
		}
	}
	for _, ep := range []string{"mod", "zip"} {
		if n := metric(t, reg, "berth_proxy_upstream_rejected_total", "endpoint", ep, "reason", "checksum_mismatch"); n != 1 {
			t.Errorf("rejected{%s,checksum_mismatch} = %v, want 1", ep, n)
		}
	}
	// The upstream heals: the good files pass and are stored.
	up.SetHook(nil)
	for p := range poisoned {
		resp, _ := get(t, "GET", px.URL+p)
		if resp.StatusCode != 200 {
			t.Fatalf("%s after healing: %d", p, resp.StatusCode)
		}
		px.Wait(context.Background()) // the commit follows the answer
		if _, err := os.Stat(filepath.Join(storeDir, strings.TrimPrefix(p, "/"))); err != nil {
			t.Errorf("%s: good file not stored: %v", p, err)
		}
	}
	// Paths excluded from the checksum database are not checked.
	px2 := startProxy(t, up.URL(), t.TempDir(), func(c *Config) {
		c.SumDBKey = up.GOSUMDB()
		c.NoSumDB = func(m string) bool { return strings.HasPrefix(m, "example.test/") }
	})
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if b, ok := poisoned[r.URL.Path]; ok {
			w.Write(b)
			return true
		}
		return false
	})
	resp, _ := get(t, "GET", px2.URL+"/example.test/lib/@v/v1.1.0.mod")
	if resp.StatusCode != 200 {
		t.Errorf("a module excluded from the checksum database was checked: %d", resp.StatusCode)
	}
}

// TestPartialTileFromWiderCopy: offline, a partial hash tile nobody asked for
// before is cut from a wider copy in the store.
func TestPartialTileFromWiderCopy(t *testing.T) {
	storeDir := t.TempDir()
	wide := make([]byte, 5*32)
	for i := range wide {
		wide[i] = byte(i)
	}
	dir := filepath.Join(storeDir, "sumdb/sum.berth.test/tile/8/0/000.p")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "5"), wide, 0o644)
	px := startProxy(t, "off", storeDir, func(c *Config) { c.Offline = true })
	resp, body := get(t, "GET", px.URL+"/sumdb/sum.berth.test/tile/8/0/000.p/3")
	if resp.StatusCode != 200 || string(body) != string(wide[:3*32]) {
		t.Fatalf("partial tile from a wider copy: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := get(t, "GET", px.URL+"/sumdb/sum.berth.test/tile/8/0/000.p/7"); resp.StatusCode != 404 {
		t.Fatalf("a wider tile than any stored: %d, want 404", resp.StatusCode)
	}
}

// TestPrefetchRequirementLookups: once a go.mod is fetched and verified, the
// checksum-database records of the modules it requires are looked up before
// any client asks for them; the client's own fetch then needs no new lookup.
func TestPrefetchRequirementLookups(t *testing.T) {
	mods := []testmod.Module{
		{Path: "example.test/b", Version: "v1.0.0", Files: map[string]string{"b.go": "package b\n"}},
		{Path: "example.test/c", Version: "v1.2.0", Files: map[string]string{"c.go": "package c\n"}},
		{Path: "example.test/a", Version: "v1.0.0", Files: map[string]string{"a.go": "package a\n"},
			Require: []module.Version{{Path: "example.test/b", Version: "v1.0.0"}, {Path: "example.test/c", Version: "v1.2.0"}}},
	}
	up := testmod.NewUpstream(t, mods)
	px := startProxy(t, up.URL(), t.TempDir(), func(c *Config) {
		c.SumDBKey = up.GOSUMDB()
		c.PrefetchLookups = true
		c.PrefetchMinRTT = -1 // this upstream is near: look ahead anyway
	})
	lookup := func(m string) int { return up.Count("/sumdb/" + up.SumDBName + "/lookup/" + m) }
	get := func(p string) {
		t.Helper()
		resp, err := http.Get(px.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}
	get("/example.test/a/@v/v1.0.0.mod")
	for _, m := range []string{"example.test/b@v1.0.0", "example.test/c@v1.2.0"} {
		deadline := time.Now().Add(10 * time.Second)
		for lookup(m) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := lookup(m); n != 1 {
			t.Fatalf("lookups of %s before any client asked: %d, want 1", m, n)
		}
	}
	get("/example.test/b/@v/v1.0.0.mod")
	get("/example.test/b/@v/v1.0.0.zip")
	if n := lookup("example.test/b@v1.0.0"); n != 1 {
		t.Fatalf("lookups of example.test/b@v1.0.0 after the client's fetch: %d, want still 1", n)
	}
}

// TestRejectedFileRemembered: a zip refused by verification after its first
// bytes went out (larger than the 64 KiB held back) cuts the first client's
// transfer, and berth logs that with the module and version; within
// NegativeTTL the next requests get the 502 naming both hashes at once,
// with no new fetch.
func TestRejectedFileRemembered(t *testing.T) {
	up := testmod.NewUpstream(t, testModules())
	noise := make([]byte, 256<<10)
	rand.Read(noise) // incompressible: the zip stays larger than the hold-back
	evil, err := testmod.Build([]testmod.Module{{Path: "example.test/lib", Version: "v1.1.0", Files: map[string]string{
		"lib.go":   "package lib\n\nfunc Hello() string { return \"pwned\" }\n",
		"data.bin": string(noise),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	const zipPath = "/example.test/lib/@v/v1.1.0.zip"
	zip := evil[0].Zip
	firstBytes := make(chan struct{})
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != zipPath {
			return false
		}
		// Hold the end of the body until the client has seen its start, so
		// the refusal comes after berth has sent headers and bytes.
		w.Header().Set("Content-Length", strconv.Itoa(len(zip)))
		w.Write(zip[:len(zip)-1000])
		w.(http.Flusher).Flush()
		select {
		case <-firstBytes:
		case <-time.After(10 * time.Second):
		}
		w.Write(zip[len(zip)-1000:])
		return true
	})
	px := startProxy(t, up.URL(), t.TempDir(), func(c *Config) {
		c.SumDBKey = up.GOSUMDB()
		c.NegativeTTL = time.Hour
	})

	resp, err := http.Get(px.URL + zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("first client: %d; want 200 with a body cut when verification fails", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1)); err != nil {
		t.Fatalf("first client got no byte: %v", err)
	}
	close(firstBytes)
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("first client read a whole poisoned zip")
	}
	resp.Body.Close()
	px.Wait(context.Background())

	for i := range 3 {
		resp, body := get(t, "GET", px.URL+zipPath)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "checksum mismatch") ||
			!strings.Contains(string(body), evil[0].Sum) || !strings.Contains(string(body), "h1:") ||
			strings.Count(string(body), "h1:") < 2 {
			t.Errorf("request %d after the refusal: %d %q; want 502 naming both hashes", i+2, resp.StatusCode, body)
		}
	}
	if n := up.Count(zipPath); n != 1 {
		t.Errorf("the upstream was asked for the refused zip %d times; want 1", n)
	}
	var cut []string
	for _, line := range strings.Split(px.log.String(), "\n") {
		if strings.Contains(line, "broken transfer") {
			cut = append(cut, line)
		}
	}
	if len(cut) != 1 || !strings.Contains(cut[0], "level=WARN") || !strings.Contains(cut[0], "module=example.test/lib") ||
		!strings.Contains(cut[0], "version=v1.1.0") || !strings.Contains(cut[0], "checksum mismatch") {
		t.Errorf("log lines about the cut transfer: %q; want one WARN naming the module, version and the mismatch", cut)
	}
}
