// Package store keeps module files under keys in the Go module cache's own layout
// (the layout of $GOMODCACHE/cache/download):
//
//	<escaped module>/@v/list
//	<escaped module>/@v/<escaped version>.info|.mod|.zip
//	sumdb/<name>/lookup/<escaped module>@<escaped version>
//	sumdb/<name>/tile/8/...
//
// so that a store directory is also a valid GOPROXY=file:// tree, and an existing module
// cache can be served as it is.
//
// Store is the seam every backend implements: Open, Stat, Create and Remove.
// Content is written through a Writer and becomes visible under its key only
// when committed, whole: the disk store writes a temporary file beside the
// final name, fsyncs it and renames it; an object store would upload and then
// publish. A crash never leaves a partial entry under a key. Abilities not
// every backend has are optional interfaces (Reserver, Walker, Cleaner,
// Checker, TempDirer), each reached through one helper of this package (Reserve,
// Walk, RemoveTemp, Check, TempDir) so that callers never type-assert a store
// themselves. Package storetest is the compliance suite every backend passes.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// File is an open, committed store entry. For the disk store it is an *os.File,
// so that net/http can serve it with sendfile.
type File interface {
	io.ReadSeekCloser
	io.ReaderAt
	Stat() (fs.FileInfo, error)
}

// Info describes a committed entry.
type Info struct {
	Size    int64
	ModTime time.Time
}

// Store is where berth keeps module files. Implementations must be safe for
// concurrent use.
type Store interface {
	// Open returns the committed content of key. The error wraps fs.ErrNotExist
	// when there is none.
	Open(ctx context.Context, key string) (File, error)

	// Stat returns the size and modification time of the committed content of
	// key; the error wraps fs.ErrNotExist when there is none. For an object
	// store it is a HEAD request.
	Stat(ctx context.Context, key string) (Info, error)

	// Create starts new content for key. Nothing is visible under key until
	// the Writer's Commit; a crash before it leaves nothing visible.
	Create(ctx context.Context, key string) (Writer, error)

	// Remove deletes key. Removing a missing key is not an error.
	Remove(ctx context.Context, key string) error
}

// Writer is content being written for one key, returned by Store.Create.
type Writer interface {
	io.Writer

	// ReadAt reads back what was written so far. It may be called concurrently
	// with Write (flights stream to clients from it while it grows), and
	// stays valid after Commit until Close.
	io.ReaderAt

	// Commit makes the content visible under the key, whole, atomically and
	// durably, with modification time modTime (zero: now). Of two writers
	// committing one key, one wins: the key holds one whole content, one of
	// the two. Write fails after Commit.
	Commit(ctx context.Context, modTime time.Time) error

	// Close releases the writer. Uncommitted content is discarded and never
	// becomes visible. Close is safe to call more than once and after Commit.
	Close() error
}

// Reserver is implemented by Writers that can allocate space up front (the
// disk store, with fallocate), so that a full disk fails before the first
// byte is streamed. Call it through Reserve.
type Reserver interface {
	Reserve(size int64) error
}

// Walker is implemented by stores that can list their committed keys (for
// eviction and export). Call it through Walk.
type Walker interface {
	// WalkKeys calls fn for every committed key that starts with prefix (""
	// for all), in no defined order, with its size and modification time.
	// Temporaries are never listed. prefix is a string prefix, as in an object
	// store's listing: "a/b" matches "a/b/c" and "a/bc"; end it with "/" to
	// list one directory. An error from fn stops the walk and is returned.
	WalkKeys(ctx context.Context, prefix string, fn func(key string, info Info) error) error
}

// Cleaner is implemented by stores that can be left with temporaries by a
// crash (the disk store). Call it through RemoveTemp.
type Cleaner interface {
	// RemoveTemp removes temporaries not written to for minAge, and returns
	// how many it removed. Younger ones may belong to a running writer and
	// are kept; minAge 0 removes them all.
	RemoveTemp(minAge time.Duration) (int, error)
}

// Checker is implemented by stores that can check they are usable (the disk
// store writes and syncs a probe file), for startup and readiness. Call it
// through Check.
type Checker interface {
	Check(ctx context.Context) error
}

// TempDirer is implemented by stores on a local file system (the disk store).
// Call it through TempDir.
type TempDirer interface {
	// TempDir creates a new empty directory on the store's own file system,
	// outside its keys: nothing in it is listed by WalkKeys, and RemoveTemp
	// removes it once abandoned. The caller removes it when done.
	TempDir() (string, error)
}

// Put stores the content of r under key with modification time modTime (zero:
// now): Create, copy, Commit, Close. It is meant for small content and imports;
// streams that clients read while they grow use Create directly.
func Put(ctx context.Context, st Store, key string, r io.Reader, modTime time.Time) error {
	w, err := st.Create(ctx, key)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("store: writing %s: %w", key, err)
	}
	return w.Commit(ctx, modTime)
}

// Has reports whether key holds committed content.
func Has(ctx context.Context, st Store, key string) (bool, error) {
	_, err := st.Stat(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Reserve allocates size bytes for w up front when w is a Reserver; otherwise
// it does nothing, and a full disk shows as a failed Write.
func Reserve(w Writer, size int64) error {
	if r, ok := w.(Reserver); ok && size > 0 {
		return r.Reserve(size)
	}
	return nil
}

// Walk calls st's WalkKeys. The error wraps errors.ErrUnsupported when st is
// not a Walker.
func Walk(ctx context.Context, st Store, prefix string, fn func(key string, info Info) error) error {
	w, ok := st.(Walker)
	if !ok {
		return fmt.Errorf("store: %T cannot list its keys: %w", st, errors.ErrUnsupported)
	}
	return w.WalkKeys(ctx, prefix, fn)
}

// RemoveTemp removes st's temporaries not written to for minAge when st is a
// Cleaner, and returns how many it removed; otherwise it does nothing.
func RemoveTemp(st Store, minAge time.Duration) (int, error) {
	if c, ok := st.(Cleaner); ok {
		return c.RemoveTemp(minAge)
	}
	return 0, nil
}

// Check checks that st is usable when st is a Checker; otherwise it returns nil.
func Check(ctx context.Context, st Store) error {
	if c, ok := st.(Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// TempDir returns a new empty directory for staging content before it is
// stored: on st's own file system when st is a TempDirer (so that staging
// never fills another disk, and a crash's leftovers are removed by
// RemoveTemp), else in the system's temporary directory. The caller removes
// it with os.RemoveAll.
func TempDir(st Store) (string, error) {
	if t, ok := st.(TempDirer); ok {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "berth-staging-")
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return dir, nil
}

// IsTemp reports whether name, one element of a path below a store root, is
// the name of a store temporary (a file being written, a staging directory,
// a probe). No key contains such an element.
func IsTemp(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// TempName returns a path element named like a store temporary, with suffix
// s: IsTemp reports true for it, and CheckKey refuses a key that holds it.
// It is for tests of key checking, and for files kept beside a store's
// that its walks must skip.
func TempName(s string) string { return tempPrefix + s }

// ErrBadKey is returned for a key that is not a clean relative slash path.
var ErrBadKey = errors.New("invalid store key")

// CheckKey reports whether key is safe to use as a relative path below a store root:
// non-empty, slash-separated, no empty, "." or ".." elements, no backslashes, NULs
// or leading slash, and no element named like a temporary. Keys come from
// validated module paths; this is defence in depth.
func CheckKey(key string) error {
	if key == "" || len(key) > 4096 {
		return fmt.Errorf("%w: length %d", ErrBadKey, len(key))
	}
	if strings.ContainsAny(key, "\\\x00") || key[0] == '/' {
		return fmt.Errorf("%w %q: backslash, NUL or leading slash", ErrBadKey, key)
	}
	for elem := range strings.SplitSeq(key, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return fmt.Errorf("%w %q: empty, . or .. element", ErrBadKey, key)
		}
		if IsTemp(elem) {
			return fmt.Errorf("%w %q: element uses the reserved prefix %q", ErrBadKey, key, tempPrefix)
		}
	}
	return nil
}
