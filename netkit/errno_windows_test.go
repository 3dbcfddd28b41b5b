//go:build windows

package netkit

import (
	"net"
	"os"
	"syscall"
	"testing"
)

func TestClassifyWinsock(t *testing.T) {
	for errno, want := range map[syscall.Errno]Kind{
		10061: KindRefused, 10060: KindTimeout, 10065: KindUnreachable,
		10051: KindNoRoute, 10054: KindReset, 1225: KindRefused,
	} {
		err := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connectex", errno)}
		if got := Classify(err).Kind; got != want {
			t.Errorf("errno %d: %s, want %s", errno, got, want)
		}
	}
}
