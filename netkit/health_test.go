package netkit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h Health
		stuck := make(chan struct{})
		defer close(stuck)
		h.AddLiveness("loop", time.Second, func(ctx context.Context) error { return nil })
		h.AddReadiness("db", time.Second, func(ctx context.Context) error { return nil })
		// A check that ignores its context still ends at its timeout.
		h.AddReadiness("upstream", 2*time.Second, func(ctx context.Context) error { <-stuck; return nil })
		h.AddReadiness("cache", time.Second, func(ctx context.Context) error {
			return &netOpRefused{}
		})

		get := func(hd http.Handler) (int, HealthReport, time.Duration) {
			start := time.Now()
			rec := httptest.NewRecorder()
			hd.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			var rep HealthReport
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			return rec.Code, rep, time.Since(start)
		}
		code, rep, _ := get(h.LiveHandler())
		if code != 200 || rep.Status != "ok" || len(rep.Checks) != 1 {
			t.Errorf("live: %d %+v", code, rep)
		}
		code, rep, took := get(h.ReadyHandler())
		if code != 503 || rep.Status != "fail" || took != 2*time.Second {
			t.Errorf("ready: %d %+v in %v; want 503 fail after the 2s check timeout", code, rep, took)
		}
		want := map[string]Kind{"db": "", "upstream": KindTimeout, "cache": KindRefused}
		for _, c := range rep.Checks {
			if c.Cause != want[c.Name] || c.OK != (want[c.Name] == "") {
				t.Errorf("check %+v, want cause %q", c, want[c.Name])
			}
		}
		h.SetReady(false)
		if code, rep, took = get(h.ReadyHandler()); code != 503 || rep.Status != "not-ready" || took != 0 {
			t.Errorf("not ready: %d %+v %v", code, rep, took)
		}
		h.SetReady(true)
		h.ShuttingDown()
		if code, rep, _ = get(h.ReadyHandler()); code != 503 || rep.Status != "shutting-down" {
			t.Errorf("shutting down: %d %+v", code, rep)
		}
		if code, _, _ = get(h.LiveHandler()); code != 200 {
			t.Errorf("liveness must not fail during shutdown: %d", code)
		}
	})
}

type netOpRefused struct{}

func (*netOpRefused) Error() string { return "connect: connection refused" }
func (*netOpRefused) Unwrap() error { return syscall.ECONNREFUSED }
