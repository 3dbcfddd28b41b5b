//go:build unix

package doctor

import (
	"os"
	"syscall"
)

// openNoBlock opens a file without blocking on a FIFO or device that never
// becomes readable (a garbage /etc/resolv.conf must not hang the doctor).
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
