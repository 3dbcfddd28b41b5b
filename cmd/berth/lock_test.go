//go:build unix

package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProxySecondOnOneStore: a second berth proxy on a store a live one uses
// says so in one line and exits 1; once the first has stopped, the store is
// free again.
func TestProxySecondOnOneStore(t *testing.T) {
	bin := buildBerth(t)
	store := t.TempDir()
	first, _, logs := startBerthProc(t, bin, "--upstream", "off", "--sumdb", "off", "--store", store)
	// Before the lock, the second proxy served on: it gets 10s to exit.
	second := exec.Command(bin, "proxy", "--upstream", "off", "--sumdb", "off", "--store", store, "--listen", "127.0.0.1:0")
	var stdout, stderr bytes.Buffer
	second.Stdout, second.Stderr = &stdout, &stderr
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Second, func() { second.Process.Kill() })
	err := second.Wait()
	timer.Stop()
	code := second.ProcessState.ExitCode()
	out, errs := stdout.String(), stderr.String()
	if !second.ProcessState.Exited() {
		t.Fatalf("a second berth proxy on the same store was still running after 10s: %v\n%s", err, errs)
	}
	want := fmt.Sprintf("berth proxy: store %s: the store is in use by another process: a store serves one berth proxy at a time; stop the other or give this one its own --store\n", store)
	if code != 1 || out != "" || errs != want {
		t.Errorf("second proxy on one store: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and:\n%s", code, out, errs, want)
	}
	first.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the first proxy did not stop\n%s", logs.String())
	}
	_, base, logs2 := startBerthProc(t, bin, "--upstream", "off", "--sumdb", "off", "--store", store)
	if code, err := get(base + "/healthz"); code != 200 || strings.Contains(logs2.String(), "in use") {
		t.Errorf("after the first stopped: /healthz %d %v\n%s", code, err, logs2.String())
	}
}
