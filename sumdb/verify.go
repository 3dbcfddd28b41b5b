// Package sumdb verifies module files against a Go checksum database before
// berth stores them, and before an imported bundle is accepted.
//
// A Verifier reads the database through a function the caller provides: the
// proxy passes one that answers from its store and its upstream's
// /sumdb/<name>/ endpoints; an air-gap import passes one that reads the
// checksum data carried in the bundle. Signed tree heads are checked with the
// database's key (golang.org/x/mod/sumdb/note) and records and tree
// consistency with golang.org/x/mod/sumdb/tlog, as the go command checks them.
package sumdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/singleflight"
)

// Fetch reads path from the checksum database, relative to /sumdb/<name>/
// (for example "lookup/example.com/m@v1.0.0" or "tile/8/0/000"). It returns an
// error for anything but a 200 answer.
type Fetch func(ctx context.Context, path string) ([]byte, error)

// Verifier checks module files against one checksum database.
//
// A record is proven against the newest signed tree the Verifier has already
// verified whenever that tree contains it, which is almost always. Each tree
// size has its own right-edge ("partial") tiles, which an upstream proxy must
// fetch from the database's origin, often in seconds; the tiles on a record's
// path below the edge are full tiles, the same in every tree that holds the
// record. So proving every record against one tree reads one set of edge
// tiles, where proving each against the tree its lookup answer came with
// would read the edge tiles of every tree a caching upstream happens to hold
// answers of (ten different trees for the 168 lookups of bench/proxy/graph).
//
// The tree a lookup answer carries is still checked, as the go command checks
// it: its signature always; an older tree (the usual case: an upstream keeps
// answers with the tree of their first asking) is proven to be a prefix of
// the verified tree, which reads only tiles at the old tree's edge that are
// full in the verified one, once per tree; a newer tree is followed when the
// record is not in the verified tree yet, after proving the verified tree is
// a prefix of it, and otherwise is proven consistent when the verified tree
// next moves past it, off clients' paths. A tree that is not on the verified
// timeline is a fork: every later lookup fails.
type Verifier struct {
	name  string
	nv    note.Verifier
	fetch Fetch
	ctx   context.Context
	tiles *tileReader

	lookups singleflight.Group // one fetch and proof per lookup file at a time
	advance sync.Mutex         // one move of the verified tree at a time

	mu       sync.Mutex
	tree     tlog.Tree // the newest verified tree; N == 0: none yet
	treeNote []byte
	records  map[string][]byte    // verified record texts by lookup file
	answers  map[string][]byte    // lookup answers read ahead (Preload), not yet proven
	onLine   map[tlog.Tree]bool   // signed trees proven to be prefixes of the verified tree
	newer    map[tlog.Tree][]byte // signed trees beyond the verified one, not yet checked, with their notes
	sec      string               // a detected fork: every later lookup fails
	warming  chan struct{}        // closed when the last Warm has moved the tree (or failed)
}

// maxRecords bounds the memo of verified records and of answers read ahead;
// each is cleared when full.
const maxRecords = 10000

// maxTrees bounds the memo of checked trees (cleared when full) and the trees
// waiting to be checked (beyond it, a newer tree is checked at once).
const maxTrees = 1000

// MismatchError is a file whose hash is not the one the checksum database
// records for it: a corrupt or poisoned upstream answer.
type MismatchError struct {
	Module, Version string
	File            string // "zip" or "go.mod"
	Got, Want       string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("checksum mismatch for %s@%s %s: upstream file hashes to %s, checksum database says %s; the file was refused and not stored",
		e.Module, e.Version, e.File, e.Got, e.Want)
}

// NewVerifier returns a Verifier for the database with the given verifier key
// ("name+hash+key") that reads remote data with fetch. Each read gets a context
// derived from ctx with a 30-second limit; ctx bounds the Verifier's life.
func NewVerifier(ctx context.Context, key string, fetch Fetch) (*Verifier, error) {
	nv, err := note.NewVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("checksum database key %q: %w", key, err)
	}
	return &Verifier{
		name: nv.Name(), nv: nv, fetch: fetch, ctx: ctx,
		tiles:   newTileReader(ctx, fetch),
		records: map[string][]byte{},
		answers: map[string][]byte{},
		onLine:  map[tlog.Tree]bool{},
		newer:   map[tlog.Tree][]byte{},
	}, nil
}

// Name returns the database name.
func (v *Verifier) Name() string { return v.name }

// Tree returns the newest tree the Verifier has verified (N == 0: none yet).
func (v *Verifier) Tree() tlog.Tree {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tree
}

// verified returns the verified tree and its signed note.
func (v *Verifier) verified() (tlog.Tree, []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tree, v.treeNote
}

// lookupFile returns the path of path@vers's lookup (vers may end in /go.mod).
func lookupFile(path, vers string) (string, error) {
	epath, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	evers, err := module.EscapeVersion(strings.TrimSuffix(vers, "/go.mod"))
	if err != nil {
		return "", err
	}
	return "lookup/" + epath + "@" + evers, nil
}

// lookup returns the recorded hash for path@vers (vers may end in /go.mod).
func (v *Verifier) lookup(ctx context.Context, path, vers string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	file, err := lookupFile(path, vers)
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	text, ok := v.records[file]
	sec := v.sec
	v.mu.Unlock()
	if sec != "" {
		return "", fmt.Errorf("checksum database %s: SECURITY ERROR: %s", v.name, sec)
	}
	if !ok {
		// The shared work runs under the Verifier's context, not one
		// caller's, so a client going away never fails the others.
		ch := v.lookups.DoChan(file, func() (any, error) { return v.fetchRecord(file) })
		select {
		case r := <-ch:
			if r.Err != nil {
				return "", fmt.Errorf("checksum database %s: looking up %s@%s: %w", v.name, path, vers, r.Err)
			}
			text = r.Val.([]byte)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	prefix := path + " " + vers + " "
	for l := range strings.SplitSeq(string(text), "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimPrefix(l, prefix), nil
		}
	}
	return "", fmt.Errorf("checksum database %s has no record for %s@%s", v.name, path, vers)
}

// fetchRecord reads a lookup answer (or takes the one read ahead), checks the
// signed tree it carries against the verified timeline, and proves its
// record is in the verified tree.
func (v *Verifier) fetchRecord(file string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	v.mu.Lock()
	data, ok := v.answers[file]
	delete(v.answers, file)
	v.mu.Unlock()
	if !ok {
		// Joins a Preload of the same answer still reading it.
		r, err, _ := v.lookups.Do("answer "+file, func() (any, error) { return v.readAnswer(file) })
		if err != nil {
			return nil, err
		}
		data = r.([]byte)
	}
	id, text, treeMsg, err := tlog.ParseRecord(data)
	if err != nil {
		return nil, fmt.Errorf("malformed lookup answer: %w", err)
	}
	signed, err := v.openTree(treeMsg)
	if err != nil {
		return nil, fmt.Errorf("lookup answer: %w", err)
	}
	if id >= signed.N {
		return nil, fmt.Errorf("record %d is not in the signed tree of size %d that came with it", id, signed.N)
	}
	tree, treeNote := v.verified()
	if id >= tree.N {
		if err := v.moveFor(ctx, id, treeMsg); err != nil {
			return nil, err
		}
		if tree, treeNote = v.verified(); id >= tree.N {
			return nil, fmt.Errorf("record %d is not in the signed tree of size %d that came with it", id, tree.N)
		}
	}
	if signed.N > tree.N {
		v.checkLater(signed, treeMsg)
	}
	// The record's proof and the check of an older tree read different
	// tiles: read them at once.
	var hashes []tlog.Hash
	var proofErr, treeErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		hashes, proofErr = tlog.TileHashReader(tree, v.tiles).ReadHashes([]int64{tlog.StoredHashIndex(0, id)})
	})
	if signed.N <= tree.N {
		wg.Go(func() { treeErr = v.checkOlder(signed, treeMsg, tree, treeNote) })
	}
	wg.Wait()
	if treeErr != nil || proofErr != nil {
		v.tiles.dropUnsaved()
	}
	if treeErr != nil {
		return nil, treeErr
	}
	if proofErr != nil {
		return nil, fmt.Errorf("proving record %d in tree %d: %w", id, tree.N, proofErr)
	}
	if hashes[0] != tlog.RecordHash(text) {
		return nil, fmt.Errorf("cannot authenticate record %d data in tree %d: the answer was altered", id, tree.N)
	}
	v.mu.Lock()
	if len(v.records) >= maxRecords {
		clear(v.records)
	}
	v.records[file] = text
	delete(v.answers, file) // a Preload that shared this read
	v.mu.Unlock()
	return text, nil
}

// openTree checks a signed tree head's signature and returns its tree.
func (v *Verifier) openTree(msg []byte) (tlog.Tree, error) {
	n, err := note.Open(msg, note.VerifierList(v.nv))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("signed tree head: %w", err)
	}
	t, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("signed tree head: %w", err)
	}
	return t, nil
}

// checkOlder proves that the signed tree old (note msg) is a prefix of tree
// (note treeMsg), a verified tree at least as large, once per old tree: the
// hash tree computes for old's size must be old's. A mismatch is a fork.
func (v *Verifier) checkOlder(old tlog.Tree, msg []byte, tree tlog.Tree, treeMsg []byte) error {
	if old == tree {
		return nil
	}
	v.mu.Lock()
	done := v.onLine[old]
	v.mu.Unlock()
	if done {
		return nil
	}
	h, err := tlog.TreeHash(old.N, tlog.TileHashReader(tree, v.tiles))
	if err != nil {
		v.tiles.dropUnsaved()
		return fmt.Errorf("checking tree %d against tree %d: %w", old.N, tree.N, err)
	}
	if h != old.Hash {
		return v.fork(old, msg, tree, treeMsg, h)
	}
	v.mu.Lock()
	if len(v.onLine) >= maxTrees {
		clear(v.onLine)
	}
	v.onLine[old] = true
	v.mu.Unlock()
	return nil
}

// checkLater keeps a signed tree newer than the verified one, to be proven
// consistent with the verified tree when that moves past it: following it now
// would read its edge tiles on a client's path. When too many wait, it is
// checked now.
func (v *Verifier) checkLater(t tlog.Tree, msg []byte) {
	v.mu.Lock()
	_, seen := v.newer[t]
	full := len(v.newer) >= maxTrees
	if !seen && !full {
		v.newer[t] = append([]byte(nil), msg...)
	}
	v.mu.Unlock()
	if full && !seen {
		v.advance.Lock()
		v.moveToLocked(msg) // a fork is recorded in v.sec; other errors wait for the next move
		v.advance.Unlock()
	}
}

// fork records that the database signed two trees, small (note smallMsg)
// and large (note largeMsg), where large's hash for small's size is h, not
// small's: every later lookup fails.
func (v *Verifier) fork(small tlog.Tree, smallMsg []byte, large tlog.Tree, largeMsg []byte, h tlog.Hash) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sec == "" {
		v.sec = fmt.Sprintf("checksum database %s misbehaved: its tree %d does not contain its tree %d (hash %v, the larger tree says %v); smaller tree head:\n%s\nlarger tree head:\n%s",
			v.name, large.N, small.N, small.Hash, h, smallMsg, largeMsg)
	}
	return fmt.Errorf("SECURITY ERROR: %s", v.sec)
}

// forked reports whether a fork was detected.
func (v *Verifier) forked() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sec != ""
}

// moveFor moves the verified tree forward so that it holds record id. The
// first tree is the one that came with the record. A later move goes to the
// database's latest tree, which holds every record published so far, so that
// one move serves the lookups that follow; or, when latest cannot be read, to
// the tree that came with the record.
func (v *Verifier) moveFor(ctx context.Context, id int64, treeMsg []byte) error {
	v.mu.Lock()
	warming := v.warming
	first := v.tree.N == 0
	v.mu.Unlock()
	if first && warming != nil {
		// A Warm is reading the latest tree: wait for it rather than start
		// from this record's tree, whose edge tiles would be read for
		// nothing.
		select {
		case <-warming:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	v.advance.Lock()
	defer v.advance.Unlock()
	cur := v.Tree()
	if id < cur.N {
		return nil // another lookup moved it meanwhile
	}
	if cur.N == 0 {
		return v.moveToLocked(treeMsg)
	}
	if latest, err := v.fetch(ctx, "latest"); err == nil {
		err := v.moveToLocked(latest)
		if err == nil && id < v.Tree().N {
			return nil
		}
		if v.forked() {
			return err
		}
	}
	return v.moveToLocked(treeMsg)
}

// Warm moves the verified tree to the database's latest, so the first lookups
// do not wait for the tiles at its edge. Proxies call it when they start.
func (v *Verifier) Warm(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	moved := make(chan struct{})
	v.mu.Lock()
	v.warming = moved
	v.mu.Unlock()
	latest, err := v.fetch(ctx, "latest")
	if err != nil {
		close(moved)
		return err
	}
	v.advance.Lock()
	err = v.moveToLocked(latest)
	v.advance.Unlock()
	close(moved)
	if err != nil {
		return err
	}
	// Read the tiles at the new tree's edge now: every proof passes them.
	tree := v.Tree()
	if tree.N == 0 {
		return nil
	}
	_, err = tlog.TileHashReader(tree, v.tiles).ReadHashes([]int64{tlog.StoredHashIndex(0, tree.N-1)})
	if err != nil {
		v.tiles.dropUnsaved()
	}
	return err
}

// moveToLocked makes the signed tree msg the verified tree if it is newer,
// after proving the verified tree is a prefix of it. A tree that is not is a
// fork: proof of the database misbehaving; every later lookup then fails.
// Then the newer trees kept by checkLater that the new tree covers are proven
// to be prefixes of it. The caller holds v.advance.
func (v *Verifier) moveToLocked(msg []byte) error {
	next, err := v.openTree(msg)
	if err != nil {
		return err
	}
	cur, curNote := v.verified()
	if next.N <= cur.N {
		return nil // another lookup moved further meanwhile
	}
	if cur.N > 0 {
		h, err := tlog.TreeHash(cur.N, tlog.TileHashReader(next, v.tiles))
		if err != nil {
			v.tiles.dropUnsaved()
			return fmt.Errorf("checking tree %d against tree %d: %w", cur.N, next.N, err)
		}
		if h != cur.Hash {
			return v.fork(cur, curNote, next, msg, h)
		}
	}
	v.mu.Lock()
	v.tree, v.treeNote = next, append([]byte(nil), msg...)
	var due []tlog.Tree
	for t := range v.newer {
		if t.N <= next.N {
			due = append(due, t)
		}
	}
	v.mu.Unlock()
	for _, t := range due {
		v.mu.Lock()
		tmsg := v.newer[t]
		v.mu.Unlock()
		if err := v.checkOlder(t, tmsg, next, msg); err != nil {
			if v.forked() {
				return err
			}
			continue // tiles unreadable now: kept for the next move
		}
		v.mu.Lock()
		delete(v.newer, t)
		v.mu.Unlock()
	}
	return nil
}

// Prefetch looks up path@version now, so that a later VerifyMod or VerifyZip
// of it needs no round trip: callers start it when a download starts.
// Errors are ignored here; the verification reports them.
func (v *Verifier) Prefetch(ctx context.Context, path, version string) {
	v.lookup(ctx, path, version)
}

// Preload reads path@version's lookup answer now without proving it, so that
// a later Prefetch or verification of it needs no round trip for the answer,
// only for the tiles of its proof, which it reads while the file downloads.
// It is for guesses (the requirements of a go.mod, read before the go command
// asks for them): a guess that is never downloaded costs one read, not the
// tiles of a proof as well. Errors are ignored; the verification reads again.
func (v *Verifier) Preload(ctx context.Context, path, version string) {
	file, err := lookupFile(path, version)
	if err != nil {
		return
	}
	v.mu.Lock()
	_, done := v.records[file]
	_, have := v.answers[file]
	v.mu.Unlock()
	if done || have {
		return
	}
	ch := v.lookups.DoChan("answer "+file, func() (any, error) { return v.readAnswer(file) })
	var r singleflight.Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return
	}
	if r.Err != nil {
		return
	}
	v.mu.Lock()
	if _, done := v.records[file]; !done {
		if len(v.answers) >= maxRecords {
			clear(v.answers)
		}
		v.answers[file] = r.Val.([]byte)
	}
	v.mu.Unlock()
}

// readAnswer reads a lookup answer under the Verifier's context.
func (v *Verifier) readAnswer(file string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	return v.fetch(ctx, file)
}

// CheckLookup verifies the database's record of path@version on its own: the
// lookup's record is included in a signed tree the Verifier verified. It
// checks no file against the record.
func (v *Verifier) CheckLookup(ctx context.Context, path, version string) error {
	_, err := v.lookup(ctx, path, version)
	return err
}

// VerifyMod checks a go.mod file's content.
func (v *Verifier) VerifyMod(ctx context.Context, path, version string, gomod []byte) error {
	got, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		return err
	}
	want, err := v.lookup(ctx, path, version+"/go.mod")
	if err != nil {
		return err
	}
	if got != want {
		return &MismatchError{Module: path, Version: version, File: "go.mod", Got: got, Want: want}
	}
	return nil
}

// VerifyZip checks a module zip file on disk.
func (v *Verifier) VerifyZip(ctx context.Context, path, version, zipFile string) error {
	got, err := HashZip(zipFile)
	if err != nil {
		return fmt.Errorf("hashing %s@%s zip: %w", path, version, err)
	}
	return v.VerifyZipHash(ctx, path, version, got)
}

// VerifyZipHash checks a module zip's h1: hash, computed by the caller (with
// HashZipStream as the zip arrived, or HashZip).
func (v *Verifier) VerifyZipHash(ctx context.Context, path, version, got string) error {
	want, err := v.lookup(ctx, path, version)
	if err != nil {
		return err
	}
	if got != want {
		return &MismatchError{Module: path, Version: version, File: "zip", Got: got, Want: want}
	}
	return nil
}

// tileReader is a tlog.TileReader over a Fetch: tiles are read in parallel,
// one fetch per tile at a time, and the tiles tlog has authenticated are kept
// in memory (bounded), so a partial tile is cut from a verified full one
// without a round trip. A partial tile the server no longer has (the tile
// has filled since) is cut from the full tile, as the go command does.
type tileReader struct {
	ctx   context.Context
	fetch Fetch
	group singleflight.Group

	mu      sync.Mutex
	saved   map[tlog.Tile][]byte // authenticated by tlog
	fetched map[tlog.Tile][]byte // read, not yet authenticated (SaveTiles moves them)
}

// maxTiles bounds the tile memory (8 KiB each at most); it is cleared when full.
const maxTiles = 2048

// NewTileReader returns a tlog.TileReader that reads tiles with fetch, each
// with a 30-second limit derived from ctx. Use it with tlog.TileHashReader,
// which authenticates every tile it reads against a signed tree.
func NewTileReader(ctx context.Context, fetch Fetch) tlog.TileReader {
	return newTileReader(ctx, fetch)
}

func newTileReader(ctx context.Context, fetch Fetch) *tileReader {
	return &tileReader{ctx: ctx, fetch: fetch, saved: map[tlog.Tile][]byte{}, fetched: map[tlog.Tile][]byte{}}
}

func (r *tileReader) Height() int { return 8 }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	errs := make([]error, len(tiles))
	var wg sync.WaitGroup
	for i, t := range tiles {
		wg.Go(func() { data[i], errs[i] = r.readTile(t) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return data, nil
}

func (r *tileReader) readTile(t tlog.Tile) ([]byte, error) {
	full := t
	full.W = 1 << t.H
	// A tile read for one proof and not yet authenticated is handed to
	// another proof that asks meanwhile rather than read again: tlog
	// authenticates every tile it is given, each time.
	r.mu.Lock()
	b, ok := r.saved[t]
	if !ok {
		b, ok = r.fetched[t]
	}
	if !ok {
		if fb, fok := r.saved[full]; fok {
			b, ok = fb[:t.W*tlog.HashSize], true
		}
	}
	r.mu.Unlock()
	if ok {
		return b, nil
	}
	v, err, _ := r.group.Do(t.Path(), func() (any, error) {
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		defer cancel()
		b, err := r.fetch(ctx, t.Path())
		if err != nil && t != full {
			if fb, ferr := r.fetch(ctx, full.Path()); ferr == nil && len(fb) >= t.W*tlog.HashSize {
				return fb[:t.W*tlog.HashSize], nil
			}
		}
		if err == nil {
			r.mu.Lock()
			if len(r.fetched) >= maxTiles {
				clear(r.fetched)
			}
			r.fetched[t] = b
			r.mu.Unlock()
		}
		return b, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// dropUnsaved forgets the tiles read and not authenticated: after a failed
// proof one of them may be the reason, and is read again next time.
func (r *tileReader) dropUnsaved() {
	r.mu.Lock()
	clear(r.fetched)
	r.mu.Unlock()
}

// SaveTiles keeps the tiles tlog has authenticated.
func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.saved)+len(tiles) > maxTiles {
		clear(r.saved)
	}
	for i, t := range tiles {
		r.saved[t] = data[i]
		delete(r.fetched, t)
	}
}
