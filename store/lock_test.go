//go:build unix

package store

import (
	"errors"
	"testing"
)

// TestDiskLock: a second Lock of one store fails with ErrLocked while the
// first is held (flock is per open file, so this holds within one process
// too), and succeeds once it is released.
func TestDiskLock(t *testing.T) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := d.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock while held: %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := d.Lock()
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
	var keys []string
	d.WalkKeys(t.Context(), "", func(k string, _ Info) error { keys = append(keys, k); return nil })
	if len(keys) != 0 {
		t.Errorf("locking added keys to the store: %q", keys)
	}
}
