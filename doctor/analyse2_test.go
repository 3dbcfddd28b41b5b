package doctor

import (
	"strings"
	"testing"
)

// The second wave's cases: misconfigurations as well as dead links. They
// join analyseCases, so the catalog tests hold them too.

func init() { analyseCases = append(analyseCases, wave2Cases...) }

// realProxyFacts are the proxy facts for env as net/http's own parser
// reads them (proxyFacts), so the cases below cannot claim what Go does not do.
func realProxyFacts(env ...string) ProxyFacts {
	e := map[string]string{}
	for i := 0; i+1 < len(env); i += 2 {
		e[env[i]] = env[i+1]
	}
	return proxyFacts(&Options{LookupEnv: func(k string) (string, bool) { v, ok := e[k]; return v, ok }})
}

// proxyList is the GOPROXY version-list answer of proxyURL.
func proxyList(status int, shape, contentType, body string) Probe {
	p := httpOK(proxyURL, "goproxy", listURL)
	p.Status, p.Shape, p.ContentType, p.Body = status, shape, contentType, body
	if status >= 400 {
		p.OK, p.Cause, p.Error = false, kHTTPStatus, map[int]string{401: "401 Unauthorized", 403: "403 Forbidden", 500: "500 Internal Server Error"}[status]
	}
	return p
}

// proxyInfo is proxyURL's answer to path, a version's .info or @latest.
func proxyInfo(path string, status int, shape, contentType, body string) Probe {
	p := proxyList(status, shape, contentType, body)
	p.Name = proxyURL + path
	return p
}

func withGoproxy(f *Facts) { goproxyFacts(f); f.Go.Auth = "no netrc file at /root/.netrc" }

var wave2Cases = []analyseCase{
	// Fast failures: a nameserver host with nothing on port 53.
	{name: "nameserver-port-closed", targets: []string{webURL},
		probes: []Probe{dnsErr(webURL, ns1, webHost, kRefused, "read udp 192.0.2.10:41192->"+ns1+": read: connection refused"),
			resolveFail(webURL, webHost, kDNSTimeout, "read udp 192.0.2.10:41193->"+ns1+": read: connection refused"),
			httpFail(webURL, "http", webURL, kDNSTimeout, "dial tcp: lookup web.example.test on "+ns1+": read: connection refused")},
		want:    []string{"dns.server-port-closed/error"},
		summary: map[string]string{"dns.server-port-closed": "refuses DNS on port 53"},
		check: func(t *testing.T, r *Report) {
			f := findingByID(r, "dns.server-port-closed")
			if !strings.Contains(strings.Join(f.Fix, "\n"), "/etc/resolv.conf: nameserver 192.0.2.53") {
				t.Errorf("the fix must name the resolv.conf line: %q", f.Fix)
			}
			if strings.Contains(f.Cause, "dropped") || strings.Contains(f.Summary, "does not answer") {
				t.Errorf("a refused port is not a dropped one: %q / %q", f.Summary, f.Cause)
			}
		}},
	{name: "second-nameserver-port-closed", targets: []string{webURL},
		facts:  func(f *Facts) { f.ResolvConf.Nameservers = []string{ns1, ns2} },
		probes: join(webUpTo("http"), []Probe{dnsErr(webURL, ns2, webHost, kRefused, "read udp 192.0.2.10:41192->"+ns2+": read: connection refused")}),
		want:   []string{"dns.server-port-closed/warn"}},
	{name: "nameserver-host-unreachable", targets: []string{webURL},
		probes: []Probe{dnsErr(webURL, ns1, webHost, kHostUnreach, "read udp 192.0.2.10:41192->"+ns1+": read: no route to host"),
			resolveFail(webURL, webHost, kDNSTimeout, "no route to host")},
		want:    []string{"dns.server-unreachable/error"},
		summary: map[string]string{"dns.server-unreachable": "is unreachable (no route to host)"}},

	{name: "aaaa-unanswered", targets: []string{webURL},
		probes: join([]Probe{func() Probe {
			p := dnsOK(webURL, ns1, webHost)
			p.AAAA = &NameTry{Name: webHost + ".", Type: "AAAA", Rcode: rcodeNoAnswer, MS: 1000}
			return p
		}(), resolveOK(webURL, webHost, 1003)}, webUpTo("http")[2:]),
		want: []string{"dns.slow/warn"},
		check: func(t *testing.T, r *Report) {
			if f := findingByID(r, "dns.slow"); !strings.Contains(strings.Join(f.Evidence, "\n"), "did not answer AAAA") {
				t.Errorf("want the AAAA evidence: %q", f.Evidence)
			}
		}},

	// TLS to completion.
	{name: "https-to-plain-http-port", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSPlainHTTP, "tls: first record does not look like a TLS handshake"),
			httpFail(webURL, "http", webURL, kTLSOther, "http: server gave HTTP response to HTTPS client")}),
		want:    []string{"tls.plain-http/error"},
		summary: map[string]string{"tls.plain-http": "plain HTTP"}},
	{name: "goproxy-https-to-plain-http-port", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: []Probe{dnsOK(proxyURL, ns1, "proxy.example.test"), resolveOK(proxyURL, "proxy.example.test", 3), tcpOK(proxyURL, "192.0.2.81:443"),
			tlsFail(proxyURL, "192.0.2.81:443", "proxy.example.test", kTLSPlainHTTP, "tls: first record does not look like a TLS handshake")},
		want:    []string{"tls.plain-http/error"},
		summary: map[string]string{"tls.plain-http": "GOPROXY=" + proxyURL + ": "},
		check: func(t *testing.T, r *Report) {
			if f := findingByID(r, "tls.plain-http"); !strings.Contains(f.Fix[0], "GOPROXY=") {
				t.Errorf("the first fix must name GOPROXY: %q", f.Fix)
			}
		}},
	{name: "client-certificate-required", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{func() Probe {
			p := tlsFail(webURL, webAddr, webHost, kTLSClientCert, "remote error: tls: certificate required")
			p.ClientAuth = []string{"the server sent a CertificateRequest naming 1 acceptable CAs", "acceptable CA: CN=Clients CA"}
			return p
		}()}),
		want: []string{"tls.client-cert-required/error"}},

	// The GOPROXY protocol itself.
	{name: "goproxy-html-page", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes:  append(proxyUpTo(), proxyList(200, "html", "text/html; charset=utf-8", "<!DOCTYPE html><title>Sign in</title>")),
		want:    []string{"goproxy.not-a-proxy/error"},
		summary: map[string]string{"goproxy.not-a-proxy": "an HTML page"}},
	{name: "goproxy-json-document", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), func() Probe {
			p := proxyList(200, "json", "application/json", `{"errors":[{"status":404,"message":"Repository not found"}]}`)
			p.Message = "Repository not found"
			return p
		}()),
		want:    []string{"goproxy.not-a-proxy/error"},
		summary: map[string]string{"goproxy.not-a-proxy": "a JSON document"}},
	{name: "goproxy-other-text", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes:  append(proxyUpTo(), proxyList(200, "text", "text/plain", "It works!")),
		want:    []string{"goproxy.not-a-proxy/error"},
		summary: map[string]string{"goproxy.not-a-proxy": "text that is not a version list"}},
	{name: "goproxy-401-without-credentials", goproxy: []string{proxyURL},
		facts: func(f *Facts) {
			withGoproxy(f)
			f.Go.Auth, f.Go.NetrcMachines = "netrc /root/.netrc", []string{"proxy.example.test:443"}
		},
		probes: append(proxyUpTo(), func() Probe {
			p := proxyList(401, "text", "text/plain", "unauthorized")
			p.Authenticate = `Basic realm="modules"`
			return p
		}()),
		want:    []string{"goproxy.auth-required/error"},
		summary: map[string]string{"goproxy.auth-required": "wants credentials"},
		check: func(t *testing.T, r *Report) {
			f := findingByID(r, "goproxy.auth-required")
			ev := strings.Join(f.Evidence, "\n")
			if !strings.Contains(ev, "netrc has machine proxy.example.test:443, but the go command looks for proxy.example.test") {
				t.Errorf("want the host:port mismatch named: %s", ev)
			}
			if !strings.Contains(strings.Join(f.Fix, "\n"), "machine proxy.example.test login") {
				t.Errorf("want the netrc line in the fix: %q", f.Fix)
			}
		}},
	{name: "goproxy-403-credentials-refused", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), func() Probe {
			p := proxyList(403, "text", "text/plain", "forbidden")
			p.Credentials = "netrc machine proxy.example.test"
			return p
		}()),
		want:    []string{"goproxy.auth-required/error"},
		summary: map[string]string{"goproxy.auth-required": "credentials sent are refused"}},
	{name: "goproxy-login-redirect", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), func() Probe {
			p := proxyList(200, "html", "text/html", "<html>login</html>")
			p.Redirects = []string{"https://sso.example.test/login?next=/golang.org/x/text/@v/list"}
			return p
		}()),
		want:    []string{"goproxy.login-redirect/error"},
		summary: map[string]string{"goproxy.login-redirect": "sso.example.test/login"}},
	{name: "goproxy-401-answered-by-netrc", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), func() Probe {
			p := proxyList(200, "versions", "text/plain", "v0.1.0\nv0.2.0")
			p.Credentials = "netrc machine proxy.example.test"
			return p
		}()),
		want: nil},
	// The list is a list, the version's .info is not its JSON.
	{name: "goproxy-info-html-page", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), proxyList(200, "versions", "text/plain", "v0.1.0\nv0.2.0"),
			proxyInfo("golang.org/x/text/@v/v0.2.0.info", 200, "html", "text/html; charset=utf-8", "<!DOCTYPE html><title>Sign in</title>")),
		want:    []string{"goproxy.not-a-proxy/error"},
		summary: map[string]string{"goproxy.not-a-proxy": "GOPROXY=" + proxyURL + ": " + proxyURL + " answers golang.org/x/text/@v/v0.2.0.info with an HTML page, not a version's JSON"},
		check: func(t *testing.T, r *Report) {
			f := findingByID(r, "goproxy.not-a-proxy")
			if !strings.Contains(f.Fix[0], "Set GOPROXY") || !strings.Contains(f.Fix[0], "curl -fsS https://proxy.example.test/golang.org/x/text/@v/v0.2.0.info") {
				t.Errorf("the first fix must name GOPROXY and the URL to test: %q", f.Fix)
			}
			if !strings.Contains(f.Cause, "answers the version list but") {
				t.Errorf("cause: %q", f.Cause)
			}
		}},
	{name: "goproxy-info-wrong-json", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), proxyList(200, "versions", "text/plain", "v0.1.0\nv0.2.0"),
			proxyInfo("golang.org/x/text/@v/v0.2.0.info", 200, "json", "application/json", `{"Version":"v0.1.0"}`)),
		want:    []string{"goproxy.not-a-proxy/error"},
		summary: map[string]string{"goproxy.not-a-proxy": "with a JSON document without Version v0.2.0, not a version's JSON"}},
	{name: "goproxy-latest-not-a-version", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), proxyList(200, "empty", "text/plain", ""),
			proxyInfo("golang.org/x/text/@latest", 200, "json", "application/json", `{"status":"ok"}`)),
		want:    []string{"goproxy.not-a-proxy/error"},
		summary: map[string]string{"goproxy.not-a-proxy": "answers golang.org/x/text/@latest with a JSON document without a valid Version"}},
	// Beside another target's root cause, not folded under it.
	{name: "goproxy-info-text-beside-refused-target", targets: []string{webURL}, goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: join(webUpTo("tcp")[:2], []Probe{tcpFail(webURL, webAddr, kRefused, "connect: connection refused")}, proxyUpTo(),
			[]Probe{proxyList(200, "versions", "text/plain", "v0.1.0"), proxyInfo("golang.org/x/text/@v/v0.1.0.info", 200, "text", "text/plain", "v0.1.0")}),
		want:    []string{"tcp.refused/error", "goproxy.not-a-proxy/error"},
		summary: map[string]string{"goproxy.not-a-proxy": "@v/v0.1.0.info with text, not a version's JSON"},
		check: func(t *testing.T, r *Report) {
			if len(r.Findings[0].Explains) != 0 {
				t.Errorf("tcp.refused of %s explains %+v; the proxy's answer is not its consequence", webURL, r.Findings[0].Explains)
			}
		}},
	{name: "goproxy-info-ok-through-redirect", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), proxyList(200, "versions", "text/plain", "v0.1.0\nv0.2.0"), func() Probe {
			p := proxyInfo("golang.org/x/text/@v/v0.2.0.info", 200, "info", "application/json", `{"Version":"v0.2.0","Time":"2024-01-01T00:00:00Z"}`)
			p.Redirects = []string{"https://cdn.example.test/golang.org/x/text/@v/v0.2.0.info"}
			return p
		}()),
		want: nil},
	{name: "goproxy-info-status", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), proxyList(200, "versions", "text/plain", "v0.1.0"),
			proxyInfo("golang.org/x/text/@v/v0.1.0.info", 500, "text", "text/plain", "storage offline")),
		want:    []string{"goproxy.unreachable/error"},
		summary: map[string]string{"goproxy.unreachable": "500 Internal Server Error"}},
	{name: "goproxy-json-error-status", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: append(proxyUpTo(), func() Probe {
			p := proxyList(500, "json", "application/json", `{"message":"backend storage offline"}`)
			p.Message = "backend storage offline"
			return p
		}()),
		want:    []string{"goproxy.unreachable/error"},
		summary: map[string]string{"goproxy.unreachable": "backend storage offline"}},
	{name: "goproxy-port-refused-names-goproxy", goproxy: []string{proxyURL}, facts: withGoproxy,
		probes: []Probe{dnsOK(proxyURL, ns1, "proxy.example.test"), resolveOK(proxyURL, "proxy.example.test", 3),
			tcpFail(proxyURL, "192.0.2.81:443", kRefused, "connect: connection refused"),
			httpFail(proxyURL, "goproxy", listURL, kRefused, "dial tcp 192.0.2.81:443: connect: connection refused")},
		want:    []string{"tcp.refused/error"},
		summary: map[string]string{"tcp.refused": "GOPROXY=" + proxyURL + ": proxy.example.test refuses"},
		check: func(t *testing.T, r *Report) {
			f := findingByID(r, "tcp.refused")
			if !strings.Contains(f.Fix[0], "GOPROXY="+proxyURL+" sends the go command to "+proxyURL+" (contacted: proxy.example.test)") {
				t.Errorf("the first fix must name GOPROXY and the host contacted: %q", f.Fix[0])
			}
		}},

	// The path the environment did not choose.
	{name: "proxy-down-direct-works", targets: []string{webURL},
		facts: func(f *Facts) { f.Proxy = ProxyFacts{HTTPSProxy: squid, From: []string{"HTTPS_PROXY"}} },
		probes: []Probe{resolveOK(webURL, "squid.example.test", 2), func() Probe {
			p := tcpFail(webURL, "192.0.2.31:3128", kRefused, "connect: connection refused")
			p.Via = squid
			return p
		}(), func() Probe { p := httpOK(webURL, "http-direct", webURL); return p }()},
		want:    []string{"proxy.unreachable/error"},
		summary: map[string]string{"proxy.unreachable": "HTTPS_PROXY=" + squid + ": "},
		check: func(t *testing.T, r *Report) {
			if f := findingByID(r, "proxy.unreachable"); !strings.Contains(f.Fix[0], "add it to NO_PROXY") {
				t.Errorf("want the NO_PROXY fix first: %q", f.Fix)
			}
		}},
	{name: "no-proxy-direct-fails-proxy-works", targets: []string{webURL},
		facts: func(f *Facts) {
			f.Proxy = ProxyFacts{HTTPSProxy: squid, NoProxy: "web.example.test", From: []string{"HTTPS_PROXY", "NO_PROXY"}}
		},
		probes: join(webUpTo("dns"), []Probe{tcpFail(webURL, webAddr, kTimeout, "i/o timeout"),
			func() Probe { p := httpOK(webURL, "http-via-proxy", webURL); p.Via = squid; return p }()}),
		want:    []string{"tcp.timeout/error"},
		summary: map[string]string{"tcp.timeout": "NO_PROXY=web.example.test: "},
		check: func(t *testing.T, r *Report) {
			if f := findingByID(r, "tcp.timeout"); !strings.Contains(f.Fix[0], "take web.example.test out of NO_PROXY") {
				t.Errorf("want the NO_PROXY fix first: %q", f.Fix)
			}
		}},

	// Malformed proxy variables, with the facts net/http's parser gives.
	{name: "malformed-proxy-dropped-then-firewall", targets: []string{webURL},
		facts:    func(f *Facts) { f.Proxy = realProxyFacts("HTTPS_PROXY", "squid example:3128") },
		probes:   join(webUpTo("dns"), []Probe{tcpFail(webURL, webAddr, kTimeout, "i/o timeout"), httpFail(webURL, "http", webURL, kTimeout, "dial tcp 192.0.2.80:443: i/o timeout")}),
		want:     []string{"proxy.malformed/error"},
		summary:  map[string]string{"proxy.malformed": "connects directly"},
		explains: map[string][]string{"proxy.malformed": {"tcp.timeout", ""}}},
	{name: "malformed-proxy-dials-http", targets: []string{webURL},
		facts: func(f *Facts) {
			f.Proxy = realProxyFacts("HTTPS_PROXY", "http://squid example:3128")
			f.Proxy.HTTPSProxy, f.Proxy.From = "http://squid example:3128", []string{"HTTPS_PROXY"}
		},
		probes: []Probe{dnsRcode(webURL, ns1, "http", "NXDOMAIN", kDNSNotFound),
			func() Probe { p := resolveFail(webURL, "http", kDNSNotFound, "no such host"); return p }(),
			func() Probe {
				p := httpFail(webURL, "http", webURL, kProxyConnect, "proxyconnect tcp: dial tcp: lookup http: no such host")
				p.Via = "http://http//squid%20example:3128"
				return p
			}()},
		want:     []string{"proxy.malformed/error"},
		summary:  map[string]string{"proxy.malformed": `Go dials the proxy host "http" (http:80)`},
		explains: map[string][]string{"proxy.malformed": {"dns.not-found", ""}},
		check: func(t *testing.T, r *Report) {
			f := findingByID(r, "proxy.malformed")
			if !strings.Contains(f.Explains[0].Summary, `"http" (the HTTPS_PROXY host for web.example.test) does not exist`) {
				t.Errorf("the folded lookup must name the host Go looked up: %q", f.Explains[0].Summary)
			}
			if strings.Contains(f.Cause, "ignore") || strings.Contains(f.Cause, "no proxy") {
				t.Errorf("Go dials http:80 here, it does not ignore the value: %q", f.Cause)
			}
		}},
	{name: "malformed-proxy-does-not-explain-tls", targets: []string{webURL},
		facts:  func(f *Facts) { f.Proxy = realProxyFacts("HTTPS_PROXY", "squid example:3128") },
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSHostname, "x509: certificate is valid for other.example.test, not web.example.test")}),
		want:   []string{"proxy.malformed/error", "tls.hostname-mismatch/error"}},
}
