package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// TestLookAheadReadsNoTiles: the requirements of a go.mod are looked up ahead
// with one upstream request each and no tiles: a guess the go command never
// downloads (a test dependency of a dependency) costs a lookup, not its proof.
// The proof is read when the module is fetched, from the answer read ahead:
// the lookup is not asked for again.
func TestLookAheadReadsNoTiles(t *testing.T) {
	const n = 8
	var mods []testmod.Module
	var reqs []string
	for i := range n {
		p := fmt.Sprintf("example.test/dep%d", i)
		mods = append(mods, testmod.Module{Path: p, Version: "v1.0.0", Files: map[string]string{"d.go": "package d\n"}})
		reqs = append(reqs, "\t"+p+" v1.0.0\n")
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
	counts := func() (lookups, tiles int) {
		for p, k := range up.Counts() {
			switch {
			case strings.Contains(p, "/sumdb/") && strings.Contains(p, "/lookup/"):
				lookups += k
			case strings.Contains(p, "/sumdb/") && strings.Contains(p, "/tile/"):
				tiles += k
			}
		}
		return
	}
	c.noteLookupTime(40 * time.Millisecond)
	gomod := []byte("module example.test/a\n\ngo 1.22\n\nrequire (\n" + strings.Join(reqs, "") + ")\n")
	if q := c.lookAhead(gomod); q != n {
		t.Fatalf("queued %d lookups, want %d", q, n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l, _ := counts(); l < n && time.Now().Before(deadline); l, _ = counts() {
		time.Sleep(5 * time.Millisecond)
	}
	// Give a proof started after its lookup (the old look-ahead) time to
	// read its tiles.
	time.Sleep(200 * time.Millisecond)
	if l, tl := counts(); l != n || tl != 0 {
		t.Fatalf("after looking %d requirements up ahead: %d lookups and %d tile reads upstream, want %d and 0", n, l, tl, n)
	}

	// Fetching one of them proves its record from the answer read ahead.
	r, err := proto.ParsePath("/example.test/dep3/@v/v1.0.0.mod")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAll(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if l, tl := counts(); l != n || tl == 0 {
		t.Fatalf("after fetching a module looked up ahead: %d lookups and %d tile reads, want still %d lookups and its proof's tiles", l, tl, n)
	}
	if k := up.Count("/sumdb/" + up.SumDBName + "/lookup/example.test/dep3@v1.0.0"); k != 1 {
		t.Fatalf("the lookup read ahead was asked for %d times, want 1", k)
	}
}

// TestLookAheadFollowsOneVersionPerPath: a lower version of a path already
// looked up ahead is never looked up; a higher one once a second go.mod
// requires it (minimal version selection keeps the highest).
func TestLookAheadFollowsOneVersionPerPath(t *testing.T) {
	a := &lookahead{}
	x := func(v string) module.Version { return module.Version{Path: "example.test/x", Version: v} }
	steps := []struct {
		mv   module.Version
		want bool
	}{
		{x("v1.2.0"), true},  // the first version of the path
		{x("v1.1.0"), false}, // lower
		{x("v1.3.0"), false}, // higher, required once
		{x("v1.3.0"), true},  // required by a second go.mod
		{x("v1.3.0"), false}, // already looked up
		{x("v1.2.0"), false}, // lower now
		{module.Version{Path: "example.test/y", Version: "v0.1.0"}, true},
	}
	for i, s := range steps {
		if got := a.worthLookingUp(s.mv); got != s.want {
			t.Errorf("step %d: %v: %v, want %v", i, s.mv, got, s.want)
		}
	}
}
