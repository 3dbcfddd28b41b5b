package sumdb

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xsumdb "golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"

	"github.com/berth-dev/berth/internal/goenv"
	"github.com/berth-dev/berth/internal/testmod"
)

// TestVerifier checks real module files against a real test checksum database
// served over HTTP, and a tampered file against it.
func TestVerifier(t *testing.T) {
	up := testmod.NewUpstream(t, []testmod.Module{{Path: "example.test/m", Version: "v1.0.0", Files: map[string]string{"m.go": "package m\n"}}})
	db, err := goenv.ParseSumDB(up.GOSUMDB())
	if err != nil || db.Name != up.SumDBName {
		t.Fatalf("ParseSumDB: %+v %v", db, err)
	}
	name, key := db.Name, db.Key
	fetch := func(ctx context.Context, p string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", up.URL()+"/sumdb/"+name+"/"+p, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, errors.New(resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	v, err := NewVerifier(context.Background(), key, fetch)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mod, _ := os.ReadFile(filepath.Join(up.Dir, "example.test/m/@v/v1.0.0.mod"))
	zip := filepath.Join(up.Dir, "example.test/m/@v/v1.0.0.zip")
	if err := v.CheckLookup(ctx, "example.test/m", "v1.0.0"); err != nil {
		t.Fatalf("CheckLookup: %v", err)
	}
	if err := v.VerifyMod(ctx, "example.test/m", "v1.0.0", mod); err != nil {
		t.Fatalf("VerifyMod: %v", err)
	}
	if err := v.VerifyZip(ctx, "example.test/m", "v1.0.0", zip); err != nil {
		t.Fatalf("VerifyZip: %v", err)
	}
	var me *MismatchError
	if err := v.VerifyMod(ctx, "example.test/m", "v1.0.0", append(mod, '\n')); !errors.As(err, &me) {
		t.Fatalf("tampered go.mod: %v, want a MismatchError", err)
	}
	if err := v.VerifyMod(ctx, "example.test/none", "v1.0.0", mod); err == nil || errors.As(err, &me) {
		t.Fatalf("unknown module: %v, want a lookup error", err)
	}
}

// TestVerifierRecoversFromTransientFailure: a lookup that failed because the
// database could not be read is asked again next time, not remembered.
func TestVerifierRecoversFromTransientFailure(t *testing.T) {
	up := testmod.NewUpstream(t, []testmod.Module{{Path: "example.test/m", Version: "v1.0.0", Files: map[string]string{"m.go": "package m\n"}}})
	key := up.GOSUMDB()
	down := true
	fetch := func(ctx context.Context, p string) ([]byte, error) {
		if down {
			return nil, errors.New("connection refused")
		}
		resp, err := http.Get(up.URL() + "/sumdb/" + up.SumDBName + "/" + p)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	v, _ := NewVerifier(context.Background(), key, fetch)
	mod, _ := os.ReadFile(filepath.Join(up.Dir, "example.test/m/@v/v1.0.0.mod"))
	if err := v.VerifyMod(context.Background(), "example.test/m", "v1.0.0", mod); err == nil {
		t.Fatal("verification passed with the database down")
	}
	down = false
	if err := v.VerifyMod(context.Background(), "example.test/m", "v1.0.0", mod); err != nil {
		t.Fatalf("verification after the database came back: %v", err)
	}
}

// memDB is an in-process test checksum database whose records are made up
// from the module path, reached through a Fetch that counts reads.
type memDB struct {
	h     http.Handler
	reads map[string]int
}

func newMemDB(t *testing.T, skey string) *memDB {
	gosum := func(p, v string) ([]byte, error) {
		return []byte(p + " " + v + " h1:" + p + "=\n" + p + " " + v + "/go.mod h1:" + p + "-mod=\n"), nil
	}
	return &memDB{h: xsumdb.NewServer(xsumdb.NewTestServer(skey, gosum)), reads: map[string]int{}}
}

func (db *memDB) get(_ context.Context, p string) ([]byte, error) {
	db.reads[p]++
	w := httptest.NewRecorder()
	db.h.ServeHTTP(w, httptest.NewRequest("GET", "/"+p, nil))
	if w.Code != 200 {
		return nil, fmt.Errorf("%s: %d %s", p, w.Code, w.Body.String())
	}
	return w.Body.Bytes(), nil
}

// TestVerifierProvesAgainstVerifiedTree: an answer carrying an older (or
// newer) signed tree is proven against the tree already verified when that
// tree holds its record, so no edge tiles of other trees are read; a record
// newer than the verified tree moves it forward.
func TestVerifierProvesAgainstVerifiedTree(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "sum.berth.test")
	if err != nil {
		t.Fatal(err)
	}
	db := newMemDB(t, skey)
	ctx := context.Background()
	// Answers as a caching upstream keeps them: each with the tree that was
	// current when it was first asked. a.test is asked again at the end: its
	// old record now comes with the newest tree, 3.
	answers := map[string][]byte{}
	for _, m := range []string{"a.test/a", "b.test/b", "latest", "c.test/c", "a.test/a"} {
		p := "lookup/" + m + "@v1.0.0"
		if m == "latest" {
			p = m // a latest answer cached at tree 2
		}
		b, err := db.get(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		answers[p] = b
	}
	clear(db.reads)
	fetch := func(ctx context.Context, p string) ([]byte, error) {
		if b, ok := answers[p]; ok {
			db.reads[p]++
			return b, nil
		}
		return db.get(ctx, p)
	}
	v, err := NewVerifier(ctx, vkey, fetch)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.CheckLookup(ctx, "b.test/b", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	if n := v.Tree().N; n != 2 {
		t.Fatalf("verified tree %d, want 2", n)
	}
	// Record 0 comes with tree 3 and is proven in tree 2, which holds it:
	// tree 3 and its edge tiles are not needed.
	if err := v.CheckLookup(ctx, "a.test/a", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	if n := v.Tree().N; n != 2 {
		t.Fatalf("verified tree %d after an old record with a newer tree, want 2", n)
	}
	for p := range db.reads {
		if strings.HasPrefix(p, "tile/") && !strings.HasSuffix(p, ".p/2") {
			t.Errorf("read %s: an edge tile of a tree other than the verified one", p)
		}
	}
	// A version published later moves the tree forward.
	if err := v.CheckLookup(ctx, "d.test/d", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	if n := v.Tree().N; n != 4 {
		t.Fatalf("verified tree %d after a newer record, want 4", n)
	}
	if h, err := v.lookup(ctx, "d.test/d", "v1.0.0/go.mod"); err != nil || h != "h1:d.test/d-mod=" {
		t.Fatalf("go.mod hash %q %v", h, err)
	}
}

// TestVerifierDetectsFork: a database whose newer tree does not contain the
// tree it signed before is caught, and every later lookup fails.
func TestVerifierDetectsFork(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "sum.berth.test")
	if err != nil {
		t.Fatal(err)
	}
	honest, forked := newMemDB(t, skey), newMemDB(t, skey)
	ctx := context.Background()
	// The same key signs two histories: a.test first in one, b.test first in
	// the other.
	forked.get(ctx, "lookup/b.test/b@v1.0.0")
	db := honest
	v, _ := NewVerifier(ctx, vkey, func(ctx context.Context, p string) ([]byte, error) { return db.get(ctx, p) })
	if err := v.CheckLookup(ctx, "a.test/a", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	db = forked
	err = v.CheckLookup(ctx, "c.test/c", "v1.0.0")
	if err == nil || !strings.Contains(err.Error(), "SECURITY ERROR") {
		t.Fatalf("forked history: %v, want a SECURITY ERROR", err)
	}
	db = honest
	if err := v.CheckLookup(ctx, "a.test/a", "v1.0.0"); err == nil || !strings.Contains(err.Error(), "SECURITY ERROR") {
		t.Fatalf("after a fork: %v, want every lookup refused", err)
	}
}

// TestVerifierWarm: Warm verifies the latest tree and reads its edge tiles,
// so lookups that follow read only the tiles of their own records.
func TestVerifierWarm(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "sum.berth.test")
	db := newMemDB(t, skey)
	ctx := context.Background()
	for _, m := range []string{"a.test/a", "b.test/b", "c.test/c"} {
		db.get(ctx, "lookup/"+m+"@v1.0.0")
	}
	v, _ := NewVerifier(ctx, vkey, db.get)
	if err := v.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	if n := v.Tree().N; n != 3 {
		t.Fatalf("tree %d after Warm, want 3", n)
	}
	clear(db.reads)
	if err := v.CheckLookup(ctx, "b.test/b", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	for p := range db.reads {
		if p != "lookup/b.test/b@v1.0.0" {
			t.Errorf("after Warm, a lookup read %s", p)
		}
	}
}
