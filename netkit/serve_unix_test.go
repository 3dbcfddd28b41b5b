//go:build unix

package netkit

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// serveForSignals starts Serve on loopback with readiness and the given drain,
// and returns a function that GETs /readyz (status, or the error).
func serveForSignals(t *testing.T, ctx context.Context, drain time.Duration) (readyz func() (int, error), served <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var h Health
	srv := &http.Server{Handler: h.ReadyHandler()}
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, srv, ln, ServeOptions{Health: &h, DrainDelay: drain, Logger: discardLogger()})
	}()
	client := NewClient(ClientOptions{Retry: &RetryPolicy{MaxAttempts: 1}})
	t.Cleanup(client.CloseIdleConnections)
	return func() (int, error) {
		resp, err := client.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, errc
}

// waitUnready polls /readyz until it stops answering 200 and fails the test
// unless the answer is 503 (the listener must still be open: in the drain).
func waitUnready(t *testing.T, readyz func() (int, error)) {
	t.Helper()
	for {
		code, err := readyz()
		if err != nil {
			t.Fatalf("/readyz during the drain: %v", err)
		}
		if code != 200 {
			if code != 503 {
				t.Fatalf("/readyz during the drain answered %d, want 503", code)
			}
			return
		}
	}
}

// TestServeOneSIGTERMDrains is the pattern the Serve doc gives main, with a real
// SIGTERM sent to this process: readiness fails and the whole drain passes while
// the listener still answers, then Serve shuts down cleanly.
func TestServeOneSIGTERMDrains(t *testing.T) {
	const drain = 300 * time.Millisecond
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	readyz, served := serveForSignals(t, ctx, drain)
	if code, err := readyz(); code != 200 {
		t.Fatalf("ready before the signal: %d %v", code, err)
	}
	start := time.Now()
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	<-ctx.Done()
	waitUnready(t, readyz)
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if took := time.Since(start); took < drain {
		t.Errorf("Serve returned %v after one SIGTERM, before the %v drain ended", took, drain)
	}
	checkNoLeaks(t)
}

// TestServeLeavesSignalsToMain: a signal delivered while Serve drains belongs
// to main's handler and must not end the drain. This is the order in which one
// SIGTERM skipped the drain when Serve also listened for it: main's copy
// cancelled ctx, and Serve's buffered copy then read as a second signal.
func TestServeLeavesSignalsToMain(t *testing.T) {
	const drain = 300 * time.Millisecond
	owner := make(chan os.Signal, 1)
	signal.Notify(owner, syscall.SIGTERM) // main's handler, so the process lives
	defer signal.Stop(owner)
	ctx, cancel := context.WithCancel(context.Background())
	readyz, served := serveForSignals(t, ctx, drain)
	if code, err := readyz(); code != 200 {
		t.Fatalf("ready before the shutdown: %d %v", code, err)
	}
	start := time.Now()
	cancel()
	waitUnready(t, readyz) // Serve is in its drain
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	<-owner
	waitUnready(t, readyz) // still draining after the signal
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if took := time.Since(start); took < drain {
		t.Errorf("Serve returned %v after the shutdown began, before the %v drain ended: it took main's signal", took, drain)
	}
	checkNoLeaks(t)
}
