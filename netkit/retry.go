package netkit

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RetryPolicy says when and how often a netkit client retries. The zero value of
// each field means its default.
//
// A request is retried only when all of these hold: its method is idempotent
// (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or it carries an Idempotency-Key
// header; its body can be replayed (no body, or Request.GetBody set); the
// failure is temporary (Cause.Temporary: timeouts, refused, reset, 408, 429, 5xx
// but 501/505); the caller has not canceled; the wait fits in the remaining
// deadline; and the retry budget allows it.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included. Default 3.
	// 1 disables retries.
	MaxAttempts int
	// BaseDelay is the backoff before the first retry; it doubles per retry and is
	// fully jittered (a uniform wait in [0, delay)). Default 100ms.
	BaseDelay time.Duration
	// MaxDelay caps the backoff. Default 5s.
	MaxDelay time.Duration
	// MaxRetryAfter caps a server's Retry-After (seconds or an HTTP date). Default 30s.
	MaxRetryAfter time.Duration
	// BudgetRatio is the retry budget: retries in flight (backoff included) may be
	// at most this fraction of the requests in flight, as in Envoy. Default 0.2.
	BudgetRatio float64
	// MinRetryConcurrency lets this many retries run regardless of the ratio, so
	// a lightly loaded client still retries. Default 3.
	MinRetryConcurrency int
}

// DefaultRetryPolicy is the policy used when ClientOptions.Retry is nil:
// 3 attempts, 100ms base, 5s cap, Retry-After up to 30s, a 20% budget with a
// minimum of 3 concurrent retries.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:         3,
	BaseDelay:           100 * time.Millisecond,
	MaxDelay:            5 * time.Second,
	MaxRetryAfter:       30 * time.Second,
	BudgetRatio:         0.2,
	MinRetryConcurrency: 3,
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy
	if p.MaxAttempts == 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	p.BaseDelay = orDuration(p.BaseDelay, d.BaseDelay)
	p.MaxDelay = orDuration(p.MaxDelay, d.MaxDelay)
	p.MaxRetryAfter = orDuration(p.MaxRetryAfter, d.MaxRetryAfter)
	if p.BudgetRatio == 0 {
		p.BudgetRatio = d.BudgetRatio
	}
	p.MinRetryConcurrency = orInt(p.MinRetryConcurrency, d.MinRetryConcurrency)
	return p
}

// Backoff returns the full-jitter backoff before retry number n (1 for the first
// retry): a uniform random duration in [0, min(MaxDelay, BaseDelay*2^(n-1))).
func (p RetryPolicy) Backoff(n int) time.Duration {
	p = p.withDefaults()
	ceil := float64(p.BaseDelay) * math.Pow(2, float64(n-1))
	if ceil > float64(p.MaxDelay) {
		ceil = float64(p.MaxDelay)
	}
	if ceil < 1 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil)))
}

// ParseRetryAfter parses a Retry-After header value, either delay-seconds or an
// HTTP date (http.ParseTime), relative to now. ok is false when v is empty or invalid.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > math.MaxInt64/int64(time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

// retryBudget limits retries in flight to a fraction of requests in flight.
type retryBudget struct {
	mu       sync.Mutex
	active   int // requests in flight, retries included
	retrying int // requests currently waiting for or running a retry
	ratio    float64
	min      int
}

func (b *retryBudget) start() {
	b.mu.Lock()
	b.active++
	b.mu.Unlock()
}

func (b *retryBudget) finish(retrying bool) {
	b.mu.Lock()
	b.active--
	if retrying {
		b.retrying--
	}
	b.mu.Unlock()
}

// tryRetry reserves a retry slot for a request that is not yet retrying.
func (b *retryBudget) tryRetry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := int(b.ratio * float64(b.active))
	if limit < b.min {
		limit = b.min
	}
	if b.retrying >= limit {
		return false
	}
	b.retrying++
	return true
}

type retryTransport struct {
	next   http.RoundTripper
	policy RetryPolicy
	budget *retryBudget
	// metrics, when set, counts retries and budget refusals.
	onRetry  func(req *http.Request, reason Kind)
	onBudget func(req *http.Request)
}

func newRetryTransport(next http.RoundTripper, p RetryPolicy) *retryTransport {
	p = p.withDefaults()
	return &retryTransport{
		next:   next,
		policy: p,
		budget: &retryBudget{ratio: p.BudgetRatio, min: p.MinRetryConcurrency},
	}
}

func (t *retryTransport) CloseIdleConnections() { closeIdle(t.next) }

// IdempotencyKeyHeader marks a non-idempotent request as safe to retry.
const IdempotencyKeyHeader = "Idempotency-Key"

func retryable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
	default:
		if req.Header.Get(IdempotencyKeyHeader) == "" && req.Header.Get("X-Idempotency-Key") == "" {
			return false
		}
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// drainLimit bounds how much of a discarded response is read so its connection
// can be reused.
const drainLimit = 64 << 10

func discard(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, drainLimit)
	resp.Body.Close()
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !retryable(req) {
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	t.budget.start()
	inRetry := false
	defer func() { t.budget.finish(inRetry) }()

	for attempt := 1; ; attempt++ {
		areq := req
		if attempt > 1 {
			areq = req.Clone(ctx)
			if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				areq.Body = body
			}
		}
		resp, err := t.next.RoundTrip(areq)
		if attempt >= t.policy.MaxAttempts || ctx.Err() != nil {
			return resp, err
		}
		var cause Cause
		var retryAfter time.Duration
		hasRetryAfter := false
		if err != nil {
			cause = Classify(err)
		} else {
			if !retryableStatus(resp.StatusCode) {
				return resp, nil
			}
			cause = Cause{Kind: KindHTTPStatus, Status: resp.StatusCode}
			retryAfter, hasRetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		if !cause.Temporary() {
			return resp, err
		}
		wait := t.policy.Backoff(attempt)
		if hasRetryAfter {
			wait = min(retryAfter, t.policy.MaxRetryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return resp, err // the wait would outlive the caller's deadline
		}
		if !inRetry {
			if !t.budget.tryRetry() {
				if t.onBudget != nil {
					t.onBudget(req)
				}
				return resp, err
			}
			inRetry = true
		}
		if resp != nil {
			discard(resp)
		}
		if t.onRetry != nil {
			t.onRetry(req, cause.Kind)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// sleepCtx waits for d or until ctx is done, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
