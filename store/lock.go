//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked is returned (wrapped) by Lock when another process holds the lock.
var ErrLocked = errors.New("the store is in use by another process")

// Lock takes the store's lock: an exclusive flock on the store's root
// directory itself, so that no file is added to the store (a lock file in the
// root would be walked as a key and exported). It fails with an error
// wrapping ErrLocked when another process holds it. The lock is released by
// unlock, or by the system when the process exits, however it exits, so a
// crash never leaves a stale lock.
func (d *Disk) Lock() (unlock func(), err error) {
	f, err := os.Open(d.root)
	if err != nil {
		return nil, fmt.Errorf("store: cannot open %s to lock it: %w", d.root, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("store %s: %w", d.root, ErrLocked)
		}
		return nil, fmt.Errorf("store: cannot lock %s: %w", d.root, err)
	}
	return func() { f.Close() }, nil // closing the descriptor releases the flock
}
