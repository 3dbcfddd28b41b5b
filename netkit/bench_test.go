package netkit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func benchGET(b *testing.B, client *http.Client) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkBareClientGET is the baseline: a plain http.Client on a clone of
// http.DefaultTransport, GET over loopback.
func BenchmarkBareClientGET(b *testing.B) {
	benchGET(b, &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()})
}

// BenchmarkClientGET is the same GET through NewClient with its defaults
// (retry layer on, no breaker, no metrics).
func BenchmarkClientGET(b *testing.B) {
	benchGET(b, NewClient(ClientOptions{}))
}

// BenchmarkClientGETBreaker adds the per-host circuit breaker.
func BenchmarkClientGETBreaker(b *testing.B) {
	benchGET(b, NewClient(ClientOptions{Breaker: &BreakerPolicy{}}))
}

// BenchmarkClientGETMetrics adds Prometheus metrics.
func BenchmarkClientGETMetrics(b *testing.B) {
	benchGET(b, NewClient(ClientOptions{Metrics: prometheus.NewRegistry()}))
}

// cannedRT answers every request at once with an empty 200, so the stack
// benchmarks measure netkit's own layers without any network.
type cannedRT struct{}

func (cannedRT) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

func benchRT(b *testing.B, rt http.RoundTripper) {
	req, _ := http.NewRequest("GET", "http://svc.test/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}

// BenchmarkStackBaseline is the canned round tripper alone.
func BenchmarkStackBaseline(b *testing.B) { benchRT(b, cannedRT{}) }

// BenchmarkStack is netkit's default layers (retry, budget) over the canned round tripper:
// the absolute cost netkit adds to each request.
func BenchmarkStack(b *testing.B) { benchRT(b, NewRoundTripper(ClientOptions{Base: cannedRT{}})) }

// BenchmarkStackFull adds the breaker and metrics.
func BenchmarkStackFull(b *testing.B) {
	benchRT(b, NewRoundTripper(ClientOptions{Base: cannedRT{}, Breaker: &BreakerPolicy{}, Metrics: prometheus.NewRegistry()}))
}
