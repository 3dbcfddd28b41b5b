package main

import "syscall"

// Winsock's errnos, which syscall does not name.
var (
	errAddrInUse    error = syscall.Errno(10048) // WSAEADDRINUSE
	errAddrNotAvail error = syscall.Errno(10049) // WSAEADDRNOTAVAIL
	errAccess       error = syscall.Errno(10013) // WSAEACCES
)
