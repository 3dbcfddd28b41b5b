package cache

import (
	"bytes"
	"context"
	"io"
	"time"

	"github.com/berth-dev/berth/store"
)

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
