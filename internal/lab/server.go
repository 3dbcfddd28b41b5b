package lab

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// ServerEnv is the environment variable that turns a test binary into the
// fixture server: its value is the path of a JSON Config.
const ServerEnv = "BERTH_LAB_SERVER"

// Config describes the fixture servers of one scenario, all run by one
// process inside the server namespace.
type Config struct {
	DNS   []DNSConfig   `json:"dns,omitempty"`
	HTTPS []HTTPConfig  `json:"https,omitempty"`
	Proxy []ProxyConfig `json:"proxy,omitempty"`
	// Reset lists addresses that accept TCP connections and reset them at once.
	Reset []string `json:"reset,omitempty"`
	// Listen lists addresses that only accept connections (a bound service).
	Listen []string `json:"listen,omitempty"`
}

// DNSConfig is one DNS server (UDP and TCP on Addr, port 53 by default).
type DNSConfig struct {
	Addr string `json:"addr"`
	// Mode is answer (default), timeout, servfail, refused, nxdomain,
	// truncate or drop-aaaa (A answered, AAAA never).
	Mode string `json:"mode,omitempty"`
	// Delay is added before each answer.
	Delay time.Duration `json:"delay,omitempty"`
	// Records maps names ("web.example.test." or "*.corp.test.") to IPv4 addresses.
	Records map[string][]string `json:"records,omitempty"`
}

// HTTPConfig is one HTTPS server.
type HTTPConfig struct {
	Addr string `json:"addr"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// Status is the status for every request (default 200) unless GoProxy.
	Status int `json:"status,omitempty"`
	// GoProxy serves the module protocol: any @v/list, and /sumdb/<name>/...
	GoProxy bool `json:"goproxy,omitempty"`
	// SumDB is "ok" (default), "404" (not proxied) or "502" (upstream down).
	SumDB string `json:"sumdb,omitempty"`
	// Page makes a GoProxy answer every path as something that is not the
	// module protocol: "html" (200 with a sign-in page), "json" (200 with a
	// JSON error document), "login" (302 to /login, a 200 HTML page).
	Page string `json:"page,omitempty"`
	// Info makes a GoProxy that answers @v/list answer the versions' .info
	// and @latest with something that is not a version's JSON: "html"
	// (200 with a sign-in page). By default they are the version's JSON.
	Info string `json:"info,omitempty"`
	// Auth is "user:password" when the server wants Basic credentials
	// (401 with a WWW-Authenticate challenge otherwise).
	Auth string `json:"auth,omitempty"`
	// Plain serves plain HTTP on Addr (an https:// URL to a plain port).
	Plain bool `json:"plain,omitempty"`
	// ClientCA is a PEM file: the server requires a client certificate
	// issued by it (mutual TLS).
	ClientCA string `json:"client_ca,omitempty"`
}

// ProxyConfig is an HTTP CONNECT proxy.
type ProxyConfig struct {
	Addr string `json:"addr"`
	// Auth is "user:password" when the proxy requires Basic credentials.
	Auth string `json:"auth,omitempty"`
	// Hosts maps target host names to addresses (the proxy's own DNS).
	Hosts map[string]string `json:"hosts,omitempty"`
}

// ServeMain runs the servers described in the JSON file at path, prints
// "ready" on stdout once every listener is bound, and serves until SIGTERM
// or stdin closes.
func ServeMain(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "labserver:", err)
		os.Exit(1)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		fmt.Fprintln(os.Stderr, "labserver:", err)
		os.Exit(1)
	}
	if err := serve(&c); err != nil {
		fmt.Fprintln(os.Stderr, "labserver:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }()
	<-ctx.Done()
}

func serve(c *Config) error {
	for _, d := range c.DNS {
		if err := serveDNS(d); err != nil {
			return err
		}
	}
	for _, h := range c.HTTPS {
		if err := serveHTTPS(h); err != nil {
			return err
		}
	}
	for _, p := range c.Proxy {
		if err := serveProxy(p); err != nil {
			return err
		}
	}
	for _, a := range c.Reset {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		go acceptLoop(l, func(conn net.Conn) {
			// Read the ClientHello first so the reset arrives mid-handshake.
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			_, _ = conn.Read(make([]byte, 512))
			_ = conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		})
	}
	for _, a := range c.Listen {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		go acceptLoop(l, func(conn net.Conn) { conn.Close() })
	}
	return nil
}

func serveDNS(d DNSConfig) error {
	addr := d.Addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "53")
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if d.Delay > 0 {
			time.Sleep(d.Delay)
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		_, udp := w.RemoteAddr().(*net.UDPAddr)
		switch d.Mode {
		case "timeout":
			return
		case "drop-aaaa":
			if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeAAAA {
				return
			}
			answer(m, r, d.Records)
		case "servfail":
			m.Rcode = dns.RcodeServerFailure
		case "refused":
			m.Rcode = dns.RcodeRefused
		case "nxdomain":
			m.Rcode = dns.RcodeNameError
		case "truncate":
			if udp {
				m.Truncated = true
				_ = w.WriteMsg(m)
				return
			}
			answer(m, r, d.Records)
		default:
			answer(m, r, d.Records)
		}
		_ = w.WriteMsg(m)
	})
	for _, netw := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: addr, Net: netw, Handler: h}
		ready := make(chan error, 1)
		srv.NotifyStartedFunc = func() { ready <- nil }
		go func() {
			if err := srv.ListenAndServe(); err != nil {
				ready <- err
			}
		}()
		if err := <-ready; err != nil {
			return fmt.Errorf("dns %s %s: %w", netw, addr, err)
		}
	}
	return nil
}

func lookupRecord(recs map[string][]string, name string) ([]string, bool) {
	name = strings.ToLower(name)
	if a, ok := recs[name]; ok {
		return a, true
	}
	for k, a := range recs {
		if strings.HasPrefix(k, "*.") && strings.HasSuffix(name, k[1:]) {
			return a, true
		}
	}
	return nil, false
}

func answer(m, r *dns.Msg, recs map[string][]string) {
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return
	}
	q := r.Question[0]
	addrs, ok := lookupRecord(recs, q.Name)
	if !ok {
		m.Rcode = dns.RcodeNameError
		return
	}
	if q.Qtype != dns.TypeA {
		return // NOERROR, no data
	}
	for _, a := range addrs {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.ParseIP(a).To4()})
	}
}

func serveHTTPS(h HTTPConfig) error {
	var l net.Listener
	var err error
	if h.Plain {
		l, err = net.Listen("tcp", h.Addr)
	} else {
		cert, cerr := tls.LoadX509KeyPair(h.Cert, h.Key)
		if cerr != nil {
			return cerr
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		if h.ClientCA != "" {
			data, rerr := os.ReadFile(h.ClientCA)
			if rerr != nil {
				return rerr
			}
			cfg.ClientCAs = x509.NewCertPool()
			cfg.ClientCAs.AppendCertsFromPEM(data)
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		l, err = tls.Listen("tcp", h.Addr, cfg)
	}
	if err != nil {
		return err
	}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.Auth != "" {
			user, pass, _ := strings.Cut(h.Auth, ":")
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="lab modules"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		switch h.Page {
		case "html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>lab</form></body></html>\n")
			return
		case "json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"errors":[{"status":404,"message":"Repository not found"}]}`)
			return
		case "login":
			if r.URL.Path == "/login" {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprint(w, "<html><body>Sign in to the lab</body></html>\n")
				return
			}
			http.Redirect(w, r, "/login?next="+r.URL.Path, http.StatusFound)
			return
		}
		if h.GoProxy {
			goproxy(w, r, h)
			return
		}
		st := h.Status
		if st == 0 {
			st = 200
		}
		w.WriteHeader(st)
		fmt.Fprintln(w, "lab", st)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: nil}
	go func() { _ = srv.Serve(l) }()
	return nil
}

func goproxy(w http.ResponseWriter, r *http.Request, h HTTPConfig) {
	p := r.URL.Path
	switch {
	case h.Status >= 400:
		http.Error(w, "upstream unavailable", h.Status)
	case strings.HasPrefix(p, "/sumdb/"):
		switch h.SumDB {
		case "404":
			http.NotFound(w, r)
		case "502":
			if strings.HasSuffix(p, "/supported") {
				w.WriteHeader(200)
				return
			}
			http.Error(w, "bad gateway: checksum database unreachable", http.StatusBadGateway)
		default:
			if strings.HasSuffix(p, "/supported") {
				w.WriteHeader(200)
				return
			}
			if strings.HasSuffix(p, "/latest") {
				fmt.Fprint(w, "go.sum database tree\n1\nAAAA\n\n— lab sig\n")
				return
			}
			http.NotFound(w, r)
		}
	case strings.HasSuffix(p, "/@v/list"):
		fmt.Fprint(w, "v0.1.0\nv0.2.0\n")
	case h.Info == "html" && (strings.HasSuffix(p, "/@latest") || strings.HasSuffix(p, ".info")):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>lab</form></body></html>\n")
	case strings.HasSuffix(p, "/@latest"):
		fmt.Fprint(w, `{"Version":"v0.2.0","Time":"2024-01-01T00:00:00Z"}`)
	case strings.HasSuffix(p, "/@v/v0.1.0.info"), strings.HasSuffix(p, "/@v/v0.2.0.info"):
		v := strings.TrimSuffix(p[strings.LastIndex(p, "/")+1:], ".info")
		fmt.Fprintf(w, `{"Version":%q,"Time":"2024-01-01T00:00:00Z"}`, v)
	default:
		http.NotFound(w, r)
	}
}

func serveProxy(pc ProxyConfig) error {
	l, err := net.Listen("tcp", pc.Addr)
	if err != nil {
		return err
	}
	go acceptLoop(l, func(c net.Conn) { go proxyConn(c, pc) })
	return nil
}

// acceptLoop calls handle for every connection l accepts, until l is closed.
func acceptLoop(l net.Listener, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		handle(c)
	}
}

func proxyConn(c net.Conn, pc ProxyConfig) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if pc.Auth != "" {
		user, pass, _ := strings.Cut(pc.Auth, ":")
		r2 := &http.Request{Header: http.Header{"Authorization": req.Header["Proxy-Authorization"]}}
		u, p, ok := r2.BasicAuth()
		if !ok || u != user || p != pass {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"lab\"\r\nContent-Length: 0\r\n\r\n")
			return
		}
	}
	if req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	host, port, _ := net.SplitHostPort(req.Host)
	if a, ok := pc.Hosts[host]; ok {
		host = a
	}
	up, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\n")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = io.Copy(up, br); up.(*net.TCPConn).CloseWrite() }()
	_, _ = io.Copy(c, up)
	wg.Wait()
}
