package source

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
)

// TestRouter: paths matching a route's patterns go to its source and to no
// other; the rest, and checksum databases, go to the default.
func TestRouter(t *testing.T) {
	pub := testmod.NewUpstream(t, []testmod.Module{{Path: "example.test/pub", Version: "v1.0.0", Files: map[string]string{"p.go": "package pub\n"}}})
	priv := testmod.NewUpstream(t, []testmod.Module{{Path: "corp.example.test/team/lib", Version: "v1.2.0", Files: map[string]string{"l.go": "package lib\n"}}})
	fetcher := func(u *testmod.Upstream) *Fetcher {
		c, err := Parse(u.URL())
		if err != nil {
			t.Fatal(err)
		}
		return &Fetcher{Chain: c}
	}
	r := &Router{Default: fetcher(pub), Routes: []Route{{Patterns: "corp.example.test/*", Source: fetcher(priv)}}}
	ctx := context.Background()
	read := func(b *Body, err error) string {
		t.Helper()
		if err != nil {
			return "error: " + err.Error()
		}
		defer b.Close()
		s, _ := io.ReadAll(b)
		return string(s)
	}
	if got := read(r.Mod(ctx, "corp.example.test/team/lib", "v1.2.0")); !strings.HasPrefix(got, "module corp.example.test/team/lib\n") {
		t.Errorf("routed .mod: %q", got)
	}
	if got := read(r.List(ctx, "example.test/pub")); got != "v1.0.0\n" {
		t.Errorf("default list: %q", got)
	}
	if _, err := r.Zip(ctx, "example.test/pub-not-routed/x", "v1.0.0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown module: %v, want not found", err)
	}
	if _, err := r.SumDB(ctx, pub.SumDBName, "latest"); err != nil {
		t.Errorf("checksum database through the default: %v", err)
	}
	for path, n := range priv.Counts() {
		if path != "/corp.example.test/team/lib/@v/v1.2.0.mod" || n != 1 {
			t.Errorf("private upstream saw %s %d times", path, n)
		}
	}
	for path := range pub.Counts() {
		if strings.HasPrefix(path, "/corp.example.test") {
			t.Errorf("public upstream saw the routed path %s", path)
		}
	}
}
