//go:build windows

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

// Winsock and Win32 error codes, compared numerically so the mapping does not
// depend on which names package syscall happens to export.
const (
	wsaENETDOWN             = 10050
	wsaENETUNREACH          = 10051
	wsaENETRESET            = 10052
	wsaECONNABORTED         = 10053
	wsaECONNRESET           = 10054
	wsaETIMEDOUT            = 10060
	wsaECONNREFUSED         = 10061
	wsaEHOSTDOWN            = 10064
	wsaEHOSTUNREACH         = 10065
	errorNetnameDeleted     = 64
	errorSemTimeout         = 121
	errorConnectionRefused  = 1225
	errorNetworkUnreachable = 1231
	errorHostUnreachable    = 1232
	errorConnectionAborted  = 1236
	errorBrokenPipe         = 109
)

func errnoKind(e syscall.Errno) Kind {
	switch uintptr(e) {
	case wsaECONNREFUSED, errorConnectionRefused:
		return KindRefused
	case wsaETIMEDOUT, errorSemTimeout:
		return KindTimeout
	case wsaEHOSTUNREACH, wsaEHOSTDOWN, errorHostUnreachable:
		return KindUnreachable
	case wsaENETUNREACH, wsaENETDOWN, errorNetworkUnreachable:
		return KindNoRoute
	case wsaECONNRESET, wsaECONNABORTED, wsaENETRESET, errorNetnameDeleted, errorConnectionAborted, errorBrokenPipe:
		return KindReset
	}
	return ""
}
