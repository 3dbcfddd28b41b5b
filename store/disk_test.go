package store

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestDiskAtomicCommit(t *testing.T) {
	d, err := OpenDisk(filepath.Join(t.TempDir(), "new", "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := "example.test/lib/@v/v1.0.0.zip"
	if _, err := d.Open(ctx, key); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing key: %v, want ErrNotExist", err)
	}
	tmp, err := d.TempFile(key)
	if err != nil {
		t.Fatal(err)
	}
	tmp.WriteString("partial")
	// Not visible before Commit.
	if _, err := d.Open(ctx, key); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("uncommitted content is visible: %v", err)
	}
	tmp.WriteString(" and whole")
	if err := d.Commit(ctx, key, tmp); err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	f, err := d.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "partial and whole" {
		t.Fatalf("got %q", b)
	}
	if _, ok := f.(*os.File); !ok {
		t.Fatalf("disk Open returns %T, want *os.File (sendfile)", f)
	}
	// Discard leaves nothing behind.
	tmp2, _ := d.TempFile("example.test/lib/@v/v1.1.0.zip")
	d.Discard(tmp2)
	if _, err := os.Stat(tmp2.Name()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("discarded temp file still exists: %v", err)
	}
	if err := d.Remove(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, key); err != nil {
		t.Fatalf("removing a missing key: %v", err)
	}
}

func TestCleanTemp(t *testing.T) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old, _ := d.TempFile("a.test/m/@v/v1.0.0.zip")
	old.Close()
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old.Name(), past, past)
	young, _ := d.TempFile("a.test/m/@v/v1.0.1.zip")
	young.Close()
	if n := d.CleanTemp(time.Hour, nil); n != 1 {
		t.Fatalf("removed %d, want 1", n)
	}
	if _, err := os.Stat(young.Name()); err != nil {
		t.Fatalf("a young temp file (maybe a running writer's) was removed: %v", err)
	}
}

func TestBadKeys(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	for _, k := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\b", "a\x00b", "a/.berth-tmp-1"} {
		if _, err := d.Open(context.Background(), k); !errors.Is(err, ErrBadKey) {
			t.Errorf("Open(%q): %v, want ErrBadKey", k, err)
		}
		if _, err := d.TempFile(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("TempFile(%q): %v, want ErrBadKey", k, err)
		}
	}
}

func TestUnwritableStore(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		// root ignores directory permissions; use a path under a regular file instead.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o644)
		if _, err := OpenDisk(filepath.Join(f, "store")); err == nil {
			t.Fatal("OpenDisk under a regular file succeeded")
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if _, err := OpenDisk(dir); err == nil {
		t.Fatal("OpenDisk of a read-only directory succeeded")
	}
}
