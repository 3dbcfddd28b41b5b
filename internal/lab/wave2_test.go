package lab

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/doctor"
)

// The second wave's scenarios: links that are alive but wrong, and fast
// failures that must be answered fast.

const goproxyURL = "https://proxy.example.test"

// goproxyAt is a GOPROXY fixture on ServerIP:443 for proxy.example.test.
func goproxyAt(mod func(*HTTPConfig)) Config {
	h := HTTPConfig{Addr: ServerIP + ":443", Cert: pki.Goproxy[0], Key: pki.Goproxy[1], GoProxy: true}
	if mod != nil {
		mod(&h)
	}
	return Config{HTTPS: []HTTPConfig{h}}
}

var goproxyEnv = []string{"GOPROXY=" + goproxyURL, "GOSUMDB=sum.example.test"}

// fast asserts that a run whose failures are all immediate ends in well
// under a second.
func fast(t *testing.T, r *doctor.Report) {
	t.Helper()
	if r.DurationMS > 1000 {
		t.Errorf("every failure here is immediate, yet the run took %.0f ms (want < 1000)", r.DurationMS)
	}
}

func firstSummaryHas(t *testing.T, r *doctor.Report, words ...string) {
	t.Helper()
	if len(r.Findings) == 0 {
		t.Fatal("no findings")
	}
	for _, w := range words {
		if !strings.Contains(r.Findings[0].Summary, w) {
			t.Errorf("first finding %s: summary %q lacks %q", r.Findings[0].ID, r.Findings[0].Summary, w)
		}
	}
}

func wave2Scenarios() []scenario {
	return []scenario{
		// Fast failures: ICMP port unreachable from a nameserver host.
		{name: "nameserver-port-closed", want: "dns.server-port-closed", resolv: "nameserver " + AltIP + "\n",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL, "https://web2.example.test/", "https://web3.example.test/"},
			check: func(t *testing.T, r *doctor.Report) {
				fast(t, r)
				firstSummaryHas(t, r, AltIP+":53", "refuses DNS on port 53")
				evidenceHas(t, r, "dns.server-port-closed", "/etc/resolv.conf: nameserver "+AltIP)
			}},
		{name: "second-nameserver-port-closed", want: "dns.server-port-closed", sev: doctor.SevWarn,
			resolv:  "nameserver " + ServerIP + "\nnameserver " + AltIP + "\n",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL}},
		{name: "nameserver-no-route", want: "dns.server-unreachable", noDefault: true, resolv: "nameserver 10.213.9.53\n",
			args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) {
				fast(t, r)
				summaryHas(t, r, "dns.server-unreachable", "is unreachable (network is unreachable)")
			}},
		{name: "all-failures-immediate", want: "tcp.refused", args: []string{"https://" + ServerIP + ":8001/", "https://" + ServerIP + ":8002/", ServerIP + ":8003"},
			check: fast},

		// A and AAAA: Go asks both and waits for both.
		{name: "aaaa-dropped", want: "dns.slow", sev: doctor.SevWarn, resolv: "nameserver " + ServerIP + "\noptions timeout:1 attempts:1\n",
			dns: &DNSConfig{Mode: "drop-aaaa"}, servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) { evidenceHas(t, r, "dns.slow", "did not answer AAAA") }},

		// TLS to completion.
		{name: "https-to-plain-http-port", want: "tls.plain-http",
			servers: Config{HTTPS: []HTTPConfig{{Addr: ServerIP + ":443", Plain: true}}}, args: []string{webURL}},
		{name: "client-certificate-required", want: "tls.client-cert-required",
			servers: Config{HTTPS: []HTTPConfig{{Addr: ServerIP + ":443", Cert: pki.Web[0], Key: pki.Web[1], ClientCA: pki.ClientCA}}}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) { evidenceHas(t, r, "tls.client-cert-required", "Lab Clients CA") }},

		// The GOPROXY protocol itself.
		{name: "goproxy-html-page", want: "goproxy.not-a-proxy", servers: goproxyAt(func(h *HTTPConfig) { h.Page = "html" }), env: goproxyEnv,
			check: func(t *testing.T, r *doctor.Report) { firstSummaryHas(t, r, "GOPROXY="+goproxyURL, "HTML page") }},
		{name: "goproxy-json-document", want: "goproxy.not-a-proxy", servers: goproxyAt(func(h *HTTPConfig) { h.Page = "json" }), env: goproxyEnv,
			check: func(t *testing.T, r *doctor.Report) {
				firstSummaryHas(t, r, "JSON document")
				evidenceHas(t, r, "goproxy.not-a-proxy", "Repository not found")
			}},
		{name: "goproxy-info-html-page", want: "goproxy.not-a-proxy", servers: goproxyAt(func(h *HTTPConfig) { h.Info = "html" }), env: goproxyEnv,
			check: func(t *testing.T, r *doctor.Report) {
				firstSummaryHas(t, r, "GOPROXY="+goproxyURL+": ", "golang.org/x/text/@v/v0.2.0.info with an HTML page, not a version's JSON")
				if f := r.Findings[0]; !strings.Contains(f.Fix[0], "GOPROXY") {
					t.Errorf("the first fix must name GOPROXY: %q", f.Fix[0])
				}
				if !hasProbe(r, "goproxy", "/@v/list", true) {
					t.Errorf("want the version list answered")
				}
			}},
		{name: "goproxy-info-healthy", want: "", servers: goproxyAt(nil), env: goproxyEnv,
			check: func(t *testing.T, r *doctor.Report) {
				found := false
				for _, p := range r.Probes {
					if p.Kind == "goproxy" && strings.HasSuffix(p.Name, "/golang.org/x/text/@v/v0.2.0.info") && p.OK && p.Shape == "info" {
						found = true
					}
				}
				if !found {
					t.Errorf("want the newest version's .info probed and answered with its JSON")
				}
			}},
		{name: "goproxy-login-redirect", want: "goproxy.login-redirect", servers: goproxyAt(func(h *HTTPConfig) { h.Page = "login" }), env: goproxyEnv,
			check: func(t *testing.T, r *doctor.Report) { firstSummaryHas(t, r, "/login") }},
		{name: "goproxy-401-without-netrc", want: "goproxy.auth-required", servers: goproxyAt(func(h *HTTPConfig) { h.Auth = "lab:secret" }), env: goproxyEnv,
			check: func(t *testing.T, r *doctor.Report) {
				firstSummaryHas(t, r, "401", "wants credentials")
				evidenceHas(t, r, "goproxy.auth-required", `Basic realm="lab modules"`)
			}},
		{name: "goproxy-401-answered-by-netrc", want: "", servers: goproxyAt(func(h *HTTPConfig) { h.Auth = "lab:secret" }),
			env: append([]string{"NETRC=" + pki.Netrc}, goproxyEnv...),
			check: func(t *testing.T, r *doctor.Report) {
				if !hasProbe(r, "goproxy", "/@v/list", true) {
					t.Errorf("want the version list fetched with the netrc credentials")
				}
			}},
		{name: "goproxy-port-closed-names-goproxy", want: "tcp.refused", env: []string{"GOPROXY=https://proxy.example.test:8443", "GOSUMDB=sum.example.test"},
			check: func(t *testing.T, r *doctor.Report) {
				fast(t, r)
				firstSummaryHas(t, r, "GOPROXY=https://proxy.example.test:8443: ")
				if f := r.Findings[0]; !strings.Contains(f.Fix[0], "contacted: proxy.example.test") {
					t.Errorf("the first fix must name GOPROXY and the host contacted: %q", f.Fix[0])
				}
			}},
		{name: "goproxy-through-a-proxy-healthy", want: "",
			servers: Config{HTTPS: []HTTPConfig{{Addr: ServerIP + ":443", Cert: pki.Goproxy[0], Key: pki.Goproxy[1], GoProxy: true}},
				Proxy: []ProxyConfig{{Addr: AltIP + ":3128", Hosts: map[string]string{"proxy.example.test": ServerIP}}}},
			rules: [][]string{{"-A", "INPUT", "-s", ClientIP, "-d", ServerIP, "-p", "tcp", "--dport", "443", "-j", "DROP"}},
			env:   append([]string{"HTTPS_PROXY=http://" + AltIP + ":3128"}, goproxyEnv...)},

		// Both paths: the one the environment chose and the other.
		{name: "proxy-down-direct-works", want: "proxy.unreachable", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			env: []string{"HTTPS_PROXY=http://" + ServerIP + ":3128"}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) {
				firstSummaryHas(t, r, "HTTPS_PROXY=http://"+ServerIP+":3128: ")
				if f := r.Findings[0]; !strings.Contains(f.Fix[0], "add it to NO_PROXY (NO_PROXY=web.example.test)") {
					t.Errorf("the direct path works: want the NO_PROXY fix first: %q", f.Fix)
				}
			}},
		{name: "no-proxy-sends-direct-into-firewall", want: "tcp.timeout",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}, Proxy: []ProxyConfig{{Addr: AltIP + ":3128", Hosts: map[string]string{"web.example.test": ServerIP}}}},
			rules:   [][]string{{"-A", "INPUT", "-s", ClientIP, "-d", ServerIP, "-p", "tcp", "--dport", "443", "-j", "DROP"}},
			env:     []string{"HTTPS_PROXY=http://" + AltIP + ":3128", "NO_PROXY=web.example.test"}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) {
				firstSummaryHas(t, r, "NO_PROXY=web.example.test: ")
				if f := r.Findings[0]; !strings.Contains(f.Fix[0], "take web.example.test out of NO_PROXY") {
					t.Errorf("the proxy path works: want the NO_PROXY fix first: %q", f.Fix)
				}
			}},

		// A malformed proxy variable: Go dials the host it derived.
		{name: "proxy-malformed-dials-derived-host", want: "proxy.malformed", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			env: []string{"HTTPS_PROXY=http://squid example:3128"}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) {
				firstSummaryHas(t, r, `Go dials the proxy host "http" (http:80)`)
				explains(t, r, "proxy.malformed", `"http" (the HTTPS_PROXY host for web.example.test) does not exist`)
				for _, f := range r.Findings {
					if f.ID == "dns.not-found" {
						t.Errorf("dns.not-found reported beside its cause: %q", f.Summary)
					}
				}
			}},
	}
}
