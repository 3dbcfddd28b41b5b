package cache

import (
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// TestLookAheadOnlyForSlowLookups: requirements are looked up ahead only once
// source lookups are slow enough on average for it to pay.
func TestLookAheadOnlyForSlowLookups(t *testing.T) {
	mods := []testmod.Module{
		{Path: "example.test/b", Version: "v1.0.0", Files: map[string]string{"b.go": "package b\n"}},
		{Path: "example.test/a", Version: "v1.0.0", Files: map[string]string{"a.go": "package a\n"},
			Require: []module.Version{{Path: "example.test/b", Version: "v1.0.0"}}},
	}
	up := testmod.NewUpstream(t, mods)
	st, err := store.OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	chain, err := source.Parse(up.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Store: st, Source: &source.Fetcher{Chain: chain}, SumDBKey: up.GOSUMDB(), PrefetchLookups: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	gomod := []byte("module example.test/a\n\ngo 1.22\n\nrequire example.test/b v1.0.0\n")
	if n := c.lookAhead(gomod); n != 0 {
		t.Fatalf("queued %d lookups with no slow lookup seen; a near source is assumed", n)
	}
	c.noteLookupTime(40 * time.Millisecond)
	if n := c.lookAhead(gomod); n != 1 {
		t.Fatalf("queued %d lookups with 40 ms lookups, want 1", n)
	}
	lookups := func() int { return up.Count("/sumdb/" + up.SumDBName + "/lookup/example.test/b@v1.0.0") }
	deadline := time.Now().Add(10 * time.Second)
	for lookups() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := lookups(); n != 1 {
		t.Fatalf("lookups ahead with 40 ms lookups: %d, want 1", n)
	}
	if n := c.lookAhead(gomod); n != 0 {
		t.Fatalf("the same requirement was queued again: %d", n)
	}
}
