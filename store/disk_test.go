package store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/storetest"
)

func newDisk(t *testing.T) *store.Disk {
	t.Helper()
	d, err := store.OpenDisk(filepath.Join(t.TempDir(), "new", "store"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDiskCompliance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newDisk(t) })
}

// The proxy serves committed files with sendfile, which needs an *os.File.
func TestDiskOpenIsOSFile(t *testing.T) {
	d := newDisk(t)
	ctx := context.Background()
	key := "example.test/lib/@v/v1.0.0.zip"
	if err := store.Put(ctx, d, key, strings.NewReader("zip"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	f, err := d.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(*os.File); !ok {
		t.Fatalf("disk Open returns %T, want *os.File (sendfile)", f)
	}
}

// temps returns the store temporaries below root.
func temps(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && store.IsTemp(e.Name()) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// A crash leaves temporary files and staging directories; RemoveTemp removes
// those not written to for minAge, a directory by its newest file.
func TestDiskRemoveTempAged(t *testing.T) {
	d := newDisk(t)
	ctx := context.Background()
	past := time.Now().Add(-2 * time.Hour)
	var old []string
	for _, k := range []string{"a.test/m/@v/v1.0.0.zip", "a.test/m/@v/list"} {
		w, err := d.Create(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
		t.Cleanup(func() { w.Close() })
	}
	old = temps(t, d.Root())
	for _, p := range old {
		os.Chtimes(p, past, past)
	}
	young, err := d.Create(ctx, "a.test/m/@v/v1.0.1.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer young.Close()
	oldDir, _ := d.TempDir()
	os.MkdirAll(filepath.Join(oldDir, "x/@v"), 0o755)
	os.WriteFile(filepath.Join(oldDir, "x/@v/list"), nil, 0o644)
	filepath.WalkDir(oldDir, func(p string, _ fs.DirEntry, _ error) error { return os.Chtimes(p, past, past) })
	busyDir, _ := d.TempDir() // an import running for hours: its newest file is young
	defer os.RemoveAll(busyDir)
	os.MkdirAll(filepath.Join(busyDir, "y/@v"), 0o755)
	filepath.WalkDir(busyDir, func(p string, _ fs.DirEntry, _ error) error { return os.Chtimes(p, past, past) })
	os.WriteFile(filepath.Join(busyDir, "y/@v/list"), nil, 0o644)

	n, err := d.RemoveTemp(time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("RemoveTemp(1h): removed %d, %v; want 3 (two files, one directory)", n, err)
	}
	left := temps(t, d.Root())
	if len(left) != 2 {
		t.Fatalf("left %v, want the young writer's file and the busy staging directory", left)
	}
	for _, p := range append(old, oldDir) {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("old temporary %s is still there: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(busyDir, "y/@v/list")); err != nil {
		t.Errorf("a staging directory with a young file was removed: %v", err)
	}
}

// Export reads a store (or a module cache) without writing to it.
func TestOpenExistingDisk(t *testing.T) {
	dir := t.TempDir()
	if _, err := store.OpenExistingDisk(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenExistingDisk of a missing directory: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("OpenExistingDisk created the directory")
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := store.OpenExistingDisk(f); err == nil {
		t.Error("OpenExistingDisk of a regular file succeeded")
	}
	os.MkdirAll(filepath.Join(dir, "x/@v"), 0o755)
	os.WriteFile(filepath.Join(dir, "x/@v/list"), []byte("v1.0.0\n"), 0o644)
	d, err := store.OpenExistingDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("OpenExistingDisk wrote to the directory: %d entries", len(ents))
	}
	if ok, err := store.Has(context.Background(), d, "x/@v/list"); !ok || err != nil {
		t.Errorf("Has: %v, %v", ok, err)
	}
}

func TestUnwritableStore(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		// root ignores directory permissions; use a path under a regular file instead.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o644)
		if _, err := store.OpenDisk(filepath.Join(f, "store")); err == nil {
			t.Fatal("OpenDisk under a regular file succeeded")
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if _, err := store.OpenDisk(dir); err == nil {
		t.Fatal("OpenDisk of a read-only directory succeeded")
	}
}
