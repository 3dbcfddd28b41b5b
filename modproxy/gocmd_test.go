package modproxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
)

// TestGoCommandThroughBerth drives the real go command through berth in front
// of a fake upstream with a real test checksum database, then stops the
// upstream and does it all again with an empty module cache: berth's store alone
// must be enough.
func TestGoCommandThroughBerth(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command; skipped with -short")
	}
	up := testmod.NewUpstream(t, testModules())
	storeDir := t.TempDir()
	px := startProxy(t, up.URL(), storeDir, func(c *Config) { c.SumDBKey = up.GOSUMDB() })

	exercise := func(g *goEnv) {
		t.Helper()
		g.run("get", "example.test/lib@v1.1.0", "example.test/lib/v2@v2.0.0", "example.test/Upper@v1.0.0-RC1")
		g.run("mod", "download", "all")
		out := g.run("run", ".")
		if !strings.Contains(out, "hello v1.1.0 hello v2 1") {
			t.Fatalf("go run printed %q", out)
		}
		out = g.run("list", "-m", "-versions", "example.test/lib")
		if strings.TrimSpace(out) != "example.test/lib v1.0.0 v1.1.0" {
			t.Fatalf("go list -m -versions: %q", out)
		}
		g.run("install", "example.test/hello/cmd/hello@latest")
		bin := filepath.Join(strings.TrimPrefix(g.env[5], "GOBIN="), "hello")
		got, err := exec.Command(bin).CombinedOutput()
		if err != nil || strings.TrimSpace(string(got)) != "hello v1.1.0" {
			t.Fatalf("installed hello: %q, %v", got, err)
		}
		g.run("mod", "verify")
	}

	g := newGoEnv(t, px.URL, up.GOSUMDB())
	exercise(g)

	// The checksum database went through berth and is stored.
	if up.Count("/sumdb/"+up.SumDBName+"/supported") == 0 {
		t.Fatal("the go command did not use the checksum database through berth")
	}
	if _, err := os.Stat(filepath.Join(storeDir, "sumdb", up.SumDBName, "lookup", "example.test", "lib@v1.1.0")); err != nil {
		t.Fatalf("sumdb lookup not stored: %v", err)
	}
	// Each immutable file was fetched from the upstream at most once.
	for p, n := range up.Counts() {
		if (strings.HasSuffix(p, ".zip") || strings.HasSuffix(p, ".mod")) && n != 1 {
			t.Errorf("upstream served %s %d times; want 1", p, n)
		}
	}

	// Upstream gone; a restarted berth with an expired list TTL on the same
	// store; a fresh module cache.
	up.Close()
	px2 := startProxy(t, up.URL(), storeDir, func(c *Config) { c.ListTTL = time.Nanosecond; c.SumDBKey = up.GOSUMDB() })
	g2 := newGoEnv(t, px2.URL, up.GOSUMDB())
	exercise(g2)
	if !strings.Contains(px2.log.String(), "serving a stale version list") {
		t.Errorf("berth did not log that it served a stale list:\n%s", px2.log.String())
	}

	// The store is a valid GOPROXY=file:// tree.
	g3 := newGoEnv(t, "file://"+storeDir, up.GOSUMDB())
	exercise(g3)
}
