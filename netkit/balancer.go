package netkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Policy is how a Balancer chooses an endpoint.
type Policy int

const (
	// PowerOfTwoChoices picks two live endpoints at random and sends to the one
	// with the lower cost: its latency estimate (a peak EWMA: rises at once,
	// falls by a per-sample weight, decays while idle) times its outstanding
	// requests plus one. It is the default.
	PowerOfTwoChoices Policy = iota
	// RoundRobin cycles through the live endpoints; for comparison.
	RoundRobin
)

// BalancerOptions configures NewBalancer. The zero value works.
type BalancerOptions struct {
	// Resolver looks the target up. Default: the target's authority as DNS server
	// (dns://10.0.0.10:53/name:port) when given, else net.DefaultResolver.
	Resolver *net.Resolver
	// Interval between resolutions. Default 30s.
	Interval time.Duration
	// MinInterval is the least time between resolutions triggered by connection
	// errors. Default 1s.
	MinInterval time.Duration
	// Client configures each endpoint's transport (timeouts, pool, TLS). Its Retry,
	// Breaker, Metrics, Wrap and Base fields are ignored: put the Balancer in
	// ClientOptions.Base to have those over it. MaxConnAge defaults to 5m here, so
	// keep-alive pools never stay pinned to old addresses.
	Client ClientOptions
	// Policy chooses endpoints. Default PowerOfTwoChoices.
	Policy Policy
	// EjectAfter consecutive failures (Classify temporary, 5xx) eject an endpoint.
	// Default 5.
	EjectAfter int
	// EjectFor is the base ejection time; it grows with each ejection of the same
	// endpoint, up to 10 times. Default 10s.
	EjectFor time.Duration
	// MaxEjectPercent bounds the share of endpoints ejected at once. Default 50.
	MaxEjectPercent int
	// FailurePenalty is the latency recorded for a failed request, so an endpoint
	// that fails fast does not look fastest. Default 1s.
	FailurePenalty time.Duration
	// DecayTime is the time constant with which an endpoint's latency estimate
	// decays while it gets no requests, so a slow or failed endpoint is tried
	// again eventually. Default 10s.
	DecayTime time.Duration
	// Logger receives a line when the endpoint set changes or a resolution fails.
	// Default slog.Default().
	Logger *slog.Logger

	lookup func(context.Context) ([]string, error) // tests: replaces DNS
}

// Balancer is an http.RoundTripper that sends each request to one endpoint of a
// target re-resolved from DNS. Targets:
//
//	dns:///name:port            A and AAAA records of name, all on port
//	dns://server:53/name:port   the same, asking the DNS server given
//	srv:///_svc._proto.name     SRV records: each target host and port
//	static:///host:port,host:port  a fixed list (tests, benchmarks, fixed fleets)
//
// Kubernetes headless services (dns:///svc.ns.svc.cluster.local:8080 or
// srv:///_http._tcp.svc.ns.svc.cluster.local) and Consul's DNS interface
// (srv:///web.service.consul) work as is.
//
// The request URL's host names the service: it stays the Host header, the TLS
// server name and the name verified; the Balancer only chooses the address dialed. When a
// resolution fails or returns nothing, the last good set is kept. Each endpoint
// has its own transport and connection pool, closed when it leaves the set.
type Balancer struct {
	target string
	opts   BalancerOptions
	lookup func(context.Context) ([]string, error)
	log    *slog.Logger

	mu        sync.RWMutex
	endpoints []*endpoint
	retired   []*endpoint // left the set; their pools are closed as requests finish
	lastErr   error

	rr        atomic.Uint64
	kick      chan struct{}
	firstDone chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}
}

type endpoint struct {
	addr        string
	rt          *http.Transport
	aging       *agingTransport
	outstanding atomic.Int64

	mu           sync.Mutex
	ewma         float64 // nanoseconds
	stamp        time.Time
	consecFail   int
	ejections    int
	ejectedUntil atomic.Int64 // unix nanoseconds
}

func (e *endpoint) ejected(now time.Time) bool { return now.UnixNano() < e.ejectedUntil.Load() }

// EndpointStatus describes one endpoint of a Balancer.
type EndpointStatus struct {
	Addr        string
	Outstanding int64
	Latency     time.Duration // peak EWMA
	Ejected     bool
}

// NoEndpointsError is returned when a target has no endpoints; Err is the last
// resolution error, if any, so Classify sees the DNS cause.
type NoEndpointsError struct {
	Target string
	Err    error
}

// Error names the target and the last resolution error.
func (e *NoEndpointsError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("no endpoints for %s: %v", e.Target, e.Err)
	}
	return "no endpoints for " + e.Target
}

// Unwrap returns the last resolution error, so Classify sees its DNS cause.
func (e *NoEndpointsError) Unwrap() error { return e.Err }

// NewBalancer parses target and starts resolving it in the background. Requests
// made before the first resolution finishes wait for it. Close stops it.
func NewBalancer(target string, opts BalancerOptions) (*Balancer, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("balancer target %q: %w", target, err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	res := opts.Resolver
	if res == nil && u.Host != "" {
		server := u.Host
		if _, _, err := net.SplitHostPort(server); err != nil {
			server = net.JoinHostPort(server, "53")
		}
		res = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
	}
	if res == nil {
		res = net.DefaultResolver
	}
	b := &Balancer{
		target:    target,
		opts:      opts,
		log:       opts.Logger,
		kick:      make(chan struct{}, 1),
		firstDone: make(chan struct{}),
		done:      make(chan struct{}),
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	switch u.Scheme {
	case "dns":
		host, port, err := net.SplitHostPort(name)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("balancer target %q: want dns:///name:port", target)
		}
		b.lookup = func(ctx context.Context) ([]string, error) {
			ips, err := res.LookupIPAddr(ctx, host)
			addrs := make([]string, 0, len(ips))
			for _, ip := range ips {
				addrs = append(addrs, net.JoinHostPort(ip.IP.String(), port))
			}
			return addrs, err
		}
	case "srv":
		if name == "" {
			return nil, fmt.Errorf("balancer target %q: want srv:///_service._proto.name", target)
		}
		b.lookup = func(ctx context.Context) ([]string, error) {
			_, srvs, err := res.LookupSRV(ctx, "", "", name)
			if err != nil {
				return nil, err
			}
			var addrs []string
			var lastErr error
			for _, s := range srvs {
				port := strconv.Itoa(int(s.Port))
				h := strings.TrimSuffix(s.Target, ".")
				if net.ParseIP(h) != nil {
					addrs = append(addrs, net.JoinHostPort(h, port))
					continue
				}
				ips, err := res.LookupIPAddr(ctx, s.Target)
				if err != nil {
					lastErr = err
					continue
				}
				for _, ip := range ips {
					addrs = append(addrs, net.JoinHostPort(ip.IP.String(), port))
				}
			}
			if len(addrs) == 0 {
				return nil, lastErr
			}
			return addrs, nil
		}
	case "static":
		addrs := strings.Split(name, ",")
		for _, a := range addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("balancer target %q: want static:///host:port,host:port", target)
			}
		}
		b.lookup = func(context.Context) ([]string, error) { return slices.Clone(addrs), nil }
	default:
		return nil, fmt.Errorf("balancer target %q: scheme must be dns, srv or static", target)
	}
	if opts.lookup != nil {
		b.lookup = opts.lookup
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go b.loop(ctx)
	return b, nil
}

func (b *Balancer) interval() time.Duration { return orDuration(b.opts.Interval, 30*time.Second) }

func (b *Balancer) loop(ctx context.Context) {
	defer close(b.done)
	first := true
	defer func() {
		if first { // closed before the first resolution: release waiting requests
			close(b.firstDone)
		}
	}()
	var last time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.kick:
			if wait := orDuration(b.opts.MinInterval, time.Second) - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		b.resolve(ctx)
		if first {
			close(b.firstDone)
			first = false
		}
		t.Reset(b.interval())
	}
}

func (b *Balancer) resolve(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, min(b.interval(), 10*time.Second))
	defer cancel()
	addrs, err := b.lookup(ctx)
	if ctx.Err() != nil && err == nil {
		err = ctx.Err()
	}
	if err == nil && len(addrs) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		b.mu.Lock()
		b.lastErr = err
		kept := len(b.endpoints)
		b.mu.Unlock()
		b.log.Warn("balancer: resolution failed, keeping the last good endpoints",
			"target", b.target, "cause", Classify(err).Kind, "err", err, "kept", kept)
		return
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	b.mu.Lock()
	b.lastErr = nil
	old := make(map[string]*endpoint, len(b.endpoints))
	for _, e := range b.endpoints {
		old[e.addr] = e
	}
	var next []*endpoint
	var added []string
	initial := b.meanLatencyLocked()
	for _, a := range addrs {
		if e, ok := old[a]; ok {
			next = append(next, e)
			delete(old, a)
			continue
		}
		next = append(next, b.newEndpoint(a, initial))
		added = append(added, a)
	}
	b.endpoints = next
	var removed []string
	for a, e := range old {
		removed = append(removed, a)
		b.retired = append(b.retired, e)
	}
	// Close the pools of retired endpoints; drop them once nothing is in flight.
	keep := b.retired[:0]
	for _, e := range b.retired {
		e.rt.CloseIdleConnections()
		if e.outstanding.Load() > 0 {
			keep = append(keep, e)
		}
	}
	b.retired = keep
	b.mu.Unlock()
	if len(added) > 0 || len(removed) > 0 {
		b.log.Info("balancer: endpoints changed", "target", b.target, "added", added, "removed", removed, "total", len(next))
	}
}

func (b *Balancer) meanLatencyLocked() float64 {
	var sum float64
	n := 0
	for _, e := range b.endpoints {
		e.mu.Lock()
		if e.ewma > 0 {
			sum += e.ewma
			n++
		}
		e.mu.Unlock()
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func (b *Balancer) newEndpoint(addr string, initial float64) *endpoint {
	co := b.opts.Client
	if co.MaxConnAge == 0 {
		co.MaxConnAge = 5 * time.Minute
	}
	// No proxy: the endpoint is dialed directly.
	co.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	// Every connection of this transport goes to addr, whatever the URL says, so
	// the URL keeps the service name for the Host header, TLS SNI and verification.
	dial := co.DialContext
	if dial == nil {
		d := &net.Dialer{Timeout: orDuration(co.DialTimeout, 5*time.Second), KeepAlive: orDuration(co.KeepAlive, 30*time.Second)}
		dial = d.DialContext
	}
	co.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, addr)
	}
	t := NewTransport(co)
	return &endpoint{addr: addr, rt: t, aging: &agingTransport{t: t, maxAge: co.MaxConnAge}, ewma: initial, stamp: time.Now()}
}

// Endpoints returns the current endpoints and their state.
func (b *Balancer) Endpoints() []EndpointStatus {
	b.mu.RLock()
	defer b.mu.RUnlock()
	now := time.Now()
	out := make([]EndpointStatus, 0, len(b.endpoints))
	for _, e := range b.endpoints {
		e.mu.Lock()
		out = append(out, EndpointStatus{Addr: e.addr, Outstanding: e.outstanding.Load(), Latency: time.Duration(e.ewma), Ejected: e.ejected(now)})
		e.mu.Unlock()
	}
	return out
}

func (b *Balancer) pick() (*endpoint, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := len(b.endpoints)
	if n == 0 {
		return nil, &NoEndpointsError{Target: b.target, Err: b.lastErr}
	}
	now := time.Now()
	live := make([]*endpoint, 0, n)
	for _, e := range b.endpoints {
		if !e.ejected(now) {
			live = append(live, e)
		}
	}
	if len(live) == 0 {
		live = b.endpoints // everything ejected: better some endpoint than none
	}
	if len(live) == 1 {
		return live[0], nil
	}
	if b.opts.Policy == RoundRobin {
		return live[b.rr.Add(1)%uint64(len(live))], nil
	}
	i := rand.IntN(len(live))
	j := rand.IntN(len(live) - 1)
	if j >= i {
		j++
	}
	a, c := live[i], live[j]
	if c.cost(now, b.decay()) < a.cost(now, b.decay()) {
		return c, nil
	}
	return a, nil
}

// ewmaAlpha is the weight of a new latency sample below the current estimate.
const ewmaAlpha = 0.3

func (b *Balancer) decay() float64 { return float64(orDuration(b.opts.DecayTime, 10*time.Second)) }

// cost is the peak-EWMA latency, decayed towards zero while no answer came,
// times the outstanding requests plus one.
func (e *endpoint) cost(now time.Time, decay float64) float64 {
	e.mu.Lock()
	lat := e.ewma * math.Exp(-float64(now.Sub(e.stamp))/decay)
	e.mu.Unlock()
	return (lat + 1) * float64(e.outstanding.Load()+1)
}

func (e *endpoint) observe(rtt time.Duration, failed bool, o *BalancerOptions, b *Balancer) {
	now := time.Now()
	v := float64(rtt)
	if failed {
		v = max(v, float64(orDuration(o.FailurePenalty, time.Second)))
	}
	e.mu.Lock()
	// The stored value first decays with the time since it was last updated (so an
	// endpoint left alone for a while gets probed again), then the sample enters:
	// at once if higher (peak), by a per-sample weight if lower, so a single noise
	// spike on a busy endpoint fades within a few answers.
	e.ewma *= math.Exp(-float64(now.Sub(e.stamp)) / b.decay())
	e.stamp = now
	if v > e.ewma {
		e.ewma = v
	} else {
		e.ewma += ewmaAlpha * (v - e.ewma)
	}
	if !failed {
		e.consecFail = 0
		e.mu.Unlock()
		return
	}
	e.consecFail++
	want := e.consecFail >= orInt(o.EjectAfter, 5) && !e.ejected(now)
	e.mu.Unlock()
	if !want || !b.mayEject(now) {
		return
	}
	e.mu.Lock()
	e.ejections++
	until := now.Add(orDuration(o.EjectFor, 10*time.Second) * time.Duration(min(e.ejections, 10)))
	e.ejectedUntil.Store(until.UnixNano())
	e.consecFail = 0
	e.mu.Unlock()
	b.log.Warn("balancer: endpoint ejected", "target", b.target, "addr", e.addr, "until", until)
}

// mayEject reports whether one more endpoint may be ejected.
func (b *Balancer) mayEject(now time.Time) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ejected := 0
	for _, e := range b.endpoints {
		if e.ejected(now) {
			ejected++
		}
	}
	limit := len(b.endpoints) * orInt(b.opts.MaxEjectPercent, 50) / 100
	return ejected < limit
}

func (b *Balancer) kickResolve() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// RoundTrip sends req to one endpoint of the target.
func (b *Balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case <-b.firstDone:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	e, err := b.pick()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	e.outstanding.Add(1)
	start := time.Now()
	resp, err := e.aging.RoundTrip(req)
	failed := isFailure(resp, err)
	if err != nil {
		switch Classify(err).Kind {
		case KindRefused, KindUnreachable, KindNoRoute, KindTimeout, KindReset:
			b.kickResolve() // the endpoint may be gone: look again soon
		case KindCanceled:
			failed = false
		}
	}
	e.observe(time.Since(start), failed, &b.opts, b)
	if err != nil {
		e.outstanding.Add(-1)
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded connection (an io.ReadWriteCloser); leave it as is.
		e.outstanding.Add(-1)
		return resp, nil
	}
	resp.Body = &doneBody{ReadCloser: resp.Body, done: func() { e.outstanding.Add(-1) }}
	return resp, nil
}

// CloseIdleConnections closes the idle connections of every endpoint.
func (b *Balancer) CloseIdleConnections() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, e := range b.endpoints {
		e.rt.CloseIdleConnections()
	}
	for _, e := range b.retired {
		e.rt.CloseIdleConnections()
	}
}

// Close stops re-resolution and closes idle connections. In-flight requests finish.
func (b *Balancer) Close() error {
	b.cancel()
	<-b.done
	b.CloseIdleConnections()
	return nil
}

// doneBody calls done once when the body is closed or fully read.
type doneBody struct {
	io.ReadCloser
	once atomic.Bool
	done func()
}

func (b *doneBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.once.CompareAndSwap(false, true) {
		b.done()
	}
	return n, err
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	if b.once.CompareAndSwap(false, true) {
		b.done()
	}
	return err
}
