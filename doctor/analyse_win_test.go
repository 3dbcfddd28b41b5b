package doctor

import (
	"strings"
	"testing"
)

// Windows cases: the facts a Windows system reports (facts_windows.go),
// analysed anywhere.

func init() { analyseCases = append(analyseCases, windowsCases...) }

func windowsFacts(f *Facts) {
	f.OS = "windows"
	f.ResolvConfRead = "GetAdaptersAddresses"
	f.NSSwitch = NSSwitch{Order: "files,dns"}
	f.Resolver = ResolverFact{Mode: "native", Order: "files,dns"}
	f.CA = CAFacts{System: "windows", Loaded: 0, Files: []CAFile{}, Dirs: []CAFile{}}
	f.Windows = &WindowsFacts{Resolver: "native (GetAddrInfoW)", HostsFile: `C:\Windows\System32\drivers\etc\hosts`,
		Adapters: []WinAdapter{{Name: "vEthernet (nat)", Up: true, DNSServers: []string{"192.0.2.53"}, Gateways: []string{"192.0.2.1"}}}}
}

func nativeOK(tg, host string) Probe {
	return Probe{Kind: "resolve-native", Target: tg, Name: host, Server: "GetAddrInfoW", OK: true, Addrs: []string{"192.0.2.80"}, DurationMS: 2}
}

func nativeFail(tg, host, cause, text string) Probe {
	return Probe{Kind: "resolve-native", Target: tg, Name: host, Server: "GetAddrInfoW", Cause: cause, Error: "lookup " + host + ": " + text, DurationMS: 2}
}

// noUnixFix fails when a Windows report tells the user to run Unix tools.
func noUnixFix(t *testing.T, r *Report) {
	t.Helper()
	for _, f := range r.Findings {
		for _, x := range f.Fix {
			for _, bad := range []string{"apt-get", "apk add", "update-ca-certificates", "/etc/ssl", "iptables", "set SSL_CERT_FILE"} {
				if strings.Contains(x, bad) {
					t.Errorf("%s: a Windows fix names %q: %q", f.ID, bad, x)
				}
			}
		}
	}
}

var windowsCases = []analyseCase{
	{name: "windows-healthy-without-unix-roots", targets: []string{webURL}, facts: windowsFacts,
		probes: append(webUpTo("http"), nativeOK(webURL, webHost)), want: nil},
	{name: "windows-native-resolver-fails", targets: []string{webURL}, facts: windowsFacts,
		probes: append(webUpTo("http"), nativeFail(webURL, webHost, kDNSNotFound, "no such host")),
		want:   []string{"resolver.windows-differs/error"},
		check:  noUnixFix},
	{name: "windows-go-resolver-fails", targets: []string{webURL}, facts: windowsFacts,
		probes: []Probe{dnsDead(webURL, ns1, webHost), resolveFail(webURL, webHost, kDNSTimeout, "i/o timeout"), nativeOK(webURL, webHost),
			tcpOK(webURL, webAddr), tlsOK(webURL, webAddr, webHost), httpOK(webURL, "http", webURL)},
		want: []string{"resolver.windows-differs/warn"}},
	{name: "windows-proxy-settings-ignored", facts: func(f *Facts) {
		windowsFacts(f)
		f.Windows.WinINetProxy, f.Windows.WinHTTPProxy = "squid.example.test:3128", "squid.example.test:3128"
	}, want: []string{"proxy.windows-settings-ignored/warn"},
		check: func(t *testing.T, r *Report) {
			f := findingByID(r, "proxy.windows-settings-ignored")
			if !strings.Contains(strings.Join(f.Fix, "\n"), `$env:HTTPS_PROXY="http://squid.example.test:3128"`) {
				t.Errorf("want the PowerShell fix: %q", f.Fix)
			}
		}},
	{name: "windows-unknown-authority", targets: []string{webURL}, facts: windowsFacts,
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSUnknownCA, "x509: certificate signed by unknown authority")}),
		want:   []string{"tls.unknown-authority/error"},
		check: func(t *testing.T, r *Report) {
			noUnixFix(t, r)
			if f := findingByID(r, "tls.unknown-authority"); !strings.Contains(strings.Join(f.Fix, "\n"), "Import-Certificate") {
				t.Errorf("want Import-Certificate in the fix: %q", f.Fix)
			}
		}},
	{name: "windows-intercepted", targets: []string{webURL}, facts: windowsFacts,
		probes: join(webUpTo("tcp"), []Probe{tlsFail(webURL, webAddr, webHost, kTLSUnknownCA, "x509: certificate signed by unknown authority",
			CertInfo{Subject: "CN=web.example.test", Issuer: "CN=Zscaler Root CA", IssuerOrg: []string{"Zscaler Inc."}})}),
		want: []string{"tls.unknown-authority/error"}, check: noUnixFix},
	{name: "windows-direct-without-git", facts: func(f *Facts) {
		windowsFacts(f)
		f.Go.GOPROXY, f.Go.Proxies, f.Go.Git = "direct", []GoProxyEntry{{URL: "direct"}}, ""
	}, want: []string{"goproxy.direct-without-vcs/error"},
		check: func(t *testing.T, r *Report) {
			noUnixFix(t, r)
			if f := findingByID(r, "goproxy.direct-without-vcs"); !strings.Contains(strings.Join(f.Fix, "\n"), "Git for Windows") {
				t.Errorf("want Git for Windows in the fix: %q", f.Fix)
			}
		}},
	{name: "windows-udp-unsupported-under-wine", targets: []string{webURL}, facts: windowsFacts,
		probes: []Probe{dnsErr(webURL, ns1, webHost, kUnknown, "dial udp "+ns1+": wsaioctl: winapi error #10045"),
			resolveFail(webURL, webHost, kDNSTimeout, "dial udp "+ns1+": wsaioctl: winapi error #10045"),
			nativeFail(webURL, webHost, kDNSTimeout, "i/o timeout")},
		want:    []string{"dns.server-unreachable/error"},
		summary: map[string]string{"dns.server-unreachable": "fail before they are sent"}},
	{name: "windows-port-refused", targets: []string{webURL}, facts: windowsFacts,
		probes: join(webUpTo("dns"), []Probe{nativeOK(webURL, webHost), tcpFail(webURL, webAddr, kRefused, "connectex: No connection could be made because the target machine actively refused it.")}),
		want:   []string{"tcp.refused/error"},
		check: func(t *testing.T, r *Report) {
			noUnixFix(t, r)
			if f := findingByID(r, "tcp.refused"); !strings.Contains(strings.Join(f.Fix, "\n"), "Test-NetConnection") {
				t.Errorf("want Test-NetConnection: %q", f.Fix)
			}
		}},
}
