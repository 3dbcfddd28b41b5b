package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/doctor"
)

// fixture paths, set up once in TestMain.
var (
	berthBin string // the doctor binary, CGO_ENABLED=0
	selfBin  string // this test binary, which doubles as the fixture server
	pki      struct {
		Bundle                                 string // the lab root CA, for SSL_CERT_FILE
		EmptyDir                               string
		Web, Expired, Future, Wrong, Unknown   [2]string
		Intercept, Goproxy, Sumdb, Padded, Any [2]string
		ClientCA                               string // a CA for client certificates (mutual TLS)
		Netrc, NetrcNoPort                     string // netrc files for proxy.example.test
	}
	labSkip string
	labDir  string // removed when the tests end
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(ServerEnv); cfg != "" {
		ServeMain(cfg)
		return
	}
	os.Exit(setupAndRun(m))
}

func setupAndRun(m *testing.M) int {
	if labSkip = Available(); labSkip != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "berthlab")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	labDir = dir
	if selfBin, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	berthBin = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", berthBin, "../../cmd/berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building berth: %v\n%s", err, out)
		return 1
	}
	if err := makePKI(dir); err != nil {
		fmt.Fprintln(os.Stderr, "lab PKI:", err)
		return 1
	}
	return m.Run()
}

func makePKI(dir string) error {
	root, err := NewCA("Berth Lab Root CA", "Berth Lab")
	if err != nil {
		return err
	}
	other, err := NewCA("Other Lab CA", "Somebody Else")
	if err != nil {
		return err
	}
	mitm, err := NewCA("Zscaler Root CA", "Zscaler Inc.")
	if err != nil {
		return err
	}
	pki.Bundle = filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(pki.Bundle, root.PEM, 0o644); err != nil {
		return err
	}
	clients, err := NewCA("Lab Clients CA", "Berth Lab")
	if err != nil {
		return err
	}
	pki.ClientCA = filepath.Join(dir, "clients.pem")
	if err := os.WriteFile(pki.ClientCA, clients.PEM, 0o644); err != nil {
		return err
	}
	pki.Netrc = filepath.Join(dir, "netrc")
	if err := os.WriteFile(pki.Netrc, []byte("machine proxy.example.test login lab password secret\n"), 0o600); err != nil {
		return err
	}
	pki.NetrcNoPort = filepath.Join(dir, "netrc-noport")
	if err := os.WriteFile(pki.NetrcNoPort, []byte("machine proxy.example.test login lab password secret\n"), 0o600); err != nil {
		return err
	}
	pki.EmptyDir = filepath.Join(dir, "empty")
	if err := os.MkdirAll(pki.EmptyDir, 0o755); err != nil {
		return err
	}
	now := time.Now()
	valid := func(ca *CA, base string, names []string, nb, na time.Time, pad int) ([2]string, error) {
		c, k, err := ca.Issue(dir, base, names, nb, na, pad)
		return [2]string{c, k}, err
	}
	year := 365 * 24 * time.Hour
	for _, x := range []struct {
		dst   *[2]string
		ca    *CA
		names []string
		nb    time.Time
		na    time.Time
		pad   int
	}{
		{&pki.Web, root, []string{"web.example.test", "web2.example.test", "web3.example.test"}, now.Add(-time.Hour), now.Add(year), 0},
		{&pki.Expired, root, []string{"web.example.test"}, now.Add(-2 * year), now.Add(-year), 0},
		{&pki.Future, root, []string{"web.example.test"}, now.Add(year), now.Add(2 * year), 0},
		{&pki.Wrong, root, []string{"other.example.test"}, now.Add(-time.Hour), now.Add(year), 0},
		{&pki.Unknown, other, []string{"web.example.test"}, now.Add(-time.Hour), now.Add(year), 0},
		{&pki.Intercept, mitm, []string{"web.example.test"}, now.Add(-time.Hour), now.Add(year), 0},
		{&pki.Goproxy, root, []string{"proxy.example.test"}, now.Add(-time.Hour), now.Add(year), 0},
		{&pki.Sumdb, root, []string{"sum.example.test"}, now.Add(-time.Hour), now.Add(year), 0},
		{&pki.Padded, root, []string{"web.example.test"}, now.Add(-time.Hour), now.Add(year), 6000},
		{&pki.Any, root, []string{"*.corp.test", "web.example.test.corp.test"}, now.Add(-time.Hour), now.Add(year), 0},
	} {
		v, err := valid(x.ca, fmt.Sprintf("leaf%p", x.dst), x.names, x.nb, x.na, x.pad)
		if err != nil {
			return err
		}
		*x.dst = v
	}
	return nil
}

// scenario is one real fault and the finding the doctor must put first.
type scenario struct {
	name string
	want string
	// sev is the severity of want; for a warn or info id the scenario also
	// requires that there is no error finding at all. "" means error.
	sev doctor.Severity
	// noLink leaves the client with loopback only.
	noLink bool
	// noDefault removes the client's default route.
	noDefault bool
	resolv    string // client /etc/resolv.conf; default: nameserver ServerIP
	dns       *DNSConfig
	servers   Config // plus DNS
	ns        *Config
	rules     [][]string
	env       []string
	args      []string
	timeout   time.Duration
	// check runs extra assertions on the report.
	check func(t *testing.T, r *doctor.Report)
	// wrap prefixes the doctor command (cgroup).
	wrap func(t *testing.T, p *Pair) []string
}

var records = map[string][]string{
	"web.example.test.":   {ServerIP},
	"web2.example.test.":  {ServerIP},
	"web3.example.test.":  {ServerIP},
	"proxy.example.test.": {ServerIP},
	"sum.example.test.":   {DeadIP},
	"sum2.example.test.":  {AltIP},
	"dead.example.test.":  {DeadIP},
	"*.corp.test.":        {AltIP},
}

func web(cert [2]string) HTTPConfig {
	return HTTPConfig{Addr: ServerIP + ":443", Cert: cert[0], Key: cert[1]}
}

const webURL = "https://web.example.test/"

func scenarios() []scenario {
	return []scenario{
		{name: "healthy", want: "", servers: Config{HTTPS: []HTTPConfig{
			{Addr: ServerIP + ":443", Cert: pki.Web[0], Key: pki.Web[1]},
			{Addr: AltIP + ":443", Cert: pki.Goproxy[0], Key: pki.Goproxy[1], GoProxy: true},
		}}, dns: &DNSConfig{Records: map[string][]string{"web.example.test.": {ServerIP}, "web2.example.test.": {ServerIP}, "proxy.example.test.": {AltIP}}},
			args: []string{webURL, "https://web2.example.test/", "https://proxy.example.test/"}},
		{name: "healthy-goproxy-default-targets", want: "", servers: Config{HTTPS: []HTTPConfig{
			{Addr: ServerIP + ":443", Cert: pki.Goproxy[0], Key: pki.Goproxy[1], GoProxy: true}}},
			env: []string{"GOPROXY=https://proxy.example.test", "GOSUMDB=sum.example.test"},
			check: func(t *testing.T, r *doctor.Report) {
				if !hasProbe(r, "sumdb", "/sumdb/sum.example.test/latest", true) || !hasProbe(r, "goproxy", "/golang.org/x/text/@v/list", true) {
					t.Errorf("want goproxy list and sumdb latest probes ok")
				}
			}},
		{name: "dns-truncated-answer-retried-over-tcp", want: "", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			dns: &DNSConfig{Mode: "truncate"}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) {
				for _, p := range r.Probes {
					if p.Kind == "dns" && p.Transport != "udp+tcp" {
						t.Errorf("dns probe transport %q, want udp+tcp", p.Transport)
					}
				}
			}},
		{name: "resolver-over-tcp-use-vc", want: "", resolv: "nameserver " + ServerIP + "\noptions use-vc\n",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) {
				for _, p := range r.Probes {
					if p.Kind == "dns" && p.Transport != "tcp" {
						t.Errorf("dns probe transport %q, want tcp (use-vc)", p.Transport)
					}
					if p.Kind == "resolve" && (len(p.Tries) == 0 || p.Tries[0].Rcode != "NOERROR") {
						t.Errorf("Go resolver over TCP: queries recorded %+v, want answered", p.Tries)
					}
				}
			}},
		{name: "network-none", want: "net.no-route", noLink: true, args: []string{webURL}},
		{name: "no-nameserver", want: "dns.no-nameserver", resolv: "# nothing here\nsearch example.test\n", args: []string{webURL}},
		{name: "dead-nameserver", want: "dns.server-unreachable", resolv: "nameserver " + DeadIP + "\n",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) { explains(t, r, "dns.server-unreachable", webURL) }},
		{name: "second-nameserver-dead", want: "dns.server-unreachable", sev: doctor.SevWarn, resolv: "nameserver " + ServerIP + "\nnameserver " + DeadIP + "\n",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL}},
		{name: "docker-embedded-dns-absent", want: "dns.server-port-closed",
			resolv: "nameserver 127.0.0.11\nsearch example.test\noptions ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [host(192.168.65.7)]\n# Overrides: []\n# Option ndots from: internal\n",
			args:   []string{webURL},
			check: func(t *testing.T, r *doctor.Report) {
				if len(r.Facts.ResolvConf.Docker) != 4 || r.Facts.ResolvConf.Ndots != 0 {
					t.Errorf("docker trailer %v ndots %d", r.Facts.ResolvConf.Docker, r.Facts.ResolvConf.Ndots)
				}
				evidenceHas(t, r, "dns.server-port-closed", "ExtServers")
				summaryHas(t, r, "dns.server-port-closed", "127.0.0.11:53")
			}},
		{name: "garbage-resolv-conf", want: "dns.no-nameserver", resolv: "\x00\xff\xfe nameserver\nnameserver dns.example.test\n" + strings.Repeat("options ", 5000) + "\n",
			args: []string{webURL}},
		{name: "nameserver-refused", want: "dns.server-refused", dns: &DNSConfig{Mode: "refused"}, args: []string{webURL}},
		{name: "nameserver-servfail", want: "dns.servfail", dns: &DNSConfig{Mode: "servfail"}, args: []string{webURL}},
		{name: "name-not-found", want: "dns.not-found", args: []string{"https://missing.example.test/"}},
		{name: "ndots-wildcard-search-domain", want: "dns.search-amplification", resolv: "nameserver " + ServerIP + "\nsearch corp.test\noptions ndots:5\n",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web), {Addr: AltIP + ":443", Cert: pki.Any[0], Key: pki.Any[1]}}}, args: []string{webURL}},
		{name: "ndots-search-list-amplification", want: "dns.search-amplification", sev: doctor.SevWarn,
			resolv:  "nameserver " + ServerIP + "\nsearch ns.svc.cluster.test svc.cluster.test cluster.test\noptions ndots:5\n",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL}},
		{name: "kubernetes-short-name-healthy", want: "",
			resolv:  "nameserver " + ServerIP + "\nsearch app.svc.cluster.test svc.cluster.test cluster.test\noptions ndots:5\n",
			dns:     &DNSConfig{Records: map[string][]string{"db.app.svc.cluster.test.": {ServerIP}}},
			servers: Config{Listen: []string{ServerIP + ":5432"}}, args: []string{"db.app:5432"}},
		{name: "slow-dns", want: "dns.slow", sev: doctor.SevWarn, dns: &DNSConfig{Delay: 700 * time.Millisecond},
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL}},
		{name: "resolv-option-pushes-cgo", want: "resolver.cgo-fallback", sev: doctor.SevWarn, resolv: "nameserver " + ServerIP + "\noptions inet6 ndots:1\n",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL}},
		{name: "port-closed", want: "tcp.refused", args: []string{webURL}},
		{name: "port-dropped", want: "tcp.timeout", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			rules: [][]string{{"-A", "INPUT", "-p", "tcp", "--dport", "443", "-j", "DROP"}}, args: []string{webURL}},
		{name: "port-rejected-host-unreachable", want: "tcp.unreachable", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			rules: [][]string{{"-A", "INPUT", "-p", "tcp", "--dport", "443", "-j", "REJECT", "--reject-with", "icmp-host-unreachable"}}, args: []string{webURL}},
		{name: "connection-reset", want: "tcp.reset", servers: Config{Reset: []string{ServerIP + ":443"}}, args: []string{webURL}},
		{name: "no-ca-roots", want: "tls.no-roots", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			env: []string{"SSL_CERT_FILE=/nonexistent/ca.pem", "SSL_CERT_DIR=" + pki.EmptyDir}, args: []string{webURL}},
		{name: "unknown-ca", want: "tls.unknown-authority", servers: Config{HTTPS: []HTTPConfig{web(pki.Unknown)}}, args: []string{webURL}},
		{name: "intercepting-proxy-ca", want: "tls.unknown-authority", servers: Config{HTTPS: []HTTPConfig{web(pki.Intercept)}}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) { summaryHas(t, r, "tls.unknown-authority", "intercepted") }},
		{name: "expired-cert", want: "tls.expired", servers: Config{HTTPS: []HTTPConfig{web(pki.Expired)}}, args: []string{webURL}},
		{name: "cert-not-yet-valid-clock", want: "tls.expired", servers: Config{HTTPS: []HTTPConfig{web(pki.Future)}}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report) { summaryHas(t, r, "tls.expired", "clock") }},
		{name: "wrong-host-cert", want: "tls.hostname-mismatch", servers: Config{HTTPS: []HTTPConfig{web(pki.Wrong)}}, args: []string{webURL}},
		{name: "mtu-black-hole", want: "tls.handshake-timeout", servers: Config{HTTPS: []HTTPConfig{web(pki.Padded)}},
			rules: [][]string{{"-A", "OUTPUT", "-p", "tcp", "--sport", "443", "-m", "length", "--length", "1200:65535", "-j", "DROP"}}, args: []string{webURL}},
		{name: "proxy-down", want: "proxy.unreachable", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			env: []string{"HTTPS_PROXY=http://" + ServerIP + ":3128"}, args: []string{webURL}},
		{name: "proxy-on-container-loopback", want: "proxy.unreachable", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			env: []string{"HTTPS_PROXY=http://127.0.0.1:3128"}, args: []string{webURL}},
		{name: "no-default-route", want: "net.no-route", noDefault: true, args: []string{"https://10.213.1.1/"}},
		{name: "proxy-needs-auth", want: "proxy.auth-required",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}, Proxy: []ProxyConfig{{Addr: ServerIP + ":3128", Auth: "u:p"}}},
			env:     []string{"HTTPS_PROXY=http://" + ServerIP + ":3128"}, args: []string{webURL}},
		{name: "proxy-with-credentials-healthy", want: "",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}, Proxy: []ProxyConfig{{Addr: AltIP + ":3128", Auth: "u:p", Hosts: map[string]string{"web.example.test": ServerIP}}}},
			rules:   [][]string{{"-A", "INPUT", "-s", ClientIP, "-d", ServerIP, "-p", "tcp", "--dport", "443", "-j", "DROP"}},
			env:     []string{"HTTPS_PROXY=http://u:p@" + AltIP + ":3128"}, args: []string{webURL}},
		{name: "proxy-malformed", want: "proxy.malformed", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			rules: [][]string{{"-A", "INPUT", "-p", "tcp", "--dport", "443", "-j", "DROP"}},
			env:   []string{"HTTPS_PROXY=proxy corp:3128"}, args: []string{webURL}},
		{name: "goproxy-upstream-down", want: "goproxy.unreachable",
			servers: Config{HTTPS: []HTTPConfig{{Addr: ServerIP + ":443", Cert: pki.Goproxy[0], Key: pki.Goproxy[1], GoProxy: true, Status: 502}}},
			env:     []string{"GOPROXY=https://proxy.example.test", "GOSUMDB=sum.example.test"}},
		{name: "goproxy-port-dropped", want: "tcp.timeout",
			servers: Config{HTTPS: []HTTPConfig{{Addr: ServerIP + ":443", Cert: pki.Goproxy[0], Key: pki.Goproxy[1], GoProxy: true}}},
			rules:   [][]string{{"-A", "INPUT", "-p", "tcp", "--dport", "443", "-j", "DROP"}},
			env:     []string{"GOPROXY=https://proxy.example.test", "GOSUMDB=sum.example.test"},
			check: func(t *testing.T, r *doctor.Report) {
				// The root is the dropped port; the GOPROXY protocol failure is its consequence.
				explains(t, r, "tcp.timeout", "/@v/list")
				for _, f := range r.Findings {
					if f.ID == "goproxy.unreachable" {
						t.Errorf("goproxy.unreachable reported as its own finding; want it under tcp.timeout")
					}
				}
			}},
		{name: "sumdb-not-proxied-and-blocked", want: "goproxy.sumdb-unreachable",
			servers: Config{HTTPS: []HTTPConfig{{Addr: ServerIP + ":443", Cert: pki.Goproxy[0], Key: pki.Goproxy[1], GoProxy: true, SumDB: "404"}}},
			env:     []string{"GOPROXY=https://proxy.example.test", "GOSUMDB=sum.example.test"}},
		{name: "sumdb-proxy-upstream-down", want: "goproxy.sumdb-unreachable",
			servers: Config{HTTPS: []HTTPConfig{{Addr: ServerIP + ":443", Cert: pki.Goproxy[0], Key: pki.Goproxy[1], GoProxy: true, SumDB: "502"}}},
			env:     []string{"GOPROXY=https://proxy.example.test", "GOSUMDB=sum.example.test"}},
		{name: "private-module-without-goprivate", want: "goproxy.private-module-public",
			servers: Config{HTTPS: []HTTPConfig{{Addr: ServerIP + ":443", Cert: pki.Goproxy[0], Key: pki.Goproxy[1], GoProxy: true}}},
			env:     []string{"GOPROXY=https://proxy.example.test", "GOSUMDB=sum.example.test"}, args: []string{"--module", "git.corp.example/team/lib"}},
		{name: "direct-without-git", want: "goproxy.direct-without-vcs", env: []string{"GOPROXY=direct", "GOSUMDB=off", "PATH=/nonexistent"}},
		{name: "service-on-loopback-only", want: "listen.loopback-only", ns: &Config{Listen: []string{"127.0.0.1:8080"}},
			env: []string{"GOPROXY=off"}, args: []string{"--listen", ":8080"}},
		{name: "service-on-all-interfaces", want: "", ns: &Config{Listen: []string{"0.0.0.0:8080"}},
			env: []string{"GOPROXY=off"}, args: []string{"--listen", ":8080"}},
		{name: "memory-limit-without-gomemlimit", want: "resources.gomemlimit-unset", sev: doctor.SevWarn,
			env: []string{"GOPROXY=off"}, wrap: memCgroup},
	}
}

func TestFaultLab(t *testing.T) {
	if labSkip != "" {
		t.Skip("fault lab skipped: " + labSkip)
	}
	for _, sc := range append(scenarios(), wave2Scenarios()...) {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, sc)
		})
	}
}

func runScenario(t *testing.T, sc scenario) *doctor.Report {
	p := NewPair(t, !sc.noLink)
	resolv := sc.resolv
	if resolv == "" {
		resolv = "nameserver " + ServerIP + "\n"
	}
	p.EtcFile("resolv.conf", resolv)
	p.EtcFile("hosts", "127.0.0.1 localhost\n")
	if !sc.noLink {
		cfg := sc.servers
		d := DNSConfig{Addr: ServerIP, Records: records}
		if sc.dns != nil {
			d = *sc.dns
			d.Addr = ServerIP
			if d.Records == nil {
				d.Records = records
			}
		}
		cfg.DNS = append(cfg.DNS, d)
		p.StartServers(p.Server, selfBin, cfg)
		for _, r := range sc.rules {
			p.Iptables(r...)
		}
		if sc.noDefault {
			p.NoDefaultRoute()
			p.ServerAddr("10.213.1.1/24")
		}
	}
	if sc.ns != nil {
		p.StartServers(p.Client, selfBin, *sc.ns)
	}
	timeout := sc.timeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	env := []string{"PATH=/usr/bin:/bin", "SSL_CERT_FILE=" + pki.Bundle, "SSL_CERT_DIR=" + pki.EmptyDir, "GOPROXY=off", "GOSUMDB=off", "HOME=/nonexistent", "GOMEMLIMIT=1GiB"}
	env = append(env, sc.env...) // later values win with env(1)
	var wrap []string
	if sc.wrap != nil {
		wrap = sc.wrap(t, p)
		env = dropEnv(env, "GOMEMLIMIT")
	}
	args := append([]string{"--json", "--timeout", timeout.String()}, sc.args...)
	res := p.RunDoctor(berthBin, env, args, wrap...)
	var rep doctor.Report
	if err := json.Unmarshal(res.Stdout, &rep); err != nil {
		t.Fatalf("doctor output is not JSON (%v); exit %d\nstdout: %s\nstderr: %s", err, res.Code, res.Stdout, res.Stderr)
	}
	limit := timeout + time.Second
	if res.Wall > limit {
		t.Errorf("doctor took %v, want <= %v (--timeout %v + 1s)", res.Wall, limit, timeout)
	}
	ids := summary(&rep)
	var firstErr *doctor.Finding
	for i := range rep.Findings {
		if rep.Findings[i].Severity == doctor.SevError {
			firstErr = &rep.Findings[i]
			break
		}
	}
	switch {
	case sc.want == "":
		if firstErr != nil {
			t.Errorf("healthy scenario has error findings: %s", ids)
		}
		if res.Code != 0 {
			t.Errorf("exit code %d, want 0", res.Code)
		}
	case sc.sev == doctor.SevWarn:
		if firstErr != nil {
			t.Errorf("want no error finding, got %s", ids)
		}
		found := false
		for _, f := range rep.Findings {
			if f.ID == sc.want && f.Severity == doctor.SevWarn {
				found = true
			}
		}
		if !found {
			t.Errorf("want warning %s; findings: %s", sc.want, ids)
		}
	default:
		if firstErr == nil || firstErr.ID != sc.want {
			t.Errorf("first error finding: want %s; findings: %s", sc.want, ids)
		}
		if res.Code != 1 {
			t.Errorf("exit code %d, want 1", res.Code)
		}
	}
	if sc.check != nil {
		sc.check(t, &rep)
	}
	if t.Failed() || testing.Verbose() {
		text := p.RunDoctor(berthBin, env, append([]string{"--timeout", timeout.String()}, sc.args...), wrap...)
		t.Logf("wall %v, findings %s\n%s", res.Wall, ids, text.Stdout)
	}
	return &rep
}

func dropEnv(env []string, k string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, k+"=") {
			out = append(out, e)
		}
	}
	return out
}

func summary(r *doctor.Report) string {
	var s []string
	for _, f := range r.Findings {
		s = append(s, fmt.Sprintf("%s(%s)", f.ID, f.Severity))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func hasProbe(r *doctor.Report, kind, nameSuffix string, ok bool) bool {
	for _, p := range r.Probes {
		if p.Kind == kind && strings.HasSuffix(p.Name, nameSuffix) && p.OK == ok {
			return true
		}
	}
	return false
}

func summaryHas(t *testing.T, r *doctor.Report, id, word string) {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id && strings.Contains(f.Summary, word) {
			return
		}
	}
	t.Errorf("want a %s finding whose summary mentions %q; findings: %s", id, word, summary(r))
}

func evidenceHas(t *testing.T, r *doctor.Report, id, word string) {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID != id {
			continue
		}
		for _, e := range f.Evidence {
			if strings.Contains(e, word) {
				return
			}
		}
	}
	t.Errorf("want %s evidence mentioning %q; findings: %s", id, word, summary(r))
}

func explains(t *testing.T, r *doctor.Report, id, what string) {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID != id {
			continue
		}
		for _, c := range f.Explains {
			if strings.Contains(c.Summary, what) {
				return
			}
		}
	}
	t.Errorf("want %s to explain the failure of %s", id, what)
}

// memCgroup puts the doctor in a new memory cgroup with a 256 MiB limit.
func memCgroup(t *testing.T, p *Pair) []string {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip("no /proc/self/cgroup")
	}
	var dir string
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "memory" || strings.Contains(parts[1], ",memory") {
			dir = filepath.Join("/sys/fs/cgroup/memory", parts[2], filepath.Base(p.Client))
		}
	}
	if dir == "" {
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			rel := ""
			for _, line := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(line, "0::") {
					rel = line[3:]
				}
			}
			dir = filepath.Join("/sys/fs/cgroup", rel, p.Client)
		}
	}
	if dir == "" {
		t.Skip("no memory cgroup controller")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup (%v)", err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	limitFile := "memory.limit_in_bytes"
	if _, err := os.Stat(filepath.Join(dir, limitFile)); err != nil {
		limitFile = "memory.max"
	}
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte("268435456"), 0o644); err != nil {
		t.Skipf("cannot set a memory limit (%v)", err)
	}
	return []string{"/bin/sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, dir}
}
