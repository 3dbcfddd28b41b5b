package netkit

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/berth-dev/berth/netkit/internal/dnstest"
	"github.com/berth-dev/berth/netkit/internal/memnet"
	"github.com/miekg/dns"
)

// sameportServers starts an HTTP server on each of ips, all on one port, each
// answering with its own IP. Linux routes all of 127.0.0.0/8 to loopback.
func sameportServers(t *testing.T, ips ...string) string {
	t.Helper()
	for try := 0; try < 20; try++ {
		first, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Skipf("cannot listen on %s: %v", ips[0], err)
		}
		_, port, _ := net.SplitHostPort(first.Addr().String())
		lns := []net.Listener{first}
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) < len(ips) {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		for i, ln := range lns {
			ip := ips[i]
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, ip)
			})}
			done := make(chan struct{})
			go func() { defer close(done); srv.Serve(ln) }()
			t.Cleanup(func() { srv.Close(); <-done })
		}
		return port
	}
	t.Skip("no common free port")
	return ""
}

func whoAnswers(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestBalancerFollowsDNS(t *testing.T) {
	port := sameportServers(t, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	d := dnstest.New(t)
	d.SetIPs("svc.test.", "127.0.0.1", "127.0.0.2")
	const interval = 300 * time.Millisecond
	b, err := NewBalancer("dns:///svc.test.:"+port, BalancerOptions{Resolver: d.Resolver(), Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	client := NewClient(ClientOptions{Base: b})
	url := "http://svc.test:" + port + "/"

	seen := map[string]int{}
	for range 40 {
		seen[whoAnswers(t, client, url)]++
	}
	if len(seen) != 2 || seen["127.0.0.3"] != 0 {
		t.Fatalf("answers %v, want 127.0.0.1 and .2 only", seen)
	}

	// The records change: within one interval every request goes to the new address.
	d.SetIPs("svc.test.", "127.0.0.3")
	changed := time.Now()
	for whoAnswers(t, client, url) != "127.0.0.3" {
		if time.Since(changed) > interval+2*time.Second {
			t.Fatalf("still on old endpoints %v after the change", time.Since(changed))
		}
	}
	moved := time.Since(changed)
	for range 20 {
		if got := whoAnswers(t, client, url); got != "127.0.0.3" {
			t.Fatalf("answer from %s after moving", got)
		}
	}
	t.Logf("moved to the new endpoint %v after the DNS change (interval %v)", moved, interval)

	// DNS fails: the last good set is kept.
	d.SetRcode("svc.test.", dns.RcodeServerFailure)
	q := d.Queries()
	for d.Queries() < q+2 {
		if got := whoAnswers(t, client, url); got != "127.0.0.3" {
			t.Fatalf("answer from %s while DNS fails", got)
		}
	}
	if eps := b.Endpoints(); len(eps) != 1 || eps[0].Addr != "127.0.0.3:"+port {
		t.Errorf("endpoints %+v", eps)
	}
	b.Close()
	checkNoLeaks(t)
}

func TestBalancerSRV(t *testing.T) {
	var ports []uint16
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprint("backend", i)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name+" "+r.Host)
		})}
		done := make(chan struct{})
		go func() { defer close(done); srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close(); <-done })
		p, _ := strconv.Atoi(ln.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):])
		ports = append(ports, uint16(p))
	}
	d := dnstest.New(t)
	d.SetIPs("node-a.test.", "127.0.0.1")
	d.SetSRV("_http._tcp.web.test.", &net.SRV{Target: "node-a.test.", Port: ports[0]}, &net.SRV{Target: "node-a.test.", Port: ports[1]})
	// The authority names the DNS server, as in a Consul or CoreDNS setup.
	b, err := NewBalancer("srv://"+d.Addr+"/_http._tcp.web.test.", BalancerOptions{Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	client := NewClient(ClientOptions{Base: b})
	seen := map[string]int{}
	for range 30 {
		seen[whoAnswers(t, client, "http://web.test/")]++
	}
	if len(seen) != 2 || seen["backend0 web.test"] == 0 || seen["backend1 web.test"] == 0 {
		t.Fatalf("answers %v, want backend0 and backend1 with Host web.test", seen)
	}
	d.SetSRV("_http._tcp.web.test.", &net.SRV{Target: "node-a.test.", Port: ports[2]})
	start := time.Now()
	for whoAnswers(t, client, "http://web.test/") != "backend2 web.test" {
		if time.Since(start) > 3*time.Second {
			t.Fatal("did not move to the new SRV target")
		}
	}
}

func TestBalancerNoEndpoints(t *testing.T) {
	d := dnstest.New(t)
	b, err := NewBalancer("dns:///missing.test.:80", BalancerOptions{Resolver: d.Resolver(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = NewClient(ClientOptions{Base: b}).Get("http://missing.test/")
	if c := Classify(err); c.Kind != KindDNSNotFound {
		t.Errorf("Classify(%v) = %v, want dns-not-found", err, c)
	}
	for _, bad := range []string{"dns:///noport", "http://x/", "srv:///"} {
		if _, err := NewBalancer(bad, BalancerOptions{}); err == nil {
			t.Errorf("NewBalancer(%q) accepted", bad)
		}
	}
}

// staticBalancer builds a Balancer over fixed addresses on an in-memory network,
// for synctest: no DNS, no sockets.
func staticBalancer(t *testing.T, n *memnet.Network, policy Policy, addrs ...string) *Balancer {
	t.Helper()
	b, err := NewBalancer("dns:///static.test:80", BalancerOptions{
		Policy: policy,
		Client: ClientOptions{DialContext: n.DialContext, MaxIdleConnsPerHost: 100},
		Logger: discardLogger(),
		lookup: func(context.Context) ([]string, error) { return addrs, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestP2CAvoidsSlowAndFailing runs three backends in fake time, one 50ms slower
// and later one failing fast, and checks where the requests go.
func TestP2CAvoidsSlowAndFailing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n memnet.Network
		counts := make([]*counter, 3)
		fail := make(chan struct{})
		for i := range counts {
			delay := 5 * time.Millisecond
			if i == 2 {
				delay = 55 * time.Millisecond
			}
			counts[i] = &counter{fn: func(_ int64, w http.ResponseWriter, _ *http.Request) {
				if i == 0 {
					select {
					case <-fail:
						w.WriteHeader(503) // fails fast
						return
					default:
					}
				}
				time.Sleep(delay)
			}}
			memServer(t, &n, fmt.Sprintf("10.0.0.%d:80", i+1), counts[i])
		}
		b := staticBalancer(t, &n, PowerOfTwoChoices, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
		client := NewClient(ClientOptions{Base: b, Retry: &RetryPolicy{MaxAttempts: 1}})
		load := func(total int) {
			sem := make(chan struct{}, 6)
			for range total {
				sem <- struct{}{}
				go func() {
					defer func() { <-sem }()
					resp, err := client.Get("http://static.test/")
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}()
			}
			for range cap(sem) {
				sem <- struct{}{}
			}
		}
		load(600)
		slow := counts[2].n.Load()
		if slow > 600/10 {
			t.Errorf("slow backend got %d of 600 requests, want < 10%%", slow)
		}
		close(fail)
		before := counts[0].n.Load()
		load(600)
		failing := counts[0].n.Load() - before
		if failing > 600/10 {
			t.Errorf("fast-failing backend got %d of 600 requests, want < 10%%", failing)
		}
		t.Logf("slow backend: %d/600; failing backend: %d/600", slow, failing)
		t.Logf("endpoints: %+v", b.Endpoints())
		b.Close()
	})
}

func TestOutlierEjection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n memnet.Network
		b := staticBalancer(t, &n, PowerOfTwoChoices, "a:80", "b:80", "c:80", "d:80")
		defer b.Close()
		<-b.firstDone
		b.mu.RLock()
		eps := b.endpoints
		b.mu.RUnlock()
		for _, e := range eps[:3] {
			for range 5 {
				e.observe(time.Millisecond, true, &b.opts, b)
			}
		}
		// 50% of 4: only two may be ejected at once.
		ejected := 0
		for _, s := range b.Endpoints() {
			if s.Ejected {
				ejected++
			}
		}
		if ejected != 2 {
			t.Fatalf("%d ejected, want 2: %+v", ejected, b.Endpoints())
		}
		time.Sleep(11 * time.Second)
		for _, s := range b.Endpoints() {
			if s.Ejected {
				t.Errorf("still ejected after EjectFor: %+v", s)
			}
		}
	})
}

// TestBalancerTLSServerName checks that requests through a balancer verify the
// certificate against the service name, not the endpoint IP.
func TestBalancerTLSServerName(t *testing.T) {
	now := time.Now()
	cert, pool := certs(t, now.Add(-time.Hour), now.Add(time.Hour), "web.test")
	srv := tlsServer(t, cert)
	addr := srv.Listener.Addr().String()
	for _, tc := range []struct {
		url  string
		want Kind
	}{
		{"https://web.test/", ""},
		{"https://other.test/", KindTLSHostname},
	} {
		b, err := NewBalancer("static:///"+addr, BalancerOptions{Client: ClientOptions{TLSConfig: &tls.Config{RootCAs: pool}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewClient(ClientOptions{Base: b, Retry: &RetryPolicy{MaxAttempts: 1}}).Get(tc.url)
		if got := Classify(err).Kind; got != tc.want {
			t.Errorf("%s: %v (%v), want %q", tc.url, got, err, tc.want)
		}
		b.Close()
	}
}

// TestBalancerReresolvesOnError: with an interval of an hour, a refused
// connection alone makes the balancer look the name up again.
func TestBalancerReresolvesOnError(t *testing.T) {
	port := sameportServers(t, "127.0.0.2")
	dead := refusedAddr(t) // 127.0.0.1:<free port>, nothing listening
	_, deadPort, _ := net.SplitHostPort(dead)
	d := dnstest.New(t)
	d.SetIPs("node-a.test.", "127.0.0.1")
	d.SetIPs("node-b.test.", "127.0.0.2")
	d.SetSRV("_http._tcp.api.test.", &net.SRV{Target: "node-a.test.", Port: mustPort(deadPort)})
	b, err := NewBalancer("srv://"+d.Addr+"/_http._tcp.api.test.", BalancerOptions{Interval: time.Hour, MinInterval: 50 * time.Millisecond, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	client := NewClient(ClientOptions{Base: b, Retry: &RetryPolicy{MaxAttempts: 1}})
	if _, err := client.Get("http://api.test/"); Classify(err).Kind != KindRefused {
		t.Fatalf("first request: %v, want refused", err)
	}
	d.SetSRV("_http._tcp.api.test.", &net.SRV{Target: "node-b.test.", Port: mustPort(port)})
	start := time.Now()
	for {
		resp, err := client.Get("http://api.test/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("still failing after an error-triggered re-resolution: %v", err)
		}
	}
	t.Logf("recovered %v after the records changed", time.Since(start))
}

func mustPort(s string) uint16 {
	p, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return uint16(p)
}

func TestBalancerClosedEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		b, err := NewBalancer("dns:///x.test:80", BalancerOptions{Logger: discardLogger(), lookup: func(ctx context.Context) ([]string, error) {
			select {
			case <-block:
			case <-ctx.Done():
			}
			return nil, ctx.Err()
		}})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		b.Close()
		close(block)
		req, _ := http.NewRequest("GET", "http://x.test/", nil)
		if _, err := b.RoundTrip(req); err == nil {
			t.Fatal("RoundTrip on a closed balancer with no endpoints succeeded")
		}
	})
}
