package doctor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/net/http/httpproxy"

	"github.com/berth-dev/berth/netkit"
)

// parseTarget turns a URL or host:port into a Target.
func parseTarget(s, role string) (Target, error) {
	t := Target{Input: s, Role: role}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return t, fmt.Errorf("target %q: %v", s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return t, fmt.Errorf("target %q: scheme %q: want http, https or host:port", s, u.Scheme)
		}
		if u.Hostname() == "" {
			return t, fmt.Errorf("target %q: no host", s)
		}
		t.Scheme, t.Host, t.Port = u.Scheme, u.Hostname(), u.Port()
		if t.Port == "" {
			t.Port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		if u.Path == "" {
			u.Path = "/"
		}
		t.URL = u.String()
		return t, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" || p == "" {
		return t, fmt.Errorf("target %q: want a URL (https://host/path) or host:port", s)
	}
	t.Host, t.Port = h, p
	if p == "443" {
		t.Scheme = "tls"
	}
	return t, nil
}

// prober runs the probes of one Run.
type prober struct {
	o     *Options
	facts *Facts
	roots *x509.CertPool
	proxy func(*url.URL) (*url.URL, error)
	creds credentials

	mu     sync.Mutex
	probes []Probe
	wg     sync.WaitGroup
	start  time.Time

	// closed remembers the nameservers whose port 53 refused a query (ICMP
	// port unreachable, a TCP reset) or whose host is unreachable, with the
	// error: later queries to them fail at once with it. The kernel
	// rate-limits ICMP errors per peer (a burst of about six, then one a
	// second), so without this the doctor's own parallel queries would wait
	// out their timeouts where one lookup of the app fails at once.
	closed map[string]error
	// inflight are the Go resolver's open connections per nameserver, cut
	// short when the server is found closed.
	inflight map[string]map[net.Conn]bool
	// first holds, per nameserver, a channel closed when the first query
	// to it has its outcome: the other queries wait for it, so a closed
	// port costs one ICMP error per run, not one per query (the kernel's
	// per-peer ICMP budget is small and refills at one a second).
	first map[string]chan struct{}

	// altCancel ends a target's other-path probe once its own path answers.
	altCancel map[string]context.CancelFunc

	sumdbTarget *Target
	proxies     int // GOPROXY entries probed
	// supported receives the status of each proxy's
	// /sumdb/<name>/supported answer (0 when the request failed); it holds
	// one per proxy, so sending never blocks.
	supported chan int
}

func (p *prober) add(pr Probe) {
	p.mu.Lock()
	p.probes = append(p.probes, pr)
	p.mu.Unlock()
}

func (p *prober) goRun(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// closedErr returns the error a nameserver's closed port gave, or nil.
func (p *prober) closedErr(server string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed[server]
}

// markClosed records that server refused (or is unreachable) with err and
// cuts short the Go resolver's queries still waiting on it.
func (p *prober) markClosed(server string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed == nil {
		p.closed = map[string]error{}
	}
	if p.closed[server] != nil {
		return
	}
	p.closed[server] = err
	for c := range p.inflight[server] {
		_ = c.SetDeadline(time.Now())
	}
}

// track registers (on) or forgets a connection to a nameserver, so that
// markClosed can cut it short.
func (p *prober) track(server string, c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight == nil {
		p.inflight = map[string]map[net.Conn]bool{}
	}
	if p.inflight[server] == nil {
		p.inflight[server] = map[net.Conn]bool{}
	}
	if on {
		p.inflight[server][c] = true
		if p.closed[server] != nil {
			// Found closed between the dial and now: cut it short too.
			_ = c.SetDeadline(time.Now())
		}
	} else {
		delete(p.inflight[server], c)
	}
}

// enter waits until the first query to server has its outcome (at most
// firstQueryWait), or makes the caller that first query: it then must call
// the returned release once the outcome is known.
func (p *prober) enter(ctx context.Context, server string) (release func()) {
	p.mu.Lock()
	if p.first == nil {
		p.first = map[string]chan struct{}{}
	}
	ch, ok := p.first[server]
	if !ok {
		ch = make(chan struct{})
		p.first[server] = ch
		p.mu.Unlock()
		var once sync.Once
		return func() { once.Do(func() { close(ch) }) }
	}
	p.mu.Unlock()
	// A closed port's ICMP error comes back within a round trip; a query
	// the server drops (an AAAA some servers ignore) must not hold the
	// others, so the wait is short.
	t := time.NewTimer(firstQueryWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
	return func() {}
}

// firstQueryWait bounds how long queries wait for the first one's outcome.
const firstQueryWait = 200 * time.Millisecond

// fastClass reports classes that mean an immediate answer from the network
// that nothing serves there: refused, host or network unreachable.
func fastClass(k string) bool { return k == kRefused || k == kHostUnreach || k == kNetUnreach }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// inHosts reports whether /etc/hosts answers the name.
func (p *prober) inHosts(host string) []string {
	var out []string
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, e := range p.facts.Hosts {
		for _, n := range e.Names {
			if strings.TrimSuffix(n, ".") == h {
				out = append(out, e.Addr)
			}
		}
	}
	return out
}

// runTarget probes one target: DNS per nameserver and the Go resolver, TCP per
// address, TLS, and in parallel the HTTP request the way the app would make it.
func (p *prober) runTarget(ctx context.Context, t Target) {
	if t.URL != "" && t.Role != "goproxy" {
		p.goRun(func() { p.httpProbe(ctx, t, "http", t.URL) })
	}
	if t.URL != "" && (p.facts.Proxy.HTTPSProxy != "" || p.facts.Proxy.HTTPProxy != "") {
		// The other path: direct when the environment sends the target
		// through the proxy, through the proxy when NO_PROXY sends it
		// direct. When the app's path fails and this one works, the fix is
		// the variable that chose the path.
		u, _ := url.Parse(t.URL)
		kind := "http-via-proxy"
		if pu, err := p.proxy(u); err == nil && pu != nil {
			kind = "http-direct"
		}
		if pu, _ := p.anyProxy(t)(u); pu != nil || kind == "http-direct" {
			// It is cut short as soon as the app's own path answers.
			actx, cancel := context.WithCancel(ctx)
			p.mu.Lock()
			if p.altCancel == nil {
				p.altCancel = map[string]context.CancelFunc{}
			}
			p.altCancel[t.Input] = cancel
			p.mu.Unlock()
			p.goRun(func() {
				defer cancel()
				p.httpProbe(actx, t, kind, t.URL)
			})
		}
	}
	if t.Role == "goproxy" {
		p.goRun(func() { p.goproxyProbes(ctx, t) })
	}
	// The path the app takes: through the proxy when one applies.
	dialHost, dialPort := t.Host, t.Port
	var via *url.URL
	if t.URL != "" {
		u, _ := url.Parse(t.URL)
		pu, err := p.proxy(u)
		if err == nil && pu != nil {
			via = pu
			dialHost, dialPort = pu.Hostname(), pu.Port()
			if dialPort == "" {
				dialPort = map[string]string{"https": "443", "socks5": "1080"}[pu.Scheme]
				if dialPort == "" {
					dialPort = "80"
				}
			}
		}
	}
	addrs, ok := p.resolve(ctx, t, dialHost)
	if !ok {
		return
	}
	conn, addr := p.tcpProbes(ctx, t, addrs, dialPort, via)
	if conn == nil {
		return
	}
	if via != nil {
		// Go tunnels https:// through an http:// proxy with CONNECT; plain
		// http:// requests go to the proxy as they are (the HTTP probe covers
		// them), and https:// or socks5 proxies are left to the HTTP probe.
		if via.Scheme != "http" || t.Scheme != "https" {
			conn.Close()
			return
		}
		var err error
		conn, err = p.connectProbe(ctx, t, conn, addr, via)
		if err != nil {
			return
		}
	}
	if t.Scheme == "https" || t.Scheme == "tls" {
		p.tlsProbe(ctx, t, conn, addr)
		return
	}
	conn.Close()
}

// resolve runs the DNS probes and the resolver lookup for host. It returns
// the addresses and whether there are any.
func (p *prober) resolve(ctx context.Context, t Target, host string) ([]string, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []string{a.String()}, true
	}
	if hs := p.inHosts(host); len(hs) > 0 && strings.HasPrefix(p.facts.Resolver.Order, "files") {
		p.add(Probe{Kind: "resolve", Target: t.Input, Name: host, OK: true, Addrs: hs, Server: "/etc/hosts"})
		return hs, true
	}
	names := p.facts.ResolvConf.NameList(host)
	for _, ns := range p.facts.ResolvConf.Nameservers {
		p.goRun(func() { p.dnsProbe(ctx, t, ns, host, names) })
	}
	return p.lookup(ctx, t, host)
}

// rcodeNoAnswer is the NameTry.Rcode of a question no response came for.
const rcodeNoAnswer = "no answer"

// answered reports whether a DNS probe's last question got a response (an
// rcode) rather than a socket error or a timeout.
func answered(p Probe) bool {
	return len(p.Tries) > 0 && p.Tries[len(p.Tries)-1].Rcode != rcodeNoAnswer
}

// dnsProbe asks one nameserver for the names Go would try, in order, until
// one has an address: UDP first, TCP when the answer is truncated.
func (p *prober) dnsProbe(ctx context.Context, t Target, server, host string, names []string) {
	pr := Probe{Kind: "dns", Target: t.Input, Server: server, Name: host, Transport: "udp"}
	start := time.Now()
	pr.started = start
	defer func() { pr.DurationMS = ms(time.Since(start)); p.add(pr) }()
	per := p.facts.ResolvConf.Timeout
	for _, name := range names {
		if len(pr.Tries) >= 12 {
			break
		}
		if err := p.closedErr(server); err != nil {
			pr.Tries = append(pr.Tries, NameTry{Name: name, Type: "A", Rcode: rcodeNoAnswer})
			pr.err, pr.Error, pr.Cause = err, errText(err), classify(err)
			return
		}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.RecursionDesired = true
		m.SetEdns0(1232, false)
		qctx, cancel := context.WithTimeout(ctx, per)
		t0 := time.Now()
		c := &dns.Client{Net: "udp", Timeout: per}
		if hasOpt(p.facts.ResolvConf.Options, "use-vc", "usevc", "tcp") {
			c.Net, pr.Transport = "tcp", "tcp"
		}
		r, err := p.exchange(qctx, c, m, server)
		if c.Net == "tcp" && pr.Transport == "udp" {
			pr.Transport = "tcp (udp failed)"
		}
		if err == nil && r != nil && r.Truncated {
			pr.Transport = "udp+tcp"
			c.Net = "tcp"
			r, err = p.exchange(qctx, c, m, server)
		}
		cancel()
		try := NameTry{Name: name, Type: "A", MS: ms(time.Since(t0))}
		if err != nil {
			try.Rcode = rcodeNoAnswer
			pr.Tries = append(pr.Tries, try)
			pr.err = err
			pr.Error = errText(err)
			pr.Cause = classify(err)
			if fastClass(pr.Cause) {
				// ICMP port or host unreachable, or a reset: nothing
				// answers DNS there, and the answer came at once.
				p.markClosed(server, err)
			} else if ctx.Err() != nil || isTimeoutClass(pr.Cause) {
				pr.Cause = kDNSTimeout
			}
			return
		}
		try.Rcode = dns.RcodeToString[r.Rcode]
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				try.N++
				if len(pr.Addrs) < 8 {
					pr.Addrs = append(pr.Addrs, a.A.String())
				}
			}
		}
		pr.Tries = append(pr.Tries, try)
		pr.Rcode = try.Rcode
		if r.Rcode == dns.RcodeSuccess && try.N > 0 {
			pr.OK = true
			pr.Cause, pr.Error = "", ""
			// Go asks AAAA beside A and waits for both answers.
			p.aaaaQuery(ctx, &pr, c, server, name, per)
			if bare := strings.TrimSuffix(host, ".") + "."; name != bare && strings.Contains(strings.TrimSuffix(host, "."), ".") {
				p.bareQuery(ctx, &pr, c, server, bare, per)
			}
			return
		}
		switch r.Rcode {
		case dns.RcodeServerFailure:
			pr.Cause = kDNSServfail
		case dns.RcodeRefused:
			pr.Cause = kDNSRefused
		case dns.RcodeNameError, dns.RcodeSuccess:
			pr.Cause = kDNSNotFound
		default:
			pr.Cause = kDNSServfail
		}
	}
	if !pr.OK && pr.Cause == "" {
		pr.Cause = kDNSNotFound
	}
	pr.Error = "no name in the search list resolved"
}

// exchange sends m to server on a connection markClosed can cut short:
// when another query finds the server's port closed, this one ends with
// that error instead of waiting for an ICMP error the kernel rate-limited.
func (p *prober) exchange(ctx context.Context, c *dns.Client, m *dns.Msg, server string) (*dns.Msg, error) {
	release := p.enter(ctx, server)
	defer release()
	if err := p.closedErr(server); err != nil {
		return nil, err
	}
	co, err := c.DialContext(ctx, server)
	if err != nil && c.Net == "udp" && classify(err) == kUnknown {
		// The system cannot send UDP here (wine lacks the ioctl Go's
		// Windows UDP sockets need): ask over TCP, as a resolver may.
		c.Net = "tcp"
		co, err = c.DialContext(ctx, server)
	}
	if err != nil {
		return nil, err
	}
	p.track(server, co.Conn, true)
	defer func() { p.track(server, co.Conn, false); co.Close() }()
	r, _, err := c.ExchangeWithConnContext(ctx, m, co)
	if err != nil && !fastClass(classify(err)) {
		if ce := p.closedErr(server); ce != nil {
			return nil, ce
		}
	}
	return r, err
}

// goResolver is Go's own resolver (PreferGo) as the probes use it: queries
// to a nameserver found closed fail at once with its error.
func (p *prober) goResolver() *net.Resolver {
	d := &net.Dialer{}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		release := p.enter(ctx, addr)
		if err := p.closedErr(addr); err != nil {
			release()
			return nil, err
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			release()
			if fastClass(classify(err)) {
				p.markClosed(addr, err)
			}
			return nil, err
		}
		rc := &recConn{Conn: c, rec: &dnsRecorder{}, stream: true, start: time.Now(), p: p, server: addr, release: release}
		p.track(addr, c, true)
		if pc, ok := c.(net.PacketConn); ok {
			rc.stream = false
			return &recPacketConn{recConn: rc, pc: pc}, nil
		}
		return rc, nil
	}}
}

// aaaaQuery asks the AAAA question Go's resolver sends together with A.
func (p *prober) aaaaQuery(ctx context.Context, pr *Probe, c *dns.Client, server, name string, per time.Duration) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeAAAA)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	qctx, cancel := context.WithTimeout(ctx, per)
	defer cancel()
	t0 := time.Now()
	r, err := p.exchange(qctx, c, m, server)
	try := &NameTry{Name: name, Type: "AAAA", MS: ms(time.Since(t0)), Rcode: rcodeNoAnswer}
	pr.AAAA = try
	if err != nil || r == nil {
		return
	}
	try.Rcode = dns.RcodeToString[r.Rcode]
	for _, rr := range r.Answer {
		if _, ok := rr.(*dns.AAAA); ok {
			try.N++
		}
	}
}

// bareQuery asks for the name as given after a search-list name answered,
// to tell a legitimate short name from a suffix that hijacked a real name.
func (p *prober) bareQuery(ctx context.Context, pr *Probe, c *dns.Client, server, bare string, per time.Duration) {
	m := new(dns.Msg)
	m.SetQuestion(bare, dns.TypeA)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	qctx, cancel := context.WithTimeout(ctx, per)
	defer cancel()
	t0 := time.Now()
	r, err := p.exchange(qctx, c, m, server)
	try := &NameTry{Name: bare, Type: "A", MS: ms(time.Since(t0)), Rcode: rcodeNoAnswer}
	pr.Bare = try
	if err != nil || r == nil {
		return
	}
	try.Rcode = dns.RcodeToString[r.Rcode]
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			try.N++
			if len(pr.BareAddrs) < 8 {
				pr.BareAddrs = append(pr.BareAddrs, a.A.String())
			}
		}
	}
}

func hasOpt(opts []string, want ...string) bool {
	for _, o := range opts {
		for _, w := range want {
			if o == w {
				return true
			}
		}
	}
	return false
}

// lookup resolves host with the configured resolver; with the default one
// (Go's own) it records every name and type asked.
func (p *prober) lookup(ctx context.Context, t Target, host string) ([]string, bool) {
	pr := Probe{Kind: "resolve", Target: t.Input, Name: host, Server: "go resolver"}
	start := time.Now()
	pr.started = start
	rec := &dnsRecorder{}
	res := p.o.Resolver
	if res == nil {
		d := &net.Dialer{}
		res = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			release := p.enter(ctx, addr)
			if err := p.closedErr(addr); err != nil {
				release()
				return nil, err
			}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				release()
				if fastClass(classify(err)) {
					p.markClosed(addr, err)
				}
				return nil, err
			}
			rc := &recConn{Conn: c, rec: rec, stream: true, start: start, p: p, server: addr, release: release}
			p.track(addr, rc.Conn, true)
			if pc, ok := c.(net.PacketConn); ok {
				// Go's resolver picks the datagram exchange only for a PacketConn.
				rc.stream = false
				return &recPacketConn{recConn: rc, pc: pc}, nil
			}
			return rc, nil
		}}
	} else {
		pr.Server = "custom resolver"
	}
	var native chan []string
	if runtime.GOOS == "windows" && p.o.Resolver == nil && p.facts.Resolver.Mode == "native" {
		// Windows programs resolve with GetAddrInfoW unless told otherwise
		// (netdns=go, netgo, PreferGo): ask it too, beside Go's own resolver.
		native = make(chan []string, 1)
		go func() { native <- p.nativeLookup(ctx, t, host) }()
	}
	ips, err := res.LookupIPAddr(ctx, host)
	pr.DurationMS = ms(time.Since(start))
	var nativeAddrs []string
	if native != nil {
		nativeAddrs = <-native
	}
	pr.Tries = rec.tries()
	if err != nil {
		pr.err = err
		pr.Error = errText(err)
		pr.Cause = classify(err)
		if ctx.Err() != nil && pr.Cause != kDNSNotFound {
			pr.Cause = kDNSTimeout
		}
		p.add(pr)
		// The app uses the native resolver: when it answers, the path goes on.
		return nativeAddrs, len(nativeAddrs) > 0
	}
	pr.OK = true
	for _, ip := range ips {
		if len(pr.Addrs) < 8 {
			pr.Addrs = append(pr.Addrs, ip.IP.String())
		}
	}
	p.add(pr)
	return pr.Addrs, len(pr.Addrs) > 0
}

// nativeLookup resolves host with the system resolver (GetAddrInfoW on
// Windows) and records it as a "resolve-native" probe.
func (p *prober) nativeLookup(ctx context.Context, t Target, host string) []string {
	pr := Probe{Kind: "resolve-native", Target: t.Input, Name: host, Server: "GetAddrInfoW", started: time.Now()}
	res := &net.Resolver{PreferGo: false}
	ips, err := res.LookupIPAddr(ctx, host)
	pr.DurationMS = ms(time.Since(pr.started))
	if err != nil {
		pr.err, pr.Error, pr.Cause = err, errText(err), classify(err)
		p.add(pr)
		return nil
	}
	pr.OK = true
	for _, ip := range ips {
		if len(pr.Addrs) < 8 {
			pr.Addrs = append(pr.Addrs, ip.IP.String())
		}
	}
	p.add(pr)
	return pr.Addrs
}

// dnsRecorder notes the questions Go's resolver sends and the answers it gets.
type dnsRecorder struct {
	mu sync.Mutex
	q  []NameTry
}

func (r *dnsRecorder) tries() []NameTry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.q) > 32 {
		return r.q[:32]
	}
	return append([]NameTry(nil), r.q...)
}

type recConn struct {
	net.Conn
	p      *prober
	server string
	// release ends the nameserver's first-query wait (prober.enter) once
	// this connection's first read has an outcome.
	release func()
	rec     *dnsRecorder
	stream  bool
	start   time.Time
	sent    []int
	buf     []byte // partial TCP response
}

// recPacketConn is a recConn over UDP; it must stay a net.PacketConn.
type recPacketConn struct {
	*recConn
	pc net.PacketConn
}

func (c *recPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.recConn.Read(b)
	return n, c.RemoteAddr(), err
}

func (c *recPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return c.recConn.Write(b) }

func (c *recConn) Write(b []byte) (int, error) {
	msg := b
	if c.stream && len(msg) > 2 {
		msg = msg[2:]
	}
	var m dns.Msg
	if m.Unpack(msg) == nil && len(m.Question) == 1 {
		c.rec.mu.Lock()
		if len(c.rec.q) < 64 {
			c.rec.q = append(c.rec.q, NameTry{Name: m.Question[0].Name, Type: dns.TypeToString[m.Question[0].Qtype],
				Rcode: rcodeNoAnswer, MS: ms(time.Since(c.start))})
			c.sent = append(c.sent, len(c.rec.q)-1)
		}
		c.rec.mu.Unlock()
	}
	return c.Conn.Write(b)
}

func (c *recConn) Close() error {
	c.release()
	c.p.track(c.server, c.Conn, false)
	return c.Conn.Close()
}

func (c *recConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	defer c.release()
	if err != nil && n <= 0 {
		if fastClass(classify(err)) {
			c.p.markClosed(c.server, err)
		} else if ce := c.p.closedErr(c.server); ce != nil {
			// Cut short by markClosed: the server's port is closed.
			return 0, ce
		}
	}
	if n <= 0 {
		return n, err
	}
	if !c.stream {
		c.answer(b[:n])
		return n, err
	}
	// TCP: messages are length-prefixed and read in pieces.
	if len(c.buf)+n <= 1<<16+2 {
		c.buf = append(c.buf, b[:n]...)
	}
	for len(c.buf) >= 2 {
		l := int(c.buf[0])<<8 | int(c.buf[1])
		if len(c.buf) < 2+l {
			break
		}
		c.answer(c.buf[2 : 2+l])
		c.buf = c.buf[2+l:]
	}
	return n, err
}

// answer records the rcode of a response against the question it answers.
func (c *recConn) answer(msg []byte) {
	var m dns.Msg
	if m.Unpack(msg) != nil || len(m.Question) != 1 {
		return
	}
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	for _, i := range c.sent {
		q := &c.rec.q[i]
		if q.Name == m.Question[0].Name && q.Type == dns.TypeToString[m.Question[0].Qtype] && q.Rcode == rcodeNoAnswer {
			q.Rcode = dns.RcodeToString[m.Rcode]
			q.N = len(m.Answer)
			q.MS = ms(time.Since(c.start)) - q.MS
		}
	}
}

// tcpProbes connects to each address (at most four) in parallel. It returns
// an open connection to the first that answered, for the TLS probe.
func (p *prober) tcpProbes(ctx context.Context, t Target, addrs []string, port string, via *url.URL) (net.Conn, string) {
	if len(addrs) > 4 {
		addrs = addrs[:4]
	}
	type res struct {
		c    net.Conn
		addr string
		i    int
	}
	ch := make(chan res, len(addrs))
	for i, a := range addrs {
		go func() {
			addr := net.JoinHostPort(a, port)
			pr := Probe{Kind: "tcp", Target: t.Input, Server: addr, started: time.Now()}
			if via != nil {
				pr.Via = redact(via.String())
			}
			var d net.Dialer
			start := time.Now()
			c, err := d.DialContext(ctx, "tcp", addr)
			pr.DurationMS = ms(time.Since(start))
			if err != nil {
				pr.err, pr.Error, pr.Cause = err, errText(err), classify(err)
				if pr.Cause == kCanceled {
					pr.Cause = kTimeout
				}
			} else {
				pr.OK = true
			}
			p.add(pr)
			ch <- res{c, addr, i}
		}()
	}
	var best net.Conn
	var bestAddr string
	for range addrs {
		r := <-ch
		if r.c == nil {
			continue
		}
		if best == nil {
			best, bestAddr = r.c, r.addr
		} else {
			r.c.Close()
		}
	}
	return best, bestAddr
}

// connectProbe sends CONNECT through an HTTP proxy and returns the tunnel.
func (p *prober) connectProbe(ctx context.Context, t Target, conn net.Conn, addr string, via *url.URL) (net.Conn, error) {
	pr := Probe{Kind: "proxy", Target: t.Input, Server: addr, Via: redact(via.String()), started: time.Now()}
	start := time.Now()
	defer func() { pr.DurationMS = ms(time.Since(start)); p.add(pr) }()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	target := net.JoinHostPort(t.Host, t.Port)
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if via.User != nil {
		pw, _ := via.User.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(via.User.Username()+":"+pw)) + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		pr.err, pr.Error, pr.Cause = err, errText(err), classify(err)
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		conn.Close()
		pr.err, pr.Error, pr.Cause = err, errText(err), classify(err)
		if ctx.Err() != nil {
			pr.Cause = kTimeout
		}
		return nil, err
	}
	resp.Body.Close()
	pr.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		pr.Error = "CONNECT " + target + ": " + resp.Status
		pr.Cause = kProxyConnect
		if resp.StatusCode == http.StatusProxyAuthRequired {
			pr.Cause = kProxyAuth
			pr.Body = clip(resp.Header.Get("Proxy-Authenticate"), 200)
		}
		return nil, errors.New(pr.Error)
	}
	pr.OK = true
	if br.Buffered() > 0 {
		conn.Close()
		return nil, errors.New("proxy sent data before the TLS handshake")
	}
	return conn, nil
}

// tlsProbe performs the handshake without verification so that the presented
// chain is kept whatever it is, then verifies it against the roots.
func (p *prober) tlsProbe(ctx context.Context, t Target, conn net.Conn, addr string) {
	pr := Probe{Kind: "tls", Target: t.Input, Server: addr, Name: t.Host, started: time.Now()}
	start := time.Now()
	defer func() { pr.DurationMS = ms(time.Since(start)); p.add(pr) }()
	requested := false
	cfg := &tls.Config{ServerName: t.Host, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}, //nolint:gosec // verified below, the chain is the evidence
		// Present no certificate, as Go's default client does, and note
		// what the server asked for.
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			requested = true
			pr.ClientAuth = append(pr.ClientAuth, fmt.Sprintf("the server sent a CertificateRequest naming %d acceptable CAs", len(cri.AcceptableCAs)))
			for i, der := range cri.AcceptableCAs {
				if i == 4 {
					break
				}
				var rdn pkix.RDNSequence
				if _, err := asn1.Unmarshal(der, &rdn); err == nil {
					var n pkix.Name
					n.FillFromRDNSequence(&rdn)
					pr.ClientAuth = append(pr.ClientAuth, "acceptable CA: "+clip(n.String(), 200))
				}
			}
			return &tls.Certificate{}, nil
		}}
	tc := tls.Client(conn, cfg)
	defer tc.Close()
	if err := tc.HandshakeContext(ctx); err != nil {
		pr.err, pr.Error, pr.Cause = err, errText(err), classify(err)
		var rh tls.RecordHeaderError
		switch {
		case errors.As(err, &rh) && strings.HasPrefix(string(rh.RecordHeader[:]), "HTTP/"):
			pr.Cause = kTLSPlainHTTP
		case requested && !isTimeoutClass(pr.Cause) && ctx.Err() == nil:
			pr.Cause = kTLSClientCert
		case isTimeoutClass(pr.Cause) || ctx.Err() != nil:
			pr.Cause = kTLSHSTimeout
		}
		return
	}
	if requested {
		// With TLS 1.3 the server judges the client's (empty) certificate
		// after the client's side of the handshake is done: its verdict is
		// the first record read.
		wait := time.Now().Add(300 * time.Millisecond)
		if d, ok := ctx.Deadline(); ok && d.Before(wait) {
			wait = d
		}
		_ = tc.SetReadDeadline(wait)
		if _, err := tc.Read(make([]byte, 1)); err != nil && !isTimeoutClass(classify(err)) {
			pr.err, pr.Error, pr.Cause = err, errText(err), kTLSClientCert
			return
		}
		pr.ClientAuth = append(pr.ClientAuth, "the handshake completed without a client certificate (the certificate is optional)")
	}
	st := tc.ConnectionState()
	pr.TLSVersion = tls.VersionName(st.Version)
	for i, c := range st.PeerCertificates {
		if i >= 6 {
			break
		}
		pr.Chain = append(pr.Chain, certInfo(c))
	}
	if len(st.PeerCertificates) == 0 {
		pr.Error, pr.Cause = "server presented no certificate", kTLSOther
		return
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: t.Host, Roots: p.roots, Intermediates: inter})
	if err != nil {
		pr.err, pr.Error, pr.Cause = err, errText(err), classify(err)
		return
	}
	pr.OK = true
}

func certInfo(c *x509.Certificate) CertInfo {
	ci := CertInfo{Subject: clip(c.Subject.String(), 200), Issuer: clip(c.Issuer.String(), 200), IssuerOrg: c.Issuer.Organization,
		NotBefore: c.NotBefore.UTC().Format(time.RFC3339), NotAfter: c.NotAfter.UTC().Format(time.RFC3339), IsCA: c.IsCA}
	if len(c.DNSNames) > 8 {
		ci.DNSNames = append(c.DNSNames[:8:8], "...")
	} else {
		ci.DNSNames = c.DNSNames
	}
	for _, ip := range c.IPAddresses {
		ci.IPs = append(ci.IPs, ip.String())
	}
	return ci
}

// httpClient is the client the app would have: the environment's proxy
// rules, the resolver, the loaded roots.
func (p *prober) httpClient(proxy func(*url.URL) (*url.URL, error)) *http.Client {
	res := p.o.Resolver
	if res == nil && runtime.GOOS != "windows" {
		// Go's resolver, as a static Linux binary uses it; on Windows the
		// app's default is the native one (net.DefaultResolver).
		res = p.goResolver()
	}
	d := &net.Dialer{Resolver: res}
	tr := &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) { return proxy(r.URL) },
		// net/http reports a refused CONNECT only as the status text; a
		// typed error lets netkit classify it (407 is proxy-auth).
		OnProxyConnectResponse: func(_ context.Context, pu *url.URL, _ *http.Request, resp *http.Response) error {
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			return &netkit.ProxyError{Proxy: redact(pu.String()), Status: resp.StatusCode}
		},
		DialContext:       d.DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: p.roots},
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// goCheckRedirect follows redirects the way the go command does
// (cmd/go/internal/web): at most 10, never from https to http.
func goCheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirected from secure URL %s to insecure URL %s", via[len(via)-1].URL.Redacted(), req.URL.Redacted())
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// bodyShape says what a response body looks like: "versions" (lines of
// semantic versions, the @v/list answer), "empty", "html", "json" or "text".
func bodyShape(contentType string, body []byte) string {
	b := strings.TrimSpace(string(body))
	switch {
	case b == "":
		return "empty"
	case strings.HasPrefix(contentType, "text/html"), strings.HasPrefix(strings.ToLower(b), "<!doctype html"), strings.HasPrefix(strings.ToLower(b), "<html"):
		return "html"
	case strings.HasPrefix(contentType, "application/json"), strings.HasPrefix(b, "{"), strings.HasPrefix(b, "["):
		return "json"
	}
	for _, line := range strings.Split(b, "\n") {
		if f := strings.Fields(line); len(f) == 0 || !semver.IsValid(f[0]) {
			return "text"
		}
	}
	return "versions"
}

// newestVersion returns the highest semantic version among the lines of a
// version list ("" when there is none). A line the 4096-byte read may have
// cut short is left out.
func newestVersion(body []byte) string {
	b := string(body)
	if len(body) >= 4096 {
		if i := strings.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
	}
	var newest string
	for _, line := range strings.Split(b, "\n") {
		if f := strings.Fields(line); len(f) > 0 && semver.IsValid(f[0]) && (newest == "" || semver.Compare(f[0], newest) > 0) {
			newest = f[0]
		}
	}
	return newest
}

// infoVersionOK reports whether body is a version's info as the go command
// reads it: JSON with a Version that is want, or any valid semantic version
// when want is "" (the answer to @latest).
func infoVersionOK(body []byte, want string) bool {
	var info struct{ Version string }
	if json.Unmarshal(body, &info) != nil || !semver.IsValid(info.Version) {
		return false
	}
	return want == "" || info.Version == want
}

// jsonMessage returns the message of a JSON error document ({"message":...},
// {"error":...}, {"errors":[{"message":...}]}), or "".
func jsonMessage(body []byte) string {
	var doc struct {
		Message string `json:"message"`
		Error   any    `json:"error"`
		Errors  []struct {
			Message string `json:"message"`
			Status  any    `json:"status"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	switch {
	case doc.Message != "":
		return clip(doc.Message, 200)
	case len(doc.Errors) > 0 && doc.Errors[0].Message != "":
		return clip(doc.Errors[0].Message, 200)
	}
	if s, ok := doc.Error.(string); ok {
		return clip(s, 200)
	}
	return ""
}

// httpProbe GETs u and keeps the phase timings.
func (p *prober) httpProbe(ctx context.Context, t Target, kind, u string) Probe {
	return p.httpProbeBody(ctx, t, kind, u, nil)
}

// httpProbeBody is httpProbe with judge, when not nil, called with the
// answer's first 4096 bytes before the probe is recorded: it may refine
// what the probe says about the body.
func (p *prober) httpProbeBody(ctx context.Context, t Target, kind, u string, judge func(pr *Probe, body []byte)) (pr Probe) {
	pr = Probe{Kind: kind, Target: t.Input, Name: u, started: time.Now()}
	tm := &HTTPTimings{}
	start := time.Now()
	since := func() float64 { return ms(time.Since(start)) }
	var mu sync.Mutex // the hooks run on transport goroutines that may outlive Do
	set := func(f *float64) {
		mu.Lock()
		if *f == 0 {
			*f = since()
		}
		mu.Unlock()
	}
	defer func() {
		mu.Lock()
		c := *tm
		mu.Unlock()
		pr.Timings = &c
		switch kind {
		case "http", "goproxy":
			if pr.Status > 0 {
				p.mu.Lock()
				cancel := p.altCancel[t.Input]
				p.mu.Unlock()
				if cancel != nil {
					cancel()
				}
			}
		case "http-direct", "http-via-proxy":
			if pr.Status == 0 && ctx.Err() == context.Canceled {
				pr = Probe{Kind: kind, Target: t.Input, Name: u, Via: pr.Via, Skipped: "not needed: the app's own path answered", started: pr.started}
			}
		}
		p.add(pr)
	}()
	trace := &httptrace.ClientTrace{
		DNSStart:             func(httptrace.DNSStartInfo) { set(&tm.DNSStart) },
		DNSDone:              func(httptrace.DNSDoneInfo) { set(&tm.DNSDone) },
		ConnectStart:         func(string, string) { set(&tm.ConnectStart) },
		ConnectDone:          func(string, string, error) { set(&tm.ConnectDone) },
		TLSHandshakeStart:    func() { set(&tm.TLSStart) },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { set(&tm.TLSDone) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { set(&tm.WroteRequest) },
		GotFirstResponseByte: func() { set(&tm.FirstByte) },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u, nil)
	if err != nil {
		pr.err, pr.Error, pr.Cause = err, errText(err), kUnknown
		return pr
	}
	req.Header.Set("User-Agent", "berth-doctor")
	proxy := p.proxy
	switch kind {
	case "http-direct":
		proxy = func(*url.URL) (*url.URL, error) { return nil, nil }
	case "http-via-proxy":
		proxy = p.anyProxy(t)
	}
	if pu, _ := proxy(req.URL); pu != nil {
		pr.Via = redact(pu.String())
	}
	client := p.httpClient(proxy)
	if kind == "goproxy" || kind == "sumdb" {
		// The module protocol as the go command speaks it: its
		// redirects, its credentials (GOAUTH, netrc).
		client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
			if err := goCheckRedirect(r, via); err != nil {
				return err
			}
			pr.Redirects = append(pr.Redirects, r.URL.Redacted())
			if m := p.creds.add(r); m != "" {
				pr.Credentials = "netrc machine " + m
			}
			return nil
		}
		if m := p.creds.add(req); m != "" {
			pr.Credentials = "netrc machine " + m
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		pr.DurationMS = since()
		pr.err, pr.Error, pr.Cause = err, errText(err), classify(err)
		if ctx.Err() != nil && (pr.Cause == kCanceled || pr.Cause == kUnknown) {
			pr.Cause = kTimeout
		}
		var pe *netkit.ProxyError
		if errors.As(err, &pe) {
			pr.Status = pe.Status // the proxy's answer to CONNECT
		}
		return pr
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	set(&tm.Done)
	pr.DurationMS = since()
	pr.Status = resp.StatusCode
	pr.Date = resp.Header.Get("Date")
	pr.Body = clip(strings.TrimSpace(string(body)), 200)
	pr.ContentType = clip(resp.Header.Get("Content-Type"), 100)
	pr.Shape = bodyShape(pr.ContentType, body)
	if pr.Shape == "json" {
		pr.Message = jsonMessage(body)
	}
	if a := resp.Header.Get("WWW-Authenticate"); a != "" {
		pr.Authenticate = clip(a, 200)
	}
	if resp.StatusCode >= 400 {
		pr.Cause = kHTTPStatus
		pr.Error = resp.Status
	} else {
		pr.OK = true
	}
	if judge != nil {
		judge(&pr, body)
	}
	return pr
}

// goproxyProbes speaks the GOPROXY protocol to one proxy entry: the version
// list of a small module and, when it is one, the info of its newest
// version (of @latest when the list is empty); beside them the checksum
// database through it.
func (p *prober) goproxyProbes(ctx context.Context, t Target) {
	base := strings.TrimSuffix(t.URL, "/")
	mod := p.o.ProbeModule
	if mod == "" {
		mod = "golang.org/x/text"
	}
	esc, err := module.EscapePath(mod)
	if err != nil {
		esc = mod
	}
	p.goRun(func() {
		var newest string
		list := p.httpProbeBody(ctx, t, "goproxy", base+"/"+esc+"/@v/list", func(pr *Probe, body []byte) {
			newest = newestVersion(body)
		})
		if !list.OK || list.Status >= 300 || (list.Shape != "versions" && list.Shape != "empty") {
			return
		}
		u := base + "/" + esc + "/@latest"
		if list.Shape == "versions" && newest != "" {
			ev, err := module.EscapeVersion(newest)
			if err != nil {
				return
			}
			u = base + "/" + esc + "/@v/" + ev + ".info"
		}
		p.httpProbeBody(ctx, t, "goproxy", u, func(pr *Probe, body []byte) {
			if infoVersionOK(body, newest) {
				pr.Shape = "info"
			}
		})
	})
	if name := p.facts.Go.SumDBName; name != "" {
		pr := p.httpProbe(ctx, t, "sumdb", base+"/sumdb/"+name+"/supported")
		status := pr.Status
		if pr.Cause != "" && pr.Cause != kHTTPStatus {
			status = 0 // a failed request, whatever status a proxy's CONNECT had
		}
		p.supported <- status
		if pr.OK {
			p.httpProbe(ctx, t, "sumdb", base+"/sumdb/"+name+"/latest")
		}
	}
}

// anyProxy returns the proxy the environment names for t's scheme,
// ignoring NO_PROXY: the path NO_PROXY turned away from.
func (p *prober) anyProxy(t Target) func(*url.URL) (*url.URL, error) {
	v := p.o.getenv("HTTPS_PROXY")
	if v == "" {
		v = p.o.getenv("https_proxy")
	}
	if t.Scheme == "http" {
		v = p.o.getenv("HTTP_PROXY")
		if v == "" {
			v = p.o.getenv("http_proxy")
		}
	}
	cfg := &httpproxy.Config{HTTPProxy: v, HTTPSProxy: v}
	return cfg.ProxyFunc()
}

func proxyFunc(o *Options) func(*url.URL) (*url.URL, error) {
	cfg := proxyConfig(o)
	f := cfg.ProxyFunc()
	return f
}
