package modproxy

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus series. Hits are counted here, not logged.
type metrics struct {
	requests       *prometheus.CounterVec // endpoint, code
	hits           *prometheus.CounterVec // endpoint
	misses         *prometheus.CounterVec // endpoint
	upstream       *prometheus.CounterVec // endpoint, result
	upstreamBytes  prometheus.Counter
	servedBytes    *prometheus.CounterVec // endpoint
	stale          *prometheus.CounterVec // endpoint
	rejected       *prometheus.CounterVec // endpoint, reason
	inflight       prometheus.Gauge
	evicted        prometheus.Counter
	fetchDurations *prometheus.HistogramVec // endpoint

	hitsBy   [KindSumDB + 1]prometheus.Counter
	ok200By  [KindSumDB + 1]prometheus.Counter
	bytesBy  [KindSumDB + 1]prometheus.Counter
	reqCache sync.Map // reqKey -> prometheus.Counter
}

// hit counts a cache hit without a label lookup on the hot path.
func (m *metrics) hit(k Kind) {
	if int(k) < len(m.hitsBy) {
		m.hitsBy[k].Inc()
		return
	}
	m.hits.WithLabelValues(k.String()).Inc()
}

// hotServed counts a request answered from the memory cache.
func (m *metrics) hotServed(k Kind, get bool, n int) {
	m.hitsBy[k].Inc()
	m.ok200By[k].Inc()
	if get {
		m.bytesBy[k].Add(float64(n))
	}
}

// request counts an answered request, caching the series of common pairs.
func (m *metrics) request(endpoint string, code int) {
	key := reqKey{endpoint, code}
	if c, ok := m.reqCache.Load(key); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.requests.WithLabelValues(endpoint, strconv.Itoa(code))
	m.reqCache.Store(key, c)
	c.Inc()
}

type reqKey struct {
	endpoint string
	code     int
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_requests_total",
			Help: "Requests answered, by endpoint (list, info, mod, zip, latest, sumdb, other) and HTTP status code.",
		}, []string{"endpoint", "code"}),
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_cache_hits_total",
			Help: "Requests answered from the store or the in-memory cache without asking an upstream.",
		}, []string{"endpoint"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_cache_misses_total",
			Help: "Requests that needed an upstream answer (shared fetches count once per request).",
		}, []string{"endpoint"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_upstream_fetches_total",
			Help: "Fetches sent to upstreams, by endpoint and result (ok, not_found, error, rejected).",
		}, []string{"endpoint", "result"}),
		upstreamBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_proxy_upstream_bytes_total",
			Help: "Body bytes received from upstreams.",
		}),
		servedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_served_bytes_total",
			Help: "Body bytes sent to clients, by endpoint.",
		}, []string{"endpoint"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_stale_served_total",
			Help: "Mutable answers (list, latest) served from an old copy because every upstream failed.",
		}, []string{"endpoint"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_upstream_rejected_total",
			Help: "Upstream bodies refused and not cached (truncated, too large, invalid zip, wrong version).",
		}, []string{"endpoint", "reason"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_proxy_evicted_versions_total",
			Help: "Module versions removed from the store to stay under --max-store-size.",
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
	}
	for k := KindList; k <= KindSumDB; k++ {
		m.hitsBy[k] = m.hits.WithLabelValues(k.String())
		m.ok200By[k] = m.requests.WithLabelValues(k.String(), "200")
		m.bytesBy[k] = m.servedBytes.WithLabelValues(k.String())
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.hits, m.misses, m.upstream, m.upstreamBytes,
			m.servedBytes, m.stale, m.rejected, m.inflight, m.evicted, m.fetchDurations)
	}
	return m
}
