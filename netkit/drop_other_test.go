//go:build !linux

package netkit

import "testing"

func droppingAddr(t *testing.T) string {
	t.Skip("a full-backlog listener drops SYNs on Linux only")
	return ""
}
