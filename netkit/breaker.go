package netkit

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// BreakerPolicy configures the per-host circuit breaker of a netkit client. The
// zero value of each field means its default.
//
// A host's breaker opens after ConsecutiveFailures failures in a row, or when at
// least MinRequests requests in the last Window failed at FailureRate or more. While
// open, requests fail at once with a *BreakerOpenError. After OpenFor it lets
// HalfOpenProbes requests through: if they succeed it closes, if one fails it
// opens again. A failure is what Classify calls temporary (timeouts, refused,
// reset, 5xx, 429, ...); a 404 or a canceled request is not.
type BreakerPolicy struct {
	// ConsecutiveFailures opens the breaker. Default 5.
	ConsecutiveFailures int
	// FailureRate in (0, 1] opens the breaker over Window. Default 0.5.
	FailureRate float64
	// Window is the failure-rate window. Default 10s.
	Window time.Duration
	// MinRequests in Window before FailureRate applies. Default 20.
	MinRequests int
	// OpenFor is how long the breaker stays open before probing. Default 5s.
	OpenFor time.Duration
	// HalfOpenProbes is the number of requests let through while half-open,
	// all of which must succeed to close. Default 1.
	HalfOpenProbes int
}

func (p BreakerPolicy) withDefaults() BreakerPolicy {
	p.ConsecutiveFailures = orInt(p.ConsecutiveFailures, 5)
	if p.FailureRate == 0 {
		p.FailureRate = 0.5
	}
	p.Window = orDuration(p.Window, 10*time.Second)
	p.MinRequests = orInt(p.MinRequests, 20)
	p.OpenFor = orDuration(p.OpenFor, 5*time.Second)
	p.HalfOpenProbes = orInt(p.HalfOpenProbes, 1)
	return p
}

// BreakerOpenError is returned, without sending the request, while the circuit
// breaker for Host is open. Classify maps it to KindCircuitOpen.
type BreakerOpenError struct {
	Host  string
	Until time.Time // when the breaker will let a probe through
}

// Error names the host and when the next probe may go through.
func (e *BreakerOpenError) Error() string {
	return fmt.Sprintf("circuit breaker open for %s after repeated failures (next probe at %s)", e.Host, e.Until.Format(time.RFC3339))
}

// BreakerState is the state of one breaker.
type BreakerState int

// The breaker states.
const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "invalid"
}

const breakerBuckets = 10

// Breaker is one circuit breaker. NewClient keeps one per host; it is exported
// for callers guarding something other than an HTTP round trip.
type Breaker struct {
	p        BreakerPolicy
	mu       sync.Mutex
	state    BreakerState
	consec   int
	openedAt time.Time
	probes   int // probes in flight while half-open
	okProbes int
	// failure-rate window: ring of buckets of Window/breakerBuckets each.
	buckets [breakerBuckets]struct {
		start      time.Time
		total, bad int
	}
	// onChange, if set, is called with the new state while b.mu is held;
	// it must not call back into b.
	onChange func(BreakerState)
}

// NewBreaker returns a closed breaker with policy p.
func NewBreaker(p BreakerPolicy) *Breaker { return &Breaker{p: p.withDefaults()} }

// State returns the current state (open turns half-open once OpenFor has passed).
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && time.Since(b.openedAt) >= b.p.OpenFor {
		return BreakerHalfOpen
	}
	return b.state
}

// Allow reports whether a request may proceed. When it returns true the caller
// must call Done exactly once with the outcome.
func (b *Breaker) Allow() (ok bool, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerOpen:
		if time.Since(b.openedAt) < b.p.OpenFor {
			return false, b.openedAt.Add(b.p.OpenFor)
		}
		b.setState(BreakerHalfOpen)
		b.probes, b.okProbes = 0, 0
		fallthrough
	case BreakerHalfOpen:
		if b.probes+b.okProbes >= b.p.HalfOpenProbes {
			return false, time.Now()
		}
		b.probes++
	}
	return true, time.Time{}
}

// Done records the outcome of a request Allow let through.
func (b *Breaker) Done(failure bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.state == BreakerHalfOpen {
		if b.probes > 0 {
			b.probes--
		}
		if failure {
			b.open(now)
			return
		}
		b.okProbes++
		if b.okProbes >= b.p.HalfOpenProbes {
			b.setState(BreakerClosed)
			b.consec = 0
			b.buckets = [breakerBuckets]struct {
				start      time.Time
				total, bad int
			}{}
		}
		return
	}
	if b.state == BreakerOpen {
		return // a request that started before the breaker opened
	}
	width := b.p.Window / breakerBuckets
	slot := &b.buckets[int(now.UnixNano()/int64(width))%breakerBuckets]
	if bstart := now.Truncate(width); !slot.start.Equal(bstart) {
		slot.start, slot.total, slot.bad = bstart, 0, 0
	}
	slot.total++
	if failure {
		slot.bad++
		b.consec++
	} else {
		b.consec = 0
	}
	if b.consec >= b.p.ConsecutiveFailures {
		b.open(now)
		return
	}
	if failure {
		total, bad := 0, 0
		for _, s := range b.buckets {
			if now.Sub(s.start) < b.p.Window {
				total += s.total
				bad += s.bad
			}
		}
		if total >= b.p.MinRequests && float64(bad) >= b.p.FailureRate*float64(total) {
			b.open(now)
		}
	}
}

func (b *Breaker) open(now time.Time) {
	b.openedAt = now
	b.consec = 0
	b.setState(BreakerOpen)
}

func (b *Breaker) setState(s BreakerState) {
	if b.state == s {
		return
	}
	b.state = s
	if b.onChange != nil {
		b.onChange(s)
	}
}

// isFailure says whether an outcome counts against a breaker or an endpoint.
func isFailure(resp *http.Response, err error) bool {
	if err != nil {
		c := Classify(err)
		return c.Kind != KindCanceled && c.Kind != KindCircuitOpen && (c.Temporary() || c.Kind == KindUnknown || c.Kind == KindTLSOther || c.Kind == KindTLSHandshakeTimeout)
	}
	return retryableStatus(resp.StatusCode)
}

type breakerTransport struct {
	next     http.RoundTripper
	policy   BreakerPolicy
	mu       sync.Mutex
	hosts    map[string]*Breaker
	onChange func(host string, s BreakerState)
}

func newBreakerTransport(next http.RoundTripper, p BreakerPolicy) *breakerTransport {
	return &breakerTransport{next: next, policy: p.withDefaults(), hosts: make(map[string]*Breaker)}
}

func (t *breakerTransport) CloseIdleConnections() { closeIdle(t.next) }

func (t *breakerTransport) breaker(host string) *Breaker {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.hosts[host]
	if b == nil {
		b = &Breaker{p: t.policy}
		if t.onChange != nil {
			b.onChange = func(s BreakerState) { t.onChange(host, s) }
		}
		t.hosts[host] = b
	}
	return b
}

func (t *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	b := t.breaker(host)
	ok, until := b.Allow()
	if !ok {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &BreakerOpenError{Host: host, Until: until}
	}
	resp, err := t.next.RoundTrip(req)
	b.Done(isFailure(resp, err))
	return resp, err
}
