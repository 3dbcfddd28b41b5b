package modproxy

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/modproxy/proto"
)

// metrics are the client-facing Prometheus series: requests answered, hits,
// misses and bytes served. Hits are counted here, not logged; fetches from
// the source are the core's series (package cache).
type metrics struct {
	requests    *prometheus.CounterVec // endpoint, code
	hits        *prometheus.CounterVec // endpoint
	misses      *prometheus.CounterVec // endpoint
	servedBytes *prometheus.CounterVec // endpoint

	hitsBy   [proto.KindSumDB + 1]prometheus.Counter
	ok200By  [proto.KindSumDB + 1]prometheus.Counter
	bytesBy  [proto.KindSumDB + 1]prometheus.Counter
	reqCache sync.Map // reqKey -> prometheus.Counter
}

// hit counts a cache hit without a label lookup on the hot path.
func (m *metrics) hit(k proto.Kind) {
	if int(k) < len(m.hitsBy) {
		m.hitsBy[k].Inc()
		return
	}
	m.hits.WithLabelValues(k.String()).Inc()
}

// hotServed counts a request answered from the memory cache.
func (m *metrics) hotServed(k proto.Kind, get bool, n int) {
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
		servedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_proxy_served_bytes_total",
			Help: "Body bytes sent to clients, by endpoint.",
		}, []string{"endpoint"}),
	}
	for k := proto.KindList; k <= proto.KindSumDB; k++ {
		m.hitsBy[k] = m.hits.WithLabelValues(k.String())
		m.ok200By[k] = m.requests.WithLabelValues(k.String(), "200")
		m.bytesBy[k] = m.servedBytes.WithLabelValues(k.String())
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.hits, m.misses, m.servedBytes)
	}
	return m
}
