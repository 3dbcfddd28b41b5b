package cache

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
)

// holdBack is how many bytes at the end of a body are withheld from clients
// until the whole file has been verified and committed, so that a truncated or
// invalid body never reaches a client whole: it sees a broken transfer instead.
const holdBack = 64 << 10

// flight is one fetch of one immutable file, shared by every caller that asks
// for it while it runs. The body is written to the store's Writer for its key;
// callers stream from it (ReadAt) as it grows, so memory stays bounded
// whatever the size and the number of callers.
type flight struct {
	key  string
	kind proto.Kind

	ready chan struct{} // closed when the upstream answered (size known) or failed

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever written/done change
	tmp     store.Writer
	size    int64 // from the source's answer, -1 if unknown
	written int64
	eof     bool // the whole body is written (not yet verified)
	done    bool
	err     error
	refs    int // holders of tmp: the writer and each reader
	started bool

	// mem holds a small body fetched into memory instead of tmp; modTime is
	// the modification time the committed content will have (the ETag's).
	mem     []byte
	modTime time.Time
}

func newFlight(key string, kind proto.Kind) *flight {
	return &flight{key: key, kind: kind, ready: make(chan struct{}), changed: make(chan struct{}), size: -1, refs: 1}
}

// start records the open writer and the expected size and wakes waiters.
func (f *flight) start(tmp store.Writer, size int64) {
	f.mu.Lock()
	f.tmp, f.size, f.started = tmp, size, true
	f.mu.Unlock()
	close(f.ready)
}

// startMem records a whole, verified small body held in memory; the caller
// completes the flight right after.
func (f *flight) startMem(body []byte, modTime time.Time) {
	f.mu.Lock()
	f.mem, f.modTime, f.size, f.written, f.started = body, modTime, int64(len(body)), int64(len(body)), true
	f.mu.Unlock()
	close(f.ready)
}

// advance records n more bytes written to tmp.
func (f *flight) advance(n int) {
	f.mu.Lock()
	f.written += int64(n)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// finishWrite records that the whole body is written: readRaw returns
// io.EOF at its end, while readAt still holds back the tail until complete.
func (f *flight) finishWrite() {
	f.mu.Lock()
	f.eof = true
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// readRaw reads the body as it is written, with no hold-back: it is for the
// fetch's own checks (hashing the body as it arrives), not for clients. It
// returns io.EOF once the whole body is written and read, and the flight's
// error if it fails first.
func (f *flight) readRaw(ctx context.Context, p []byte, off int64) (int, error) {
	return f.read(ctx, p, off, false)
}

// rawReader is an io.Reader over readRaw from the start of the body.
type rawReader struct {
	ctx context.Context
	fl  *flight
	off int64
}

func (r *rawReader) Read(p []byte) (int, error) {
	n, err := r.fl.readRaw(r.ctx, p, r.off)
	r.off += int64(n)
	if err == nil && n == 0 {
		return r.Read(p)
	}
	return n, err
}

// complete marks the flight done with err (nil: the whole body is verified and
// may be read, with modification time modTime) and wakes everyone. The first
// call wins; later ones are ignored. The writer still holds its reference and
// releases it separately.
func (f *flight) complete(err error, modTime time.Time) {
	f.mu.Lock()
	if f.done {
		f.mu.Unlock()
		return
	}
	f.done, f.err = true, err
	if err == nil && f.mem == nil {
		f.modTime = modTime
	}
	close(f.changed)
	f.changed = make(chan struct{})
	started := f.started
	f.mu.Unlock()
	if !started {
		close(f.ready)
	}
}

// acquire takes a reference to tmp for a reader; it fails when the flight
// failed before any reader could join.
func (f *flight) acquire() {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
}

// release drops a reference and closes tmp with the last one.
func (f *flight) release() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	tmp := f.tmp
	f.mu.Unlock()
	if last && tmp != nil {
		tmp.Close()
	}
}

// earlyErr returns the error of a flight that failed before the caller sent
// anything: one that ended before its body started, or has failed since.
func (f *flight) earlyErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started || f.done {
		return f.err
	}
	return nil
}

// verifiedContent returns the whole body, its size and the modification time
// its committed file has or will have, once the body is verified. The caller
// must hold a reference (acquire).
func (f *flight) verifiedContent() (io.ReadSeeker, int64, time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done || f.err != nil {
		return nil, 0, time.Time{}, false
	}
	if f.mem != nil {
		return bytes.NewReader(f.mem), int64(len(f.mem)), f.modTime, true
	}
	if f.tmp == nil {
		return nil, 0, time.Time{}, false
	}
	// The commit gives the content this modification time: the ETag stays.
	return io.NewSectionReader(f.tmp, 0, f.written), f.written, f.modTime, true
}

// expectedSize returns the size announced by the upstream, or -1.
func (f *flight) expectedSize() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size
}

// readAt reads into p from offset off, waiting until bytes past off are
// available to clients, the flight ends, or ctx is done. It returns io.EOF at
// the end of a committed body and the flight's error for a failed one.
func (f *flight) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	return f.read(ctx, p, off, true)
}

// read is readAt (forClients: the last holdBack bytes wait for the flight to
// complete) and readRaw (every byte written; io.EOF once all are written).
func (f *flight) read(ctx context.Context, p []byte, off int64, forClients bool) (int, error) {
	f.mu.Lock()
	for {
		if f.done && f.err != nil {
			err := f.err
			f.mu.Unlock()
			return 0, err
		}
		avail := f.written
		if forClients && !f.done {
			avail -= holdBack
		}
		if off < avail {
			n := min(int64(len(p)), avail-off)
			if f.mem != nil {
				copy(p, f.mem[off:off+n])
				f.mu.Unlock()
				return int(n), nil
			}
			tmp := f.tmp
			f.mu.Unlock()
			return tmp.ReadAt(p[:n], off)
		}
		if f.done || (!forClients && f.eof) {
			f.mu.Unlock()
			return 0, io.EOF
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		f.mu.Lock()
	}
}
