package main

import (
	"errors"
	"fmt"
	"net"
)

// listenError is a failed net.Listen on --listen addr said in the user's
// terms. usage reports a malformed address (exit 2, with the pointer to
// --help); the others are this host's state (exit 1). The cases are told
// apart by the net package's error types and the errno, not by message text:
//   - the address is in use (another process, or a berth still stopping);
//   - the address is malformed: no port, a port out of range, a name that
//     does not resolve;
//   - the address is well formed but not one of this host's;
//   - a port below 1024 without the privilege to bind it.
func listenError(addr string, err error) (msg string, usage bool) {
	var ae *net.AddrError
	var de *net.DNSError
	switch {
	case errors.Is(err, errAddrInUse):
		return fmt.Sprintf("cannot listen on %s: the address is already in use: another process (or a berth still stopping) listens on the port; stop it or choose another port with --listen", addr), false
	case errors.Is(err, errAddrNotAvail):
		host, port, _ := net.SplitHostPort(addr)
		return fmt.Sprintf("cannot listen on %s: %s is not an address of this host (cannot assign requested address); use one of its addresses, or :%s for all of them", addr, host, port), false
	case errors.Is(err, errAccess):
		return fmt.Sprintf("cannot listen on %s: permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port from 1024 up with --listen", addr), false
	case errors.As(err, &ae):
		return fmt.Sprintf("--listen=%s: %s: %s", quoteArg(addr), ae.Err, wantListen), true
	case errors.As(err, &de):
		return fmt.Sprintf("--listen=%s: cannot resolve %s (%s): %s", quoteArg(addr), de.Name, de.Err, wantListen), true
	}
	return fmt.Sprintf("cannot listen on %s: %v", addr, err), false
}

const wantListen = "want host:port or :port with a port from 0 to 65535, such as :3000 or 127.0.0.1:3000"
