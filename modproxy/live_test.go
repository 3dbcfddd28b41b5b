package modproxy

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/modproxy/source"
)

// TestLive downloads a real module graph (bench/proxy/graph, about 150
// modules) through berth from the upstream of this machine's own Go
// configuration, with the public checksum database verified through berth.
// Opt-in: BERTH_LIVE=1. It skips when the upstream does not answer.
func TestLive(t *testing.T) {
	if os.Getenv("BERTH_LIVE") != "1" {
		t.Skip("live test against the configured upstream; set BERTH_LIVE=1 to run it")
	}
	list, err := source.Default(context.Background())
	if err != nil {
		t.Skipf("no upstream configured: %v", err)
	}
	chain, err := source.Parse(list)
	if err != nil || len(chain.Upstreams) == 0 {
		t.Skipf("upstream %q unusable: %v", list, err)
	}
	probe := &http.Client{Timeout: 10 * time.Second}
	resp, err := probe.Get(chain.Upstreams[0].URL.String() + "/golang.org/x/mod/@v/list")
	if err != nil {
		t.Skipf("upstream not reachable: %v", err)
	}
	resp.Body.Close()
	sumdb, _ := exec.Command("go", "env", "GOSUMDB").Output()
	gosumdb := strings.TrimSpace(string(sumdb))
	if gosumdb == "" || gosumdb == "off" {
		t.Skip("GOSUMDB is off in this Go configuration")
	}

	px := startProxy(t, chain.String(), t.TempDir(), nil)
	g := newGoEnv(t, px.URL, gosumdb)
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join("..", "bench", "proxy", "graph", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(g.dir, f), b, 0o644)
	}
	g.run("mod", "download", "all")
	g.run("mod", "verify")
	out := g.run("list", "-m", "-versions", "golang.org/x/mod")
	if !strings.Contains(out, "v0.42.0") {
		t.Fatalf("go list -m -versions: %q", out)
	}
	// Without a go.sum entry the go command asks the checksum database, through berth.
	os.Remove(filepath.Join(g.dir, "go.sum"))
	g.run("mod", "download", "golang.org/x/mod@v0.42.0", "golang.org/x/sync@v0.24.0")
	if !strings.Contains(px.log.String(), "checksum database support") {
		t.Fatalf("the checksum database was not proxied:\n%s", px.log.String())
	}
}
