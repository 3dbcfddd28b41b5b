package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/lease"
	"github.com/berth-dev/berth/netkit"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3"
)

// storeCheck is the name of the readiness check of the store: the disk
// store writes and syncs a probe file, the S3 store HEADs its bucket.
const storeCheck = "store-writable"

// readyReport is /readyz's body: netkit's checks, and beside them the store
// and the lease backend. The store's check is one of the checks and fails
// readiness; the lease never does (replicas are correct without it), so it
// is reported, not checked.
type readyReport struct {
	netkit.HealthReport
	Store *storeReport `json:"store"`
	Lease *leaseReport `json:"lease,omitempty"`
}

// storeReport is the store's part of /readyz, from this request's check.
type storeReport struct {
	Name      string  `json:"name"` // s3://BUCKET/PREFIX or the directory; never the endpoint or a credential
	Kind      string  `json:"kind"` // disk or s3
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
	// The S3 store's local cache of this replica.
	CacheBytes *int64 `json:"local_cache_bytes,omitempty"`
	CacheLimit *int64 `json:"local_cache_limit_bytes,omitempty"`
}

type leaseReport struct {
	Backend   string  `json:"backend"` // the Redis URL without its password
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latency_ms"` // of this request's PING
	Error     string  `json:"error,omitempty"`
	Since     string  `json:"down_since,omitempty"`
	Effect    string  `json:"effect,omitempty"`
}

// leaseEffect is what a lease outage means, in /readyz.
const leaseEffect = "files are served correctly; each replica fetches on its own until the lease backend answers"

// readiness serves /readyz as netkit's handler does (200 when ready, 503
// otherwise) with the store's and the lease backend's state. The lease
// backend is asked (a PING) on every request, beside the checks: the core
// learns of an outage only when a fetch needs the lease, and a replica whose
// files are all stored fetches nothing.
type readiness struct {
	health *netkit.Health
	store  store.Store
	where  string
	core   *cache.Cache
	lease  *lease.Redis // nil without --lease

	mu       sync.Mutex
	pingDown time.Time // when a PING first failed; zero while the backend answers
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		ping    error
		pingDur time.Duration
		wg      sync.WaitGroup
	)
	if rd.lease != nil {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), time.Second)
			defer cancel()
			start := time.Now()
			ping = rd.lease.Ping(ctx)
			pingDur = time.Since(start)
		})
	}
	rep := readyReport{HealthReport: rd.health.Ready(r.Context())}
	wg.Wait()
	rep.Store = rd.storeReport(rep.Checks, rep.Status)
	if rd.lease != nil {
		rep.Lease = rd.leaseReport(ping, pingDur)
	}
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

func (rd *readiness) storeReport(checks []netkit.CheckResult, status string) *storeReport {
	sr := &storeReport{Name: rd.where, Kind: "disk", Error: "not checked while " + status}
	if s, ok := rd.store.(*s3.Store); ok {
		size, limit := s.CacheUsage()
		sr.Kind, sr.CacheBytes, sr.CacheLimit = "s3", &size, &limit
	}
	for _, c := range checks {
		if c.Name == storeCheck {
			sr.OK, sr.LatencyMS, sr.Error = c.OK, c.DurationMS, c.Error
		}
	}
	return sr
}

func (rd *readiness) leaseReport(ping error, d time.Duration) *leaseReport {
	ok, since, err := rd.core.LeaseStatus()
	rd.mu.Lock()
	switch {
	case ping == nil:
		rd.pingDown = time.Time{}
	case rd.pingDown.IsZero():
		rd.pingDown = time.Now()
	}
	down := rd.pingDown
	rd.mu.Unlock()
	lr := &leaseReport{Backend: rd.lease.String(), OK: ok && ping == nil, LatencyMS: float64(d.Microseconds()) / 1000}
	if lr.OK {
		return lr
	}
	if ping != nil {
		lr.Error = ping.Error()
	} else {
		// It answers again, but the core has not tried it yet: its fetches
		// still go without it.
		lr.Error = err.Error()
	}
	if !ok && (down.IsZero() || since.Before(down)) {
		down = since
	}
	lr.Since, lr.Effect = down.UTC().Format(time.RFC3339), leaseEffect
	return lr
}
