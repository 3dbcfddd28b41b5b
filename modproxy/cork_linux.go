package modproxy

import (
	"net"

	"golang.org/x/sys/unix"
)

// setCork sets TCP_CORK on a TCP connection: while it is on, the kernel sends
// only full segments, so a response's headers leave in the same segment as the
// first bytes of its file (as nginx's tcp_nopush does); clearing it sends what
// is left at once.
func setCork(c net.Conn, on bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v) })
}
