package netkit

import (
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
)

// droppingAddr returns a loopback address whose SYNs are dropped, so a dial
// times out (testmod.DroppingAddr: a full accept queue that is never drained).
func droppingAddr(t *testing.T) string {
	t.Helper()
	return testmod.DroppingAddr(t)
}
