package cache

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the core's Prometheus series: fetches from the source and what
// became of them. Requests, hits and bytes served are the HTTP face's.
type metrics struct {
	upstream       *prometheus.CounterVec // endpoint, result
	upstreamBytes  prometheus.Counter
	stale          *prometheus.CounterVec // endpoint
	rejected       *prometheus.CounterVec // endpoint, reason
	inflight       prometheus.Gauge
	evicted        prometheus.Counter
	evictPasses    *prometheus.CounterVec // result
	storeBytes     prometheus.Gauge
	fetchDurations *prometheus.HistogramVec // endpoint

	leaseUp        prometheus.Gauge
	leaseErrors    prometheus.Counter
	leaseWaits     prometheus.Counter
	leaseTakeovers prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_upstream_fetches_total",
			Help: "Fetches sent to upstreams, by endpoint and result (ok, not_found, error, rejected).",
		}, []string{"endpoint", "result"}),
		upstreamBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_proxy_upstream_bytes_total",
			Help: "Body bytes received from upstreams.",
		}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_stale_served_total",
			Help: "Mutable answers (list, latest) served from an old copy because every upstream failed.",
		}, []string{"endpoint"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_upstream_rejected_total",
			Help: "Upstream bodies refused and not cached (truncated, too large, invalid zip, wrong version, checksum mismatch).",
		}, []string{"endpoint", "reason"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_proxy_evicted_versions_total",
			Help: "Module versions removed from the store to stay under --max-store-size.",
		}),
		evictPasses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_eviction_passes_total",
			Help: "Eviction passes of a replica sharing its store (--lease), by result: evicted, under_limit, all_busy (over the limit, every version held by a fetch), other_replica (another replica held the eviction lease), lease_down (evicted from this replica's own count), walk_failed.",
		}, []string{"result"}),
		storeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_proxy_store_module_bytes",
			Help: "Bytes of module files in the store as this replica last counted them (with --max-store-size): its last walk of the store plus what it committed or evicted since.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_proxy_upstream_fetches_in_flight",
			Help: "Upstream fetches currently running.",
		}),
		fetchDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_proxy_upstream_fetch_duration_seconds",
			Help:    "Time to fetch, verify and commit one upstream file.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"endpoint"}),
		leaseUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_proxy_lease_backend_up",
			Help: "1 while the lease backend (--lease) answers, or when there is none; 0 while fetches are single per replica only.",
		}),
		leaseErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_proxy_lease_errors_total",
			Help: "Lease requests the backend failed to answer; the fetch went ahead without the lease.",
		}),
		leaseWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_proxy_lease_waits_total",
			Help: "Fetches that found the key's lease held by another replica and waited for its object.",
		}),
		leaseTakeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_proxy_lease_takeovers_total",
			Help: "Fetches that took a lease over after its holder stopped without committing.",
		}),
	}
	m.leaseUp.Set(1)
	if reg != nil {
		reg.MustRegister(m.upstream, m.upstreamBytes, m.stale, m.rejected, m.inflight, m.evicted, m.evictPasses, m.storeBytes, m.fetchDurations,
			m.leaseUp, m.leaseErrors, m.leaseWaits, m.leaseTakeovers)
	}
	return m
}
