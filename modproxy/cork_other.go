//go:build !linux

package modproxy

import "net"

// setCork does nothing where TCP_CORK does not exist.
func setCork(net.Conn, bool) {}
