package netkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/berth-dev/berth/netkit/internal/memnet"
)

func TestServeGraceful(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n memnet.Network
		ln := n.Listen("app:80")
		var h Health
		mux := http.NewServeMux()
		mux.Handle("/readyz", h.ReadyHandler())
		mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(3 * time.Second)
			io.WriteString(w, "done")
		})
		srv := &http.Server{Handler: mux}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() {
			served <- Serve(ctx, srv, ln, ServeOptions{Health: &h, Logger: discardLogger()})
		}()
		client := memClient(&n, ClientOptions{Retry: &RetryPolicy{MaxAttempts: 1}})
		defer client.CloseIdleConnections()
		get := func(path string) (int, error) {
			resp, err := client.Get("http://app:80" + path)
			if err != nil {
				return 0, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if code, err := get("/readyz"); code != 200 {
			t.Fatalf("ready before shutdown: %d %v", code, err)
		}
		slow := make(chan int, 1)
		go func() { code, _ := get("/slow"); slow <- code }()
		synctest.Wait()
		start := time.Now()
		cancel()
		synctest.Wait()
		// Readiness fails at once; the server still answers during the drain.
		if code, err := get("/readyz"); code != 503 {
			t.Errorf("ready during drain: %d %v", code, err)
		}
		if code := <-slow; code != 200 {
			t.Errorf("in-flight request: %d", code)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		// Drain 5s, then Shutdown (the slow request ended during the drain).
		if took := time.Since(start); took != 5*time.Second {
			t.Errorf("shutdown took %v, want the 5s drain", took)
		}
		if _, err := get("/readyz"); err == nil {
			t.Error("server still answering after Serve returned")
		}
	})
}

func TestServeShutdownTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n memnet.Network
		ln := n.Listen("app:80")
		release := make(chan struct{})
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() {
			served <- Serve(ctx, srv, ln, ServeOptions{DrainDelay: -1, ShutdownTimeout: 2 * time.Second, Logger: discardLogger()})
		}()
		client := memClient(&n, ClientOptions{Retry: &RetryPolicy{MaxAttempts: 1}})
		defer client.CloseIdleConnections()
		stuck := make(chan error, 1)
		go func() {
			resp, err := client.Get("http://app:80/")
			if err == nil {
				resp.Body.Close()
			}
			stuck <- err
		}()
		synctest.Wait()
		start := time.Now()
		cancel()
		err := <-served
		if err == nil || time.Since(start) != 2*time.Second {
			t.Errorf("Serve returned %v after %v; want a timeout error after 2s", err, time.Since(start))
		}
		if err := <-stuck; err == nil {
			t.Error("stuck request succeeded; Close should have cut it")
		}
		close(release)
	})
}

// TestServeStopNow: a context ended with ErrStopNow (berth's SIGINT) stops
// Serve at once, with no drain delay and no wait for a running request,
// while a plain cancel (SIGTERM) still drains: both from one setup.
func TestServeStopNow(t *testing.T) {
	for _, now := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			var n memnet.Network
			ln := n.Listen("app:80")
			var h Health
			mux := http.NewServeMux()
			mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(time.Minute):
				case <-r.Context().Done():
				}
			})
			srv := &http.Server{Handler: mux}
			ctx, cancel := context.WithCancelCause(context.Background())
			served := make(chan error, 1)
			go func() {
				served <- Serve(ctx, srv, ln, ServeOptions{Health: &h, DrainDelay: 10 * time.Second, Logger: discardLogger()})
			}()
			client := memClient(&n, ClientOptions{Retry: &RetryPolicy{MaxAttempts: 1}})
			defer client.CloseIdleConnections()
			slow := make(chan error, 1)
			go func() {
				resp, err := client.Get("http://app:80/slow")
				if err == nil {
					resp.Body.Close()
				}
				slow <- err
			}()
			synctest.Wait()
			start := time.Now()
			if now {
				cancel(fmt.Errorf("interrupt signal received: %w", ErrStopNow))
			} else {
				cancel(errors.New("terminated signal received"))
			}
			err := <-served
			took := time.Since(start)
			switch {
			case now && (err != nil || took != 0):
				t.Errorf("stop now: Serve returned %v after %v, want nil at once", err, took)
			case !now && took < 10*time.Second:
				t.Errorf("plain cancel: Serve returned after %v, before the 10s drain", took)
			}
			if r := h.Ready(context.Background()); now && r.Status != "shutting-down" {
				t.Error("stop now: readiness was not failed")
			}
			<-slow
		})
	}
}
