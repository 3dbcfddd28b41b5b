package netkit

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ClientOptions configures NewClient and NewTransport. The zero value works; each
// field documents its default.
type ClientOptions struct {
	// DialTimeout limits establishing one TCP connection. Default 5s.
	DialTimeout time.Duration
	// DialContext replaces the dialer (for Unix sockets, custom networks or tests);
	// DialTimeout and KeepAlive then apply only through the ctx it is given.
	// Default nil: a net.Dialer with DialTimeout and KeepAlive.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// KeepAlive is the TCP keep-alive period. Default 30s.
	KeepAlive time.Duration
	// TLSHandshakeTimeout limits the TLS handshake. Default 10s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout limits the wait for response headers after the request
	// is written; it does not limit reading the body. Default 30s.
	ResponseHeaderTimeout time.Duration
	// Timeout is the overall deadline of one request, retries and body reading
	// included (http.Client.Timeout). Default 0: no overall deadline; pass a context
	// deadline per request instead, which is what streaming large bodies needs.
	Timeout time.Duration
	// MaxIdleConns bounds idle connections over all hosts. Default 256.
	MaxIdleConns int
	// MaxIdleConnsPerHost bounds idle connections kept per host; size it for the
	// real concurrency to one host (net/http's own default of 2 causes connection
	// churn under load). Default 64.
	MaxIdleConnsPerHost int
	// MaxConnsPerHost bounds all connections per host. Default 0: no limit.
	MaxConnsPerHost int
	// IdleConnTimeout closes connections idle for this long. Default 90s.
	IdleConnTimeout time.Duration
	// MaxConnAge bounds how long a pooled connection is reused, so a pool never
	// stays pinned to addresses DNS no longer returns: idle connections are closed
	// at least every MaxConnAge/2, and busy ones when they next become idle.
	// Default 0: no limit (the balancer sets one per endpoint).
	MaxConnAge time.Duration
	// TLSConfig is the TLS configuration for HTTPS. Default nil: system roots.
	TLSConfig *tls.Config
	// Proxy selects the HTTP proxy per request. Default http.ProxyFromEnvironment.
	// A CONNECT not answered with 200 yields a *ProxyError (Classify: proxy-auth for
	// 407, proxy-connect otherwise).
	Proxy func(*http.Request) (*url.URL, error)
	// DisableHTTP2 turns off HTTP/2 over TLS. Default false: HTTP/2 is attempted.
	DisableHTTP2 bool
	// Retry is the retry policy. Default nil: DefaultRetryPolicy. Set
	// &RetryPolicy{MaxAttempts: 1} to disable retries.
	Retry *RetryPolicy
	// Breaker is the per-host circuit breaker policy. Default nil: no breaker.
	Breaker *BreakerPolicy
	// Metrics registers the client's Prometheus metrics (OpenTelemetry HTTP client
	// names, e.g. http_client_request_duration_seconds). Default nil: no metrics.
	// Several clients may share one registerer: the collectors are shared.
	Metrics prometheus.Registerer
	// Wrap, when set, wraps the round tripper that sends each attempt, for tracing:
	// for example func(rt http.RoundTripper) http.RoundTripper { return otelhttp.NewTransport(rt) }.
	// Each attempt (retries included) passes through it, so each gets its own span.
	// Default nil.
	Wrap func(http.RoundTripper) http.RoundTripper
	// Base replaces the *http.Transport NewTransport builds, e.g. with a *Balancer.
	// The phase timeouts, pool sizes, TLS and proxy fields are then ignored.
	// Default nil.
	Base http.RoundTripper
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// NewTransport returns the *http.Transport NewClient builds on: per-phase timeouts,
// a sized idle pool, the proxy hook that reports a failed CONNECT as *ProxyError.
func NewTransport(opts ClientOptions) *http.Transport {
	d := &net.Dialer{
		Timeout:   orDuration(opts.DialTimeout, 5*time.Second),
		KeepAlive: orDuration(opts.KeepAlive, 30*time.Second),
	}
	dial := d.DialContext
	if opts.DialContext != nil {
		dial = opts.DialContext
	}
	proxy := opts.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	t := &http.Transport{
		Proxy:                  proxy,
		OnProxyConnectResponse: onProxyConnectResponse,
		DialContext:            dial,
		TLSClientConfig:        opts.TLSConfig,
		TLSHandshakeTimeout:    orDuration(opts.TLSHandshakeTimeout, 10*time.Second),
		ResponseHeaderTimeout:  orDuration(opts.ResponseHeaderTimeout, 30*time.Second),
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           orInt(opts.MaxIdleConns, 256),
		MaxIdleConnsPerHost:    orInt(opts.MaxIdleConnsPerHost, 64),
		MaxConnsPerHost:        opts.MaxConnsPerHost,
		IdleConnTimeout:        orDuration(opts.IdleConnTimeout, 90*time.Second),
		ForceAttemptHTTP2:      !opts.DisableHTTP2,
	}
	return t
}

func onProxyConnectResponse(_ context.Context, proxyURL *url.URL, _ *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return &ProxyError{Proxy: proxyURL.Redacted(), Status: resp.StatusCode}
}

// NewClient returns a plain *http.Client configured by opts. Its transport is, from
// the outside in: retries (with a retry budget), a circuit breaker per host,
// the Wrap hook, metrics, and NewTransport(opts) (or opts.Base).
//
// Responses are streamed: nothing buffers a body. A response that is returned to
// the caller is never read by netkit; only responses discarded for a retry are
// drained (at most 64 KiB) and closed.
func NewClient(opts ClientOptions) *http.Client {
	return &http.Client{
		Transport: NewRoundTripper(opts),
		Timeout:   opts.Timeout,
	}
}

// NewRoundTripper returns the layered round tripper NewClient installs as its
// Transport, for callers that build their own http.Client.
func NewRoundTripper(opts ClientOptions) http.RoundTripper {
	var base http.RoundTripper
	if opts.Base != nil {
		base = opts.Base
	} else {
		t := NewTransport(opts)
		base = t
		if opts.MaxConnAge > 0 {
			base = &agingTransport{t: t, maxAge: opts.MaxConnAge}
		}
	}
	rt := base
	var m *clientMetrics
	if opts.Metrics != nil {
		m = registerMetrics(opts.Metrics)
		rt = &metricsTransport{next: rt, m: m}
	}
	if opts.Wrap != nil {
		rt = opts.Wrap(rt)
	}
	if opts.Breaker != nil {
		bt := newBreakerTransport(rt, *opts.Breaker)
		if m != nil {
			bt.onChange = func(host string, s BreakerState) { m.breaker.WithLabelValues(host).Set(float64(s)) }
		}
		rt = bt
	}
	policy := DefaultRetryPolicy
	if opts.Retry != nil {
		policy = *opts.Retry
	}
	if policy.MaxAttempts != 1 {
		rtt := newRetryTransport(rt, policy)
		if m != nil {
			rtt.onRetry = func(req *http.Request, k Kind) {
				host, _ := hostPort(req)
				m.retries.WithLabelValues(host, string(k)).Inc()
			}
			rtt.onBudget = func(req *http.Request) {
				host, _ := hostPort(req)
				m.budget.WithLabelValues(host).Inc()
			}
		}
		rt = rtt
	}
	return &stack{rt: rt, base: base}
}

// stack is the layered round tripper; CloseIdleConnections goes straight to the
// base, since a Wrap layer need not forward it.
type stack struct {
	rt, base http.RoundTripper
}

func (s *stack) RoundTrip(req *http.Request) (*http.Response, error) { return s.rt.RoundTrip(req) }

// CloseIdleConnections closes the idle connections of the base transport.
func (s *stack) CloseIdleConnections() { closeIdle(s.base) }

// agingTransport closes idle connections at least every maxAge/2, so no pooled
// connection is reused much longer than maxAge. It sweeps lazily from RoundTrip:
// no goroutine to own.
type agingTransport struct {
	t         *http.Transport
	maxAge    time.Duration
	lastSweep atomic.Int64 // unix nanoseconds
}

func (a *agingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	now := time.Now().UnixNano()
	last := a.lastSweep.Load()
	if last == 0 {
		a.lastSweep.CompareAndSwap(0, now)
	} else if time.Duration(now-last) >= a.maxAge/2 && a.lastSweep.CompareAndSwap(last, now) {
		a.t.CloseIdleConnections()
	}
	return a.t.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of the underlying transport.
func (a *agingTransport) CloseIdleConnections() { a.t.CloseIdleConnections() }

// closeIdler is the optional interface http.Client.CloseIdleConnections uses.
type closeIdler interface{ CloseIdleConnections() }

func closeIdle(rt http.RoundTripper) {
	if c, ok := rt.(closeIdler); ok {
		c.CloseIdleConnections()
	}
}
