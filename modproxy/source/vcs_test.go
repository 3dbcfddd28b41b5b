package source

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/gitserver"
)

// privateRepos fills a git server with the repositories the version-control
// tests use and returns the commit hashes they need.
func privateRepos(t *testing.T, s *gitserver.Server) map[string]string {
	h := map[string]string{}
	lib := s.NewRepo(t, "team/lib")
	h["lib v1.0.0"] = lib.Commit(t, map[string]string{"go.mod": "module git.corp.example/team/lib\n\ngo 1.21\n", "lib.go": "package lib\n\nconst V = 1\n"})
	lib.Tag(t, "v1.0.0")
	lib.Commit(t, map[string]string{"lib.go": "package lib\n\nconst V = 11\n"})
	lib.Tag(t, "v1.1.0")
	h["lib untagged"] = lib.Commit(t, map[string]string{"lib.go": "package lib\n\nconst V = 12\n"})
	lib.Checkout(t, h["lib v1.0.0"])
	h["lib feature"] = lib.Commit(t, map[string]string{"feature.go": "package lib\n\nconst F = 1\n"})
	lib.Branch(t, "feature")
	lib.Checkout(t, "main")

	multi := s.NewRepo(t, "team/multi")
	multi.Commit(t, map[string]string{
		"go.mod": "module git.corp.example/team/multi\n\ngo 1.21\n", "m.go": "package multi\n",
		"v2/go.mod": "module git.corp.example/team/multi/v2\n\ngo 1.21\n", "v2/m.go": "package multi\n\nconst Major = 2\n",
		"nested/go.mod": "module git.corp.example/team/multi/nested\n\ngo 1.21\n", "nested/n.go": "package nested\n",
	})
	multi.Tag(t, "v1.0.0")
	multi.Tag(t, "v2.0.0")
	multi.Tag(t, "nested/v1.2.0")

	old := s.NewRepo(t, "team/old")
	old.Commit(t, map[string]string{"old.go": "package old\n"})
	old.Tag(t, "v2.1.0")

	sub := s.NewRepo(t, "group/subgroup/project")
	sub.Commit(t, map[string]string{"go.mod": "module git.corp.example/group/subgroup/project\n\ngo 1.21\n", "p.go": "package project\n"})
	sub.Tag(t, "v0.3.0")

	bare := s.NewRepo(t, "team/untagged")
	h["untagged"] = bare.Commit(t, map[string]string{"go.mod": "module git.corp.example/team/untagged\n\ngo 1.21\n", "u.go": "package untagged\n"})
	return h
}

func newTestVCS(t *testing.T, s *gitserver.Server, user, password string) *VCS {
	dir := t.TempDir()
	return &VCS{
		Dir:       dir,
		Netrc:     s.WriteNetrc(t.TempDir(), user, password),
		GitConfig: s.WriteGitConfig(t.TempDir()),
		Environ:   append(append(gitserver.CleanEnv(), s.Env()...), "SSL_CERT_FILE="+s.CAFile),
	}
}

func reader(t *testing.T) func(*Body, error) string {
	return func(b *Body, err error) string { t.Helper(); return readBody(t, b, err) }
}

func infoReader(t *testing.T) func(*Body, error) string {
	return func(b *Body, err error) string { t.Helper(); return infoVersion(t, b, err) }
}

func readBody(t *testing.T, b *Body, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

func infoVersion(t *testing.T, b *Body, err error) string {
	t.Helper()
	s := readBody(t, b, err)
	var info map[string]any
	if err := json.Unmarshal([]byte(s), &info); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	if _, ok := info["Origin"]; ok {
		t.Errorf("info of a private module carries its origin: %s", s)
	}
	v, _ := info["Version"].(string)
	return v
}

// TestVCS answers every kind of request from a real git server through the
// real go command.
func TestVCS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command and git")
	}
	s := gitserver.New(t, "")
	h := privateRepos(t, s)
	v := newTestVCS(t, s, s.User, s.Password)
	ctx := context.Background()
	read, info := reader(t), infoReader(t)

	if got := read(v.List(ctx, "git.corp.example/team/lib")); got != "v1.0.0\nv1.1.0\n" {
		t.Errorf("list: %q", got)
	}
	if got := info(v.Info(ctx, "git.corp.example/team/lib", "v1.0.0")); got != "v1.0.0" {
		t.Errorf("info v1.0.0: %q", got)
	}
	mod, err := v.Mod(ctx, "git.corp.example/team/lib", "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if mod.Revision == nil || mod.Revision.Ref != "refs/tags/v1.0.0" || mod.Revision.Hash == "" || !strings.HasPrefix(mod.Revision.Sum, "h1:") || mod.Revision.URL != "https://git.corp.example/team/lib.git" {
		t.Errorf("revision: %+v", mod.Revision)
	}
	if got := readBody(t, mod, nil); got != "module git.corp.example/team/lib\n\ngo 1.21\n" {
		t.Errorf("mod: %q", got)
	}
	zip := read(v.Zip(ctx, "git.corp.example/team/lib", "v1.0.0"))
	if !strings.Contains(zip, "git.corp.example/team/lib@v1.0.0/lib.go") {
		t.Errorf("zip lacks lib.go")
	}
	runs := v.Runs()
	if runs != 2 {
		t.Errorf("list + one version took %d go commands, want 2", runs)
	}

	// Latest is the highest tag; a branch and a commit resolve to pseudo-versions.
	if got := info(v.Latest(ctx, "git.corp.example/team/lib")); got != "v1.1.0" {
		t.Errorf("latest: %q", got)
	}
	if got := info(v.Info(ctx, "git.corp.example/team/lib", "feature")); !strings.HasPrefix(got, "v1.0.1-0.") || !strings.HasSuffix(got, h["lib feature"][:12]) {
		t.Errorf("feature branch: %q (commit %s)", got, h["lib feature"])
	}
	if got := info(v.Info(ctx, "git.corp.example/team/lib", h["lib untagged"][:8])); !strings.HasPrefix(got, "v1.1.1-0.") {
		t.Errorf("commit query: %q", got)
	}
	if got := info(v.Latest(ctx, "git.corp.example/team/untagged")); !strings.HasPrefix(got, "v0.0.0-") || !strings.HasSuffix(got, h["untagged"][:12]) {
		t.Errorf("latest of an untagged module: %q", got)
	}
	if got := read(v.List(ctx, "git.corp.example/team/untagged")); got != "" {
		t.Errorf("list of an untagged module: %q", got)
	}
	pseudo := info(v.Latest(ctx, "git.corp.example/team/untagged"))
	if got := read(v.Mod(ctx, "git.corp.example/team/untagged", pseudo)); !strings.HasPrefix(got, "module git.corp.example/team/untagged") {
		t.Errorf("mod of a pseudo-version: %q", got)
	}

	// A major version in a subdirectory, a nested module, +incompatible,
	// a GitLab-style subgroup.
	for _, c := range []struct{ path, version, want string }{
		{"git.corp.example/team/multi/v2", "v2.0.0", "module git.corp.example/team/multi/v2\n"},
		{"git.corp.example/team/multi/nested", "v1.2.0", "module git.corp.example/team/multi/nested\n"},
		{"git.corp.example/team/old", "v2.1.0+incompatible", "module git.corp.example/team/old\n"},
		{"git.corp.example/group/subgroup/project", "v0.3.0", "module git.corp.example/group/subgroup/project\n"},
	} {
		b, err := v.Mod(ctx, c.path, c.version)
		if err != nil {
			t.Errorf("%s@%s: %v", c.path, c.version, err)
			continue
		}
		if got := readBody(t, b, nil); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s@%s mod: %q", c.path, c.version, got)
		}
	}
	if got := read(v.List(ctx, "git.corp.example/team/multi/nested")); got != "v1.2.0\n" {
		t.Errorf("nested list: %q", got)
	}

	// What does not exist is not found; nothing else is.
	for _, c := range []struct{ path, version string }{
		{"git.corp.example/team/lib", "v9.9.9"},
		{"git.corp.example/team/missing", "v1.0.0"},
		{"git.corp.example/team/lib/sub", "v1.0.0"},
	} {
		if _, err := v.Zip(ctx, c.path, c.version); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s@%s: %v, want not found", c.path, c.version, err)
		}
	}
	if _, err := v.List(ctx, "git.corp.example/team"); !errors.Is(err, ErrNotFound) {
		t.Errorf("prefix list: %v, want not found", err)
	}
	before := v.Runs()
	for _, p := range []string{"github.com", "github.com/corp"} {
		if _, err := v.List(ctx, p); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want not found", p, err)
		}
	}
	if v.Runs() != before {
		t.Errorf("impossible prefixes ran the go command")
	}
}

// TestVCSCredentials: wrong credentials are an AuthError naming the host,
// never not found, and no secret is in its text.
func TestVCSCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command and git")
	}
	s := gitserver.New(t, "")
	r := s.NewRepo(t, "team/lib")
	r.Commit(t, map[string]string{"go.mod": "module git.corp.example/team/lib\n"})
	r.Tag(t, "v1.0.0")
	v := newTestVCS(t, s, s.User, "wrong-password-xyz")
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"zip":  func() error { _, err := v.Zip(ctx, "git.corp.example/team/lib", "v1.0.0"); return err },
		"list": func() error { _, err := v.List(ctx, "git.corp.example/team/lib"); return err },
	} {
		err := call()
		var ae *AuthError
		if !errors.As(err, &ae) || errors.Is(err, ErrNotFound) {
			t.Fatalf("%s with wrong credentials: %v, want an AuthError", name, err)
		}
		if ae.Host != "git.corp.example" || !strings.Contains(err.Error(), "--netrc") || strings.Contains(err.Error(), "wrong-password-xyz") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestVCSOneFetch: many callers of one cold version cause one go command.
func TestVCSOneFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command and git")
	}
	s := gitserver.New(t, "")
	r := s.NewRepo(t, "team/lib")
	r.Commit(t, map[string]string{"go.mod": "module git.corp.example/team/lib\n"})
	r.Tag(t, "v1.0.0")
	v := newTestVCS(t, s, s.User, s.Password)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = v.Mod(context.Background(), "git.corp.example/team/lib", "v1.0.0")
			} else {
				_, err = v.Info(context.Background(), "git.corp.example/team/lib", "v1.0.0")
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := v.Runs(); n != 1 {
		t.Errorf("20 callers ran %d go commands, want 1", n)
	}
}

func TestRedact(t *testing.T) {
	in := "fatal: unable to access 'https://berth:tok3n@git.corp.example/x.git/': 403"
	if got := redact(in); strings.Contains(got, "tok3n") || !strings.Contains(got, "https://xxxxx@git.corp.example/x.git") {
		t.Errorf("redact: %q", got)
	}
}
