package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// tempPrefix starts the name of every temporary file; keys never contain it, so
// stray temporaries left by a crash can be recognised and removed.
const tempPrefix = ".berth-tmp-"

// Disk is a Store in a directory on the local file system. It is a Walker,
// Cleaner, Checker and TempDirer, and its Writers are Reservers.
type Disk struct {
	root string
}

var (
	_ Store     = (*Disk)(nil)
	_ Walker    = (*Disk)(nil)
	_ Cleaner   = (*Disk)(nil)
	_ Checker   = (*Disk)(nil)
	_ TempDirer = (*Disk)(nil)
	_ Reserver  = (*diskWriter)(nil)
)

// OpenDisk returns a disk store rooted at dir, creating dir if it is missing.
// It fails with an explanation when dir cannot be created or written.
func OpenDisk(dir string) (*Disk, error) {
	if dir == "" {
		return nil, errors.New("store: empty directory name")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("store: cannot create directory %s: %w (choose another --store or fix its permissions)", abs, err)
	}
	d := &Disk{root: abs}
	if err := d.CheckWritable(); err != nil {
		return nil, err
	}
	return d, nil
}

// OpenExistingDisk returns a disk store over dir, which must be an existing
// directory, for reading it (export): unlike OpenDisk it neither creates dir nor
// writes a probe file, so that a read-only store or a module cache's
// cache/download directory can be read as it is.
func OpenExistingDisk(dir string) (*Disk, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("store: %s is not a directory", abs)
	}
	return &Disk{root: abs}, nil
}

// Root returns the absolute directory of the store.
func (d *Disk) Root() string { return d.root }

// Check implements Checker with CheckWritable.
func (d *Disk) Check(context.Context) error { return d.CheckWritable() }

// CheckWritable creates, syncs and removes a small file in the store root.
// It is used at startup and by readiness checks.
func (d *Disk) CheckWritable() error {
	f, err := os.CreateTemp(d.root, tempPrefix+"probe-")
	if err != nil {
		return fmt.Errorf("store: directory %s is not writable: %w (fix its permissions, its mount, or choose another --store)", d.root, err)
	}
	name := f.Name()
	_, werr := f.WriteString("ok")
	serr := f.Sync()
	f.Close()
	os.Remove(name)
	if err := errors.Join(werr, serr); err != nil {
		return fmt.Errorf("store: cannot write to %s: %w (is the disk full or read-only?)", d.root, err)
	}
	return nil
}

func (d *Disk) path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// notEntry is the error for a key that names a directory of the disk layout,
// which is no entry (an object store has no such thing either).
func notEntry(key string) error {
	return fmt.Errorf("store: %s is a directory, not an entry: %w", key, fs.ErrNotExist)
}

// Open implements Store. It returns an *os.File.
func (d *Disk) Open(_ context.Context, key string) (File, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if info, err := f.Stat(); err != nil || info.IsDir() {
		f.Close()
		if err != nil {
			return nil, err
		}
		return nil, notEntry(key)
	}
	return f, nil
}

// Stat implements Store.
func (d *Disk) Stat(_ context.Context, key string) (Info, error) {
	p, err := d.path(key)
	if err != nil {
		return Info{}, err
	}
	info, err := os.Stat(p)
	if err != nil {
		return Info{}, err
	}
	if info.IsDir() {
		return Info{}, notEntry(key)
	}
	return Info{Size: info.Size(), ModTime: info.ModTime()}, nil
}

// Create implements Store: the content is written to a temporary file in
// key's own directory, so that Commit is a rename. The Writer is a Reserver.
func (d *Disk) Create(_ context.Context, key string) (Writer, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := d.tempBeside(p)
	if err != nil {
		return nil, err
	}
	return &diskWriter{key: key, path: p, f: f}, nil
}

func (d *Disk) tempBeside(p string) (*os.File, error) {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return f, nil
}

// diskWriter is a temporary file beside its key's final name.
type diskWriter struct {
	key, path string
	f         *os.File // ReadAt uses it without mu: pread needs no lock

	mu        sync.Mutex // serialises Write, Commit and Close
	committed bool
	closed    bool
}

var errWriterDone = errors.New("store: write after Commit or Close")

func (w *diskWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.closed {
		return 0, errWriterDone
	}
	return w.f.Write(b)
}

func (w *diskWriter) ReadAt(b []byte, off int64) (int, error) { return w.f.ReadAt(b, off) }

// Reserve implements Reserver: fallocate where the platform and file system
// have it, else nothing.
func (w *diskWriter) Reserve(size int64) error {
	if err := reserve(w.f, size); err != nil {
		return fmt.Errorf("store: reserving %d bytes for %s: %w", size, w.key, err)
	}
	return nil
}

// Commit fsyncs the file, makes it world-readable, sets its time, renames it
// over the key, and fsyncs the directory so that the rename survives a crash.
// Of two renames over one name the last wins, each whole.
func (w *diskWriter) Commit(_ context.Context, modTime time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.closed {
		return errWriterDone
	}
	if modTime.IsZero() {
		// Set it anyway: the file system's clock is coarser than time.Now.
		modTime = time.Now()
	}
	if err := commitFile(w.f, w.key, w.path, modTime); err != nil {
		return err
	}
	w.committed = true
	return nil
}

func commitFile(f *os.File, key, p string, modTime time.Time) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: sync %s: %w", key, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("store: chmod %s: %w", key, err)
	}
	if !modTime.IsZero() {
		if err := os.Chtimes(f.Name(), modTime, modTime); err != nil {
			return fmt.Errorf("store: setting the time of %s: %w", key, err)
		}
	}
	if filepath.Dir(f.Name()) != filepath.Dir(p) {
		return fmt.Errorf("store: temporary file %s is not beside %s", f.Name(), key)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("store: commit %s: %w", key, err)
	}
	if dir, err := os.Open(filepath.Dir(p)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// Close removes the temporary file unless it was committed, and closes it.
func (w *diskWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if !w.committed {
		os.Remove(w.f.Name())
	}
	return w.f.Close()
}

// Remove implements Store. A key that names a directory of the layout is no
// entry, so removing it is not an error either.
func (d *Disk) Remove(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if info, serr := os.Lstat(p); serr == nil && info.IsDir() {
			return nil
		}
		return err
	}
	return nil
}

// TempDir implements TempDirer: the directory is made in the store root under
// the temporary prefix.
func (d *Disk) TempDir() (string, error) {
	dir, err := os.MkdirTemp(d.root, tempPrefix+"staging-")
	if err != nil {
		return "", fmt.Errorf("store: cannot create a staging directory in %s: %w", d.root, err)
	}
	return dir, nil
}

// WalkKeys implements Walker. Only regular files with valid keys are listed;
// temporary files and directories (with everything in them) are skipped.
func (d *Disk) WalkKeys(ctx context.Context, prefix string, fn func(key string, info Info) error) error {
	if strings.ContainsAny(prefix, "\\\x00") || strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("%w: prefix %q: backslash, NUL or leading slash", ErrBadKey, prefix)
	}
	base := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir := prefix[:i]
		if err := CheckKey(dir); err != nil {
			return fmt.Errorf("prefix: %w", err)
		}
		base = filepath.Join(d.root, filepath.FromSlash(dir))
	}
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // nothing under the prefix, or removed meanwhile
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == base && e.IsDir() {
			return nil
		}
		if IsTemp(e.Name()) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if e.IsDir() {
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) || CheckKey(key) != nil {
			return nil
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(key, Info{Size: info.Size(), ModTime: info.ModTime()})
	})
	return err
}

// RemoveTemp implements Cleaner: it removes temporary files, and staging
// directories whole, left below the root by a crash or kill and not written
// to for minAge (a directory's age is that of the newest thing in it).
func (d *Disk) RemoveTemp(minAge time.Duration) (int, error) {
	n := 0
	cutoff := time.Now().Add(-minAge)
	var errs []error
	filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return nil
		}
		if p == d.root || !IsTemp(e.Name()) {
			return nil
		}
		if !newest(p, e).After(cutoff) {
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			} else {
				n++
			}
		}
		if e.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
	if len(errs) > 0 {
		return n, fmt.Errorf("store: removing temporaries in %s: %w", d.root, errors.Join(errs...))
	}
	return n, nil
}

// newest returns the latest modification time of p and, for a directory,
// of everything in it.
func newest(p string, e fs.DirEntry) time.Time {
	var t time.Time
	see := func(e fs.DirEntry) {
		if info, err := e.Info(); err == nil && info.ModTime().After(t) {
			t = info.ModTime()
		}
	}
	if !e.IsDir() {
		see(e)
		return t
	}
	filepath.WalkDir(p, func(_ string, e fs.DirEntry, err error) error {
		if err == nil {
			see(e)
		}
		return nil
	})
	return t
}
