package doctor

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// env returns a LookupEnv over a fixed map, so tests never see the real
// environment (and never default to a public GOPROXY).
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{"GOPROXY": "off", "GOSUMDB": "off", "GOMEMLIMIT": "1GiB"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func tlsServer(t *testing.T) (*httptest.Server, *x509.CertPool) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool
}

func TestRunLoopbackHealthy(t *testing.T) {
	srv, pool := tlsServer(t)
	rep, err := Run(context.Background(), Options{Targets: []string{srv.URL + "/"}, Roots: pool, LookupEnv: env(), Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Severity == SevError {
			t.Errorf("unexpected error finding %s: %s %v", f.ID, f.Summary, f.Evidence)
		}
	}
	kinds := map[string]bool{}
	for _, p := range rep.Probes {
		if p.OK {
			kinds[p.Kind] = true
		}
	}
	for _, k := range []string{"tcp", "tls", "http"} {
		if !kinds[k] {
			t.Errorf("no successful %s probe: %+v", k, rep.Probes)
		}
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), "app -> tcp 127.0.0.1:") {
		t.Errorf("text report lacks the path diagram:\n%s", b.String())
	}
}

func TestRunLoopbackFaults(t *testing.T) {
	srv, _ := tlsServer(t)
	// A port with nothing listening: take one and close it.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	rep, err := Run(context.Background(), Options{Targets: []string{srv.URL + "/", closed}, Roots: x509.NewCertPool(), LookupEnv: env(), Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, f := range rep.Findings {
		ids[f.ID] = true
	}
	if !ids["tls.unknown-authority"] || !ids["tcp.refused"] {
		t.Errorf("findings %v, want tls.unknown-authority and tcp.refused", ids)
	}
	if rep.Healthy() {
		t.Errorf("report is healthy")
	}
}

// TestRunDeadline: every probe hangs (a listener that accepts and never
// speaks TLS); the run must end within the timeout plus 0.5 s.
func TestRunDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	var targets []string
	for i := 0; i < 8; i++ {
		targets = append(targets, "https://"+l.Addr().String()+"/"+string(rune('a'+i)))
	}
	const timeout = 1 * time.Second
	start := time.Now()
	rep, err := Run(context.Background(), Options{Targets: targets, LookupEnv: env(), Timeout: timeout, Roots: x509.NewCertPool()})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > timeout+500*time.Millisecond {
		t.Errorf("run took %v with --timeout %v", d, timeout)
	}
	if len(rep.Findings) == 0 || rep.Findings[0].ID != "tls.handshake-timeout" {
		t.Errorf("first finding %+v, want tls.handshake-timeout", rep.Findings)
	}
}

func TestRunUsage(t *testing.T) {
	for _, o := range []Options{{Targets: []string{"ftp://x"}}, {Targets: []string{"no-port"}}, {Listen: []string{"127.0.0.1"}}} {
		o.LookupEnv = env()
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrUsage) {
			t.Errorf("%+v: err %v, want ErrUsage", o, err)
		}
	}
}

func TestHandler(t *testing.T) {
	srv, pool := tlsServer(t)
	h := Handler(Options{Targets: []string{srv.URL}, Roots: pool, LookupEnv: env(), Timeout: 2 * time.Second})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/doctor?format=json", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var rep Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || rep.Schema != SchemaVersion {
		t.Fatalf("JSON report: %v schema %d", err, rep.Schema)
	}
	h = Handler(Options{Targets: []string{srv.URL}, Roots: x509.NewCertPool(), LookupEnv: env(), Timeout: 2 * time.Second})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "tls.unknown-authority") {
		t.Errorf("unhealthy: status %d body %s", rec.Code, rec.Body)
	}
}

func TestListenLoopbackOnly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	rep, err := Run(context.Background(), Options{Listen: []string{":" + port}, LookupEnv: env(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) == 0 || rep.Findings[0].ID != "listen.loopback-only" {
		t.Errorf("findings %+v", rep.Findings)
	}
}

// TestRunGoproxyEntries: a file:// entry is not probed and must not make the
// checksum-database step wait for it; probing stops at "off".
func TestRunGoproxyEntries(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/@v/list"):
			w.Write([]byte("v0.1.0\n"))
		case strings.HasSuffix(r.URL.Path, "/@v/v0.1.0.info"):
			w.Write([]byte(`{"Version":"v0.1.0","Time":"2024-01-01T00:00:00Z"}`))
		case strings.HasSuffix(r.URL.Path, "/supported"):
			w.WriteHeader(200)
		case strings.HasSuffix(r.URL.Path, "/latest"):
			w.Write([]byte("go.sum database tree\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	start := time.Now()
	rep, err := Run(context.Background(), Options{Roots: pool, Timeout: 3 * time.Second,
		LookupEnv: env("GOPROXY", "file:///nonexistent,"+srv.URL+",off,https://after-off.example.test", "GOSUMDB", testVKey(t))})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("run took %v; the file:// entry made it wait", d)
	}
	for _, tg := range rep.Targets {
		if strings.Contains(tg.Input, "after-off") {
			t.Errorf("probed %s, which is after off", tg.Input)
		}
	}
	if !rep.Healthy() {
		t.Errorf("findings %+v", rep.Findings)
	}
}

// TestRunProxyRefusesConnect: an https:// proxy on loopback answers CONNECT
// with an error status. Only the HTTP probe goes through such a proxy, so
// the finding rests on netkit's classification of its error (407 is
// proxy-auth), not on the status text net/http would print.
func TestRunProxyRefusesConnect(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
		word   string
	}{
		{http.StatusProxyAuthRequired, "proxy.auth-required", "requires authentication"},
		{http.StatusForbidden, "proxy.unreachable", "did not open a tunnel"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			px := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodConnect {
					t.Errorf("proxy got %s %s, want CONNECT", r.Method, r.URL)
				}
				w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
				w.WriteHeader(tc.status)
			}))
			px.Config.ErrorLog = log.New(io.Discard, "", 0) // the TCP probe connects and hangs up
			px.StartTLS()
			defer px.Close()
			pool := x509.NewCertPool()
			pool.AddCert(px.Certificate())
			rep, err := Run(context.Background(), Options{Targets: []string{"https://web.example.test/"}, Roots: pool, Timeout: 3 * time.Second,
				LookupEnv: env("HTTPS_PROXY", px.URL)})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) == 0 || rep.Findings[0].ID != tc.want || !strings.Contains(rep.Findings[0].Summary, tc.word) {
				t.Fatalf("findings %+v, want %s saying %q", rep.Findings, tc.want, tc.word)
			}
			for _, p := range rep.Probes {
				if p.Kind == "http" && p.Status != tc.status {
					t.Errorf("http probe status %d, want the CONNECT answer %d", p.Status, tc.status)
				}
			}
		})
	}
}

// TestRunSumDBDirect: a GOPROXY that answers 404 to /sumdb/<name>/supported
// makes the go command contact the checksum database itself, and the doctor
// follows it there (a loopback server in GOSUMDB's URL form); with a proxy
// that serves the checksum database it does not.
func TestRunSumDBDirect(t *testing.T) {
	sumdb := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/latest" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("go.sum database tree\n"))
	}))
	defer sumdb.Close()
	for _, tc := range []struct {
		name      string
		supported int
		sumdbUp   bool
		direct    bool
		want      string
	}{
		{"proxied", 200, true, false, ""},
		{"direct", 404, true, true, ""},
		{"direct-down", 410, false, true, "goproxy.sumdb-unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.HasSuffix(r.URL.Path, "/@v/list"):
					w.Write([]byte("v0.1.0\n"))
				case strings.HasSuffix(r.URL.Path, "/@v/v0.1.0.info"):
					w.Write([]byte(`{"Version":"v0.1.0","Time":"2024-01-01T00:00:00Z"}`))
				case strings.HasSuffix(r.URL.Path, "/supported"):
					w.WriteHeader(tc.supported)
				case strings.HasSuffix(r.URL.Path, "/latest"):
					w.Write([]byte("go.sum database tree\n"))
				default:
					http.NotFound(w, r)
				}
			}))
			defer proxy.Close()
			pool := x509.NewCertPool()
			pool.AddCert(proxy.Certificate())
			pool.AddCert(sumdb.Certificate())
			sumURL := sumdb.URL
			if !tc.sumdbUp {
				l, _ := net.Listen("tcp", "127.0.0.1:0")
				sumURL = "https://" + l.Addr().String()
				l.Close()
			}
			rep, err := Run(context.Background(), Options{Roots: pool, Timeout: 3 * time.Second,
				LookupEnv: env("GOPROXY", proxy.URL, "GOSUMDB", testVKey(t)+" "+sumURL)})
			if err != nil {
				t.Fatal(err)
			}
			direct := false
			for _, tg := range rep.Targets {
				if tg.Role == "sumdb" {
					direct = tg.Input == sumURL
				}
			}
			if direct != tc.direct {
				t.Errorf("checksum database probed directly: %v, want %v (targets %+v)", direct, tc.direct, rep.Targets)
			}
			var ids []string
			for _, f := range rep.Findings {
				ids = append(ids, f.ID)
			}
			if strings.Join(ids, " ") != tc.want {
				t.Errorf("findings %q, want %q: %+v", ids, tc.want, rep.Findings)
			}
		})
	}
}

// testVKey returns a checksum-database verifier key named sum.example.test,
// the GOSUMDB form of a database the go command has no key for.
func testVKey(t *testing.T) string {
	_, vkey, err := note.GenerateKey(rand.Reader, "sum.example.test")
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// TestRunGoproxyInfo: a loopback GOPROXY that answers the version list asks
// for the newest listed version's .info next (@latest when the list is
// empty), after the list and never instead of it; an HTML page there is
// goproxy.not-a-proxy, the version's JSON is healthy.
func TestRunGoproxyInfo(t *testing.T) {
	for _, tc := range []struct {
		name, list, asked, info string
		status                  int
		want, word              string
	}{
		{name: "info-html", list: "v0.1.0\nv0.10.0\nv0.9.0\n", asked: "/golang.org/x/text/@v/v0.10.0.info",
			info: "<!DOCTYPE html><html><title>Sign in</title></html>", want: "goproxy.not-a-proxy",
			word: "golang.org/x/text/@v/v0.10.0.info with an HTML page, not a version's JSON"},
		{name: "info-other-version", list: "v0.1.0\nv0.2.0\n", asked: "/golang.org/x/text/@v/v0.2.0.info",
			info: `{"Version":"v0.1.0"}`, want: "goproxy.not-a-proxy", word: "a JSON document without Version v0.2.0"},
		{name: "info-json", list: "v0.1.0\nv0.2.0\n", asked: "/golang.org/x/text/@v/v0.2.0.info",
			info: `{"Version":"v0.2.0","Time":"2024-01-01T00:00:00Z"}`},
		{name: "latest-json", list: "", asked: "/golang.org/x/text/@latest",
			info: `{"Version":"v0.0.0-20240101000000-0123456789ab","Time":"2024-01-01T00:00:00Z"}`},
		{name: "latest-html", list: "", asked: "/golang.org/x/text/@latest",
			info: "<html>login</html>", want: "goproxy.not-a-proxy", word: "golang.org/x/text/@latest with an HTML page"},
		{name: "info-502", list: "v0.1.0\n", asked: "/golang.org/x/text/@v/v0.1.0.info",
			info: "upstream down", status: http.StatusBadGateway, want: "goproxy.unreachable", word: "502 Bad Gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				switch {
				case strings.HasSuffix(r.URL.Path, "/@v/list"):
					w.Write([]byte(tc.list))
				case r.URL.Path == tc.asked:
					if strings.HasPrefix(tc.info, "<") {
						w.Header().Set("Content-Type", "text/html; charset=utf-8")
					}
					if tc.status != 0 {
						w.WriteHeader(tc.status)
					}
					w.Write([]byte(tc.info))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			pool := x509.NewCertPool()
			pool.AddCert(srv.Certificate())
			rep, err := Run(context.Background(), Options{Roots: pool, Timeout: 3 * time.Second,
				LookupEnv: env("GOPROXY", srv.URL)})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			got := append([]string(nil), paths...)
			mu.Unlock()
			if len(got) != 2 || got[0] != "/golang.org/x/text/@v/list" || got[1] != tc.asked {
				t.Errorf("requests %q, want the list and then %s", got, tc.asked)
			}
			var ids []string
			for _, f := range rep.Findings {
				ids = append(ids, f.ID)
			}
			if tc.want == "" {
				if len(rep.Findings) != 0 {
					t.Fatalf("findings %q, want none: %+v", ids, rep.Findings)
				}
				for _, p := range rep.Probes {
					if p.Kind == "goproxy" && strings.HasSuffix(p.Name, tc.asked) && (p.Shape != "info" || !p.OK) {
						t.Errorf("probe %s: shape %q ok %v, want info", p.Name, p.Shape, p.OK)
					}
				}
				return
			}
			if len(rep.Findings) != 1 || rep.Findings[0].ID != tc.want || !strings.Contains(rep.Findings[0].Summary, tc.word) {
				t.Fatalf("findings %q, want %s saying %q: %+v", ids, tc.want, tc.word, rep.Findings)
			}
			if f := rep.Findings[0]; f.ID == "goproxy.not-a-proxy" && (!strings.HasPrefix(f.Summary, "GOPROXY="+srv.URL+": ") || !strings.Contains(f.Fix[0], "GOPROXY")) {
				t.Errorf("summary and first fix must name GOPROXY: %q / %q", f.Summary, f.Fix[0])
			}
		})
	}
}
