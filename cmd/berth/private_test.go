package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// TestPrivateSetup: --private routes its paths to version control and out
// of the checksum database, --route sends a pattern to its own list, and the
// credentials warnings are given.
func TestPrivateSetup(t *testing.T) {
	for _, k := range []string{"GOPRIVATE", "GONOPROXY", "BERTH_PRIVATE", "BERTH_ROUTE"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	st, err := store.OpenDisk(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	netrc := filepath.Join(dir, "netrc")
	os.WriteFile(netrc, []byte("machine git.corp.example login a password b\n"), 0o644)
	chain, _ := source.Parse("https://proxy.example")

	build := func(args ...string) (privateSetup, string, error) {
		f := newFlags("proxy", "", io.Discard, io.Discard)
		p := addPrivateFlags(f)
		if _, ok := f.Parse(args); !ok {
			t.Fatalf("parse %q", args)
		}
		var logs bytes.Buffer
		ps, err := p.setup(context.Background(), &source.Fetcher{Chain: chain}, st, filepath.Join(dir, "store"), nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
		return ps, logs.String(), err
	}

	ps, logs, err := build("--private", "git.corp.example", "--route", "*.internal=https://mirror.internal,direct", "--netrc", netrc)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := ps.Source.(*source.Router)
	if !ok || len(r.Routes) != 2 || r.Routes[0].Patterns != "*.internal" || r.Routes[1].Patterns != "git.corp.example" {
		t.Fatalf("routes: %#v", ps.Source)
	}
	if _, ok := r.Routes[1].Source.(*source.VCS); !ok {
		t.Errorf("private route goes to %T", r.Routes[1].Source)
	}
	if ps.NoSumDB == nil || !ps.NoSumDB("git.corp.example/team/lib") || ps.NoSumDB("example.com/pub") || ps.Ledger == nil || !ps.Ledger.Covers("git.corp.example/x") {
		t.Error("private paths are checked against the checksum database, or not in the ledger")
	}
	if !strings.Contains(logs, "readable by every user") {
		t.Errorf("no warning for a world-readable netrc:\n%s", logs)
	}

	_, logs, err = build("--netrc", netrc)
	if err != nil || !strings.Contains(logs, "no module is private") {
		t.Errorf("credentials without --private: %v\n%s", err, logs)
	}
	if _, _, err := build("--route", "corp.example"); err == nil || !strings.Contains(err.Error(), "PATTERNS=SOURCE") {
		t.Errorf("bad route: %v", err)
	}
	t.Setenv("GOPRIVATE", "corp.example")
	ps, _, err = build()
	if err != nil || ps.NoSumDB == nil || !ps.NoSumDB("corp.example/x") {
		t.Errorf("GOPRIVATE as the default of --private: %v", err)
	}
}
