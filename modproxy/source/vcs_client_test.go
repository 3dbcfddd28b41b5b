package source_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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

// privateBerth is berth in front of a public upstream (with its checksum
// database) and a private git host routed to version control.
type privateBerth struct {
	URL string
	VCS *source.VCS
	log *syncBuffer
}

// syncBuffer collects a logger's output across goroutines.
type syncBuffer = testmod.SyncBuffer

func startPrivateBerth(t *testing.T, up *testmod.Upstream, git *gitserver.Server, storeDir, password string) *privateBerth {
	t.Helper()
	st, err := store.OpenDisk(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := source.Parse(up.URL())
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	vcs := &source.VCS{
		Dir:       t.TempDir(),
		Netrc:     git.WriteNetrc(t.TempDir(), git.User, password),
		GitConfig: git.WriteGitConfig(t.TempDir()),
		Environ:   append(append(gitserver.CleanEnv(), git.Env()...), "SSL_CERT_FILE="+git.CAFile),
		Logger:    log,
	}
	px, err := modproxy.New(modproxy.Config{Config: cache.Config{
		Store: st,
		Source: &source.Router{
			Default: &source.Fetcher{Chain: chain},
			Routes:  []source.Route{{Patterns: private, Source: vcs}},
		},
		SumDBKey: up.GOSUMDB(),
		NoSumDB:  private.Match,
		Ledger:   &ledger.Ledger{Store: st, Match: private.Match, Logger: log},
		Logger:   log,
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(px)
	t.Cleanup(func() {
		srv.Close()
		px.Close()
		if t.Failed() {
			t.Logf("berth's log:\n%s", logs.String())
		}
	})
	return &privateBerth{URL: srv.URL, VCS: vcs, log: logs}
}

// goClient runs the go command as a build container does: berth as its only
// proxy, no git on its PATH, no way to the git host.
type goClient struct {
	t   *testing.T
	dir string
	env []string
}

// goBinDir is the go command's own bin directory, which holds no git.
func goBinDir(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "bin")
}

func newGoClient(t *testing.T, berth, sumdb string) *goClient {
	home := t.TempDir()
	dir := filepath.Join(home, "work")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/app\n\ngo 1.21\n"), 0o644)
	env := []string{
		"PATH=" + goBinDir(t), // no git
		"HOME=" + home, "GOMODCACHE=" + filepath.Join(home, "mod"), "GOCACHE=" + filepath.Join(home, "cache"),
		"GOPATH=" + filepath.Join(home, "gopath"), "GOENV=off", "GOTOOLCHAIN=local", "GOFLAGS=-modcacherw",
		"GOPROXY=" + berth, "GOSUMDB=" + sumdb, "GONOSUMDB=" + string(private), "GONOPROXY=none",
	}
	return &goClient{t: t, dir: dir, env: env}
}

func (g *goClient) try(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(goBinDir(g.t), "go"), args...)
	cmd.Dir, cmd.Env = g.dir, g.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (g *goClient) run(args ...string) string {
	g.t.Helper()
	out, err := g.try(args...)
	if err != nil {
		g.t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPrivateModulesThroughBerth: the real go command, whose only way out is
// berth, builds with private modules from a real git host (tags,
// pseudo-versions, a branch, a /v2 subdirectory, a nested module,
// +incompatible, a GitLab-style subgroup) and a public module verified
// against the checksum database; the public upstream never hears of a
// private path; a repository deleted afterwards is still served; a moved tag
// is refused across a restart while the stored copy is served; wrong
// credentials are a 502 naming the host.
func TestPrivateModulesThroughBerth(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command and git")
	}
	git := gitserver.New(t, "")
	lib := git.NewRepo(t, "team/lib")
	lib.Commit(t, map[string]string{"go.mod": "module git.corp.example/team/lib\n\ngo 1.21\n", "lib.go": "package lib\n\nconst V = \"lib 1.0\"\n"})
	lib.Tag(t, "v1.0.0")
	lib.Commit(t, map[string]string{"lib.go": "package lib\n\nconst V = \"lib 1.1\"\n"})
	lib.Tag(t, "v1.1.0")
	lib.Commit(t, map[string]string{"lib.go": "package lib\n\nconst V = \"lib next\"\n"})
	lib.Branch(t, "feature")
	multi := git.NewRepo(t, "team/multi")
	multi.Commit(t, map[string]string{
		"go.mod": "module git.corp.example/team/multi\n\ngo 1.21\n", "m.go": "package multi\n",
		"v2/go.mod": "module git.corp.example/team/multi/v2\n\ngo 1.21\n", "v2/m.go": "package multi\n\nconst Major = 2\n",
		"nested/go.mod": "module git.corp.example/team/multi/nested\n\ngo 1.21\n", "nested/n.go": "package nested\n\nconst N = 3\n",
	})
	multi.Tag(t, "v2.0.0")
	multi.Tag(t, "nested/v1.2.0")
	old := git.NewRepo(t, "team/old")
	old.Commit(t, map[string]string{"old.go": "package old\n\nconst O = 4\n"})
	old.Tag(t, "v2.1.0")
	sub := git.NewRepo(t, "group/subgroup/project")
	sub.Commit(t, map[string]string{"go.mod": "module git.corp.example/group/subgroup/project\n\ngo 1.21\n", "p.go": "package project\n\nconst P = 5\n"})
	sub.Tag(t, "v0.3.0")
	gone := git.NewRepo(t, "team/gone")
	gone.Commit(t, map[string]string{"go.mod": "module git.corp.example/team/gone\n\ngo 1.21\n", "g.go": "package gone\n\nconst G = 6\n"})
	gone.Tag(t, "v1.0.0")
	moving := git.NewRepo(t, "team/moving")
	firstCommit := moving.Commit(t, map[string]string{"go.mod": "module git.corp.example/team/moving\n\ngo 1.21\n", "m.go": "package moving\n\nconst M = 1\n"})
	moving.Tag(t, "v1.0.0")

	up := testmod.NewUpstream(t, testmod.BaseModules())
	storeDir := t.TempDir()
	b := startPrivateBerth(t, up, git, storeDir, git.Password)

	g := newGoClient(t, b.URL, up.GOSUMDB())
	g.run("get", "git.corp.example/team/lib@v1.1.0", "git.corp.example/team/multi/v2@v2.0.0", "git.corp.example/team/multi/nested@v1.2.0",
		"git.corp.example/team/old@v2.1.0+incompatible", "git.corp.example/group/subgroup/project@latest", "git.corp.example/team/gone@v1.0.0",
		"example.test/lib@v1.1.0")
	os.WriteFile(filepath.Join(g.dir, "main.go"), []byte(`package main

import (
	"fmt"

	"example.test/lib"
	"git.corp.example/group/subgroup/project"
	"git.corp.example/team/gone"
	plib "git.corp.example/team/lib"
	multi "git.corp.example/team/multi/v2"
	"git.corp.example/team/multi/nested"
	"git.corp.example/team/old"
)

func main() { fmt.Println(lib.Hello(), plib.V, multi.Major, nested.N, old.O, project.P, gone.G) }
`), 0o644)
	if out := g.run("run", "."); strings.TrimSpace(out) != "hello v1.1.0 lib 1.1 2 3 4 5 6" {
		t.Fatalf("go run: %q", out)
	}
	g.run("mod", "verify")
	if out := g.run("list", "-m", "-versions", "git.corp.example/team/lib"); strings.TrimSpace(out) != "git.corp.example/team/lib v1.0.0 v1.1.0" {
		t.Errorf("versions: %q", out)
	}
	out := g.run("list", "-m", "git.corp.example/team/lib@feature")
	if !strings.Contains(out, "git.corp.example/team/lib v1.1.1-0.") {
		t.Errorf("branch query: %q", out)
	}
	gosum, _ := os.ReadFile(filepath.Join(g.dir, "go.sum"))
	if !strings.Contains(string(gosum), "example.test/lib v1.1.0 h1:") || !strings.Contains(string(gosum), "git.corp.example/team/lib v1.1.0 h1:") {
		t.Errorf("go.sum:\n%s", gosum)
	}
	// The public module was verified through berth's checksum database.
	if up.Count("/sumdb/"+up.SumDBName+"/lookup/example.test/lib@v1.1.0") != 1 {
		t.Errorf("the public module was not looked up once: %v", up.Counts())
	}

	// A checksum-database lookup of a private path is refused with the fix.
	code, body := get(t, b.URL+"/sumdb/"+up.SumDBName+"/lookup/git.corp.example/team/lib@v1.1.0")
	if code != http.StatusForbidden || !strings.Contains(body, "GONOSUMDB") {
		t.Errorf("private lookup: %d %q", code, body)
	}
	// A prefix that can never be a module costs nothing.
	runs := b.VCS.Runs()
	if code, _ := get(t, b.URL+"/github.com/@v/list"); code != http.StatusNotFound {
		t.Errorf("github.com/@v/list: %d", code)
	}
	if b.VCS.Runs() != runs {
		t.Errorf("an impossible prefix ran the go command")
	}

	// The repository disappears: a fresh client still builds from berth's store.
	gone.Delete(t)
	g2 := newGoClient(t, b.URL, up.GOSUMDB())
	g2.dir = g.dir
	if out := g2.run("run", "."); !strings.HasSuffix(out, "\nhello v1.1.0 lib 1.1 2 3 4 5 6\n") {
		t.Fatalf("after the repository was deleted: %q", out)
	}

	// A tag moves after its go.mod was fetched: after a restart of berth, the
	// new zip is refused, naming both hashes and commits; the go.mod berth
	// stored keeps being served.
	if code, _ := get(t, b.URL+"/git.corp.example/team/moving/@v/v1.0.0.mod"); code != 200 {
		t.Fatalf("moving .mod: %d", code)
	}
	moving.Commit(t, map[string]string{"m.go": "package moving\n\nconst M = 2 // re-tagged\n"})
	moving.MoveTag(t, "v1.0.0")
	secondCommit := moving.Head(t)
	b2 := startPrivateBerth(t, up, git, storeDir, git.Password)
	code, body = get(t, b2.URL+"/git.corp.example/team/moving/@v/v1.0.0.zip")
	if code != http.StatusBadGateway || !strings.Contains(body, firstCommit) || !strings.Contains(body, secondCommit) || strings.Count(body, "h1:") < 2 {
		t.Errorf("moved tag: %d %q", code, body)
	}
	if !strings.Contains(b2.log.String(), "private module version changed") {
		t.Errorf("no log line for the refusal:\n%s", b2.log.String())
	}
	if code, body := get(t, b2.URL+"/git.corp.example/team/moving/@v/v1.0.0.mod"); code != 200 || !strings.HasPrefix(body, "module git.corp.example/team/moving") {
		t.Errorf("stored go.mod after the refusal: %d %q", code, body)
	}

	// Wrong credentials: a 502 that names the host and what to add.
	b3 := startPrivateBerth(t, up, git, t.TempDir(), "wrong-password")
	g3 := newGoClient(t, b3.URL, up.GOSUMDB())
	out, err := g3.try("mod", "download", "git.corp.example/team/lib@v1.0.0")
	if err == nil || !strings.Contains(out, "502 Bad Gateway") || !strings.Contains(out, "git host git.corp.example refused berth's credentials") || strings.Contains(out, "wrong-password") {
		t.Errorf("wrong credentials: %v\n%s", err, out)
	}

	// The public upstream never heard of a private path.
	for p := range up.Counts() {
		if strings.Contains(p, "corp.example") {
			t.Errorf("the public upstream was asked for %s", p)
		}
	}
}
