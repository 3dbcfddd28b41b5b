//go:build unix || js || wasip1

package netkit

import (
	"errors"
	"syscall"
)

func errnoKindOf(err error) Kind {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errnoKind(errno)
	}
	return ""
}

func errnoKind(e syscall.Errno) Kind {
	switch e {
	case syscall.ECONNREFUSED:
		return KindRefused
	case syscall.ETIMEDOUT:
		return KindTimeout
	case syscall.EHOSTUNREACH:
		return KindUnreachable
	case syscall.ENETUNREACH, syscall.ENETDOWN:
		return KindNoRoute
	case syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE:
		return KindReset
	}
	return ""
}
