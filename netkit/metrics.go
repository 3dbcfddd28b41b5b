package netkit

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clientMetrics follows the OpenTelemetry semantic conventions for HTTP clients
// (http.client.request.duration, http.client.active_requests), with the attribute
// names turned into Prometheus labels (dots become underscores).
type clientMetrics struct {
	duration *prometheus.HistogramVec // http_client_request_duration_seconds
	active   *prometheus.GaugeVec     // http_client_active_requests
	retries  *prometheus.CounterVec   // netkit_client_retries_total
	budget   *prometheus.CounterVec   // netkit_client_retry_budget_exhausted_total
	breaker  *prometheus.GaugeVec     // netkit_client_breaker_state
}

// The OpenTelemetry HTTP duration buckets, in seconds.
var otelBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

func registerMetrics(r prometheus.Registerer) *clientMetrics {
	m := &clientMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_client_request_duration_seconds",
			Help:    "Duration of HTTP client requests (each attempt), until the response headers arrive.",
			Buckets: otelBuckets,
		}, []string{"http_request_method", "server_address", "server_port", "http_response_status_code", "error_type"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "http_client_active_requests",
			Help: "Number of HTTP client requests (attempts) in flight.",
		}, []string{"http_request_method", "server_address", "server_port"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netkit_client_retries_total",
			Help: "Retries made by netkit clients, by the cause of the failed attempt.",
		}, []string{"server_address", "error_type"}),
		budget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netkit_client_retry_budget_exhausted_total",
			Help: "Retries not made because the retry budget was spent.",
		}, []string{"server_address"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "netkit_client_breaker_state",
			Help: "Circuit breaker state per host: 0 closed, 1 open, 2 half-open.",
		}, []string{"server_address"}),
	}
	m.duration = register(r, m.duration)
	m.active = register(r, m.active)
	m.retries = register(r, m.retries)
	m.budget = register(r, m.budget)
	m.breaker = register(r, m.breaker)
	return m
}

// register registers c, or returns the collector already registered under the
// same description so several clients can share one registerer.
func register[C prometheus.Collector](r prometheus.Registerer, c C) C {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("netkit: registering metrics: " + err.Error())
	}
	return c
}

func hostPort(req *http.Request) (string, string) {
	host, port, err := net.SplitHostPort(req.URL.Host)
	if err != nil {
		host = req.URL.Host
		port = "80"
		if req.URL.Scheme == "https" {
			port = "443"
		}
	}
	return host, port
}

type metricsTransport struct {
	next http.RoundTripper
	m    *clientMetrics
}

func (t *metricsTransport) CloseIdleConnections() { closeIdle(t.next) }

func (t *metricsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host, port := hostPort(req)
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	active := t.m.active.WithLabelValues(method, host, port)
	active.Inc()
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	active.Dec()
	status, errType := "", ""
	if err != nil {
		errType = string(Classify(err).Kind)
	} else {
		status = strconv.Itoa(resp.StatusCode)
		if resp.StatusCode >= 500 {
			errType = status
		}
	}
	t.m.duration.WithLabelValues(method, host, port, status, errType).Observe(time.Since(start).Seconds())
	return resp, err
}
