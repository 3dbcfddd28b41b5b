// Package private benchmarks berth's private modules end to end: a real git
// server (internal/gitserver), the real go command as the client.
//
//	go test -run XXX -bench . -benchtime 3x ./bench/private
//
// It prints the ratios it is judged by: a cold private module through berth
// against GOPROXY=direct from the same git server (target <= 1.15), a warm
// private module against a warm public one (target ~1), and the number of
// version-control fetches 100 concurrent clients of one cold version cause
// (target 1).
package private

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/gitserver"
	"github.com/berth-dev/berth/internal/goenv"
	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy"
	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/ledger"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

const private = goenv.Patterns("git.corp.example")

type fixture struct {
	git   *gitserver.Server
	up    *testmod.Upstream
	gobin string
}

func newFixture(b *testing.B) *fixture {
	git := gitserver.New(b, "")
	for i := range 3 {
		r := git.NewRepo(b, fmt.Sprintf("team/m%d", i))
		files := map[string]string{"go.mod": fmt.Sprintf("module git.corp.example/team/m%d\n\ngo 1.21\n", i)}
		for j := range 50 {
			files[fmt.Sprintf("f%d.go", j)] = fmt.Sprintf("package m%d\n\nconst C%d = %q\n", i, j, strings.Repeat("x", 2000))
		}
		r.Commit(b, files)
		r.Tag(b, "v1.0.0")
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skip("no go command")
	}
	return &fixture{git: git, up: testmod.NewUpstream(b, testmod.BaseModules()), gobin: filepath.Join(strings.TrimSpace(string(out)), "bin", "go")}
}

func (f *fixture) vcsEnv() []string {
	return append(append(gitserver.CleanEnv(), f.git.Env()...), "SSL_CERT_FILE="+f.git.CAFile)
}

// berth starts a berth with a fresh store and version-control directory.
func (f *fixture) berth(b *testing.B) (string, *source.VCS) {
	st, err := store.OpenDisk(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	chain, _ := source.Parse(f.up.URL())
	vcs := &source.VCS{Dir: b.TempDir(), Netrc: f.git.WriteNetrc(b.TempDir(), f.git.User, f.git.Password),
		GitConfig: f.git.WriteGitConfig(b.TempDir()), Environ: f.vcsEnv(), Logger: discard()}
	px, err := modproxy.New(modproxy.Config{Config: cache.Config{
		Store:    st,
		Source:   &source.Router{Default: &source.Fetcher{Chain: chain}, Routes: []source.Route{{Patterns: private, Source: vcs}}},
		SumDBKey: f.up.GOSUMDB(), NoSumDB: private.Match,
		Ledger: &ledger.Ledger{Store: st, Match: private.Match, Logger: discard()},
		Logger: discard(),
	}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(px)
	b.Cleanup(func() { srv.Close(); px.Close() })
	return srv.URL, vcs
}

// download runs `go mod download mods...` in a fresh module cache with env.
func (f *fixture) download(b *testing.B, env []string, mods ...string) time.Duration {
	home := b.TempDir()
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "NETRC="); ok {
			// git reads HOME/.netrc, as it does for berth's version control.
			if data, err := os.ReadFile(p); err == nil {
				os.WriteFile(filepath.Join(home, ".netrc"), data, 0o600)
			}
		}
	}
	cmd := exec.Command(f.gobin, append([]string{"mod", "download"}, mods...)...)
	cmd.Dir = home
	cmd.Env = append(env, "HOME="+home, "GOMODCACHE="+filepath.Join(home, "mod"), "GOCACHE="+filepath.Join(home, "cache"),
		"GOENV=off", "GOTOOLCHAIN=local", "GOFLAGS=-modcacherw")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go mod download: %v\n%s", err, out)
	}
	return time.Since(start)
}

func (f *fixture) clientEnv(berth string) []string {
	return []string{"PATH=" + filepath.Dir(f.gobin), "GOPROXY=" + berth, "GOSUMDB=" + f.up.GOSUMDB(), "GONOSUMDB=" + string(private), "GONOPROXY=none"}
}

func (f *fixture) directEnv(b *testing.B) []string {
	home := b.TempDir()
	return append(f.vcsEnv(), "GOPROXY=direct", "GOSUMDB=off", "GIT_TERMINAL_PROMPT=0",
		"NETRC="+f.git.WriteNetrc(home, f.git.User, f.git.Password), "GIT_CONFIG_GLOBAL="+f.git.WriteGitConfig(home))
}

var mods = []string{"git.corp.example/team/m0@v1.0.0", "git.corp.example/team/m1@v1.0.0", "git.corp.example/team/m2@v1.0.0"}

func BenchmarkPrivate(b *testing.B) {
	f := newFixture(b)
	var direct, cold, warmPriv, warmPub time.Duration
	n := 0
	for b.Loop() {
		n++
		direct += f.download(b, f.directEnv(b), mods...)
		url, _ := f.berth(b)
		cold += f.download(b, f.clientEnv(url), mods...)
		warmPriv += f.download(b, f.clientEnv(url), mods...)
		f.download(b, f.clientEnv(url), "example.test/lib@v1.1.0", "example.test/lib@v1.0.0", "example.test/lib/v2@v2.0.0")
		warmPub += f.download(b, f.clientEnv(url), "example.test/lib@v1.1.0", "example.test/lib@v1.0.0", "example.test/lib/v2@v2.0.0")
	}
	avg := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(n) }
	b.ReportMetric(avg(cold)/avg(direct), "cold/direct")
	b.ReportMetric(avg(warmPriv)/avg(warmPub), "warm-private/warm-public")
	fmt.Printf("private modules (3 modules, %d runs): GOPROXY=direct %.0f ms, cold through berth %.0f ms (%.2fx, target <= 1.15x); warm private %.0f ms vs warm public %.0f ms (%.2fx)\n",
		n, avg(direct), avg(cold), avg(cold)/avg(direct), avg(warmPriv), avg(warmPub), avg(warmPriv)/avg(warmPub))

	// 100 concurrent clients of one cold version: one version-control fetch.
	url, vcs := f.berth(b)
	before := vcs.Runs()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 100 {
		wg.Go(func() {
			resp, err := http.Get(url + "/git.corp.example/team/m0/@v/v1.0.0.zip")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	runs := vcs.Runs() - before
	b.ReportMetric(float64(runs), "vcs-fetches/100-clients")
	fmt.Printf("100 concurrent clients of one cold private version: %d version-control fetch(es), statuses %v\n", runs, codes)
	if runs != 1 || codes[200] != 100 {
		b.Errorf("100 clients: %d fetches, statuses %v; want 1 and 100×200", runs, codes)
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
