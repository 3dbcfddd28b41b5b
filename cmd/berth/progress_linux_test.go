package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/berth-dev/berth/internal/testmod"
)

// openPTY returns a new pseudo-terminal: what is written to tty is read
// from the returned function once tty is closed.
func openPTY(t *testing.T) (tty *os.File, output func() string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Skipf("ptsname: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("opening the terminal: %v", err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(&buf, m) // ends with EIO when the terminal is closed
	}()
	return s, func() string {
		s.Close()
		<-done
		return buf.String()
	}
}

// runBerthTTY runs a berth command with standard error on a terminal.
func runBerthTTY(t *testing.T, args ...string) (code int, stdout, tty string) {
	t.Helper()
	f, output := openPTY(t)
	var out bytes.Buffer
	code = run(args, &out, f)
	return code, out.String(), output()
}

// TestAirgapProgress: export and import draw a progress bar when standard
// error is a terminal, and print only their summary otherwise.
func TestAirgapProgress(t *testing.T) {
	t.Setenv("GONOSUMDB", "")
	t.Setenv("GOPRIVATE", "")
	up := testmod.NewUpstream(t, airgapModules())
	src := t.TempDir()
	if code, out, errs := runBerth(t, "warm", "--store", src, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "example.test/lib@v1.1.0", "example.test/Upper@v1.0.0"); code != 0 {
		t.Fatalf("warm: %d\n%s%s", code, out, errs)
	}
	bundle := filepath.Join(t.TempDir(), "m.tar.zst")

	// Not a terminal: the summary line alone.
	code, out, errs := runBerth(t, "export", "--store", src, "-o", bundle, "--sumdb", up.GOSUMDB())
	if code != 0 || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "berth export: "+bundle) {
		t.Fatalf("export on a non-terminal: exit %d, want one summary line:\n%s%s", code, out, errs)
	}
	code, out, errs = runBerth(t, "import", "--store", t.TempDir(), "--sumdb", up.GOSUMDB(), bundle)
	if code != 0 || errs != "" || strings.Count(out, "\n") != 1 {
		t.Fatalf("import on a non-terminal: exit %d, want one summary line:\n%s%s", code, out, errs)
	}

	// A terminal: a bar redrawn in place, then the summary on its own line.
	code, _, tty := runBerthTTY(t, "export", "--store", src, "-o", bundle, "--sumdb", up.GOSUMDB())
	if code != 0 || !strings.Contains(tty, "\rwriting [") || !strings.Contains(tty, " files ") || !strings.Contains(tty, "\nberth export: "+bundle) {
		t.Fatalf("export on a terminal: exit %d, no progress bar:\n%q", code, tty)
	}
	code, out, tty = runBerthTTY(t, "import", "--store", t.TempDir(), "--sumdb", up.GOSUMDB(), bundle)
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("import on a terminal: exit %d\n%s%q", code, out, tty)
	}
	for _, stage := range []string{"\runpacking ", "\rverifying [", "\rcommitting ["} {
		if !strings.Contains(tty, stage) {
			t.Errorf("import on a terminal shows no %q stage:\n%q", stage, tty)
		}
	}
	if !strings.HasSuffix(tty, "\n") {
		t.Errorf("import's progress line is not ended:\n%q", tty)
	}
}
