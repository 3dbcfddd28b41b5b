package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithParent kills the server when the test process dies, so that a test
// binary killed on timeout leaves no redis-server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
