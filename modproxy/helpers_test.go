package modproxy

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/module"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// testModules is a small module graph: a library in two versions, a v2 major
// version, a path with uppercase letters, and a command that depends on the library.
func testModules() []testmod.Module {
	return append(testmod.BaseModules(),
		testmod.Module{Path: "example.test/hello", Version: "v1.0.0",
			Require: []module.Version{{Path: "example.test/lib", Version: "v1.1.0"}},
			Files:   map[string]string{"cmd/hello/main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.test/lib\"\n)\n\nfunc main() { fmt.Println(lib.Hello()) }\n"}},
	)
}

type testProxy struct {
	*Proxy
	URL string
	srv *httptest.Server
	log *syncBuffer
}

// syncBuffer collects a logger's output across goroutines.
type syncBuffer = testmod.SyncBuffer

// startProxy runs berth's handler on a loopback server in front of upstream
// (a GOPROXY-style list) with the store in dir.
func startProxy(t *testing.T, upstream, dir string, mod func(*Config)) *testProxy {
	t.Helper()
	st, err := store.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := source.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	cfg := Config{Config: cache.Config{Store: st, Source: &source.Fetcher{Chain: chain, Client: source.NewClient(nil), Logger: log},
		Offline: chain.Off, Logger: log}}
	if mod != nil {
		mod(&cfg)
	}
	px, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(px)
	srv.Config.ConnContext = ConnContext // as berth proxy runs it: large files corked
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		px.Close()
		if t.Failed() {
			t.Logf("berth log:\n%s", logs.String())
		}
	})
	return &testProxy{Proxy: px, URL: srv.URL, srv: srv, log: logs}
}

// goEnv is a hermetic environment for the real go command: its own module
// cache and GOPATH, berth as the only proxy, the test checksum database.
type goEnv struct {
	t    *testing.T
	env  []string
	dir  string // a main module
	gobn string
}

func newGoEnv(t *testing.T, proxyURL, gosumdb string) *goEnv {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is required for this test: %v", err)
	}
	gocache, _ := exec.Command(goBin, "env", "GOCACHE").Output()
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"GOPATH=" + filepath.Join(home, "gopath"),
		"GOMODCACHE=" + filepath.Join(home, "modcache"),
		"GOCACHE=" + strings.TrimSpace(string(gocache)),
		"GOBIN=" + filepath.Join(home, "bin"),
		"GOPROXY=" + proxyURL,
		"GOSUMDB=" + gosumdb,
		"GOFLAGS=-modcacherw",
		"GONOSUMDB=", "GONOSUMCHECK=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOTOOLCHAIN=local",
		"GOTELEMETRY=off", // its child writes under HOME after go exits: TempDir cleanup would race it
		"CGO_ENABLED=0",
	}
	dir := filepath.Join(home, "main")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/main\n\ngo 1.21\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.test/lib\"\n\tv2 \"example.test/lib/v2\"\n\tupper \"example.test/Upper\"\n)\n\nfunc main() { fmt.Println(lib.Hello(), v2.Hello(), upper.X) }\n"), 0o644)
	return &goEnv{t: t, env: env, dir: dir, gobn: goBin}
}

// run runs the go command in the main module and returns its combined output;
// it fails the test on a non-zero exit.
func (g *goEnv) run(args ...string) string {
	g.t.Helper()
	out, err := g.try(args...)
	if err != nil {
		g.t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (g *goEnv) try(args ...string) (string, error) {
	cmd := exec.Command(g.gobn, args...)
	cmd.Dir = g.dir
	cmd.Env = g.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		return out.String(), io.ErrNoProgress
	}
}

// metric returns the value of the counter or gauge name with the given label
// pairs ("endpoint", "zip", ...) in reg, or 0 when there is none.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
