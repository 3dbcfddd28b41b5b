package netkit

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/berth-dev/berth/netkit/internal/dnstest"
	"github.com/miekg/dns"
)

// refusedAddr returns a loopback address with nothing listening.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// certs makes a CA and a leaf for names, valid between notBefore and notAfter.
func certs(t *testing.T, notBefore, notAfter time.Time, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netkit test CA"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: notBefore, NotAfter: notAfter, DNSNames: names,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func tlsServer(t *testing.T, cert tls.Certificate) *httptest.Server {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, opts ClientOptions, target string) error {
	t.Helper()
	if opts.Retry == nil {
		opts.Retry = &RetryPolicy{MaxAttempts: 1}
	}
	if opts.Proxy == nil {
		opts.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	}
	c := NewClient(opts)
	defer c.CloseIdleConnections()
	resp, err := c.Get(target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	return CheckStatus(resp)
}

// hijack serves each connection with fn after reading the request line.
func hijack(t *testing.T, fn func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			http.ReadRequest(br)
			fn(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String() + "/"
}

func TestClassifyLoopback(t *testing.T) {
	now := time.Now()
	goodCert, goodPool := certs(t, now.Add(-time.Hour), now.Add(time.Hour), "good.test")
	expiredCert, expiredPool := certs(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "expired.test")
	good := tlsServer(t, goodCert)
	expired := tlsServer(t, expiredCert)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusServiceUnavailable)
	}))
	defer plain.Close()
	// A TLS listener that accepts and never speaks: the handshake times out.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	hold := make(chan struct{})
	defer close(hold)
	slowHeaders := hijack(t, func(c net.Conn) { <-hold; c.Close() })
	truncated := hijack(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
		c.Close()
	})
	reset := hijack(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
		c.(*net.TCPConn).SetLinger(0) // close sends RST
		time.AfterFunc(50*time.Millisecond, func() { c.Close() })
	})
	// A CONNECT proxy that wants credentials.
	proxy407 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="corp"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
	}))
	defer proxy407.Close()
	proxyURL, _ := url.Parse(proxy407.URL)
	deadProxy, _ := url.Parse("http://" + refusedAddr(t))

	tests := []struct {
		name string
		opts ClientOptions
		url  string
		want Kind
		temp bool
	}{
		{"refused", ClientOptions{}, "http://" + refusedAddr(t) + "/", KindRefused, true},
		{"dropped", ClientOptions{DialTimeout: 300 * time.Millisecond}, "http://" + droppingAddr(t) + "/", KindTimeout, true},
		{"slow headers", ClientOptions{ResponseHeaderTimeout: 100 * time.Millisecond}, slowHeaders, KindTimeout, true},
		{"truncated body", ClientOptions{}, truncated, KindEOF, true},
		{"reset mid-body", ClientOptions{}, reset, KindReset, true},
		{"status 503", ClientOptions{}, plain.URL, KindHTTPStatus, true},
		{"unknown authority", ClientOptions{}, good.URL, KindTLSUnknownAuthority, false},
		{"hostname", ClientOptions{TLSConfig: &tls.Config{RootCAs: goodPool, ServerName: "other.test"}}, good.URL, KindTLSHostname, false},
		{"expired", ClientOptions{TLSConfig: &tls.Config{RootCAs: expiredPool, ServerName: "expired.test"}}, expired.URL, KindTLSExpired, false},
		{"handshake timeout", ClientOptions{TLSHandshakeTimeout: 100 * time.Millisecond}, "https://" + silent.Addr().String() + "/", KindTLSHandshakeTimeout, true},
		{"https to http", ClientOptions{}, "https://" + plain.Listener.Addr().String() + "/", KindTLSOther, false},
		{"proxy 407", ClientOptions{Proxy: http.ProxyURL(proxyURL), TLSConfig: &tls.Config{RootCAs: goodPool, ServerName: "good.test"}}, good.URL, KindProxyAuth, false},
		{"proxy refused", ClientOptions{Proxy: http.ProxyURL(deadProxy)}, "http://good.test/", KindProxyConnect, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := get(t, tc.opts, tc.url)
			c := Classify(err)
			if c.Kind != tc.want {
				t.Fatalf("Classify(%v) = %v, want %s", err, c, tc.want)
			}
			if c.Temporary() != tc.temp {
				t.Errorf("%v: Temporary() = %v, want %v", c, c.Temporary(), tc.temp)
			}
			if c.Err != err {
				t.Errorf("Err not kept")
			}
			t.Logf("%v", c)
		})
	}
}

func TestClassifyDetail(t *testing.T) {
	addr := refusedAddr(t)
	c := Classify(get(t, ClientOptions{}, "http://"+addr+"/x"))
	if c.Addr != addr || c.Host != addr || c.Op != "dial" {
		t.Errorf("refused: %+v, want Addr and Host %s", c, addr)
	}
	proxy := refusedAddr(t)
	pu, _ := url.Parse("http://" + proxy)
	c = Classify(get(t, ClientOptions{Proxy: http.ProxyURL(pu)}, "http://svc.test/"))
	if c.Kind != KindProxyConnect || c.Server != proxy {
		t.Errorf("dead proxy: %+v, want Server %s", c, proxy)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c = Classify(get(t, ClientOptions{}, srv.URL+"/missing"))
	if c.Kind != KindHTTPStatus || c.Status != 404 || c.Temporary() {
		t.Errorf("404: %+v", c)
	}
}

func TestClassifyDNS(t *testing.T) {
	d := dnstest.New(t)
	d.SetIPs("svc.test.", "127.0.0.1")
	d.SetRcode("broken.test.", dns.RcodeServerFailure)
	d.SetRcode("refusing.test.", dns.RcodeRefused)
	d.SetSilent("silent.test.", true)
	r := d.Resolver()

	// A resolver whose server port is closed: ICMP port unreachable, read refused.
	dead := refusedUDP(t)
	deadRes := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", dead)
	}}

	tests := []struct {
		name string
		r    *net.Resolver
		host string
		want Kind
	}{
		{"nxdomain", r, "missing.test.", KindDNSNotFound},
		{"servfail", r, "broken.test.", KindDNSServFail},
		{"rcode refused", r, "refusing.test.", KindDNSServFail},
		{"timeout", r, "silent.test.", KindDNSTimeout},
		{"server down", deadRes, "svc.test.", KindDNSUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := tc.r.LookupIPAddr(ctx, tc.host)
			c := Classify(err)
			if c.Kind != tc.want {
				t.Fatalf("Classify(%v) = %v, want %s", err, c, tc.want)
			}
			if c.Host == "" {
				t.Errorf("no Host in %v", c)
			}
		})
	}
	if _, err := r.LookupIPAddr(context.Background(), "svc.test."); err != nil {
		t.Fatal(err)
	}
}

// refusedUDP returns a loopback UDP address with nothing bound.
func refusedUDP(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestClassifyCanceledAndNil(t *testing.T) {
	if c := Classify(nil); c.Kind != "" || c.Temporary() || c.String() != "ok" {
		t.Errorf("Classify(nil) = %+v", c)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	_, err := NewClient(ClientOptions{}).Do(req)
	if c := Classify(err); c.Kind != KindCanceled || c.Temporary() {
		t.Errorf("canceled: %+v", c)
	}
	wrapped := fmt.Errorf("fetch: %w", &StatusError{Status: 429, URL: "http://x.test/a"})
	if c := Classify(wrapped); c.Kind != KindHTTPStatus || c.Status != 429 || !c.Temporary() || c.Host != "x.test" {
		t.Errorf("429: %+v", c)
	}
	if c := Classify(errors.New("something")); c.Kind != KindUnknown {
		t.Errorf("plain error: %+v", c)
	}
}
