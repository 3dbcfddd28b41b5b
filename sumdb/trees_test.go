package sumdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// counted wraps a Fetch with a count of reads by path. Reads are one at a
// time: a memDB is not safe for the Verifier's parallel tile reads.
type counted struct {
	mu    sync.Mutex
	reads map[string]int
	next  Fetch
}

func (c *counted) fetch(ctx context.Context, p string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads[p]++
	return c.next(ctx, p)
}

func (c *counted) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for k, v := range c.reads {
		m[k] = v
	}
	return m
}

// withNote returns the lookup answer rec with its signed tree head replaced
// by the one of answer other.
func withNote(t *testing.T, rec, other []byte) []byte {
	t.Helper()
	const head = "go.sum database tree\n"
	i, j := bytes.Index(rec, []byte(head)), bytes.Index(other, []byte(head))
	if i < 0 || j < 0 {
		t.Fatalf("answers without a tree head:\n%s\n%s", rec, other)
	}
	return append(append([]byte(nil), rec[:i]...), other[j:]...)
}

// TestVerifierProvesManyAgainstOneTree: 300 lookup answers, each kept by a
// caching upstream with the tree of its first asking (300 different trees),
// are proven against the one tree Warm verified. Reading them ahead (Preload)
// reads no tile; proving them reads each tile once, and the only partial
// tiles read are that tree's edge: the proofs of the records and the checks
// that every answer's older tree is a prefix of it read full tiles there.
func TestVerifierProvesManyAgainstOneTree(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "sum.berth.test")
	if err != nil {
		t.Fatal(err)
	}
	db := newMemDB(t, skey)
	ctx := context.Background()
	const n = 300
	answers := map[string][]byte{}
	for i := range n {
		p := fmt.Sprintf("lookup/m%d.test/m@v1.0.0", i)
		b, err := db.get(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		answers[p] = b
	}
	c := &counted{reads: map[string]int{}, next: func(ctx context.Context, p string) ([]byte, error) {
		if b, ok := answers[p]; ok {
			return b, nil
		}
		return db.get(ctx, p)
	}}
	v, err := NewVerifier(ctx, vkey, c.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	tree := v.Tree()
	if tree.N != n {
		t.Fatalf("tree %d after Warm, want %d", tree.N, n)
	}
	edge := map[string]bool{}
	for _, tl := range tlog.NewTiles(8, 0, tree.N) {
		if tl.W < 1<<tl.H {
			edge[tl.Path()] = true
		}
	}
	warm := c.snapshot()

	for i := range n {
		v.Preload(ctx, fmt.Sprintf("m%d.test/m", i), "v1.0.0")
	}
	for p, k := range c.snapshot() {
		if strings.HasPrefix(p, "tile/") && k != warm[p] {
			t.Errorf("Preload read %s", p)
		}
	}
	for i := range n {
		if err := v.CheckLookup(ctx, fmt.Sprintf("m%d.test/m", i), "v1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.Tree(); got != tree {
		t.Fatalf("verified tree moved from %d to %d", tree.N, got.N)
	}
	tiles := 0
	for p, k := range c.snapshot() {
		switch {
		case strings.HasPrefix(p, "lookup/") && k != 1:
			t.Errorf("%s read %d times, want once (read ahead, then proven)", p, k)
		case strings.HasPrefix(p, "tile/"):
			tiles++
			if k != 1 {
				t.Errorf("%s read %d times, want once", p, k)
			}
			if strings.Contains(p, ".p/") && !edge[p] {
				t.Errorf("read %s, a partial tile not at the edge of the verified tree %d", p, tree.N)
			}
		}
	}
	t.Logf("%d records proven with %d tile reads", n, tiles)
}

// TestVerifierRefusesOlderForkedTree: an answer whose record is in the
// verified tree but whose signed tree is an older tree of another history
// (the same key signing two logs) is a fork, and every later lookup fails.
func TestVerifierRefusesOlderForkedTree(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "sum.berth.test")
	if err != nil {
		t.Fatal(err)
	}
	honest, forked := newMemDB(t, skey), newMemDB(t, skey)
	ctx := context.Background()
	for _, m := range []string{"a.test/a", "b.test/b", "c.test/c"} {
		honest.get(ctx, "lookup/"+m+"@v1.0.0")
	}
	rec, _ := honest.get(ctx, "lookup/a.test/a@v1.0.0") // record 0, tree 3
	other, err := forked.get(ctx, "lookup/x.test/x@v1.0.0")
	if err != nil { // record 0 of the other history, tree 1
		t.Fatal(err)
	}
	bad := withNote(t, rec, other)
	c := &counted{reads: map[string]int{}, next: func(ctx context.Context, p string) ([]byte, error) {
		if p == "lookup/a.test/a@v1.0.0" {
			return bad, nil
		}
		return honest.get(ctx, p)
	}}
	v, _ := NewVerifier(ctx, vkey, c.fetch)
	if err := v.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.CheckLookup(ctx, "a.test/a", "v1.0.0"); err == nil || !strings.Contains(err.Error(), "SECURITY ERROR") {
		t.Fatalf("answer with an older tree of another history: %v, want a SECURITY ERROR", err)
	}
	if err := v.CheckLookup(ctx, "b.test/b", "v1.0.0"); err == nil || !strings.Contains(err.Error(), "SECURITY ERROR") {
		t.Fatalf("after a fork: %v, want every lookup refused", err)
	}
}

// TestVerifierChecksNewerTreeAtNextMove: an answer whose record is in the
// verified tree but whose signed tree is newer is served without reading that
// tree's edge; the tree is checked when the verified tree moves past it, and
// a fork found then fails the move and every lookup after it.
func TestVerifierChecksNewerTreeAtNextMove(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "sum.berth.test")
	if err != nil {
		t.Fatal(err)
	}
	honest, forked := newMemDB(t, skey), newMemDB(t, skey)
	ctx := context.Background()
	for _, m := range []string{"a.test/a", "b.test/b", "c.test/c"} {
		honest.get(ctx, "lookup/"+m+"@v1.0.0")
	}
	for _, m := range []string{"x.test/x", "y.test/y", "z.test/z", "w.test/w"} {
		forked.get(ctx, "lookup/"+m+"@v1.0.0")
	}
	rec, _ := honest.get(ctx, "lookup/b.test/b@v1.0.0")   // record 1
	other, _ := forked.get(ctx, "lookup/x.test/x@v1.0.0") // tree 4 of the other history
	bad := withNote(t, rec, other)
	c := &counted{reads: map[string]int{}, next: func(ctx context.Context, p string) ([]byte, error) {
		if p == "lookup/b.test/b@v1.0.0" {
			return bad, nil
		}
		return honest.get(ctx, p)
	}}
	v, _ := NewVerifier(ctx, vkey, c.fetch)
	if err := v.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	before := c.snapshot()
	if err := v.CheckLookup(ctx, "b.test/b", "v1.0.0"); err != nil {
		t.Fatalf("record in the verified tree with a newer tree: %v", err)
	}
	for p, k := range c.snapshot() {
		if strings.HasPrefix(p, "tile/") && k != before[p] {
			t.Errorf("read %s for a record already in the verified tree", p)
		}
	}
	// Records 3..5 are published: a lookup of the newest moves the tree to
	// 6, past the kept tree 4, which is then found not to be a prefix.
	for _, m := range []string{"d.test/d", "e.test/e"} {
		honest.get(ctx, "lookup/"+m+"@v1.0.0")
	}
	if err := v.CheckLookup(ctx, "f.test/f", "v1.0.0"); err == nil || !strings.Contains(err.Error(), "SECURITY ERROR") {
		t.Fatalf("moving past a kept tree of another history: %v, want a SECURITY ERROR", err)
	}
	if err := v.CheckLookup(ctx, "a.test/a", "v1.0.0"); err == nil || !strings.Contains(err.Error(), "SECURITY ERROR") {
		t.Fatalf("after a fork: %v, want every lookup refused", err)
	}
}

// TestVerifierKeepsHonestNewerTree: a newer honest tree kept for later is
// checked at the next move and lookups go on.
func TestVerifierKeepsHonestNewerTree(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "sum.berth.test")
	db := newMemDB(t, skey)
	ctx := context.Background()
	for _, m := range []string{"a.test/a", "b.test/b"} {
		db.get(ctx, "lookup/"+m+"@v1.0.0")
	}
	latest2, _ := db.get(ctx, "latest")
	db.get(ctx, "lookup/c.test/c@v1.0.0")
	aAt3, _ := db.get(ctx, "lookup/a.test/a@v1.0.0") // record 0, tree 3
	served := map[string][]byte{"latest": latest2, "lookup/a.test/a@v1.0.0": aAt3}
	var mu sync.Mutex
	c := &counted{reads: map[string]int{}, next: func(ctx context.Context, p string) ([]byte, error) {
		mu.Lock()
		b, ok := served[p]
		mu.Unlock()
		if ok {
			return b, nil
		}
		return db.get(ctx, p)
	}}
	v, _ := NewVerifier(ctx, vkey, c.fetch)
	if err := v.Warm(ctx); err != nil || v.Tree().N != 2 {
		t.Fatalf("Warm: tree %d, %v; want 2", v.Tree().N, err)
	}
	if err := v.CheckLookup(ctx, "a.test/a", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	delete(served, "latest")
	mu.Unlock()
	if err := v.CheckLookup(ctx, "d.test/d", "v1.0.0"); err != nil { // record 3: moves to the latest tree, 4
		t.Fatal(err)
	}
	if n := v.Tree().N; n != 4 {
		t.Fatalf("tree %d, want 4", n)
	}
	v.mu.Lock()
	kept := len(v.newer)
	v.mu.Unlock()
	if kept != 0 {
		t.Fatalf("%d newer trees still unchecked after moving past them", kept)
	}
	if err := v.CheckLookup(ctx, "b.test/b", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
}
