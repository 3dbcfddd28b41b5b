package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
)

// supportedKey marks in the store that a database is proxied, so that the
// store answers "supported" when every upstream is down, and a store used
// as a GOPROXY=file:// tree proxies the database too.
func supportedKey(name string) string { return "sumdb/" + name + "/supported" }

// sumdb answers /sumdb/<name>/...: "supported" says whether the source (or
// the store) has the database; lookups and tiles are immutable and stored
// (a partial tile is cut from a wider stored copy when there is one);
// "latest" is cached briefly in memory.
func (c *Cache) sumdb(ctx context.Context, r proto.Request) (*Content, error) {
	if err := c.privateLookup(r); err != nil {
		return nil, err
	}
	switch {
	case r.SumDBPath == "supported":
		return c.supportedAnswer(ctx, r)
	case r.Key == "":
		return c.query(ctx, r)
	}
	ct, err := c.openStored(ctx, r)
	switch {
	case ct != nil:
		return ct, nil
	case err != nil && !sumDBStoreDown(r, err):
		return nil, err
	case err == nil:
		if body := c.sliceStoredTile(ctx, r); body != nil {
			// A partial hash tile is the first W hashes of any wider copy of it.
			return &Content{body: body, Size: int64(len(body)), Hit: true}, nil
		}
	}
	return c.immutableAfter(ctx, r, true)
}

// supportedAnswer is an empty body when the database is proxied.
func (c *Cache) supportedAnswer(ctx context.Context, r proto.Request) (*Content, error) {
	key := supportedKey(r.SumDB)
	yes := &Content{body: []byte{}, Size: 0, Mutable: true}
	var err error
	if !c.cfg.Offline && c.src != nil {
		// The source remembers which upstream proxies the database.
		var b io.ReadCloser
		if b, err = c.src.SumDB(ctx, r.SumDB, "supported"); err == nil {
			b.Close()
			c.markSupported(ctx, r.SumDB)
			return yes, nil
		}
	}
	if ok, _ := store.Has(ctx, c.st, key); ok {
		yes.Hit = true
		return yes, nil
	}
	if err == nil || errors.Is(err, ErrNotFound) {
		return nil, notFound("no upstream of berth proxies checksum database %s", r.SumDB)
	}
	// Any status but 200/404/410 is fatal to the go command, which is right:
	// nobody can tell whether the database is proxied.
	return nil, fmt.Errorf("cannot tell whether checksum database %s is proxied: %w", r.SumDB, err)
}

// markSupported stores, once, the marker that database name is proxied: the
// source just answered for it.
func (c *Cache) markSupported(ctx context.Context, name string) {
	if _, saved := c.supported.Load(name); saved {
		return
	}
	if ok, _ := store.Has(ctx, c.st, supportedKey(name)); !ok {
		c.saveMutable(ctx, supportedKey(name), nil)
	}
	c.supported.Store(name, true)
}

// readSumDB reads path (relative to /sumdb/<name>/ of the verifier's
// database) through the cache itself, so verification reads and fills the
// same store as clients do, and works offline from the store.
func (c *Cache) readSumDB(ctx context.Context, path string) ([]byte, error) {
	r, err := proto.SumDB(c.verifier.Name(), path)
	if err != nil {
		return nil, err
	}
	b, err := c.ReadAll(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("/sumdb/%s/%s: %w", c.verifier.Name(), path, err)
	}
	return b, nil
}

// storeNarrowerTiles stores, beside a partial hash tile of width W, the
// partial tiles of widths 1..W-1 that are missing: each is the first w hashes
// of it. A client that verified a smaller tree earlier asks for those, and a
// store used as a GOPROXY=file:// tree (offline, air-gapped) cannot compute
// them on request. Data tiles and full tiles are left alone. Only a disk
// store, the one such a tree is, gets them: in a bucket they would cost up to
// 255 writes per tile, and a replica asked for a narrower tile fetches it.
func (c *Cache) storeNarrowerTiles(ctx context.Context, r proto.Request, content io.ReaderAt, size int64) {
	if _, disk := c.st.(*store.Disk); !disk {
		return
	}
	t, err := tlog.ParseTilePath(r.SumDBPath)
	if err != nil || t.L < 0 || t.W >= 1<<t.H || size != int64(t.W)*tlog.HashSize {
		return
	}
	data := make([]byte, size)
	if _, err := content.ReadAt(data, 0); err != nil && err != io.EOF {
		return
	}
	for w := t.W - 1; w >= 1; w-- {
		nt := t
		nt.W = w
		key := "sumdb/" + r.SumDB + "/" + nt.Path()
		if ok, _ := store.Has(ctx, c.st, key); ok {
			break // narrower ones were stored with it
		}
		c.saveMutable(ctx, key, data[:w*tlog.HashSize])
	}
}

// sliceStoredTile answers a partial hash tile request from a wider copy of the
// same tile in the store, or returns nil. The full tile is asked for first;
// wider partials only in a disk store (a stat each), as in a bucket each is a
// request and storeNarrowerTiles stores none there. A store failing other than
// with not-found ends the search.
func (c *Cache) sliceStoredTile(ctx context.Context, r proto.Request) []byte {
	if !strings.HasPrefix(r.SumDBPath, "tile/") {
		return nil
	}
	t, err := tlog.ParseTilePath(r.SumDBPath)
	if err != nil || t.L < 0 || t.W >= 1<<t.H {
		return nil
	}
	narrowest := 1 << t.H
	if _, disk := c.st.(*store.Disk); disk {
		narrowest = t.W + 1
	}
	for w := 1 << t.H; w >= narrowest; w-- {
		wt := t
		wt.W = w
		f, err := c.st.Open(ctx, "sumdb/"+r.SumDB+"/"+wt.Path())
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil
		}
		b := make([]byte, t.W*tlog.HashSize)
		_, err = f.ReadAt(b, 0)
		f.Close()
		if err == nil {
			return b
		}
	}
	return nil
}
