//go:build unix

package main

import (
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// get returns the status of GET url, or the error.
func get(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitDraining polls /readyz of a berth that was sent SIGTERM until it stops
// answering 200, and fails unless the answer is 503: the listener is still open
// while readiness fails, which is what lets a load balancer move away first.
func waitDraining(t *testing.T, base string, logs *syncWriter) {
	t.Helper()
	for {
		code, err := get(base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz after SIGTERM: %v (the drain is over already)\n%s", err, logs.String())
		}
		if code == 200 {
			continue
		}
		if code != 503 {
			t.Fatalf("/readyz during the drain answered %d, want 503\n%s", code, logs.String())
		}
		return
	}
}

// TestProxyOneSIGTERMDrains: one SIGTERM to the real binary fails /readyz
// with 503 for the whole drain while liveness and the protocol still answer,
// then berth exits 0, never earlier than the drain delay.
func TestProxyOneSIGTERMDrains(t *testing.T) {
	const drain = time.Second
	bin := buildBerth(t)
	cmd, base, logs := startBerthProc(t, bin, "--upstream", "off", "--sumdb", "off", "--store", t.TempDir(),
		"--drain-delay", drain.String(), "--shutdown-timeout", "5s")
	if code, err := get(base + "/readyz"); code != 200 {
		t.Fatalf("/readyz before SIGTERM: %d %v\n%s", code, err, logs.String())
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waitDraining(t, base, logs)
	for path, want := range map[string]int{"/healthz": 200, "/example.test/x/@v/v1.0.0.info": 404} {
		if code, err := get(base + path); code != want {
			t.Errorf("GET %s during the drain: %d %v, want %d", path, code, err, want)
		}
	}
	if code, err := get(base + "/readyz"); code != 503 {
		t.Errorf("/readyz later in the drain: %d %v, want 503", code, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after one SIGTERM: %v, want 0\n%s", err, logs.String())
		}
	case <-time.After(drain + 10*time.Second):
		t.Fatalf("no exit %v after SIGTERM\n%s", drain+10*time.Second, logs.String())
	}
	if took := time.Since(start); took < drain {
		t.Errorf("exited %v after one SIGTERM, before the %v drain ended\n%s", took, drain, logs.String())
	}
	if l := logs.String(); !strings.Contains(l, `"msg":"draining"`) || strings.Contains(l, "skipping the drain") {
		t.Errorf("log of one SIGTERM does not show a whole drain:\n%s", l)
	}
}

// TestProxySecondSIGTERMEndsAtOnce: what berth proxy --help promises when an
// operator signals twice: the second signal ends berth without waiting for the
// rest of the drain.
func TestProxySecondSIGTERMEndsAtOnce(t *testing.T) {
	bin := buildBerth(t)
	cmd, base, logs := startBerthProc(t, bin, "--upstream", "off", "--sumdb", "off", "--store", t.TempDir(), "--drain-delay", "1m")
	cmd.Process.Signal(syscall.SIGTERM)
	waitDraining(t, base, logs)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ws syscall.WaitStatus
		if ee, ok := err.(*exec.ExitError); ok {
			ws, _ = ee.Sys().(syscall.WaitStatus)
		}
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("after a second SIGTERM: %v, want the process ended by SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running %v after a second SIGTERM (drain 1m)\n%s", time.Since(start), logs.String())
	}
}

// TestProxySIGINTStopsAtOnce: Ctrl-C at a terminal (SIGINT) ends berth at
// once even with a long drain delay and a request running, exit 0, and berth
// can be started again on the same port right away.
func TestProxySIGINTStopsAtOnce(t *testing.T) {
	bin := buildBerth(t)
	store := t.TempDir()
	cmd, base, logs := startBerthProc(t, bin, "--upstream", "off", "--sumdb", "off", "--store", store, "--drain-delay", "1m", "--shutdown-timeout", "1m")
	// A client holding a connection open, as an idle go command does.
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v, want 0\n%s", err, logs.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still running %v after SIGINT (drain 1m)\n%s", time.Since(start), logs.String())
	}
	if l := logs.String(); strings.Contains(l, `"msg":"draining"`) {
		t.Errorf("SIGINT drained:\n%s", l)
	}
	addr := strings.TrimPrefix(base, "http://")
	again, base2, logs2 := startBerthProc(t, bin, "--upstream", "off", "--sumdb", "off", "--store", store, "--listen", addr)
	if code, err := get(base2 + "/healthz"); code != 200 {
		t.Errorf("restart on %s: /healthz %d %v\n%s", addr, code, err, logs2.String())
	}
	again.Process.Signal(syscall.SIGINT)
}
