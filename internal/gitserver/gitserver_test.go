package gitserver

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoCommandDirect: the go command, with GOPROXY=direct, the server's
// proxy, CA and a netrc, downloads a tagged version from the fake host and
// reports its origin; without credentials git fails with terminal prompts
// disabled.
func TestGoCommandDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command and git")
	}
	s := New(t, "")
	r := s.NewRepo(t, "group/sub/project")
	r.Commit(t, map[string]string{"go.mod": "module git.corp.example/group/sub/project\n\ngo 1.21\n", "p.go": "package project\n"})
	r.Tag(t, "v1.0.0")

	home := t.TempDir()
	run := func(netrc bool) (string, error) {
		env := append(CleanEnv(), s.Env()...)
		env = append(env, "HOME="+home, "GOMODCACHE="+filepath.Join(home, "mod"), "GOCACHE="+filepath.Join(home, "cache"),
			"GOPROXY=direct", "GOSUMDB=off", "GOFLAGS=-modcacherw", "GOTOOLCHAIN=local", "GIT_TERMINAL_PROMPT=0",
			"SSL_CERT_FILE="+s.CAFile, "GIT_CONFIG_GLOBAL="+s.WriteGitConfig(home), "NETRC=/nonexistent")
		if netrc {
			s.WriteNetrc(home, s.User, s.Password)
			os.Rename(filepath.Join(home, "netrc"), filepath.Join(home, ".netrc"))
			env = append(env, "NETRC="+filepath.Join(home, ".netrc"))
		}
		cmd := exec.Command("go", "mod", "download", "-json", "git.corp.example/group/sub/project@v1.0.0")
		cmd.Dir = home
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(false)
	if err == nil || !strings.Contains(out, "terminal prompts disabled") {
		t.Fatalf("without credentials: %v\n%s", err, out)
	}
	out, err = run(true)
	if err != nil {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	var res struct {
		Version string
		Origin  struct{ VCS, URL, Hash, Ref string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Version != "v1.0.0" || res.Origin.URL != r.URL() || res.Origin.Ref != "refs/tags/v1.0.0" || res.Origin.Hash != r.Head(t) {
		t.Errorf("download: %+v (head %s)", res, r.Head(t))
	}
	if s.Requests("group/sub/project", "upload-pack") == 0 || s.Requests("group/sub/project", "denied") == 0 {
		t.Errorf("counts: %v", s.Counts())
	}
}
