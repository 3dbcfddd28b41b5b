// Package dnstest is a real DNS server on loopback (github.com/miekg/dns) whose
// records a test can change while it runs, and a *net.Resolver that asks it.
package dnstest

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server answers A, AAAA and SRV queries from records the test sets.
type Server struct {
	Addr string // host:port of the UDP listener

	srv     *dns.Server
	queries atomic.Int64
	mu      sync.Mutex
	ips     map[string][]net.IP
	srvs    map[string][]*net.SRV
	rcodes  map[string]int
	silent  map[string]bool
}

// New starts a server on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Addr:   pc.LocalAddr().String(),
		ips:    map[string][]net.IP{},
		srvs:   map[string][]*net.SRV{},
		rcodes: map[string]int{},
		silent: map[string]bool{},
	}
	started := make(chan struct{})
	s.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		s.srv.Shutdown()
		<-done
	})
	return s
}

func key(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// SetIPs replaces the A and AAAA records of name.
func (s *Server) SetIPs(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []net.IP
	for _, ip := range ips {
		list = append(list, net.ParseIP(ip))
	}
	s.ips[key(name)] = list
	delete(s.rcodes, key(name))
}

// SetSRV replaces the SRV records of name.
func (s *Server) SetSRV(name string, records ...*net.SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srvs[key(name)] = records
	delete(s.rcodes, key(name))
}

// SetRcode makes every query for name answer with rcode (e.g. dns.RcodeServerFailure).
func (s *Server) SetRcode(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcodes[key(name)] = rcode
}

// SetSilent makes queries for name go unanswered (a DNS timeout).
func (s *Server) SetSilent(name string, silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent[key(name)] = silent
}

// Queries returns the number of queries received.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Resolver returns a pure-Go resolver that sends every query to s.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", s.Addr)
		},
	}
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	k := key(q.Name)
	s.mu.Lock()
	silent := s.silent[k]
	rcode, hasRcode := s.rcodes[k]
	ips, hasIPs := s.ips[k]
	srvs, hasSRV := s.srvs[k]
	s.mu.Unlock()
	if silent {
		return
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 1}
	}
	switch {
	case hasRcode:
		m.Rcode = rcode
	case !hasIPs && !hasSRV:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA:
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: v4})
			}
		}
	case q.Qtype == dns.TypeAAAA:
		for _, ip := range ips {
			if ip.To4() == nil {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip})
			}
		}
	case q.Qtype == dns.TypeSRV:
		for _, r := range srvs {
			m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: dns.Fqdn(r.Target)})
		}
	}
	w.WriteMsg(m)
}
