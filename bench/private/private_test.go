// Package private benchmarks berth's private modules end to end: a real git
// server (internal/gitserver), the real go command as the client.
//
//	go test -run XXX -bench . -benchtime 3x ./bench/private
//
// It prints the ratios it is judged by, each of medians: a cold private
// module through berth against GOPROXY=direct from the same git server
// (target <= 1.15); a warm private module against a warm public one (target
// ~1), the public ones being twins of the private ones (the same 50 files of
// 2 KB), asked for with the same requests (.info, .mod, .zip; the checksum
// database off for both) in interleaved pairs, both by the go command and
// over plain HTTP; and the number of version-control fetches 100 concurrent
// clients of one cold version cause (target 1).
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
	"slices"
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

// content is module i's files beside its go.mod: 50 files of 2 KB, the
// same for the private module on the git server and its public twin.
func content(i int) map[string]string {
	files := map[string]string{}
	for j := range 50 {
		files[fmt.Sprintf("f%d.go", j)] = fmt.Sprintf("package m%d\n\nconst C%d = %q\n", i, j, strings.Repeat("x", 2000))
	}
	return files
}

func newFixture(b *testing.B) *fixture {
	git := gitserver.New(b, "")
	var public []testmod.Module
	for i := range 3 {
		r := git.NewRepo(b, fmt.Sprintf("team/m%d", i))
		files := content(i)
		files["go.mod"] = fmt.Sprintf("module git.corp.example/team/m%d\n\ngo 1.21\n", i)
		r.Commit(b, files)
		r.Tag(b, "v1.0.0")
		public = append(public, testmod.Module{Path: fmt.Sprintf("example.test/pub/m%d", i), Version: "v1.0.0", Files: content(i)})
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skip("no go command")
	}
	return &fixture{git: git, up: testmod.NewUpstream(b, append(testmod.BaseModules(), public...)), gobin: filepath.Join(strings.TrimSpace(string(out)), "bin", "go")}
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

var (
	mods  = []string{"git.corp.example/team/m0@v1.0.0", "git.corp.example/team/m1@v1.0.0", "git.corp.example/team/m2@v1.0.0"}
	twins = []string{"example.test/pub/m0@v1.0.0", "example.test/pub/m1@v1.0.0", "example.test/pub/m2@v1.0.0"}
)

// warmed is the number of warm pairs measured per berth.
const warmed = 15

// warmEnv is clientEnv with the public twins out of the checksum database
// too, so that a warm private and a warm public download make the same
// requests (.info, .mod, .zip of three versions of the same size) and
// differ only in the route berth stored them by.
func (f *fixture) warmEnv(berth string) []string {
	return []string{"PATH=" + filepath.Dir(f.gobin), "GOPROXY=" + berth, "GOSUMDB=" + f.up.GOSUMDB(),
		"GONOSUMDB=" + string(private) + ",example.test/pub", "GONOPROXY=none"}
}

// getAll fetches the .info, .mod and .zip of each module version from
// berth with one keep-alive client, as the go command does, and returns the
// time taken.
func getAll(b *testing.B, berth string, mvs []string) time.Duration {
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	start := time.Now()
	for _, mv := range mvs {
		path, version, _ := strings.Cut(mv, "@")
		for _, ext := range []string{".info", ".mod", ".zip"} {
			resp, err := c.Get(berth + "/" + path + "/@v/" + version + ext)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("%s%s: %s", mv, ext, resp.Status)
			}
		}
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

func BenchmarkPrivate(b *testing.B) {
	f := newFixture(b)
	var direct, cold, warmPriv, warmPub, httpPriv, httpPub []time.Duration
	for b.Loop() {
		direct = append(direct, f.download(b, f.directEnv(b), mods...))
		url, vcs := f.berth(b)
		cold = append(cold, f.download(b, f.clientEnv(url), mods...))
		f.download(b, f.warmEnv(url), twins...) // the public twins' cold fetch
		runs := vcs.Runs()
		// Warm: interleaved pairs, the order swapped every pair.
		for i := range warmed {
			priv := func() { warmPriv = append(warmPriv, f.download(b, f.warmEnv(url), mods...)) }
			pub := func() { warmPub = append(warmPub, f.download(b, f.warmEnv(url), twins...)) }
			hpriv := func() { httpPriv = append(httpPriv, getAll(b, url, mods)) }
			hpub := func() { httpPub = append(httpPub, getAll(b, url, twins)) }
			if i%2 == 0 {
				priv()
				pub()
			} else {
				pub()
				priv()
			}
			for j := range 10 { // a round over HTTP takes about 1 ms: more of them
				if j%2 == 0 {
					hpriv()
					hpub()
				} else {
					hpub()
					hpriv()
				}
			}
		}
		if n := vcs.Runs() - runs; n != 0 {
			b.Errorf("warm private downloads ran version control %d times; a stored version must be served from the store", n)
		}
	}
	b.ReportMetric(ms(median(cold))/ms(median(direct)), "cold/direct")
	b.ReportMetric(ms(median(warmPriv))/ms(median(warmPub)), "warm-private/warm-public")
	b.ReportMetric(ms(median(httpPriv))/ms(median(httpPub)), "http-warm-private/public")
	fmt.Printf("private modules (3 modules of 100 KB, %d runs, medians): GOPROXY=direct %.0f ms, cold through berth %.0f ms (%.2fx, target <= 1.15x)\n",
		len(cold), ms(median(direct)), ms(median(cold)), ms(median(cold))/ms(median(direct)))
	fmt.Printf("warm, the same content private and public, interleaved: go mod download %.1f ms vs %.1f ms (%.2fx, target ~1; %d pairs); .info+.mod+.zip over HTTP %.2f ms vs %.2f ms (%.2fx; %d pairs)\n",
		ms(median(warmPriv)), ms(median(warmPub)), ms(median(warmPriv))/ms(median(warmPub)), len(warmPriv),
		ms(median(httpPriv)), ms(median(httpPub)), ms(median(httpPriv))/ms(median(httpPub)), len(httpPriv))

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
