package netkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/berth-dev/berth/netkit/internal/memnet"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// memClient returns a netkit client dialing the in-memory network n.
func memClient(n *memnet.Network, opts ClientOptions) *http.Client {
	opts.DialContext = n.DialContext
	return NewClient(opts)
}

func status(code int, retryAfter string) func(int64, http.ResponseWriter, *http.Request) {
	return func(_ int64, w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter func() string
		policy     RetryPolicy
		deadline   time.Duration
		attempts   int64
		elapsed    time.Duration
		status     int
	}{
		{"seconds", func() string { return "2" }, RetryPolicy{}, 0, 3, 4 * time.Second, 200},
		{"http date", func() string { return time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) }, RetryPolicy{}, 0, 3, 6 * time.Second, 200},
		{"clamped", func() string { return "3600" }, RetryPolicy{MaxRetryAfter: 5 * time.Second}, 0, 3, 10 * time.Second, 200},
		{"past deadline", func() string { return "2" }, RetryPolicy{}, time.Second, 1, 0, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n memnet.Network
				c := &counter{fn: func(i int64, w http.ResponseWriter, r *http.Request) {
					if i < 3 {
						status(503, tc.retryAfter())(i, w, r)
						return
					}
					io.WriteString(w, "ok")
				}}
				memServer(t, &n, "svc:80", c)
				client := memClient(&n, ClientOptions{Retry: &tc.policy})
				defer client.CloseIdleConnections()
				ctx := context.Background()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://svc:80/", nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || c.n.Load() != tc.attempts || time.Since(start) != tc.elapsed {
					t.Errorf("status %d after %d attempts in %v; want %d, %d, %v", resp.StatusCode, c.n.Load(), time.Since(start), tc.status, tc.attempts, tc.elapsed)
				}
				if tc.status == 200 && string(body) != "ok" {
					t.Errorf("body %q", body)
				}
			})
		})
	}
}

func TestRetryOnlyWhenSafe(t *testing.T) {
	for _, tc := range []struct {
		name     string
		req      func() *http.Request
		code     int
		attempts int64
	}{
		{"GET 503", func() *http.Request { r, _ := http.NewRequest("GET", "http://svc:80/", nil); return r }, 503, 3},
		{"GET 404", func() *http.Request { r, _ := http.NewRequest("GET", "http://svc:80/", nil); return r }, 404, 1},
		{"GET 501", func() *http.Request { r, _ := http.NewRequest("GET", "http://svc:80/", nil); return r }, 501, 1},
		{"POST", func() *http.Request {
			r, _ := http.NewRequest("POST", "http://svc:80/", strings.NewReader("x"))
			return r
		}, 503, 1},
		{"POST with key", func() *http.Request {
			r, _ := http.NewRequest("POST", "http://svc:80/", strings.NewReader("payload"))
			r.Header.Set("Idempotency-Key", "k1")
			return r
		}, 503, 3},
		{"PUT without GetBody", func() *http.Request {
			r, _ := http.NewRequest("PUT", "http://svc:80/", io.NopCloser(strings.NewReader("x")))
			return r
		}, 503, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n memnet.Network
				var bodies []string
				var mu sync.Mutex
				c := &counter{fn: func(i int64, w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					mu.Lock()
					bodies = append(bodies, string(b))
					mu.Unlock()
					w.WriteHeader(tc.code)
				}}
				memServer(t, &n, "svc:80", c)
				client := memClient(&n, ClientOptions{})
				defer client.CloseIdleConnections()
				resp, err := client.Do(tc.req())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := c.n.Load(); got != tc.attempts {
					t.Errorf("%d attempts, want %d", got, tc.attempts)
				}
				for _, b := range bodies {
					if b != bodies[0] {
						t.Errorf("replayed body %q differs from %q", b, bodies[0])
					}
				}
			})
		})
	}
}

func TestRetryStopsWhenCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n memnet.Network
		c := &counter{fn: status(503, "10")}
		memServer(t, &n, "svc:80", c)
		client := memClient(&n, ClientOptions{})
		defer client.CloseIdleConnections()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://svc:80/", nil)
		_, err := client.Do(req)
		if Classify(err).Kind != KindCanceled || time.Since(start) != 50*time.Millisecond || c.n.Load() != 1 {
			t.Errorf("err %v after %v and %d attempts; want canceled after 50ms, 1 attempt", err, time.Since(start), c.n.Load())
		}
	})
}

// TestRetryRefusedThenUp: a service that refuses connections while it starts
// is reached by the retries once it listens, and the refusals are not the
// caller's error; if it listens only after the last attempt, the caller gets
// the refusal, classified. The service comes up at a refused dial, so the
// outcome does not hang on the jitter.
func TestRetryRefusedThenUp(t *testing.T) {
	const attempts = 4
	for _, tc := range []struct {
		upAfter int // the service listens after this many refused dials
		ok      bool
	}{
		{1, true},
		{attempts - 1, true},
		{attempts, false},
	} {
		t.Run(fmt.Sprintf("up after %d refusals", tc.upAfter), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n memnet.Network
				srv := &counter{fn: status(200, "")}
				var dials, refused atomic.Int64
				client := NewClient(ClientOptions{
					Retry: &RetryPolicy{MaxAttempts: attempts, BaseDelay: time.Second},
					DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
						dials.Add(1)
						c, err := n.DialContext(ctx, network, addr)
						if err != nil && Classify(err).Kind == KindRefused && refused.Add(1) == int64(tc.upAfter) {
							memServer(t, &n, "svc:80", srv)
						}
						return c, err
					},
				})
				defer client.CloseIdleConnections()
				start := time.Now()
				resp, err := client.Get("http://svc:80/")
				if !tc.ok {
					if err == nil {
						resp.Body.Close()
						t.Fatalf("got %s although the service listened only after the last attempt", resp.Status)
					}
					if k := Classify(err).Kind; k != KindRefused {
						t.Errorf("err %v classified %s, want %s", err, k, KindRefused)
					}
					if d := dials.Load(); d != attempts {
						t.Errorf("%d dials, want %d (every attempt)", d, attempts)
					}
					return
				}
				if err != nil {
					t.Fatalf("service up after %d refusals, %d attempts allowed: %v", tc.upAfter, attempts, err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d, want 200", resp.StatusCode)
				}
				if d, r := dials.Load(), srv.n.Load(); d != int64(tc.upAfter)+1 || r != 1 {
					t.Errorf("%d dials and %d requests served, want %d and 1", d, r, tc.upAfter+1)
				}
				// Full jitter: the waits are below the ceilings 1s, 2s, 4s, ...
				if took, ceil := time.Since(start), time.Second<<tc.upAfter-time.Second; took >= ceil {
					t.Errorf("took %v, want under %v (the backoff ceilings)", took, ceil)
				}
			})
		})
	}
}

func TestRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n memnet.Network
		c := &counter{fn: status(503, "1")}
		memServer(t, &n, "svc:80", c)
		client := memClient(&n, ClientOptions{MaxIdleConnsPerHost: 20})
		defer client.CloseIdleConnections()
		// 10 requests at once: 20% of 10 is 2, below the minimum of 3, so 3 of them
		// retry (twice each) and the other 7 get the 503 at once.
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				<-start
				resp, err := client.Get("http://svc:80/")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			})
		}
		synctest.Wait()
		close(start)
		wg.Wait()
		if got := c.n.Load(); got != 10+3*2 {
			t.Errorf("%d attempts, want 16", got)
		}
	})
}

// TestRetryStorm is the retry-storm benchmark under fake time: a backend failing
// 100% for 10s under steady load from 10 workers. Attempts over requests must stay
// at most 1.2 (the budget holds).
func TestRetryStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n memnet.Network
		c := &counter{fn: func(_ int64, w http.ResponseWriter, _ *http.Request) {
			time.Sleep(20 * time.Millisecond) // fake time: the backend's service time
			w.WriteHeader(503)
		}}
		memServer(t, &n, "svc:80", c)
		client := memClient(&n, ClientOptions{MaxIdleConnsPerHost: 64})
		defer client.CloseIdleConnections()
		var requests int64
		var mu sync.Mutex
		end := time.Now().Add(10 * time.Second)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				for time.Now().Before(end) {
					resp, err := client.Get("http://svc:80/")
					if err == nil {
						resp.Body.Close()
					}
					mu.Lock()
					requests++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		ratio := float64(c.n.Load()) / float64(requests)
		t.Logf("retry storm: %d requests, %d attempts, ratio %.3f", requests, c.n.Load(), ratio)
		if ratio > 1.2 {
			t.Errorf("attempts/requests = %.3f, want <= 1.2", ratio)
		}
	})
}

func TestBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n memnet.Network
		var code sync.Map
		code.Store("c", 503)
		c := &counter{fn: func(_ int64, w http.ResponseWriter, _ *http.Request) {
			v, _ := code.Load("c")
			w.WriteHeader(v.(int))
		}}
		memServer(t, &n, "svc:80", c)
		reg := prometheus.NewRegistry()
		client := memClient(&n, ClientOptions{
			Retry:   &RetryPolicy{MaxAttempts: 1},
			Breaker: &BreakerPolicy{ConsecutiveFailures: 3, OpenFor: 5 * time.Second},
			Metrics: reg,
		})
		defer client.CloseIdleConnections()
		get := func() error {
			resp, err := client.Get("http://svc:80/")
			if err != nil {
				return err
			}
			resp.Body.Close()
			return CheckStatus(resp)
		}
		for range 3 {
			get()
		}
		err := get()
		if Classify(err).Kind != KindCircuitOpen || c.n.Load() != 3 {
			t.Fatalf("4th request: %v after %d attempts; want circuit-open without sending", err, c.n.Load())
		}
		if v := testutil.ToFloat64(mustGauge(t, reg)); v != float64(BreakerOpen) {
			t.Errorf("breaker gauge %v", v)
		}
		time.Sleep(5 * time.Second) // fake time: the open period passes
		code.Store("c", 200)
		if err := get(); err != nil {
			t.Fatalf("probe after OpenFor: %v", err)
		}
		// A 404 is the server's answer, not a failure: it never opens the breaker.
		code.Store("c", 404)
		for range 10 {
			get()
		}
		if err := get(); Classify(err).Kind != KindHTTPStatus {
			t.Errorf("after 404s: %v, want the 404", err)
		}
	})
}

func mustGauge(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "netkit_client_breaker_state" {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatal("no breaker gauge")
	return nil
}

func TestBreakerFailureRateAndHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(BreakerPolicy{ConsecutiveFailures: 100, MinRequests: 10, FailureRate: 0.5})
		for i := range 10 {
			ok, _ := b.Allow()
			if !ok {
				t.Fatalf("request %d refused early", i)
			}
			b.Done(i%2 == 1)
		}
		if b.State() != BreakerOpen {
			t.Fatalf("state %v after 50%% failures, want open", b.State())
		}
		time.Sleep(5 * time.Second)
		if b.State() != BreakerHalfOpen {
			t.Fatalf("state %v after OpenFor, want half-open", b.State())
		}
		ok, _ := b.Allow()
		if ok2, _ := b.Allow(); !ok || ok2 {
			t.Fatalf("half-open should let exactly one probe through: %v %v", ok, ok2)
		}
		b.Done(true)
		if b.State() != BreakerOpen {
			t.Fatalf("failed probe: state %v, want open", b.State())
		}
		// Failures older than the window do not count.
		b2 := NewBreaker(BreakerPolicy{ConsecutiveFailures: 100, MinRequests: 10})
		for i := range 9 {
			b2.Allow()
			b2.Done(i < 4)
		}
		time.Sleep(11 * time.Second)
		b2.Allow()
		b2.Done(true)
		if b2.State() != BreakerClosed {
			t.Errorf("old failures counted: %v", b2.State())
		}
	})
}

func TestWrapHookAndMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Traceparent") == "" {
			w.WriteHeader(400)
			return
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	var spans []string
	var mu sync.Mutex
	client := NewClient(ClientOptions{
		Metrics: reg,
		Wrap: func(next http.RoundTripper) http.RoundTripper {
			// Any RoundTripper wrapper works, otelhttp.NewTransport included.
			return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				resp, err := next.RoundTrip(r)
				mu.Lock()
				spans = append(spans, r.Method+" "+r.URL.Path)
				mu.Unlock()
				return resp, err
			})
		},
	})
	resp, err := client.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" || len(spans) != 1 {
		t.Fatalf("body %q spans %v", b, spans)
	}
	n, err := testutil.GatherAndCount(reg, "http_client_request_duration_seconds")
	if err != nil || n != 1 {
		t.Errorf("duration series: %d %v", n, err)
	}
	// A second client on the same registerer shares the collectors.
	NewClient(ClientOptions{Metrics: reg})
	client.CloseIdleConnections()
	checkNoLeaks(t)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestStreamingNotBuffered checks a large successful body reaches the caller
// unread by the retry layer, and that the client leaves no goroutines behind.
func TestStreamingNotBuffered(t *testing.T) {
	payload := bytes.Repeat([]byte("z"), 4<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(payload)
	}))
	defer srv.Close()
	client := NewClient(ClientOptions{Breaker: &BreakerPolicy{}})
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("body: %d bytes, %v", len(got), err)
	}
	client.CloseIdleConnections()
	checkNoLeaks(t)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"Fri, 02 Jan 2026 03:04:35 GMT", 30 * time.Second, true},
		{"Friday, 02-Jan-26 03:04:35 GMT", 30 * time.Second, true},
		{"Fri Jan  2 03:04:35 2026", 30 * time.Second, true},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0, true},
	} {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	_ = errors.New
}

// TestMaxConnAge checks pooled connections are replaced after MaxConnAge, so a
// pool does not stay pinned to an address forever.
func TestMaxConnAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n memnet.Network
		ln := n.Listen("svc:80")
		var conns atomic.Int64
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}}
		go srv.Serve(ln)
		defer srv.Close()
		client := memClient(&n, ClientOptions{MaxConnAge: time.Minute})
		defer client.CloseIdleConnections()
		for range 19 { // one request every 10s for 3 minutes
			resp, err := client.Get("http://svc:80/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			time.Sleep(10 * time.Second)
		}
		// Sweeps every 30s: about 6 connections, never 1.
		if got := conns.Load(); got < 4 || got > 8 {
			t.Errorf("%d connections over 3 minutes with MaxConnAge 1m, want about 6", got)
		}
	})
}
