// Command netkit-bench measures the two whole-system figures netkit is judged by,
// over real loopback sockets:
//
//   - tail latency: three backends, one 50ms slower; p99 with power-of-two-choices
//     over p99 with round robin (want <= 0.5);
//   - retry storm: a backend failing 100% for 10s under steady load; attempts
//     reaching the backend over requests made (want <= 1.2).
//
// Run: go run ./bench/netkit [-requests 3000] [-rounds 3] [-concurrency 8] [-storm 10s]
// It exits 1 when a figure misses its target.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/netkit"
)

func main() {
	requests := flag.Int("requests", 3000, "requests per policy in the tail-latency run")
	concurrency := flag.Int("concurrency", 8, "concurrent clients")
	base := flag.Duration("base", 2*time.Millisecond, "service time of the normal backends")
	extra := flag.Duration("extra", 50*time.Millisecond, "extra service time of the slow backend")
	rounds := flag.Int("rounds", 3, "interleaved rounds per policy in the tail-latency run")
	storm := flag.Duration("storm", 10*time.Second, "duration of the retry storm")
	flag.Parse()
	slog.SetDefault(slog.New(slog.DiscardHandler))

	ok := true
	addrs, stop := backends(*base, *extra)
	// Interleave rounds of both policies so that load from other processes hits
	// both alike; p99 is taken over the pooled latencies of each policy.
	lat := map[netkit.Policy][]time.Duration{}
	slowShare := map[netkit.Policy]int64{}
	clients := map[netkit.Policy]*http.Client{}
	for _, pol := range []netkit.Policy{netkit.RoundRobin, netkit.PowerOfTwoChoices} {
		b, err := netkit.NewBalancer("static:///"+strings.Join(addrs, ","), netkit.BalancerOptions{Policy: pol})
		if err != nil {
			panic(err)
		}
		defer b.Close()
		clients[pol] = netkit.NewClient(netkit.ClientOptions{Base: b, Retry: &netkit.RetryPolicy{MaxAttempts: 1}})
	}
	for range *rounds {
		for _, pol := range []netkit.Policy{netkit.RoundRobin, netkit.PowerOfTwoChoices} {
			before := hits[2].Load()
			lat[pol] = append(lat[pol], tail(clients[pol], *requests / *rounds, *concurrency)...)
			slowShare[pol] += hits[2].Load() - before
		}
	}
	stop()
	p99 := map[netkit.Policy]time.Duration{}
	for pol, l := range lat {
		slices.Sort(l)
		p99[pol] = l[len(l)*99/100]
	}
	ratio := float64(p99[netkit.PowerOfTwoChoices]) / float64(p99[netkit.RoundRobin])
	fmt.Printf("tail latency: 3 backends (%v, %v, %v+%v), %d requests, %d concurrent\n", *base, *base, *base, *extra, *requests, *concurrency)
	for _, pol := range []netkit.Policy{netkit.RoundRobin, netkit.PowerOfTwoChoices} {
		l := lat[pol]
		fmt.Printf("  %-11s p50 %v p90 %v p99 %v, slow backend got %.1f%%\n", name(pol),
			l[len(l)/2].Round(10*time.Microsecond), l[len(l)*9/10].Round(10*time.Microsecond), p99[pol].Round(10*time.Microsecond),
			100*float64(slowShare[pol])/float64(len(l)))
	}
	fmt.Printf("  p99 p2c / p99 round-robin = %.3f (target <= 0.5)\n", ratio)
	if ratio > 0.5 {
		ok = false
	}

	for _, withBreaker := range []bool{false, true} {
		req, att := retryStorm(*storm, 32, withBreaker)
		r := float64(att) / float64(req)
		name := "retry budget only"
		if withBreaker {
			name = "retry budget + breaker"
		}
		fmt.Printf("retry storm (%s): %v of 100%% 503, 32 clients: %d requests, %d attempts, ratio %.3f (target <= 1.2)\n", name, *storm, req, att, r)
		if r > 1.2 {
			ok = false
		}
	}
	if !ok {
		fmt.Println("FAIL: a figure misses its target")
		os.Exit(1)
	}
}

// hits counts requests per backend, for the printed shares.
var hits [3]atomic.Int64

// backends starts three loopback HTTP servers; the third is slower by extra.
func backends(base, extra time.Duration) ([]string, func()) {
	var addrs []string
	var srvs []*http.Server
	for i := range 3 {
		d := base
		if i == 2 {
			d += extra
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			time.Sleep(d)
			io.WriteString(w, "ok")
		})}
		go srv.Serve(ln)
		addrs = append(addrs, ln.Addr().String())
		srvs = append(srvs, srv)
	}
	return addrs, func() {
		for _, s := range srvs {
			s.Close()
		}
	}
}

func name(p netkit.Policy) string {
	if p == netkit.RoundRobin {
		return "round-robin"
	}
	return "p2c"
}

// tail sends n GETs from c concurrent clients and returns their latencies.
func tail(client *http.Client, n, c int) []time.Duration {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				start := time.Now()
				resp, err := client.Get("http://backend/")
				if err != nil {
					panic(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	return lat
}

func retryStorm(d time.Duration, workers int, withBreaker bool) (requests, attempts int64) {
	var att atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		att.Add(1)
		time.Sleep(time.Millisecond)
		w.WriteHeader(http.StatusServiceUnavailable)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	opts := netkit.ClientOptions{}
	if withBreaker {
		opts.Breaker = &netkit.BreakerPolicy{}
	}
	client := netkit.NewClient(opts)
	defer client.CloseIdleConnections()
	url := "http://" + ln.Addr().String() + "/"
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var req atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := client.Get(url)
				if err == nil {
					resp.Body.Close()
				} else if netkit.Classify(err).Kind == netkit.KindCircuitOpen {
					// Steady load: a client whose request is refused at once waits
					// as long as a served one would before its next request.
					time.Sleep(time.Millisecond)
				}
				req.Add(1)
			}
		})
	}
	wg.Wait()
	return req.Load(), att.Load()
}
