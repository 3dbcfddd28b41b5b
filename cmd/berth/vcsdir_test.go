package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// TestVCSDirDefault: --vcs-dir defaults to <store>-vcs beside a disk store;
// with an s3:// store, whose --store is a URL, to vcs in the replica's own
// local cache directory (cache=DIR, else the temporary one, gone when the
// store closes), never to a path made from the URL.
func TestVCSDirDefault(t *testing.T) {
	for _, k := range []string{"GOPRIVATE", "GONOPROXY", "BERTH_PRIVATE", "BERTH_ROUTE", "BERTH_VCS_DIR"} {
		t.Setenv(k, "")
	}
	chain, _ := source.Parse("https://proxy.example")
	vcsDir := func(st store.Store, spec string, args ...string) string {
		t.Helper()
		f := newFlags("proxy", "", io.Discard, io.Discard)
		p := addPrivateFlags(f)
		if _, ok := f.Parse(append([]string{"--private", "corp.example"}, args...)); !ok {
			t.Fatalf("parse %q", args)
		}
		ps, err := p.setup(context.Background(), &source.Fetcher{Chain: chain}, st, spec, nil, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range ps.Source.(*source.Router).Routes {
			if v, ok := rt.Source.(*source.VCS); ok {
				return v.Dir
			}
		}
		t.Fatalf("no version control route: %#v", ps.Source)
		return ""
	}

	dir := filepath.Join(t.TempDir(), "store")
	disk, err := store.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := vcsDir(disk, dir); got != dir+"-vcs" {
		t.Errorf("disk store %s: --vcs-dir defaults to %s, want %s-vcs", dir, got, dir)
	}
	if got := vcsDir(disk, dir, "--vcs-dir", "/srv/vcs"); got != "/srv/vcs" {
		t.Errorf("--vcs-dir /srv/vcs: %s", got)
	}

	ms := minioBucket(t, "vcsdir")
	t.Setenv("AWS_ACCESS_KEY_ID", ms.Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ms.Secret)
	cache := t.TempDir()
	spec := "s3://vcsdir/berth?endpoint=" + ms.Endpoint + "&cache=" + cache
	st, _, closeFn, err := openStore(t.Context(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if got := vcsDir(st, spec); got != filepath.Join(cache, "vcs") {
		t.Errorf("s3 store with cache=%s: --vcs-dir defaults to %s, want %s/vcs", cache, got, cache)
	}
	// The store keeps it when it opens again (a restart keeps the go
	// command's build cache).
	if err := os.MkdirAll(filepath.Join(cache, "vcs", "gocache"), 0o700); err != nil {
		t.Fatal(err)
	}
	closeFn()
	_, _, closeFn, err = openStore(t.Context(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if _, err := os.Stat(filepath.Join(cache, "vcs", "gocache")); err != nil {
		t.Errorf("the s3 store's opening removed the version control directory in its cache directory: %v", err)
	}

	spec = "s3://vcsdir/berth?endpoint=" + ms.Endpoint
	tmp, _, closeTmp, err := openStore(t.Context(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := vcsDir(tmp, spec)
	if filepath.Dir(got) == "." || !filepath.IsAbs(got) {
		t.Fatalf("s3 store without cache=: --vcs-dir defaults to %q, want an absolute directory", got)
	}
	if err := os.MkdirAll(got, 0o700); err != nil {
		t.Fatal(err)
	}
	closeTmp()
	if _, err := os.Stat(got); !os.IsNotExist(err) {
		t.Errorf("s3 store without cache=: the default --vcs-dir %s outlives the store: %v", got, err)
	}
}
