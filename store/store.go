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
// Writes are atomic: content is written to a temporary file beside its final name,
// fsynced, then renamed, so a crash never leaves a partial file under a key.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// File is an open, committed store entry. For the disk store it is an *os.File,
// so that net/http can serve it with sendfile.
type File interface {
	io.ReadSeekCloser
	io.ReaderAt
	Stat() (fs.FileInfo, error)
}

// Store is where berth keeps module files. Implementations must be safe for
// concurrent use.
type Store interface {
	// Open returns the committed content of key. The error wraps fs.ErrNotExist
	// when there is none.
	Open(ctx context.Context, key string) (File, error)

	// TempFile returns a new, empty scratch file on local disk for content that
	// will be committed under key with Commit. The caller writes it (and may read
	// it concurrently with ReadAt) and either commits or discards it.
	TempFile(key string) (*os.File, error)

	// Commit makes the content of tmp, a file returned by TempFile, visible under
	// key, atomically and durably. tmp is left open for the caller to close; on
	// disk stores its name no longer exists afterwards.
	Commit(ctx context.Context, key string, tmp *os.File) error

	// Discard removes a temporary file that will not be committed and closes it.
	Discard(tmp *os.File)

	// Remove deletes key. Removing a missing key is not an error.
	Remove(ctx context.Context, key string) error
}

// ErrBadKey is returned for a key that is not a clean relative slash path.
var ErrBadKey = errors.New("invalid store key")

// CheckKey reports whether key is safe to use as a relative path below a store root:
// non-empty, slash-separated, no empty, "." or ".." elements, no backslashes, NULs
// or leading slash. Keys come from validated module paths; this is defence in depth.
func CheckKey(key string) error {
	if key == "" || len(key) > 4096 {
		return fmt.Errorf("%w: length %d", ErrBadKey, len(key))
	}
	if strings.ContainsAny(key, "\\\x00") || key[0] == '/' {
		return fmt.Errorf("%w %q: backslash, NUL or leading slash", ErrBadKey, key)
	}
	for _, elem := range strings.Split(key, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return fmt.Errorf("%w %q: empty, . or .. element", ErrBadKey, key)
		}
		if strings.HasPrefix(elem, tempPrefix) {
			return fmt.Errorf("%w %q: element uses the reserved prefix %q", ErrBadKey, key, tempPrefix)
		}
	}
	return nil
}
