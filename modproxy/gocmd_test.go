package modproxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/proto"
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

// TestOfflineListAndLatestFromStore: a store filled without any version list
// (files fetched one by one, as warm, an import or a module cache leaves it)
// answers an offline berth's lists and @latest from the versions it holds,
// so `go get m@latest` and `go list -m -versions` work with the upstream
// gone: the highest release, else the highest pre-release, else the newest
// pseudo-version.
func TestOfflineListAndLatestFromStore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command; skipped with -short")
	}
	const oldPseudo, newPseudo = "v0.0.0-20230102030405-aaaaaaaaaaaa", "v0.0.0-20240102030405-bbbbbbbbbbbb"
	mods := append(testModules(),
		testmod.Module{Path: "example.test/pseudo", Version: newPseudo, Files: map[string]string{"p.go": "package pseudo\n"}},
		testmod.Module{Path: "example.test/pseudo", Version: oldPseudo, Files: map[string]string{"p.go": "package pseudo\n"}},
	)
	up := testmod.NewUpstream(t, mods)
	storeDir := t.TempDir()
	px := startProxy(t, up.URL(), storeDir, nil)
	for _, m := range mods {
		for _, ext := range []string{"info", "mod", "zip"} {
			key, err := proto.VersionKey(m.Path, m.Version, proto.KindInfo)
			if err != nil {
				t.Fatal(err)
			}
			p := "/" + strings.TrimSuffix(key, "info") + ext
			if resp, body := get(t, "GET", px.URL+p); resp.StatusCode != 200 {
				t.Fatalf("filling the store: GET %s: %d %s", p, resp.StatusCode, body)
			}
		}
	}
	px.Wait(t.Context())
	for _, m := range []string{"example.test/lib", "example.test/pseudo", "example.test/!upper"} {
		if _, err := os.Stat(filepath.Join(storeDir, m, "@v", "list")); err == nil {
			t.Fatalf("the store has a list of %s; this test needs one without", m)
		}
	}
	up.Close()

	off := startProxy(t, "off", storeDir, nil)
	resp, body := get(t, "GET", off.URL+"/example.test/lib/@latest")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Version":"v1.1.0"`) {
		t.Fatalf("offline @latest of example.test/lib: %d %q; want the .info of v1.1.0", resp.StatusCode, body)
	}
	if resp, body := get(t, "GET", off.URL+"/example.test/pseudo/@v/list"); resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("offline list of a module with only pseudo-versions: %d %q; want 200 and empty", resp.StatusCode, body)
	}
	if resp, _ := get(t, "GET", off.URL+"/example.test/absent/@v/list"); resp.StatusCode != 404 {
		t.Fatalf("offline list of a module the store lacks: %d, want 404", resp.StatusCode)
	}

	g := newGoEnv(t, off.URL, "off")
	if out := g.run("list", "-m", "-versions", "example.test/lib"); strings.TrimSpace(out) != "example.test/lib v1.0.0 v1.1.0" {
		t.Fatalf("go list -m -versions offline: %q", out)
	}
	g.run("get", "example.test/lib@latest", "example.test/Upper@latest", "example.test/pseudo@latest")
	out := g.run("list", "-m", "all")
	for _, want := range []string{"example.test/lib v1.1.0", "example.test/Upper v1.0.0-RC1", "example.test/pseudo " + newPseudo} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("after go get ...@latest offline, go list -m all lacks %q:\n%s", want, out)
		}
	}
}
