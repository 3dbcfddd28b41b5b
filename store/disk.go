package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tempPrefix starts the name of every temporary file; keys never contain it, so
// stray temporaries left by a crash can be recognised and removed.
const tempPrefix = ".berth-tmp-"

// Disk is a Store in a directory on the local file system.
type Disk struct {
	root string
}

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

// Root returns the absolute directory of the store.
func (d *Disk) Root() string { return d.root }

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
	return f, nil
}

// TempFile implements Store: the file is created in key's own directory so that
// Commit is a rename.
func (d *Disk) TempFile(key string) (*os.File, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
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

// Commit implements Store: fsync the file, make it world-readable, rename it over
// the key, and fsync the directory so the rename survives a crash.
func (d *Disk) Commit(_ context.Context, key string, tmp *os.File) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("store: sync %s: %w", key, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("store: chmod %s: %w", key, err)
	}
	if filepath.Dir(tmp.Name()) != filepath.Dir(p) {
		return fmt.Errorf("store: temporary file %s is not beside %s", tmp.Name(), key)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("store: commit %s: %w", key, err)
	}
	if dir, err := os.Open(filepath.Dir(p)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// Discard implements Store.
func (d *Disk) Discard(tmp *os.File) {
	if tmp == nil {
		return
	}
	os.Remove(tmp.Name())
	tmp.Close()
}

// Remove implements Store.
func (d *Disk) Remove(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// CleanTemp removes temporary files older than minAge left below the root by a
// crash or kill. It returns how many it removed. Files younger than minAge may
// belong to a running writer and are left alone.
func (d *Disk) CleanTemp(minAge time.Duration, log *slog.Logger) int {
	n := 0
	cutoff := time.Now().Add(-minAge)
	filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasPrefix(e.Name(), tempPrefix) {
			return nil
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
			if os.Remove(p) == nil {
				n++
			}
		}
		return nil
	})
	if n > 0 && log != nil {
		log.Info("removed stray temporary files left by an earlier crash", "count", n, "store", d.root)
	}
	return n
}

// Walk calls fn for every committed file below the root (temporary files
// are skipped), with its key, size and modification time.
func (d *Disk) Walk(fn func(key string, size int64, mod time.Time)) error {
	return filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasPrefix(e.Name(), tempPrefix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return nil
		}
		fn(filepath.ToSlash(rel), info.Size(), info.ModTime())
		return nil
	})
}

// Chtimes sets key's modification time (lists use it as the time they were
// last confirmed with an upstream).
func (d *Disk) Chtimes(key string, t time.Time) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	return os.Chtimes(p, t, t)
}
