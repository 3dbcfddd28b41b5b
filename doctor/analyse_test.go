package doctor

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The analyse tests drive the checks with synthetic facts and probe results:
// no root, no network, no clock but time.Now for the certificate checks.
// Hosts are fixture names under .test; addresses are documentation ranges.

const (
	webURL   = "https://web.example.test/"
	webHost  = "web.example.test"
	webAddr  = "192.0.2.80:443"
	ns1      = "192.0.2.53:53"
	ns2      = "198.51.100.53:53"
	proxyURL = "https://proxy.example.test/"
	sumURL   = "https://sum.example.test"
	squid    = "http://squid.example.test:3128"
)

// healthyFacts is a container with an interface, a default route, one
// nameserver, a CA bundle, no proxy variables and GOPROXY=off.
func healthyFacts() Facts {
	return Facts{
		OS: "linux", Arch: "amd64", Now: time.Now().UTC().Format(time.RFC3339),
		Interfaces: []Interface{
			{Name: "lo", Up: true, Loopback: true, MTU: 65536, Addrs: []string{"127.0.0.1/8"}},
			{Name: "eth0", Up: true, MTU: 1500, Addrs: []string{"192.0.2.10/24"}},
		},
		DefaultRoute:   true,
		ResolvConf:     ResolvConf{Nameservers: []string{ns1}, Search: []string{}, Ndots: 1, Timeout: 5 * time.Second, Attempts: 2, Lines: 1},
		ResolvConfRead: "ok",
		NSSwitch:       NSSwitch{Order: "files,dns"},
		Resolver:       ResolverFact{Mode: "go", Order: "files,dns"},
		CA:             CAFacts{Files: []CAFile{{Path: "/etc/ssl/certs/ca-certificates.crt", Exists: true, Used: true, Certs: 140}}, Loaded: 140},
		Go:             GoFacts{GOPROXY: "off", GOSUMDB: "off", Source: "environment", Proxies: []GoProxyEntry{{URL: "off"}}, Git: "/usr/bin/git"},
		Limits:         LimitFacts{NumCPU: 4, GOMAXPROCS: 4, GOMEMLIMITEnv: "1GiB"},
	}
}

// Probe builders. A failed probe carries the class and the text Go would print.

func tryA(name, rcode string, n int, ms float64) NameTry {
	return NameTry{Name: name, Type: "A", Rcode: rcode, N: n, MS: ms}
}

func dnsOK(tg, server, host string, tries ...NameTry) Probe {
	if len(tries) == 0 {
		tries = []NameTry{tryA(host+".", "NOERROR", 1, 2)}
	}
	return Probe{Kind: "dns", Target: tg, Server: server, Name: host, OK: true, Transport: "udp", Rcode: "NOERROR", Tries: tries, Addrs: []string{"192.0.2.80"}, DurationMS: 3}
}

func dnsDead(tg, server, host string) Probe {
	return dnsErr(tg, server, host, kDNSTimeout, "read udp 192.0.2.10:41192->"+server+": i/o timeout")
}

// dnsErr is a query that got no response: a socket error or a timeout.
func dnsErr(tg, server, host, cause, text string) Probe {
	return Probe{Kind: "dns", Target: tg, Server: server, Name: host, Transport: "udp", Cause: cause, DurationMS: 5000,
		Error: text, Tries: []NameTry{tryA(host+".", rcodeNoAnswer, 0, 5000)}}
}

func dnsRcode(tg, server, host, rcode, cause string) Probe {
	return Probe{Kind: "dns", Target: tg, Server: server, Name: host, Transport: "udp", Cause: cause, Rcode: rcode, DurationMS: 2,
		Error: "no name in the search list resolved", Tries: []NameTry{tryA(host+".", rcode, 0, 2)}}
}

func resolveOK(tg, host string, ms float64) Probe {
	return Probe{Kind: "resolve", Target: tg, Server: "go resolver", Name: host, OK: true, Addrs: []string{"192.0.2.80"}, DurationMS: ms,
		Tries: []NameTry{tryA(host+".", "NOERROR", 1, ms)}}
}

func resolveFail(tg, host, cause, text string) Probe {
	return Probe{Kind: "resolve", Target: tg, Server: "go resolver", Name: host, Cause: cause, Error: "lookup " + host + ": " + text, DurationMS: 10}
}

func tcpOK(tg, addr string) Probe {
	return Probe{Kind: "tcp", Target: tg, Server: addr, OK: true, DurationMS: 1}
}

func tcpFail(tg, addr, cause, text string) Probe {
	return Probe{Kind: "tcp", Target: tg, Server: addr, Cause: cause, Error: "dial tcp " + addr + ": " + text, DurationMS: 3000}
}

func tlsOK(tg, addr, host string) Probe {
	return Probe{Kind: "tls", Target: tg, Server: addr, Name: host, OK: true, TLSVersion: "TLS 1.3", DurationMS: 4}
}

func tlsFail(tg, addr, host, cause, text string, chain ...CertInfo) Probe {
	return Probe{Kind: "tls", Target: tg, Server: addr, Name: host, Cause: cause, Error: text, Chain: chain, DurationMS: 4}
}

func httpOK(tg, kind, u string) Probe {
	return Probe{Kind: kind, Target: tg, Name: u, OK: true, Status: 200, DurationMS: 8}
}

func httpFail(tg, kind, u, cause, text string) Probe {
	return Probe{Kind: kind, Target: tg, Name: u, Cause: cause, Error: `Get "` + u + `": ` + text, DurationMS: 8}
}

func httpStatus(tg, kind, u string, status int, body string) Probe {
	return Probe{Kind: kind, Target: tg, Name: u, Cause: kHTTPStatus, Status: status, Error: fmt.Sprintf("%d %s", status, statusText(status)), Body: body, DurationMS: 8}
}

func statusText(s int) string {
	return map[int]string{200: "OK", 404: "Not Found", 410: "Gone", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}[s]
}

// webUpTo returns the probes of webURL that passed before the failing stage:
// "dns", "tcp" or "tls" (everything before it passed).
func webUpTo(stage string) []Probe {
	ps := []Probe{dnsOK(webURL, ns1, webHost), resolveOK(webURL, webHost, 3)}
	if stage == "dns" {
		return ps
	}
	ps = append(ps, tcpOK(webURL, webAddr))
	if stage == "tcp" {
		return ps
	}
	ps = append(ps, tlsOK(webURL, webAddr, webHost))
	if stage == "tls" {
		return ps
	}
	return append(ps, httpOK(webURL, "http", webURL))
}

func join(pss ...[]Probe) []Probe {
	var out []Probe
	for _, ps := range pss {
		out = append(out, ps...)
	}
	return out
}

func cert(subject, issuer string, org []string, notBefore, notAfter time.Time, names ...string) CertInfo {
	return CertInfo{Subject: subject, Issuer: issuer, IssuerOrg: org, DNSNames: names,
		NotBefore: notBefore.UTC().Format(time.RFC3339), NotAfter: notAfter.UTC().Format(time.RFC3339)}
}

// goproxyFacts sets GOPROXY to proxyURL and GOSUMDB to sum.example.test.
func goproxyFacts(f *Facts) {
	f.Go.GOPROXY, f.Go.Proxies = proxyURL, []GoProxyEntry{{URL: proxyURL}}
	f.Go.GOSUMDB, f.Go.SumDBName, f.Go.SumDBURL = "sum.example.test", "sum.example.test", sumURL
}

const (
	listURL      = proxyURL + "golang.org/x/text/@v/list"
	supportedURL = proxyURL + "sumdb/sum.example.test/supported"
	latestURL    = proxyURL + "sumdb/sum.example.test/latest"
	directLatest = sumURL + "/latest"
)

// proxyUpTo is webUpTo for the GOPROXY target proxyURL (host proxy.example.test).
func proxyUpTo() []Probe {
	const host, addr = "proxy.example.test", "192.0.2.81:443"
	return []Probe{dnsOK(proxyURL, ns1, host), resolveOK(proxyURL, host, 3), tcpOK(proxyURL, addr), tlsOK(proxyURL, addr, host)}
}

type analyseCase struct {
	name  string
	facts func(*Facts)
	// targets are user targets; goproxy are GOPROXY entries; sumdb is the
	// checksum database reached directly.
	targets, goproxy []string
	sumdb            string
	probes           []Probe
	listen           []string
	env              []string
	// want lists the findings as "id/severity", in report order.
	want []string
	// explains maps a finding id to consequence ids it must list (an
	// empty string stands for a consequence without id).
	explains map[string][]string
	// summary maps a finding id to a word its summary must contain.
	summary map[string]string
	// check, when set, looks at the report further.
	check func(*testing.T, *Report)
}

var analyseCases = []analyseCase{
	{name: "healthy", targets: []string{webURL}, probes: webUpTo("http"), want: nil},

	// Environment-wide findings from facts alone.
	{name: "no-interface", targets: []string{webURL},
		facts: func(f *Facts) { f.Interfaces = f.Interfaces[:1]; f.DefaultRoute = false },
		probes: join([]Probe{dnsDead(webURL, ns1, webHost), resolveFail(webURL, webHost, kDNSTimeout, "i/o timeout"),
			httpFail(webURL, "http", webURL, kDNSTimeout, "dial tcp: lookup web.example.test: i/o timeout")}),
		want:     []string{"net.no-route/error"},
		explains: map[string][]string{"net.no-route": {"dns.server-unreachable", ""}}},
	{name: "no-interface-without-targets", facts: func(f *Facts) { f.Interfaces = f.Interfaces[:1] }, want: nil},
	{name: "no-nameserver-lookup-fails", targets: []string{webURL},
		facts: func(f *Facts) {
			f.ResolvConf = ResolvConf{Nameservers: []string{"127.0.0.1:53", "[::1]:53"}, Defaulted: true, Ignored: []string{"dns.example.test"}, Ndots: 1, Timeout: 5 * time.Second, Attempts: 2, Lines: 2}
		},
		probes: []Probe{dnsErr(webURL, "127.0.0.1:53", webHost, kRefused, "read udp 127.0.0.1:41192->127.0.0.1:53: read: connection refused"), resolveFail(webURL, webHost, kDNSTimeout, "connection refused"),
			httpFail(webURL, "http", webURL, kDNSTimeout, "connection refused")},
		want: []string{"dns.no-nameserver/error"}},
	{name: "no-nameserver-ip-target", targets: []string{"https://192.0.2.80/"},
		facts:  func(f *Facts) { f.ResolvConf.Defaulted = true },
		probes: []Probe{tcpOK("https://192.0.2.80/", webAddr), tlsOK("https://192.0.2.80/", webAddr, "192.0.2.80"), httpOK("https://192.0.2.80/", "http", "https://192.0.2.80/")},
		want:   nil},
	{name: "cgo-fallback", facts: func(f *Facts) { f.Resolver.CgoReasons = []string{"resolv.conf: unknown inet6"} },
		want: []string{"resolver.cgo-fallback/warn"}},
	{name: "no-roots-tls-target", targets: []string{webURL},
		facts: func(f *Facts) {
			f.CA = CAFacts{SSLCertFile: "/certs/none.pem", SSLCertDir: "/certs", Files: []CAFile{{Path: "/certs/none.pem"}}, Dirs: []CAFile{{Path: "/certs", Exists: true, Error: "permission denied"}}}
		},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSUnknownCA, "x509: certificate signed by unknown authority"),
			httpFail(webURL, "http", webURL, kTLSUnknownCA, "tls: failed to verify certificate: x509: certificate signed by unknown authority")}),
		want:     []string{"tls.no-roots/error"},
		explains: map[string][]string{"tls.no-roots": {"tls.unknown-authority", "", ""}}},
	{name: "no-roots-without-tls", facts: func(f *Facts) { f.CA = CAFacts{Files: []CAFile{{Path: "/etc/ssl/certs/ca-certificates.crt"}}} },
		want: []string{"tls.no-roots/warn"}},
	{name: "custom-roots", facts: func(f *Facts) { f.CA = CAFacts{Custom: true, Loaded: -1} }, want: nil},
	{name: "proxy-variables", env: []string{"REQUEST_METHOD", "GET"},
		facts: func(f *Facts) {
			f.Proxy = ProxyFacts{HTTPProxy: squid, From: []string{"HTTP_PROXY"}, CGI: true,
				Ignored: []string{"ALL_PROXY=socks5://socks.example.test:1080 (Go never reads ALL_PROXY)"}}
		},
		want: []string{"proxy.cgi/warn", "proxy.ignored/info"}},
	{name: "memory-limit", facts: func(f *Facts) {
		f.Limits = LimitFacts{Cgroup: 2, MemoryLimit: 512 << 20, CPULimit: 1, NumCPU: 4, GOMAXPROCS: 2}
	}, want: []string{"resources.gomemlimit-unset/warn"}},
	{name: "unreadable", facts: func(f *Facts) {
		f.Unreadable = []Unreadable{{Path: "/etc/hosts", Error: "permission denied"}, {Path: "/etc/nsswitch.conf", Error: "not a regular file (p---------)"}}
	}, want: []string{"facts.unreadable/info", "facts.unreadable/info"}},

	// The go command's configuration.
	{name: "direct-first-without-git", facts: func(f *Facts) {
		f.Go.GOPROXY, f.Go.Proxies, f.Go.Git = "direct", []GoProxyEntry{{URL: "direct"}}, ""
	}, want: []string{"goproxy.direct-without-vcs/error"}},
	{name: "direct-fallback-without-git", facts: func(f *Facts) {
		f.Go.GOPROXY, f.Go.Proxies, f.Go.Git = "file:///srv/mods,direct", []GoProxyEntry{{URL: "file:///srv/mods", FallThrough: ","}, {URL: "direct"}}, ""
	}, want: []string{"goproxy.direct-without-vcs/warn"}},
	{name: "direct-after-off", facts: func(f *Facts) {
		f.Go.Proxies, f.Go.Git = []GoProxyEntry{{URL: "off", FallThrough: ","}, {URL: "direct"}}, ""
	}, want: nil},
	{name: "private-module", facts: func(f *Facts) {
		f.Go.GOPROXY, f.Go.Proxies = "file:///srv/mods", []GoProxyEntry{{URL: "file:///srv/mods"}}
		f.Go.GOPRIVATE, f.Go.GONOPROXY = "git.other.example.test", "git.other.example.test"
		f.Go.Modules = []string{"git.example.test/team/app", "git.other.example.test/x", "github.com/acme/lib", "golang.org/x/text"}
	}, want: []string{"goproxy.private-module-public/error"}, summary: map[string]string{"goproxy.private-module-public": "git.example.test/team/app"}},

	// DNS.
	{name: "dead-nameserver", targets: []string{webURL},
		probes: []Probe{dnsDead(webURL, ns1, webHost), resolveFail(webURL, webHost, kDNSTimeout, "i/o timeout"),
			httpFail(webURL, "http", webURL, kDNSTimeout, "dial tcp: lookup web.example.test: i/o timeout")},
		want:     []string{"dns.server-unreachable/error"},
		summary:  map[string]string{"dns.server-unreachable": "no nameserver answers"},
		explains: map[string][]string{"dns.server-unreachable": {""}}},
	{name: "second-nameserver-dead", targets: []string{webURL},
		facts:   func(f *Facts) { f.ResolvConf.Nameservers = []string{ns1, ns2} },
		probes:  join(webUpTo("http"), []Probe{dnsDead(webURL, ns2, webHost)}),
		want:    []string{"dns.server-unreachable/warn"},
		summary: map[string]string{"dns.server-unreachable": "nameserver " + ns2 + " does not answer"}},
	{name: "docker-embedded-dns-absent", targets: []string{webURL},
		facts: func(f *Facts) {
			f.ResolvConf.Nameservers = []string{"127.0.0.11:53"}
			f.ResolvConf.Docker = []string{"ExtServers: [host(127.0.0.53)]"}
		},
		probes: []Probe{dnsErr(webURL, "127.0.0.11:53", webHost, kRefused, "read udp 127.0.0.1:41192->127.0.0.11:53: read: connection refused"), resolveFail(webURL, webHost, kDNSTimeout, "connection refused")},
		want:   []string{"dns.server-port-closed/error"}},
	{name: "loopback-nameserver", targets: []string{webURL},
		facts:  func(f *Facts) { f.ResolvConf.Nameservers = []string{"127.0.0.53:53"} },
		probes: []Probe{dnsDead(webURL, "127.0.0.53:53", webHost), resolveFail(webURL, webHost, kDNSTimeout, "i/o timeout")},
		want:   []string{"dns.server-unreachable/error"}},
	{name: "nameserver-refused", targets: []string{webURL},
		probes: []Probe{dnsRcode(webURL, ns1, webHost, "REFUSED", kDNSRefused), resolveFail(webURL, webHost, kDNSServfail, "server misbehaving")},
		want:   []string{"dns.server-refused/error"}},
	{name: "nameserver-servfail", targets: []string{webURL},
		probes: []Probe{dnsRcode(webURL, ns1, webHost, "SERVFAIL", kDNSServfail), resolveFail(webURL, webHost, kDNSServfail, "server misbehaving")},
		want:   []string{"dns.servfail/error"}},
	{name: "name-not-found", targets: []string{webURL},
		probes: []Probe{dnsRcode(webURL, ns1, webHost, "NXDOMAIN", kDNSNotFound), resolveFail(webURL, webHost, kDNSNotFound, "no such host")},
		want:   []string{"dns.not-found/error"}},
	{name: "resolver-fails-without-dns-probes", targets: []string{webURL},
		facts:  func(f *Facts) { f.ResolvConf.Nameservers = nil },
		probes: []Probe{resolveFail(webURL, webHost, kUnknown, "getaddrinfow: This is usually a temporary error")},
		want:   []string{"dns.server-unreachable/error"}, summary: map[string]string{"dns.server-unreachable": "lookup of web.example.test failed"}},
	{name: "resolver-servfail-without-dns-probes", targets: []string{webURL},
		facts:  func(f *Facts) { f.ResolvConf.Nameservers = nil },
		probes: []Probe{resolveFail(webURL, webHost, kDNSServfail, "server misbehaving")},
		want:   []string{"dns.servfail/error"}},
	{name: "resolver-not-found-in-hosts-order", targets: []string{webURL},
		facts:  func(f *Facts) { f.ResolvConf.Nameservers = nil },
		probes: []Probe{resolveFail(webURL, webHost, kDNSNotFound, "no such host")},
		want:   []string{"dns.not-found/error"}},
	{name: "slow-dns", targets: []string{webURL},
		probes: join([]Probe{dnsOK(webURL, ns1, webHost, tryA(webHost+".", "NOERROR", 1, 700)), resolveOK(webURL, webHost, 1400)}, webUpTo("http")[2:]),
		want:   []string{"dns.slow/warn"}},
	{name: "slow-dns-with-a-dead-server", targets: []string{webURL},
		facts:  func(f *Facts) { f.ResolvConf.Nameservers = []string{ns1, ns2} },
		probes: join([]Probe{dnsOK(webURL, ns1, webHost, tryA(webHost+".", "NOERROR", 1, 700)), dnsDead(webURL, ns2, webHost), resolveOK(webURL, webHost, 1400)}, webUpTo("http")[2:]),
		want:   []string{"dns.server-unreachable/warn"}},
	{name: "search-list-wrong-host", targets: []string{webURL},
		facts: func(f *Facts) { f.ResolvConf.Search, f.ResolvConf.Ndots = []string{"corp.test."}, 5 },
		probes: func() []Probe {
			p := dnsOK(webURL, ns1, webHost, tryA(webHost+".corp.test.", "NOERROR", 1, 2))
			p.Addrs = []string{"192.0.2.99"}
			p.Bare, p.BareAddrs = &NameTry{Name: webHost + ".", Type: "A", Rcode: "NOERROR", N: 1, MS: 2}, []string{"192.0.2.80"}
			return join([]Probe{p}, webUpTo("http")[1:])
		}(),
		want: []string{"dns.search-amplification/error"}, summary: map[string]string{"dns.search-amplification": "probably the wrong host"}},
	{name: "search-list-short-name", targets: []string{"http://svc.ns:8080/"},
		facts: func(f *Facts) { f.ResolvConf.Search, f.ResolvConf.Ndots = []string{"ns.svc.cluster.local."}, 5 },
		probes: func() []Probe {
			const tg = "http://svc.ns:8080/"
			p := dnsOK(tg, ns1, "svc.ns", tryA("svc.ns.ns.svc.cluster.local.", "NXDOMAIN", 0, 1), tryA("svc.ns.svc.cluster.local.", "NOERROR", 1, 1))
			p.Bare = &NameTry{Name: "svc.ns.", Type: "A", Rcode: "NXDOMAIN", MS: 1}
			return []Probe{p, resolveOK(tg, "svc.ns", 3), tcpOK(tg, "192.0.2.80:8080"), httpOK(tg, "http", tg)}
		}(),
		want: nil},
	{name: "search-list-amplification", targets: []string{webURL},
		facts: func(f *Facts) { f.ResolvConf.Search, f.ResolvConf.Ndots = []string{"a.test.", "b.test."}, 5 },
		probes: join([]Probe{dnsOK(webURL, ns1, webHost, tryA(webHost+".a.test.", "NXDOMAIN", 0, 1), tryA(webHost+".b.test.", "NXDOMAIN", 0, 1),
			tryA(webHost+".", "NOERROR", 1, 2))}, webUpTo("http")[1:]),
		want: []string{"dns.search-amplification/warn"}},

	// TCP.
	{name: "port-refused", targets: []string{webURL},
		probes: join(webUpTo("dns"), []Probe{tcpFail(webURL, webAddr, kRefused, "connect: connection refused"), httpFail(webURL, "http", webURL, kRefused, "dial tcp 192.0.2.80:443: connect: connection refused")}),
		want:   []string{"tcp.refused/error"}, explains: map[string][]string{"tcp.refused": {""}}},
	{name: "port-dropped", targets: []string{webURL},
		probes: join(webUpTo("dns"), []Probe{tcpFail(webURL, webAddr, kTimeout, "i/o timeout")}),
		want:   []string{"tcp.timeout/error"}},
	{name: "port-other-failure", targets: []string{webURL},
		probes: join(webUpTo("dns"), []Probe{tcpFail(webURL, webAddr, kUnknown, "socket: too many open files")}),
		want:   []string{"tcp.timeout/error"}, summary: map[string]string{"tcp.timeout": "failed"}},
	{name: "host-unreachable", targets: []string{webURL},
		probes: join(webUpTo("dns"), []Probe{tcpFail(webURL, webAddr, kHostUnreach, "connect: no route to host")}),
		want:   []string{"tcp.unreachable/error"}},
	{name: "network-unreachable-v6", targets: []string{webURL},
		probes: join(webUpTo("dns"), []Probe{tcpFail(webURL, "[2001:db8::80]:443", kNetUnreach, "connect: network is unreachable")}),
		want:   []string{"tcp.unreachable/error"}, summary: map[string]string{"tcp.unreachable": "network is unreachable"}},
	{name: "no-default-route", targets: []string{"https://192.0.2.80/"},
		facts:  func(f *Facts) { f.DefaultRoute = false },
		probes: []Probe{tcpFail("https://192.0.2.80/", webAddr, kNetUnreach, "connect: network is unreachable")},
		want:   []string{"net.no-route/error"}, summary: map[string]string{"net.no-route": "no default route"}},
	{name: "connection-reset", targets: []string{webURL},
		probes: join(webUpTo("dns"), []Probe{tcpFail(webURL, webAddr, kReset, "read: connection reset by peer")}),
		want:   []string{"tcp.reset/error"}},
	{name: "one-address-answers", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tcpFail(webURL, "[2001:db8::80]:443", kNetUnreach, "connect: network is unreachable"), tlsOK(webURL, webAddr, webHost), httpOK(webURL, "http", webURL)}),
		want:   nil},

	// TLS.
	{name: "tls-reset", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kReset, "read tcp: connection reset by peer")}),
		want:   []string{"tcp.reset/error"}, summary: map[string]string{"tcp.reset": "during the TLS handshake"}},
	{name: "unknown-ca", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSUnknownCA, "x509: certificate signed by unknown authority",
			cert("CN=web.example.test", "CN=Private CA", nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), webHost))}),
		want: []string{"tls.unknown-authority/error"}, summary: map[string]string{"tls.unknown-authority": "does not trust"}},
	{name: "intercepted", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSUnknownCA, "x509: certificate signed by unknown authority",
			cert("CN=web.example.test", "CN=Zscaler Intermediate Root CA", []string{"Zscaler Inc."}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), webHost))}),
		want: []string{"tls.unknown-authority/error"}, summary: map[string]string{"tls.unknown-authority": "intercepted"}},
	{name: "expired", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSExpired, "x509: certificate has expired or is not yet valid",
			cert("CN=web.example.test", "CN=Test CA", nil, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), webHost))}),
		want: []string{"tls.expired/error"}},
	{name: "expired-clock-before-not-before", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSExpired, "x509: certificate has expired or is not yet valid",
			cert("CN=web.example.test", "CN=Test CA", nil, time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour), webHost))}),
		want: []string{"tls.expired/error"}, summary: map[string]string{"tls.expired": "clock"}},
	{name: "expired-clock-date-header", targets: []string{webURL, "https://other.example.test/"},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSExpired, "x509: certificate has expired or is not yet valid",
			cert("CN=web.example.test", "CN=Test CA", nil, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), webHost)),
			{Kind: "http", Target: "https://other.example.test/", Name: "http://other.example.test/", OK: true, Status: 200, Date: time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC1123)}}),
		want: []string{"tls.expired/error"}, summary: map[string]string{"tls.expired": "clock"}},
	{name: "wrong-host-cert", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSHostname, "x509: certificate is valid for other.example.test, not web.example.test")}),
		want:   []string{"tls.hostname-mismatch/error"}},
	{name: "mtu-black-hole", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSHSTimeout, "context deadline exceeded"),
			httpFail(webURL, "http", webURL, kTimeout, "net/http: TLS handshake timeout")}),
		want: []string{"tls.handshake-timeout/error"}, explains: map[string][]string{"tls.handshake-timeout": {""}}},
	{name: "tls-other", targets: []string{webURL},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSOther, "tls: first record does not look like a TLS handshake")}),
		want:   []string{"tls.failed/error"}},

	// Proxies.
	{name: "proxy-down", targets: []string{webURL},
		facts: func(f *Facts) { f.Proxy = ProxyFacts{HTTPSProxy: squid, From: []string{"HTTPS_PROXY"}} },
		probes: []Probe{dnsOK(webURL, ns1, "squid.example.test"), resolveOK(webURL, "squid.example.test", 2),
			func() Probe {
				p := tcpFail(webURL, "192.0.2.31:3128", kRefused, "connect: connection refused")
				p.Via = squid
				return p
			}(),
			httpFail(webURL, "http", webURL, kProxyConnect, "proxyconnect tcp: dial tcp 192.0.2.31:3128: connect: connection refused")},
		want: []string{"proxy.unreachable/error"}, summary: map[string]string{"proxy.unreachable": "connection refused"}},
	{name: "proxy-connect-refused", targets: []string{webURL},
		facts: func(f *Facts) { f.Proxy = ProxyFacts{HTTPSProxy: squid, From: []string{"HTTPS_PROXY"}} },
		probes: []Probe{dnsOK(webURL, ns1, "squid.example.test"), resolveOK(webURL, "squid.example.test", 2), tcpOK(webURL, "192.0.2.31:3128"),
			{Kind: "proxy", Target: webURL, Server: "192.0.2.31:3128", Via: squid, Status: 403, Cause: kProxyConnect, Error: "CONNECT web.example.test:443: 403 Forbidden"}},
		want: []string{"proxy.unreachable/error"}, summary: map[string]string{"proxy.unreachable": "did not open a tunnel"}},
	{name: "proxy-needs-auth", targets: []string{webURL},
		facts: func(f *Facts) { f.Proxy = ProxyFacts{HTTPSProxy: squid, From: []string{"HTTPS_PROXY"}} },
		probes: []Probe{dnsOK(webURL, ns1, "squid.example.test"), resolveOK(webURL, "squid.example.test", 2), tcpOK(webURL, "192.0.2.31:3128"),
			{Kind: "proxy", Target: webURL, Server: "192.0.2.31:3128", Via: squid, Status: 407, Cause: kProxyAuth, Body: `Basic realm="proxy"`,
				Error: "CONNECT web.example.test:443: 407 Proxy Authentication Required"},
			httpFail(webURL, "http", webURL, kProxyAuth, "proxy "+squid+": CONNECT answered 407 Proxy Authentication Required")},
		want: []string{"proxy.auth-required/error"}, explains: map[string][]string{"proxy.auth-required": {""}}},
	// Only the HTTP probe saw the proxy (an https:// proxy, which the stage
	// probes do not tunnel through).
	{name: "http-proxy-auth", targets: []string{webURL},
		facts: func(f *Facts) {
			f.Proxy = ProxyFacts{HTTPSProxy: "https://squid.example.test:3129", From: []string{"HTTPS_PROXY"}}
		},
		probes: []Probe{tcpOK(webURL, "192.0.2.31:3129"),
			func() Probe {
				p := httpFail(webURL, "http", webURL, kProxyAuth, "proxy https://squid.example.test:3129: CONNECT answered 407 Proxy Authentication Required")
				p.Via = "https://squid.example.test:3129"
				return p
			}()},
		want: []string{"proxy.auth-required/error"}, summary: map[string]string{"proxy.auth-required": "requires authentication"}},
	{name: "http-proxyconnect-failed", targets: []string{webURL},
		facts: func(f *Facts) {
			f.Proxy = ProxyFacts{HTTPSProxy: "socks5://socks.example.test:1080", From: []string{"HTTPS_PROXY"}}
		},
		probes: []Probe{tcpOK(webURL, "192.0.2.32:1080"),
			func() Probe {
				p := httpFail(webURL, "http", webURL, kProxyConnect, "socks connect tcp 192.0.2.32:1080->web.example.test:443: unknown error general SOCKS server failure")
				p.Via = "socks5://socks.example.test:1080"
				return p
			}()},
		want: []string{"proxy.unreachable/error"}, summary: map[string]string{"proxy.unreachable": "is unreachable"}},
	// HTTP.
	{name: "server-error", targets: []string{webURL},
		probes: join(webUpTo("tls"), []Probe{httpStatus(webURL, "http", webURL, 503, "upstream down")}),
		want:   []string{"http.status/warn"}},
	{name: "not-found-is-fine", targets: []string{webURL},
		probes: join(webUpTo("tls"), []Probe{httpStatus(webURL, "http", webURL, 404, "")}),
		want:   nil},
	{name: "http-failed", targets: []string{webURL},
		probes: join(webUpTo("tls"), []Probe{httpFail(webURL, "http", webURL, kEOF, "EOF")}),
		want:   []string{"http.failed/error"}},
	{name: "http-only-tls", targets: []string{webURL},
		probes: []Probe{httpFail(webURL, "http", webURL, kTLSExpired, "tls: failed to verify certificate: x509: certificate has expired or is not yet valid")},
		want:   []string{"tls.expired/error"}},
	{name: "http-only-refused", targets: []string{webURL},
		probes: []Probe{httpFail(webURL, "http", webURL, kRefused, "dial tcp 192.0.2.80:443: connect: connection refused")},
		want:   []string{"tcp.refused/error"}},

	// GOPROXY and the checksum database.
	{name: "goproxy-healthy", facts: goproxyFacts, goproxy: []string{proxyURL},
		probes: join(proxyUpTo(), []Probe{httpOK(proxyURL, "goproxy", listURL), httpOK(proxyURL, "sumdb", supportedURL), httpOK(proxyURL, "sumdb", latestURL)}),
		want:   nil},
	{name: "goproxy-upstream-down", facts: goproxyFacts, goproxy: []string{proxyURL},
		probes: join(proxyUpTo(), []Probe{httpStatus(proxyURL, "goproxy", listURL, 502, "upstream unreachable"), httpOK(proxyURL, "sumdb", supportedURL), httpOK(proxyURL, "sumdb", latestURL)}),
		want:   []string{"goproxy.unreachable/error"}},
	{name: "goproxy-module-missing", facts: goproxyFacts, goproxy: []string{proxyURL},
		probes: join(proxyUpTo(), []Probe{httpStatus(proxyURL, "goproxy", listURL, 404, "not found"), httpOK(proxyURL, "sumdb", supportedURL), httpOK(proxyURL, "sumdb", latestURL)}),
		want:   []string{"goproxy.module-missing/info"}},
	{name: "goproxy-port-dropped", facts: goproxyFacts, goproxy: []string{proxyURL},
		probes: join(proxyUpTo()[:2], []Probe{tcpFail(proxyURL, "192.0.2.81:443", kTimeout, "i/o timeout"),
			httpFail(proxyURL, "goproxy", listURL, kTimeout, "dial tcp 192.0.2.81:443: i/o timeout"),
			httpFail(proxyURL, "sumdb", supportedURL, kTimeout, "dial tcp 192.0.2.81:443: i/o timeout")}),
		want:     []string{"tcp.timeout/error"},
		explains: map[string][]string{"tcp.timeout": {"goproxy.unreachable", "goproxy.sumdb-unreachable"}}},
	{name: "sumdb-proxy-upstream-down", facts: goproxyFacts, goproxy: []string{proxyURL},
		probes: join(proxyUpTo(), []Probe{httpOK(proxyURL, "goproxy", listURL), httpOK(proxyURL, "sumdb", supportedURL), httpStatus(proxyURL, "sumdb", latestURL, 502, "")}),
		want:   []string{"goproxy.sumdb-unreachable/error"}, summary: map[string]string{"goproxy.sumdb-unreachable": "is not reachable through"}},
	{name: "sumdb-supported-fails", facts: goproxyFacts, goproxy: []string{proxyURL},
		probes: join(proxyUpTo(), []Probe{httpOK(proxyURL, "goproxy", listURL), httpStatus(proxyURL, "sumdb", supportedURL, 500, "")}),
		want:   []string{"goproxy.sumdb-unreachable/error"}, summary: map[string]string{"goproxy.sumdb-unreachable": "/supported"}},
	{name: "sumdb-not-proxied-and-blocked", facts: goproxyFacts, goproxy: []string{proxyURL}, sumdb: sumURL,
		probes: join(proxyUpTo(), []Probe{httpOK(proxyURL, "goproxy", listURL), httpStatus(proxyURL, "sumdb", supportedURL, 404, "")},
			[]Probe{dnsOK(sumURL, ns1, "sum.example.test"), resolveOK(sumURL, "sum.example.test", 2), tcpFail(sumURL, "192.0.2.82:443", kTimeout, "i/o timeout"),
				httpFail(sumURL, "sumdb", directLatest, kTimeout, "dial tcp 192.0.2.82:443: i/o timeout")}),
		want:    []string{"goproxy.sumdb-unreachable/error"},
		summary: map[string]string{"goproxy.sumdb-unreachable": "the proxy does not serve it"}},
	{name: "sumdb-not-proxied-reachable", facts: goproxyFacts, goproxy: []string{proxyURL}, sumdb: sumURL,
		probes: join(proxyUpTo(), []Probe{httpOK(proxyURL, "goproxy", listURL), httpStatus(proxyURL, "sumdb", supportedURL, 410, "")},
			[]Probe{dnsOK(sumURL, ns1, "sum.example.test"), resolveOK(sumURL, "sum.example.test", 2), tcpOK(sumURL, "192.0.2.82:443"),
				tlsOK(sumURL, "192.0.2.82:443", "sum.example.test"), httpOK(sumURL, "sumdb", directLatest)}),
		want: nil},

	// Fold rules, folded and not.
	{name: "fold-no-default-route-keeps-a-warning", targets: []string{"https://203.0.113.7/", webURL},
		facts: func(f *Facts) { f.DefaultRoute = false; f.ResolvConf.Nameservers = []string{ns1, ns2} },
		probes: join([]Probe{tcpFail("https://203.0.113.7/", "203.0.113.7:443", kNetUnreach, "connect: network is unreachable")},
			webUpTo("http"), []Probe{dnsDead(webURL, ns2, webHost)}),
		want: []string{"net.no-route/error", "dns.server-unreachable/warn"}},
	{name: "fold-no-nameserver-wrong-host", targets: []string{webURL, "https://api.example.test/"},
		facts: func(f *Facts) {
			f.ResolvConf = ResolvConf{Nameservers: []string{"127.0.0.1:53", "[::1]:53"}, Defaulted: true, Search: []string{"corp.test."}, Ndots: 5, Timeout: 5 * time.Second, Attempts: 2}
		},
		probes: func() []Probe {
			p := dnsOK(webURL, "127.0.0.1:53", webHost, tryA(webHost+".corp.test.", "NOERROR", 1, 2))
			p.Addrs = []string{"192.0.2.99"}
			p.Bare, p.BareAddrs = &NameTry{Name: webHost + ".", Type: "A", Rcode: "NOERROR", N: 1, MS: 2}, []string{"192.0.2.80"}
			return join([]Probe{p}, webUpTo("http")[1:], []Probe{dnsErr("https://api.example.test/", "127.0.0.1:53", "api.example.test", kRefused, "connection refused"),
				resolveFail("https://api.example.test/", "api.example.test", kDNSTimeout, "connection refused")})
		}(),
		want:     []string{"dns.no-nameserver/error"},
		explains: map[string][]string{"dns.no-nameserver": {"dns.search-amplification"}}},
	{name: "fold-no-nameserver-warn-keeps-wrong-host", targets: []string{webURL},
		facts: func(f *Facts) {
			f.ResolvConf = ResolvConf{Nameservers: []string{"127.0.0.1:53", "[::1]:53"}, Defaulted: true, Search: []string{"corp.test."}, Ndots: 5, Timeout: 5 * time.Second, Attempts: 2}
		},
		probes: func() []Probe {
			p := dnsOK(webURL, "127.0.0.1:53", webHost, tryA(webHost+".corp.test.", "NOERROR", 1, 2))
			p.Addrs = []string{"192.0.2.99"}
			p.Bare, p.BareAddrs = &NameTry{Name: webHost + ".", Type: "A", Rcode: "NOERROR", N: 1, MS: 2}, []string{"192.0.2.80"}
			return join([]Probe{p}, webUpTo("http")[1:])
		}(),
		want: []string{"dns.search-amplification/error", "dns.no-nameserver/warn"}},
	{name: "fold-no-roots-sumdb-through-plain-proxy", targets: []string{webURL}, goproxy: []string{"http://mods.example.test/"},
		facts: func(f *Facts) {
			goproxyFacts(f)
			f.Go.GOPROXY, f.Go.Proxies = "http://mods.example.test/", []GoProxyEntry{{URL: "http://mods.example.test/"}}
			f.CA = CAFacts{Files: []CAFile{{Path: "/etc/ssl/certs/ca-certificates.crt"}}}
		},
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSUnknownCA, "x509: certificate signed by unknown authority")},
			[]Probe{dnsOK("http://mods.example.test/", ns1, "mods.example.test"), resolveOK("http://mods.example.test/", "mods.example.test", 2),
				tcpOK("http://mods.example.test/", "192.0.2.83:80"), httpOK("http://mods.example.test/", "goproxy", "http://mods.example.test/golang.org/x/text/@v/list"),
				httpStatus("http://mods.example.test/", "sumdb", "http://mods.example.test/sumdb/sum.example.test/supported", 500, "")}),
		want:     []string{"tls.no-roots/error"},
		explains: map[string][]string{"tls.no-roots": {"tls.unknown-authority", "", "goproxy.sumdb-unreachable"}}},
	{name: "fold-no-roots-warn-keeps-sumdb", goproxy: []string{"http://mods.example.test/"},
		facts: func(f *Facts) {
			goproxyFacts(f)
			f.Go.GOPROXY, f.Go.Proxies = "http://mods.example.test/", []GoProxyEntry{{URL: "http://mods.example.test/"}}
			f.CA = CAFacts{Files: []CAFile{{Path: "/etc/ssl/certs/ca-certificates.crt"}}}
		},
		probes: []Probe{dnsOK("http://mods.example.test/", ns1, "mods.example.test"), resolveOK("http://mods.example.test/", "mods.example.test", 2),
			tcpOK("http://mods.example.test/", "192.0.2.83:80"), httpOK("http://mods.example.test/", "goproxy", "http://mods.example.test/golang.org/x/text/@v/list"),
			httpStatus("http://mods.example.test/", "sumdb", "http://mods.example.test/sumdb/sum.example.test/supported", 500, "")},
		want: []string{"goproxy.sumdb-unreachable/error", "tls.no-roots/warn"}},
	// The direct checksum-database path fails for a reason found before:
	// that root stays and lists the checksum database.
	{name: "sumdb-direct-without-roots", goproxy: []string{"http://mods.example.test/"}, sumdb: sumURL,
		facts: func(f *Facts) {
			goproxyFacts(f)
			f.Go.GOPROXY, f.Go.Proxies = "http://mods.example.test/", []GoProxyEntry{{URL: "http://mods.example.test/"}}
			f.CA = CAFacts{Files: []CAFile{{Path: "/etc/ssl/certs/ca-certificates.crt"}}}
		},
		probes: []Probe{dnsOK("http://mods.example.test/", ns1, "mods.example.test"), resolveOK("http://mods.example.test/", "mods.example.test", 2),
			tcpOK("http://mods.example.test/", "192.0.2.83:80"), httpOK("http://mods.example.test/", "goproxy", "http://mods.example.test/golang.org/x/text/@v/list"),
			httpStatus("http://mods.example.test/", "sumdb", "http://mods.example.test/sumdb/sum.example.test/supported", 404, ""),
			dnsOK(sumURL, ns1, "sum.example.test"), resolveOK(sumURL, "sum.example.test", 2), tcpOK(sumURL, "192.0.2.82:443"),
			tlsFail(sumURL, "192.0.2.82:443", "sum.example.test", kTLSUnknownCA, "x509: certificate signed by unknown authority"),
			httpFail(sumURL, "sumdb", directLatest, kTLSUnknownCA, "tls: failed to verify certificate: x509: certificate signed by unknown authority")},
		want:     []string{"tls.no-roots/error"},
		explains: map[string][]string{"tls.no-roots": {"tls.unknown-authority", "goproxy.sumdb-unreachable"}}},
	{name: "no-nameserver-answers-anyway", targets: []string{webURL},
		facts:  func(f *Facts) { f.ResolvConf.Defaulted = true },
		probes: webUpTo("http"),
		want:   []string{"dns.no-nameserver/warn"}},
	// Two targets on one host and port share one finding.
	{name: "one-finding-for-two-targets", targets: []string{webURL, webURL + "other"},
		probes: join(webUpTo("dns"), []Probe{tcpFail(webURL, webAddr, kRefused, "connect: connection refused")},
			[]Probe{dnsOK(webURL+"other", ns1, webHost), resolveOK(webURL+"other", webHost, 3), tcpFail(webURL+"other", webAddr, kRefused, "connect: connection refused")}),
		want: []string{"tcp.refused/error"},
		check: func(t *testing.T, r *Report) {
			if got := r.Findings[0].Targets; len(got) != 2 {
				t.Errorf("targets %q, want both", got)
			}
		}},

	// Listeners.
	{name: "listen-loopback-only", listen: []string{":8080"},
		facts: func(f *Facts) {
			f.Listeners = []Listener{{Addr: "127.0.0.1:8080", Port: 8080, Loopback: true}, {Addr: "[::1]:8080", Port: 8080, Loopback: true}}
		},
		probes: []Probe{{Kind: "listen", Target: ":8080", Server: "192.0.2.10:8080", Cause: kRefused, Error: "dial tcp 192.0.2.10:8080: connect: connection refused"}},
		want:   []string{"listen.loopback-only/error"}},
	{name: "listen-nothing", listen: []string{":8080"},
		facts: func(f *Facts) { f.Listeners = []Listener{{Addr: "0.0.0.0:22", Port: 22, Any: true}} },
		want:  []string{"listen.not-listening/error"}, summary: map[string]string{"listen.not-listening": "nothing listens"}},
	{name: "listen-other-address", listen: []string{"192.0.2.10:8080"},
		facts: func(f *Facts) { f.Listeners = []Listener{{Addr: "192.0.2.11:8080", Port: 8080}} },
		want:  []string{"listen.not-listening/error"}, summary: map[string]string{"listen.not-listening": "does not listen on 192.0.2.10"}},
	{name: "listen-any", listen: []string{":8080", "bad"},
		facts:  func(f *Facts) { f.Listeners = []Listener{{Addr: "[::]:8080", Port: 8080, Any: true}} },
		probes: []Probe{{Kind: "listen", Target: ":8080", Server: "192.0.2.10:8080", OK: true}},
		want:   nil},
}

// runCase builds the report of one case and analyses it.
func runCase(t *testing.T, c analyseCase) *Report {
	r, _ := analyseCase1(t, c)
	return r
}

func analyseCase1(t *testing.T, c analyseCase) (*Report, *analysis) {
	t.Helper()
	r := &Report{Schema: SchemaVersion, Facts: healthyFacts(), Probes: c.probes}
	if c.facts != nil {
		c.facts(&r.Facts)
	}
	add := func(s, role string) {
		tg, err := parseTarget(s, role)
		if err != nil {
			t.Fatalf("target %s: %v", s, err)
		}
		r.Targets = append(r.Targets, tg)
	}
	for _, s := range c.targets {
		add(s, "target")
	}
	for _, s := range c.goproxy {
		add(s, "goproxy")
	}
	if c.sumdb != "" {
		add(c.sumdb+"/latest", "sumdb")
		r.Targets[len(r.Targets)-1].Input = c.sumdb
	}
	e := map[string]string{"PATH": "/usr/local/bin:/usr/bin"}
	for i := 0; i+1 < len(c.env); i += 2 {
		e[c.env[i]] = c.env[i+1]
	}
	o := &Options{Listen: c.listen, LookupEnv: func(k string) (string, bool) { v, ok := e[k]; return v, ok }}
	return r, analyse(r, o)
}

func TestAnalyse(t *testing.T) {
	for _, c := range analyseCases {
		t.Run(c.name, func(t *testing.T) {
			r := runCase(t, c)
			var got []string
			for _, f := range r.Findings {
				got = append(got, f.ID+"/"+string(f.Severity))
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("findings %v, want %v\n%s", got, c.want, dumpFindings(r))
			}
			for id, want := range c.explains {
				f := findingByID(r, id)
				if f == nil {
					t.Fatalf("no %s finding", id)
				}
				var ids []string
				for _, x := range f.Explains {
					ids = append(ids, x.ID)
				}
				if strings.Join(ids, " ") != strings.Join(want, " ") {
					t.Errorf("%s explains %q, want %q\n%s", id, ids, want, dumpFindings(r))
				}
			}
			for id, word := range c.summary {
				if f := findingByID(r, id); f == nil || !strings.Contains(f.Summary, word) {
					t.Errorf("%s summary lacks %q\n%s", id, word, dumpFindings(r))
				}
			}
			if c.check != nil {
				c.check(t, r)
			}
			for _, f := range r.Findings {
				if len(f.Fix) == 0 || f.Cause == "" || f.Summary == "" || len(f.Evidence) == 0 {
					t.Errorf("%s: a finding needs a summary, a cause, evidence and a fix: %+v", f.ID, f)
				}
			}
		})
	}
}

func findingByID(r *Report, id string) *Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

func dumpFindings(r *Report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  %s [%s] %s\n", f.ID, f.Severity, f.Summary)
		for _, x := range f.Explains {
			fmt.Fprintf(&b, "    explains %s: %s\n", x.ID, x.Summary)
		}
	}
	return b.String()
}
