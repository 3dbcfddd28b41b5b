package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth/store"
)

// Create implements store.Store. It HEADs the key to learn what the Writer
// will replace: nothing (Commit is then create-only) or the ETag it saw
// (Commit is then a compare-and-swap on it). The content spools to a local
// file, whose name LocalName returns.
func (s *Store) Create(ctx context.Context, key string) (store.Writer, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, err
	}
	w := &writer{s: s, key: key, obj: obj}
	oi, err := s.head(ctx, key, obj)
	switch {
	case err == nil:
		w.seen = oi.ETag
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if w.f, err = s.cache.spool(); err != nil {
		return nil, err
	}
	return w, nil
}

// writer is content spooled to a local file, uploaded by Commit.
type writer struct {
	s        *Store
	key, obj string
	seen     string   // the ETag under the key at Create; "" when absent
	f        *os.File // ReadAt uses it without mu: pread needs no lock

	mu        sync.Mutex // serialises Write, Commit and Close
	committed bool
	closed    bool
	cached    bool // f was moved into the local cache by Commit
	lost      bool
}

var errWriterDone = errors.New("store: write after Commit or Close")

func (w *writer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.closed {
		return 0, errWriterDone
	}
	return w.f.Write(b)
}

func (w *writer) ReadAt(b []byte, off int64) (int, error) { return w.f.ReadAt(b, off) }

// LocalName implements store.Localer.
func (w *writer) LocalName() string { return w.f.Name() }

// Lost reports whether Commit found another writer's content under the key
// and left it there: the key then holds that content, not this writer's.
// Commit returned nil all the same, since the key holds one whole content as
// store.Writer promises; a caller holding checksum data may check the
// winner's.
func (w *writer) Lost() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost
}

// Commit uploads the spooled content with one conditional PUT: create-only
// (If-None-Match: *) when the key was absent at Create, else only over the
// ETag Create saw (If-Match). When the condition fails, another writer has
// won: Commit checks with a HEAD that the winner's object is there, marks the
// writer lost and returns nil. When the key was removed meanwhile, Commit
// tries again, create-only.
func (w *writer) Commit(ctx context.Context, modTime time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.closed {
		return errWriterDone
	}
	if modTime.IsZero() {
		modTime = time.Now()
	}
	info, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("store: %s: %w", w.key, err)
	}
	size := info.Size()
	s := w.s
	for attempt := 0; ; attempt++ {
		opts := minio.PutObjectOptions{
			ContentType:  "application/octet-stream",
			UserMetadata: map[string]string{mtimeMeta: strconv.FormatInt(modTime.UnixNano(), 10)},
		}
		if w.seen == "" {
			opts.SetMatchETagExcept("*")
		} else {
			opts.SetMatchETag(w.seen)
		}
		up, err := s.core.PutObject(ctx, s.opts.Bucket, w.obj, io.NewSectionReader(w.f, 0, size), size, "", "", opts)
		if err == nil {
			w.committed = true
			if err := os.Chtimes(w.f.Name(), modTime, modTime); err == nil {
				w.cached = s.cache.add(w.key, w.f.Name(), entryInfo{etag: up.ETag, size: size, mod: modTime})
			}
			if !w.cached {
				s.cache.remove(w.key) // an older version must not be served
			}
			return nil
		}
		if !isStatus(err, http.StatusPreconditionFailed) && !(w.seen != "" && isStatus(err, http.StatusNotFound)) {
			return fmt.Errorf("store: PUT %s/%s: %w", s.where, w.key, s.explain(err))
		}
		if attempt == 3 {
			return fmt.Errorf("store: PUT %s/%s: the key kept changing under %d conditional writes: %w", s.where, w.key, attempt+1, s.explain(err))
		}
		oi, herr := s.head(ctx, w.key, w.obj)
		switch {
		case errors.Is(herr, fs.ErrNotExist):
			w.seen = "" // removed meanwhile: create it
		case herr != nil:
			return fmt.Errorf("store: PUT %s/%s: another writer's content is there, but: %w", s.where, w.key, herr)
		case oi.ETag != w.seen:
			w.committed, w.lost = true, true
			s.cache.remove(w.key) // whatever this replica held is not the winner's
			return nil
		default:
			// The condition failed though the ETag is the one seen: a server
			// that refuses If-Match on this object; try again.
		}
	}
}

// Close removes the spool file unless Commit moved it into the cache, and
// closes it.
func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if !w.cached {
		os.Remove(w.f.Name())
	}
	return w.f.Close()
}
