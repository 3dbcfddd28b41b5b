package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// reserve allocates size bytes of disk for f without changing its size, so
// that running out of space shows before any byte is streamed.
func reserve(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		return nil // the file system cannot reserve; writes will tell
	}
	return err
}
