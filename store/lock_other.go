//go:build !unix

package store

import "errors"

// ErrLocked is returned (wrapped) by Lock when another process holds the lock.
var ErrLocked = errors.New("the store is in use by another process")

// Lock is not enforced on this system yet: it always succeeds.
func (d *Disk) Lock() (unlock func(), err error) { return func() {}, nil }
