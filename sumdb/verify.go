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
// verified whenever that tree contains it, which is almost always: the tree a
// lookup answer carries is used only to move forward when a record is newer
// than the verified tree, after proving the old tree is a prefix of the new
// one. Each new tree size has its own right-edge ("partial") tiles, which an
// upstream proxy must fetch from the database's origin, often in seconds;
// following every newer tree head the way a short-lived go command does
// would put that wait on clients' paths again and again.
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
	records  map[string][]byte // verified record texts by lookup file
	sec      string            // a detected fork: every later lookup fails
}

// maxRecords bounds the memo of verified records; it is cleared when full.
const maxRecords = 10000

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

// lookup returns the recorded hash for path@vers (vers may end in /go.mod).
func (v *Verifier) lookup(ctx context.Context, path, vers string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	epath, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	evers, err := module.EscapeVersion(strings.TrimSuffix(vers, "/go.mod"))
	if err != nil {
		return "", err
	}
	file := "lookup/" + epath + "@" + evers
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

// fetchRecord reads a lookup answer and proves its record is in a verified tree.
func (v *Verifier) fetchRecord(file string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	data, err := v.fetch(ctx, file)
	if err != nil {
		return nil, err
	}
	id, text, treeMsg, err := tlog.ParseRecord(data)
	if err != nil {
		return nil, fmt.Errorf("malformed lookup answer: %w", err)
	}
	tree := v.Tree()
	if id >= tree.N {
		if err := v.moveFor(ctx, id, treeMsg); err != nil {
			return nil, err
		}
		if tree = v.Tree(); id >= tree.N {
			return nil, fmt.Errorf("record %d is not in the signed tree of size %d that came with it", id, tree.N)
		}
	}
	hashes, err := tlog.TileHashReader(tree, v.tiles).ReadHashes([]int64{tlog.StoredHashIndex(0, id)})
	if err != nil {
		return nil, fmt.Errorf("proving record %d in tree %d: %w", id, tree.N, err)
	}
	if hashes[0] != tlog.RecordHash(text) {
		return nil, fmt.Errorf("cannot authenticate record %d data in tree %d: the answer was altered", id, tree.N)
	}
	v.mu.Lock()
	if len(v.records) >= maxRecords {
		clear(v.records)
	}
	v.records[file] = text
	v.mu.Unlock()
	return text, nil
}

// moveFor moves the verified tree forward so that it holds record id. The
// first tree is the one that came with the record. A later move goes to the
// database's latest tree, which holds every record published so far, so that
// one move serves the lookups that follow; or, when latest cannot be read, to
// the tree that came with the record.
func (v *Verifier) moveFor(ctx context.Context, id int64, treeMsg []byte) error {
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
		if err := v.moveToLocked(latest); err == nil && id < v.Tree().N {
			return nil
		}
	}
	return v.moveToLocked(treeMsg)
}

// Warm moves the verified tree to the database's latest, so the first lookups
// do not wait for the tiles at its edge. Proxies call it when they start.
func (v *Verifier) Warm(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	latest, err := v.fetch(ctx, "latest")
	if err != nil {
		return err
	}
	v.advance.Lock()
	err = v.moveToLocked(latest)
	v.advance.Unlock()
	if err != nil {
		return err
	}
	// Read the tiles at the new tree's edge now: every proof passes them.
	tree := v.Tree()
	if tree.N == 0 {
		return nil
	}
	_, err = tlog.TileHashReader(tree, v.tiles).ReadHashes([]int64{tlog.StoredHashIndex(0, tree.N-1)})
	return err
}

// moveToLocked makes the signed tree msg the verified tree if it is newer,
// after proving the verified tree is a prefix of it. A tree that is not is a
// fork: proof of the database misbehaving; every later lookup then fails.
// The caller holds v.advance.
func (v *Verifier) moveToLocked(msg []byte) error {
	n, err := note.Open(msg, note.VerifierList(v.nv))
	if err != nil {
		return fmt.Errorf("signed tree head: %w", err)
	}
	next, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return fmt.Errorf("signed tree head: %w", err)
	}
	cur := v.Tree()
	if next.N <= cur.N {
		return nil // another lookup moved further meanwhile
	}
	if cur.N > 0 {
		h, err := tlog.TreeHash(cur.N, tlog.TileHashReader(next, v.tiles))
		if err != nil {
			return fmt.Errorf("checking tree %d against tree %d: %w", cur.N, next.N, err)
		}
		if h != cur.Hash {
			v.mu.Lock()
			old := v.treeNote
			v.sec = fmt.Sprintf("checksum database %s misbehaved: its tree %d does not contain its earlier tree %d (hash %v, the new tree says %v); old tree head:\n%s\nnew tree head:\n%s",
				v.name, next.N, cur.N, cur.Hash, h, old, msg)
			sec := v.sec
			v.mu.Unlock()
			return fmt.Errorf("SECURITY ERROR: %s", sec)
		}
	}
	v.mu.Lock()
	v.tree, v.treeNote = next, append([]byte(nil), msg...)
	v.mu.Unlock()
	return nil
}

// Prefetch looks up path@version now, so that a later VerifyMod or VerifyZip
// of it needs no round trip: callers start it when a download starts.
// Errors are ignored here; the verification reports them.
func (v *Verifier) Prefetch(ctx context.Context, path, version string) {
	v.lookup(ctx, path, version)
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

	mu    sync.Mutex
	saved map[tlog.Tile][]byte
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
	return &tileReader{ctx: ctx, fetch: fetch, saved: map[tlog.Tile][]byte{}}
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
	r.mu.Lock()
	b, ok := r.saved[t]
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
		return b, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
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
	}
}
