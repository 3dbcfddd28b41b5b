package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
)

// smallFile is the largest committed file Get reads into memory rather than
// handing over open: small immutable files (.info, .mod, checksum lookups,
// tiles) are most requests of a build, and a caller may keep them in memory.
const smallFile = 64 << 10

// Get answers r: an immutable file from the store or from the one fetch of
// its key, a mutable answer (list, @latest, query, the checksum database's
// latest) from the cache, the source, or stale. The caller must Close the
// Content. Errors are described in errors.go.
func (c *Cache) Get(ctx context.Context, r proto.Request) (*Content, error) {
	switch {
	case r.Kind == proto.KindSumDB:
		return c.sumdb(ctx, r)
	case r.Immutable():
		return c.immutable(ctx, r)
	case r.Kind == proto.KindList:
		return c.list(ctx, r)
	default: // @latest and .info of a query
		return c.query(ctx, r)
	}
}

// ReadAll returns the whole body of a small answer (checksum data, a go.mod,
// a list); it is Get followed by Content.ReadAll.
func (c *Cache) ReadAll(ctx context.Context, r proto.Request) ([]byte, error) {
	ct, err := c.Get(ctx, r)
	if err != nil {
		return nil, err
	}
	defer ct.Close()
	return ct.ReadAll(ctx)
}

// Ensure makes the store hold the immutable file r, fetching it (verified)
// when it is missing. It returns the bytes fetched (0 when the store had it).
// The commit may finish after Ensure returns; Wait waits for it.
func (c *Cache) Ensure(ctx context.Context, r proto.Request) (int64, error) {
	if !r.Immutable() || r.Key == "" {
		return 0, errors.New("cache: Ensure needs an immutable file")
	}
	if ok, err := store.Has(ctx, c.st, r.Key); err != nil {
		return 0, &StoreError{Op: "reading " + r.Key, Err: err}
	} else if ok {
		return 0, nil
	}
	ct, err := c.Get(ctx, r)
	if err != nil {
		return 0, err
	}
	defer ct.Close()
	if ct.Hit {
		return 0, nil
	}
	return ct.drain(ctx)
}

// Touch records a use of key for eviction; a caller answering from its own
// memory (the HTTP face's hot cache) calls it.
func (c *Cache) Touch(key string) {
	if c.evict != nil {
		c.evict.touch(key)
	}
}

// immutable answers a file whose content never changes once it exists.
func (c *Cache) immutable(ctx context.Context, r proto.Request) (*Content, error) {
	return c.immutableAfter(ctx, r, false)
}

// immutableAfter is immutable; missed reports that the caller has just read
// the store and found nothing there (or, for checksum-database data, found
// the store failing), so the first read is skipped.
func (c *Cache) immutableAfter(ctx context.Context, r proto.Request, missed bool) (*Content, error) {
	for {
		if !missed {
			ct, err := c.openStored(ctx, r)
			if ct != nil {
				return ct, nil
			}
			if err != nil && !sumDBStoreDown(r, err) {
				return nil, err
			}
		}
		missed = false
		if c.cfg.Offline {
			if r.Kind == proto.KindSumDB {
				return nil, notFound("%s is not in berth's store and berth is offline", r.UpstreamPath())
			}
			return nil, notFound("%s@%s is not in berth's store and berth is offline", r.Module, r.Version)
		}
		if msg, ok := c.neg.get(r.UpstreamPath(), c.cfg.NegativeTTL); ok {
			return nil, &NotFoundError{Reason: string(msg)}
		}
		if err := c.rememberedReject(r); err != nil {
			return nil, err
		}
		fl := c.join(r)
		select {
		case <-fl.ready:
		case <-ctx.Done():
			fl.release()
			return nil, ctx.Err()
		}
		if err := fl.earlyErr(); err != nil {
			fl.release()
			if err == errStoredElsewhere {
				continue
			}
			return nil, err
		}
		ct := &Content{Size: fl.expectedSize(), fl: fl}
		if rs, size, modTime, ok := fl.verifiedContent(); ok {
			// Whole and verified; only the commit is left. Answer as from a
			// hit, with the modification time the commit gives it.
			ct.rs, ct.Size, ct.ModTime = rs, size, modTime
		}
		return ct, nil
	}
}

// openStored returns the committed content of r.Key, read into memory when
// small, nil when the store has none.
func (c *Cache) openStored(ctx context.Context, r proto.Request) (*Content, error) {
	f, err := c.st.Open(ctx, r.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		c.log.Error("store read failed", "key", r.Key, "err", err)
		return nil, &StoreError{Op: "cannot read " + r.Key, Err: err}
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &StoreError{Op: "cannot read " + r.Key, Err: err}
	}
	c.Touch(r.Key)
	ct := &Content{Size: info.Size(), ModTime: info.ModTime(), Hit: true}
	if info.Size() <= smallFile {
		body := make([]byte, info.Size())
		_, err := io.ReadFull(f, body)
		f.Close()
		if err != nil {
			return nil, &StoreError{Op: "cannot read " + r.Key, Err: err}
		}
		ct.body = body
		return ct, nil
	}
	ct.file = f
	return ct, nil
}

// join returns the running flight for r.Key or starts one. A key committed
// between the caller's miss and join is found by the flight itself, which
// then completes with errStoredElsewhere (the caller reads the store again):
// no store request is made under flightsMu, which every miss takes.
func (c *Cache) join(r proto.Request) *flight {
	c.flightsMu.Lock()
	defer c.flightsMu.Unlock()
	if fl := c.flights[r.Key]; fl != nil {
		fl.acquire()
		return fl
	}
	fl := newFlight(r.Key, r.Kind)
	fl.acquire() // the caller's reference; the writer holds the initial one
	c.flights[r.Key] = fl
	c.wg.Add(1)
	go c.fetch(fl, r)
	return fl
}

// sumDBStoreDown reports a store that failed to read checksum-database data
// (a lookup or a tile). Those are small, verified by the reader and answered
// from memory, so they are fetched from the source even while the store
// fails: a cold replica can then still verify what it streams, rather than
// cut every transfer short. Anything else the store fails to read is a
// StoreError for the caller.
func sumDBStoreDown(r proto.Request, err error) bool {
	var se *StoreError
	return r.Kind == proto.KindSumDB && errors.As(err, &se)
}

// busy reports whether a fetch of key is running.
func (c *Cache) busy(key string) bool {
	c.flightsMu.Lock()
	defer c.flightsMu.Unlock()
	return c.flights[key] != nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// Content is one answer of Get: a committed store file, a body in memory, or
// a fetch still streaming from the source. The caller must Close it.
type Content struct {
	// Size is the length in bytes, or -1 while a fetch streams a body of
	// unknown length.
	Size int64
	// ModTime is when the content was committed (or will be: a verified body
	// is answered before its commit, with the time the commit gives it). Zero
	// for a fetch still streaming and for a fresh mutable answer.
	ModTime time.Time
	// Hit reports that no fetch was needed for this answer.
	Hit bool
	// Mutable reports an answer that changes over time (a list, @latest, a
	// query, the checksum database's latest tree): not to be cached long.
	Mutable bool
	// Stale reports a mutable answer served from an old copy because the
	// source failed; Age is how old the copy is.
	Stale bool
	Age   time.Duration

	body []byte
	file store.File
	fl   *flight
	rs   io.ReadSeeker // a verified flight's whole body
}

// Bytes returns the whole body when it is held in memory, else nil.
func (c *Content) Bytes() []byte { return c.body }

// File returns the committed store file, else nil. For the disk store it is
// an *os.File, which net/http sends with sendfile.
func (c *Content) File() store.File { return c.file }

// Seeker returns the whole content, readable at any offset, or nil while a
// fetch still streams it (then read it with ReadAt).
func (c *Content) Seeker() io.ReadSeeker {
	switch {
	case c.body != nil:
		return bytes.NewReader(c.body)
	case c.file != nil:
		return c.file
	}
	return c.rs
}

// Streaming reports whether the content is a fetch still running: ReadAt
// waits for its bytes, and it may yet fail.
func (c *Content) Streaming() bool { return c.fl != nil && c.rs == nil }

// ReadAt reads into p from offset off. For a streaming fetch it waits until
// bytes past off may be read: the last 64 KiB of a body are held back until
// the whole body is verified, so a body that fails verification never
// reaches a reader whole. It returns io.EOF at the end, and the fetch's
// error (a *RejectError, ...) if it fails.
func (c *Content) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if c.fl != nil {
		return c.fl.readAt(ctx, p, off)
	}
	rs := c.Seeker()
	ra, ok := rs.(io.ReaderAt)
	if !ok {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := ra.ReadAt(p, off)
	if err == nil && off+int64(n) >= c.Size {
		err = io.EOF
	}
	return n, err
}

// Close releases the content (the open file, or the reference to a fetch;
// the fetch goes on for others).
func (c *Content) Close() {
	if c.file != nil {
		c.file.Close()
	}
	if c.fl != nil {
		c.fl.release()
	}
}

// ReadAll reads the whole content, waiting for a streaming fetch; it is for
// small files (checksum data, go.mod), not zips.
func (c *Content) ReadAll(ctx context.Context) ([]byte, error) {
	if c.body != nil {
		return c.body, nil
	}
	var out []byte
	buf := make([]byte, 32<<10)
	var off int64
	for {
		n, err := c.ReadAt(ctx, buf, off)
		out = append(out, buf[:n]...)
		off += int64(n)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// drain reads the whole content and discards it, returning its length.
func (c *Content) drain(ctx context.Context) (int64, error) {
	if c.Size >= 0 && !c.Streaming() {
		return c.Size, nil
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	var off int64
	for {
		n, err := c.ReadAt(ctx, *buf, off)
		off += int64(n)
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}
