package netkit

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Health serves liveness and readiness endpoints with named checks. The zero
// value is ready to use, has no checks and reports ready.
//
// Liveness answers "should this process be restarted?": keep its checks to the
// process itself (a deadlocked loop), never to dependencies. Readiness answers
// "should traffic come here?": it fails while SetReady(false) is in effect, after
// ShuttingDown, or when a readiness check fails.
type Health struct {
	mu       sync.Mutex
	live     []check
	ready    []check
	notReady atomic.Bool
	shutting atomic.Bool
}

type check struct {
	name    string
	timeout time.Duration
	fn      func(context.Context) error
}

// DefaultCheckTimeout is the timeout of a check added with timeout 0.
const DefaultCheckTimeout = 2 * time.Second

// AddLiveness adds a named liveness check, run on every liveness request with
// the given timeout (0 means DefaultCheckTimeout).
func (h *Health) AddLiveness(name string, timeout time.Duration, check func(ctx context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live = append(h.live, newCheck(name, timeout, check))
}

// AddReadiness adds a named readiness check, run on every readiness request with
// the given timeout (0 means DefaultCheckTimeout).
func (h *Health) AddReadiness(name string, timeout time.Duration, check func(ctx context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready = append(h.ready, newCheck(name, timeout, check))
}

func newCheck(name string, timeout time.Duration, fn func(context.Context) error) check {
	return check{name: name, timeout: orDuration(timeout, DefaultCheckTimeout), fn: fn}
}

// SetReady sets the manual readiness gate; a Health starts ready. Use
// SetReady(false) before warm-up work and SetReady(true) after it.
func (h *Health) SetReady(ready bool) { h.notReady.Store(!ready) }

// ShuttingDown makes readiness fail from now on, with status "shutting-down".
// Serve calls it first when a shutdown begins.
func (h *Health) ShuttingDown() { h.shutting.Store(true) }

// HealthReport is the JSON body of the liveness and readiness handlers.
type HealthReport struct {
	Status string        `json:"status"` // "ok", "fail", "not-ready" or "shutting-down"
	Checks []CheckResult `json:"checks,omitempty"`
}

// CheckResult is the outcome of one named check.
type CheckResult struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	Error      string  `json:"error,omitempty"`
	Cause      Kind    `json:"cause,omitempty"` // Classify(err).Kind
	DurationMS float64 `json:"duration_ms"`
}

// Live runs the liveness checks.
func (h *Health) Live(ctx context.Context) HealthReport {
	h.mu.Lock()
	checks := h.live
	h.mu.Unlock()
	return runChecks(ctx, checks, "")
}

// Ready runs the readiness checks. During shutdown or while not ready it reports
// so without running them.
func (h *Health) Ready(ctx context.Context) HealthReport {
	if h.shutting.Load() {
		return HealthReport{Status: "shutting-down"}
	}
	if h.notReady.Load() {
		return HealthReport{Status: "not-ready"}
	}
	h.mu.Lock()
	checks := h.ready
	h.mu.Unlock()
	return runChecks(ctx, checks, "")
}

func runChecks(ctx context.Context, checks []check, _ string) HealthReport {
	rep := HealthReport{Status: "ok", Checks: make([]CheckResult, len(checks))}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			start := time.Now()
			err := runCheck(cctx, c.fn)
			r := CheckResult{Name: c.name, OK: err == nil, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
			if err != nil {
				r.Error = err.Error()
				r.Cause = Classify(err).Kind
			}
			rep.Checks[i] = r
		})
	}
	wg.Wait()
	for _, r := range rep.Checks {
		if !r.OK {
			rep.Status = "fail"
		}
	}
	return rep
}

// runCheck runs fn but returns when ctx is done even if fn ignores ctx; fn's
// goroutine then finishes on its own.
func runCheck(ctx context.Context, fn func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LiveHandler serves the liveness report as JSON: 200 when every liveness check
// passes, 503 otherwise.
func (h *Health) LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeReport(w, r, h.Live(r.Context()))
	})
}

// ReadyHandler serves the readiness report as JSON: 200 when ready and every
// readiness check passes, 503 otherwise.
func (h *Health) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeReport(w, r, h.Ready(r.Context()))
	})
}

func writeReport(w http.ResponseWriter, r *http.Request, rep HealthReport) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if rep.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if r.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(rep)
}
