package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/lease"
	"github.com/berth-dev/berth/netkit"
	"github.com/berth-dev/berth/store"
)

// leaseUsage documents --lease.
const leaseUsage = "keep a fetch single across replicas sharing an s3:// --store: a Redis `URL`,\n" +
	"redis://[:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS). A replica that finds a file's lease\n" +
	"taken waits for the other's object, and fetches itself if the lease expires (10s after its\n" +
	"holder's last renewal). An optimisation only: with Redis gone, replicas keep serving\n" +
	"correctly, each fetching on its own, and say so (a log line, /metrics, /readyz)\n" +
	"(default: none)"

// openLease returns the lease --lease names, nil for none. A disk store serves
// one proxy, which needs no lease.
func openLease(spec string, st store.Store) (cache.Lease, *lease.Redis, error) {
	if spec == "" {
		return nil, nil, nil
	}
	if _, ok := st.(*store.Disk); ok {
		return nil, nil, fmt.Errorf("--lease=%s: a lease keeps fetches single across replicas sharing a bucket; a disk --store serves one proxy, which needs none (use an s3:// --store, or drop --lease)", quoteArg(spec))
	}
	if !strings.HasPrefix(spec, "redis://") && !strings.HasPrefix(spec, "rediss://") {
		return nil, nil, fmt.Errorf("--lease=%s: want redis://HOST:PORT (or rediss:// for TLS)", quoteArg(spec))
	}
	l, err := lease.OpenRedis(spec, lease.RedisOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("--lease: %w", err)
	}
	return l, l, nil
}

// readyReport is /readyz's body with the lease's state beside the checks:
// the lease never fails readiness (replicas are correct without it), so it
// is reported, not checked.
type readyReport struct {
	netkit.HealthReport
	Lease *leaseReport `json:"lease,omitempty"`
}

type leaseReport struct {
	Backend string `json:"backend"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Since   string `json:"down_since,omitempty"`
	Effect  string `json:"effect,omitempty"`
}

// readyHandler serves health's readiness, with the lease's state when there
// is one, as netkit's handler does: 200 when ready, 503 otherwise.
func readyHandler(health *netkit.Health, core *cache.Cache, backend *lease.Redis) http.Handler {
	if backend == nil {
		return health.ReadyHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := readyReport{HealthReport: health.Ready(r.Context())}
		ok, since, err := core.LeaseStatus()
		rep.Lease = &leaseReport{Backend: backend.String(), OK: ok}
		if !ok {
			rep.Lease.Error = err.Error()
			rep.Lease.Since = since.UTC().Format(time.RFC3339)
			rep.Lease.Effect = "files are served correctly; each replica fetches on its own until the lease backend answers"
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
	})
}
