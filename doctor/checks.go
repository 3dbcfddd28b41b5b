package doctor

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/berth-dev/berth/internal/goenv"
)

type analysis struct {
	r        *Report
	o        *Options
	findings []*Finding
	byKey    map[string]*Finding
	// sumdbRoot is the network failure on the direct checksum-database path.
	sumdbRoot *Finding
	// folded records what fold moved, for the tests.
	folded []folding
}

// folding is one finding fold moved under a root.
type folding struct{ root, absorbed id }

// add records a finding of the catalog's id: it fills the layer, and the
// severity, cause and fix the check left empty, from the catalog. A finding
// with the id and key of an earlier one is merged into it.
func (a *analysis) add(fid id, f Finding) *Finding {
	s := specs[fid]
	f.ID, f.layer = string(fid), s.layer
	if f.Severity == "" {
		f.Severity = s.severities[0]
	}
	if f.Cause == "" {
		f.Cause = s.cause
	}
	if f.Fix == nil {
		f.Fix = slices.Clone(s.fix)
	}
	f.Fix = a.platformFix(s, f.Fix)
	key := f.ID + "|" + f.key
	if ex, ok := a.byKey[key]; ok {
		ex.Targets = appendUniq(ex.Targets, f.Targets...)
		for _, e := range f.Evidence {
			if len(ex.Evidence) < 24 {
				ex.Evidence = appendUniq(ex.Evidence, e)
			}
		}
		ex.Explains = append(ex.Explains, f.Explains...)
		if f.Severity.rank() < ex.Severity.rank() {
			ex.Severity = f.Severity
		}
		return ex
	}
	nf := &f
	a.findings = append(a.findings, nf)
	a.byKey[key] = nf
	return nf
}

// unixOnly matches fix steps that name Unix tools or files.
var unixOnly = regexp.MustCompile(`^Host:|apt-get|apk add|iptables|update-ca-|/etc/|nft |firewall-cmd|ip route|/proc/|timedatectl|chronyc|dig @|systemd|SSL_CERT_(FILE|DIR)`)

// platformFix fits fix steps to the platform: on Windows the steps that
// name Unix tools or files give way to the catalog's Windows steps;
// elsewhere "Windows:" steps are dropped.
func (a *analysis) platformFix(s *spec, fix []string) []string {
	var out []string
	win := a.r.Facts.OS == "windows"
	for _, x := range fix {
		switch {
		case win && !strings.HasPrefix(x, "Windows:") && unixOnly.MatchString(x):
		case !win && strings.HasPrefix(x, "Windows:"):
		default:
			out = appendUniq(out, x)
		}
	}
	if win {
		out = appendUniq(out, s.winFix...)
	}
	if len(out) == 0 {
		return fix
	}
	return out
}

func (a *analysis) get(fid id) *Finding {
	for _, f := range a.findings {
		if f.ID == string(fid) {
			return f
		}
	}
	return nil
}

func appendUniq(s []string, v ...string) []string {
outer:
	for _, x := range v {
		for _, y := range s {
			if x == y {
				continue outer
			}
		}
		s = append(s, x)
	}
	return s
}

// analyse turns facts and probes into findings, root causes first. The
// analysis is returned for the tests.
func analyse(r *Report, o *Options) *analysis {
	a := &analysis{r: r, o: o, byKey: map[string]*Finding{}}
	a.factChecks()
	byTarget := map[string][]Probe{}
	for _, p := range r.Probes {
		byTarget[p.Target] = append(byTarget[p.Target], p)
	}
	for _, t := range r.Targets {
		a.targetChecks(t, byTarget[t.Input])
	}
	a.goproxyChecks(byTarget)
	a.listenChecks(byTarget)
	a.fold()
	sort.SliceStable(a.findings, func(i, j int) bool {
		x, y := a.findings[i], a.findings[j]
		if x.Severity.rank() != y.Severity.rank() {
			return x.Severity.rank() < y.Severity.rank()
		}
		return x.layer < y.layer
	})
	r.Findings = make([]Finding, 0, len(a.findings))
	for _, f := range a.findings {
		if len(f.Explains) > 16 {
			f.Explains = f.Explains[:16]
		}
		if f.Evidence == nil {
			f.Evidence = []string{}
		}
		r.Findings = append(r.Findings, *f)
	}
	return a
}

func (a *analysis) needsDNS() bool {
	for _, t := range a.r.Targets {
		if _, err := netip.ParseAddr(t.Host); err != nil {
			return true
		}
	}
	return false
}

func (a *analysis) factChecks() {
	f := &a.r.Facts
	// net.no-route
	up := false
	for _, i := range f.Interfaces {
		if i.Up && !i.Loopback && len(i.Addrs) > 0 {
			up = true
		}
	}
	if !up && len(a.r.Targets) > 0 {
		var ev []string
		for _, i := range f.Interfaces {
			ev = append(ev, fmt.Sprintf("interface %s up=%v addrs=%v", i.Name, i.Up, i.Addrs))
		}
		a.add(idNetNoRoute, Finding{Severity: SevError,
			Summary:  "no network: only the loopback interface exists",
			Evidence: append(ev, fmt.Sprintf("default route: %v", f.DefaultRoute))})
	}
	// dns.no-nameserver
	if f.ResolvConf.Defaulted && a.needsDNS() {
		sev := SevWarn
		for _, p := range a.r.Probes {
			if p.Kind == "resolve" && !p.OK {
				sev = SevError
			}
		}
		a.add(idDNSNoNameserver, Finding{Severity: sev,
			Summary: "resolv.conf names no usable nameserver; Go falls back to 127.0.0.1:53 and [::1]:53",
			Evidence: append([]string{"/etc/resolv.conf: " + f.ResolvConfRead, fmt.Sprintf("lines read: %d", f.ResolvConf.Lines)},
				prefixAll("ignored nameserver ", f.ResolvConf.Ignored)...)})
	}
	// resolver.cgo-fallback
	if len(f.Resolver.CgoReasons) > 0 {
		a.add(idResolverCgo, Finding{Severity: SevWarn,
			Summary:  "a cgo-enabled Go program would resolve names through libc here, not Go's resolver",
			Evidence: f.Resolver.CgoReasons})
	}
	// tls.no-roots
	if !f.CA.Custom && f.CA.System == "" && f.CA.Loaded == 0 {
		sev := SevWarn
		for _, t := range a.r.Targets {
			if t.Scheme == "https" || t.Scheme == "tls" {
				sev = SevError
			}
		}
		var ev []string
		if f.CA.SSLCertFile != "" {
			ev = append(ev, "SSL_CERT_FILE="+f.CA.SSLCertFile)
		}
		if f.CA.SSLCertDir != "" {
			ev = append(ev, "SSL_CERT_DIR="+f.CA.SSLCertDir)
		}
		for _, c := range append(append([]CAFile(nil), f.CA.Files...), f.CA.Dirs...) {
			s := c.Path + ": missing"
			if c.Exists {
				s = fmt.Sprintf("%s: exists, %d certificates", c.Path, c.Certs)
				if c.Error != "" {
					s += " (" + c.Error + ")"
				}
			}
			ev = append(ev, s)
		}
		a.add(idTLSNoRoots, Finding{Severity: sev,
			Summary:  "no trusted CA certificates: every HTTPS connection will fail with \"certificate signed by unknown authority\"",
			Evidence: ev})
	}
	// proxy.malformed
	for i, m := range f.Proxy.MalformedProxies {
		ev := []string{m.Var + "=" + m.Value}
		if i < len(f.Proxy.Malformed) {
			ev = append(ev, f.Proxy.Malformed[i])
		}
		fix := []string{
			fmt.Sprintf("Fix %s: a URL such as %s=http://proxy.corp.example:3128 (or host:port); quote it in shells and Dockerfiles", m.Var, m.Var),
			"Docker: check -e " + m.Var + " and ~/.docker/config.json \"proxies\"; Kubernetes: check the pod env; Host: check /etc/environment",
			"Windows: $env:" + m.Var + "=\"http://proxy.corp.example:3128\" (PowerShell), or ENV " + m.Var + "=... in the Dockerfile",
		}
		if m.Dials == "" {
			a.add(idProxyMalformed, Finding{Severity: SevError, key: m.Var,
				Summary:  fmt.Sprintf("%s=%s is malformed: Go ignores it and connects directly, without any error", m.Var, m.Value),
				Cause:    "net/http drops a proxy value that does not parse as a URL, even with http:// prepended, without any error: requests bypass the proxy and go straight to the target.",
				Evidence: ev, Fix: fix})
			continue
		}
		a.add(idProxyMalformed, Finding{Severity: SevError, key: m.Var, proxyHost: m.Host,
			Summary:  fmt.Sprintf("%s=%s is malformed: Go dials the proxy host %q (%s) instead, without any error", m.Var, m.Value, m.Host, m.Dials),
			Cause:    fmt.Sprintf("net/http reads the value as the URL %s: its host is %q, so every request that uses this variable is sent to %s, which fails to resolve or connect, and the error names %q, not your proxy.", m.ReadAs, m.Host, m.Dials, m.Host),
			Evidence: ev, Fix: fix})
	}
	if f.Proxy.CGI && f.Proxy.HTTPProxy != "" {
		a.add(idProxyCGI, Finding{Severity: SevWarn,
			Summary:  "REQUEST_METHOD is set: Go refuses HTTP_PROXY for http:// URLs",
			Evidence: []string{"REQUEST_METHOD=" + a.o.getenv("REQUEST_METHOD")}, Fix: []string{"Unset REQUEST_METHOD in the container environment."}})
	}
	for _, ig := range f.Proxy.Ignored {
		a.add(idProxyIgnored, Finding{Severity: SevInfo, key: ig,
			Summary:  "a proxy variable other tools use is ignored by Go",
			Evidence: []string{ig}, Fix: []string{"Set HTTPS_PROXY (uppercase) to the proxy Go should use."}})
	}
	// proxy.windows-settings-ignored
	if w := f.Windows; w != nil && f.Proxy.HTTPSProxy == "" && f.Proxy.HTTPProxy == "" {
		var ev []string
		proxy := ""
		for _, x := range [][2]string{{"WinINet (Internet Options) ProxyServer", w.WinINetProxy}, {"WinINet AutoConfigURL", w.WinINetAutoConfig}, {"WinHTTP (netsh winhttp) proxy", w.WinHTTPProxy}} {
			if x[1] != "" {
				ev = append(ev, x[0]+": "+x[1])
				if proxy == "" {
					proxy = x[1]
				}
			}
		}
		if proxy != "" {
			ev = append(ev, "HTTPS_PROXY, HTTP_PROXY: unset")
			a.add(idProxyWindows, Finding{Severity: SevWarn,
				Summary:  fmt.Sprintf("Windows proxy settings name %s, but Go ignores them: HTTPS_PROXY is unset", proxy),
				Evidence: ev,
				Fix: []string{fmt.Sprintf("Windows: set the variable for Go: $env:HTTPS_PROXY=\"http://%s\" (PowerShell, this session), setx HTTPS_PROXY http://%s (the user), ENV HTTPS_PROXY=http://%s in a Dockerfile", proxy, proxy, proxy),
					"Windows: netsh winhttp show proxy prints the machine proxy; Internet Options (inetcpl.cpl) the user's",
					"Docker for Windows: docker run -e HTTPS_PROXY=http://" + proxy + "; the daemon's own proxy setting does not reach containers"}})
		}
	}
	// resources.gomemlimit-unset
	if f.Limits.MemoryLimit > 0 && f.Limits.GOMEMLIMITEnv == "" {
		a.add(idResourcesGOMEMLIMIT, Finding{Severity: SevWarn,
			Summary: fmt.Sprintf("memory limit %s but GOMEMLIMIT is unset", bytesStr(f.Limits.MemoryLimit)),
			Evidence: []string{fmt.Sprintf("cgroup v%d memory limit: %d bytes", f.Limits.Cgroup, f.Limits.MemoryLimit),
				fmt.Sprintf("GOMAXPROCS=%d (cpu limit %.2f)", f.Limits.GOMAXPROCS, f.Limits.CPULimit), "GOMEMLIMIT: unset"},
			Fix: []string{fmt.Sprintf("Set GOMEMLIMIT to about 90%% of the limit: GOMEMLIMIT=%dMiB", f.Limits.MemoryLimit*9/10>>20),
				"Docker: docker run -e GOMEMLIMIT=... (or ENV GOMEMLIMIT in the Dockerfile)",
				"Kubernetes: env GOMEMLIMIT from resourceFieldRef limits.memory (divisor 1), or use github.com/KimMachineGun/automemlimit"}})
	}
	// goproxy.direct-without-vcs
	g := &f.Go
	firstUsable := ""
	hasDirect := false
	for _, e := range g.Proxies {
		if e.URL == "off" {
			break
		}
		if firstUsable == "" {
			firstUsable = e.URL
		}
		if e.URL == "direct" {
			hasDirect = true
		}
	}
	if hasDirect && g.Git == "" {
		sev := SevWarn
		if firstUsable == "direct" {
			sev = SevError
		}
		a.add(idGoproxyDirectNoVCS, Finding{Severity: sev,
			Summary:  "GOPROXY includes \"direct\" but no git binary is on PATH",
			Evidence: []string{"GOPROXY=" + g.GOPROXY, "PATH=" + clip(a.o.getenv("PATH"), 200), "git: not found"}})
	}
	// goproxy.private-module-public
	if firstUsable != "" && firstUsable != "direct" {
		for _, m := range g.Modules {
			if !looksPrivate(m) || goenv.Patterns(g.GONOPROXY).Match(m) {
				continue
			}
			a.add(idGoproxyPrivatePublic, Finding{Severity: SevError, key: m,
				Summary:  fmt.Sprintf("module %s looks private but GOPRIVATE does not cover it", m),
				Evidence: []string{"module " + m, "GOPRIVATE=" + g.GOPRIVATE, "GONOPROXY=" + g.GONOPROXY, "GOPROXY=" + g.GOPROXY},
				Fix: []string{fmt.Sprintf("Set GOPRIVATE=%s (a glob: the module's host and org)", privateGlob(m)),
					"Docker: ENV GOPRIVATE=... in the build stage; pass credentials with a build secret (.netrc), not ENV",
					"Kubernetes/CI: set GOPRIVATE in the job environment; keep GOPROXY for public modules"}})
		}
	}
	for _, u := range f.Unreadable {
		a.add(idFactsUnreadable, Finding{Severity: SevInfo, key: u.Path,
			Summary:  "could not read " + u.Path,
			Evidence: []string{u.Path + ": " + u.Error}, Fix: []string{"Check the file's permissions and type (ls -l " + u.Path + ")."}})
	}
}

func prefixAll(p string, s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = p + x
	}
	return out
}

func bytesStr(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}

var publicHosts = map[string]bool{"github.com": true, "gitlab.com": true, "bitbucket.org": true, "golang.org": true,
	"google.golang.org": true, "gopkg.in": true, "go.uber.org": true, "k8s.io": true, "sigs.k8s.io": true,
	"cloud.google.com": true, "go.opentelemetry.io": true, "honnef.co": true, "go.etcd.io": true, "gotest.tools": true,
	"mvdan.cc": true, "filippo.io": true, "dario.cat": true, "go.yaml.in": true, "gocloud.dev": true, "modernc.org": true}

// looksPrivate guesses whether a module path is hosted privately: an
// internal-looking TLD or a self-hosted forge host name.
func looksPrivate(m string) bool {
	host, _, _ := strings.Cut(m, "/")
	host = strings.ToLower(host)
	if publicHosts[host] || !strings.Contains(host, ".") {
		return false
	}
	for _, suf := range []string{".local", ".internal", ".corp", ".lan", ".intranet", ".home", ".private", ".test", ".example", ".localdomain", ".intra"} {
		if strings.HasSuffix(host, suf) {
			return true
		}
	}
	labels := strings.Split(host, ".")
	for _, l := range labels[:len(labels)-1] {
		switch l {
		case "git", "gitlab", "gitea", "github", "scm", "code", "vcs", "forge", "bitbucket", "corp", "internal", "intranet", "stash":
			return true
		}
	}
	return false
}

func privateGlob(m string) string {
	parts := strings.Split(m, "/")
	if len(parts) >= 2 && len(parts[0]) > 0 && (parts[0] == "github.com" || parts[0] == "gitlab.com" || parts[0] == "bitbucket.org") {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

// targetChecks finds the root cause for one target: the first stage of the
// path (resolver, proxy, TCP, TLS, HTTP) that failed. Failures of later
// probes of the same target are listed as its consequences.
func (a *analysis) targetChecks(t Target, ps []Probe) {
	var dnsP, resolveP, nativeP, tcpP, proxyP, tlsP, httpP []Probe
	for _, p := range ps {
		switch p.Kind {
		case "dns":
			dnsP = append(dnsP, p)
		case "resolve":
			resolveP = append(resolveP, p)
		case "resolve-native":
			nativeP = append(nativeP, p)
		case "tcp":
			tcpP = append(tcpP, p)
		case "proxy":
			proxyP = append(proxyP, p)
		case "tls":
			tlsP = append(tlsP, p)
		case "http", "goproxy", "sumdb":
			httpP = append(httpP, p)
		}
	}
	targets := []string{t.Input}
	var root *Finding
	sumdbRole := t.Role == "sumdb"
	before := len(a.findings) // findings from here on are this target's own

	// Windows: the native resolver the app uses beside Go's own.
	if len(nativeP) > 0 && len(resolveP) > 0 && nativeP[0].OK != resolveP[0].OK {
		a.nativeDiffers(t, nativeP[0], resolveP[0])
		if nativeP[0].OK {
			// The app's resolver answers: Go's failure is only a warning.
			resolveP = []Probe{nativeP[0]}
		}
	}
	// DNS, per nameserver
	dnsFinding := a.dnsChecks(t, dnsP, resolveP)
	if dnsFinding != nil {
		root = dnsFinding
	}
	// TCP
	if root == nil && len(tcpP) > 0 {
		allFail := true
		for _, p := range tcpP {
			if p.OK {
				allFail = false
			}
		}
		if allFail {
			root = a.connFinding(t, tcpP[0], tcpP)
		}
	}
	// CONNECT
	if root == nil {
		for _, p := range proxyP {
			if p.OK {
				continue
			}
			ev := []string{fmt.Sprintf("proxy %s (%s): %s", p.Via, p.Server, p.Error)}
			if p.Cause == kProxyAuth {
				if p.Body != "" {
					ev = append(ev, "Proxy-Authenticate: "+p.Body)
				}
				root = a.add(idProxyAuth, Finding{Severity: SevError, key: p.Via, Targets: targets,
					Summary:  "the proxy " + p.Via + " answers 407 Proxy Authentication Required",
					Evidence: ev})
			} else {
				root = a.add(idProxyUnreachable, Finding{Severity: SevError, key: p.Via, Targets: targets,
					Summary:  "the proxy " + p.Via + " did not open a tunnel to " + t.Host,
					Cause:    "The HTTP proxy in HTTPS_PROXY/HTTP_PROXY refused or failed the CONNECT request.",
					Evidence: ev})
			}
			break
		}
	}
	// TLS
	if root == nil {
		for _, p := range tlsP {
			if !p.OK {
				root = a.tlsFinding(t, p)
			}
		}
	}
	// HTTP (when the path checks passed, or the target was only reached by HTTP)
	if root == nil {
		for _, p := range httpP {
			if p.OK || p.Cause == kHTTPStatus {
				continue
			}
			if p.Kind != "http" && len(tlsP)+len(tcpP) > 0 {
				continue // goproxy/sumdb protocol failures are judged in goproxyChecks
			}
			root = a.fromHTTPError(t, p)
			break
		}
	}
	if root == nil {
		for _, p := range httpP {
			if p.Kind == "http" && p.Cause == kHTTPStatus && p.Status >= 500 {
				root = a.add(idHTTPStatus, Finding{Severity: SevWarn, key: t.Input, Targets: targets,
					Summary:  fmt.Sprintf("%s answered %s", p.Name, p.Error),
					Evidence: []string{fmt.Sprintf("GET %s: %d %s", p.Name, p.Status, p.Body)}})
			}
		}
	}
	if root == nil {
		return
	}
	if root.host == "" {
		// The host actually contacted: the proxy's when there is one.
		for _, p := range append(append([]Probe(nil), resolveP...), tcpP...) {
			h := p.Name
			if p.Kind == "tcp" {
				h, _, _ = net.SplitHostPort(p.Server)
			}
			if h != "" {
				root.host = h
				break
			}
		}
	}
	if slices.Index(a.findings, root) >= before && root.layer > layerConfig {
		a.nameConfig(t, root, ps)
		a.otherPath(t, root, ps)
	}
	if sumdbRole {
		if slices.Index(a.findings, root) >= before {
			// The direct checksum-database path is judged as a whole: its
			// network failure is the evidence of goproxy.sumdb-unreachable.
			a.removeFinding(root)
			a.sumdbRoot = root
			return
		}
		// A root found before (no network, no nameserver, no CA roots, or
		// a user target's failure) explains the direct path as well; it
		// stays, with the checksum database among its consequences.
		root.Explains = append(root.Explains, Consequence{ID: string(idGoproxySumDB),
			Summary: fmt.Sprintf("the checksum database %s is unreachable: the proxy does not serve it and the direct path fails", a.r.Facts.Go.SumDBName)})
		root.Targets = appendUniq(root.Targets, t.Input)
		return
	}
	for _, p := range ps {
		if p.OK || p.Kind == "dns" || p.Kind == "tcp" && root.layer == layerTCP {
			continue
		}
		if p.Cause == "" {
			continue
		}
		switch p.Kind {
		case "tls", "proxy", "tcp":
			if root.layer < layerForKind(p.Kind) {
				root.Explains = append(root.Explains, Consequence{Summary: p.Kind + " " + p.Server + ": " + p.Error})
			}
		case "http", "goproxy", "sumdb":
			id := ""
			if p.Kind == "goproxy" {
				id = "goproxy.unreachable"
			} else if p.Kind == "sumdb" {
				id = "goproxy.sumdb-unreachable"
			}
			root.Explains = append(root.Explains, Consequence{ID: id, Summary: "GET " + p.Name + ": " + p.Error})
		}
	}
	root.Targets = appendUniq(root.Targets, t.Input)
}

func layerForKind(k string) int {
	switch k {
	case "tcp":
		return layerTCP
	case "proxy":
		return layerProxy
	case "tls":
		return layerTLS
	}
	return layerHTTP
}

func (a *analysis) removeFinding(f *Finding) {
	for i, x := range a.findings {
		if x == f {
			a.findings = append(a.findings[:i], a.findings[i+1:]...)
			break
		}
	}
	for k, v := range a.byKey {
		if v == f {
			delete(a.byKey, k)
		}
	}
}

// dnsChecks judges the nameservers and the lookup of one target.
func (a *analysis) dnsChecks(t Target, dnsP, resolveP []Probe) *Finding {
	rc := &a.r.Facts.ResolvConf
	targets := []string{t.Input}
	resolveOK := true
	var rp Probe
	for _, p := range resolveP {
		rp = p
		resolveOK = p.OK
	}
	if len(resolveP) == 0 {
		return nil
	}
	// host is the name looked up: the target's, or its proxy's when the
	// environment sends the target through one.
	host, hostWords := t.Host, t.Host
	if rp.Name != "" && rp.Name != t.Host {
		host = rp.Name
		hostWords = fmt.Sprintf("%q (the %s host for %s)", host, a.proxyVar(t), t.Host)
	}
	var dead, closed, refused, servfail, notfound, ok []Probe
	for _, p := range dnsP {
		switch {
		case p.OK:
			ok = append(ok, p)
		case p.Cause == kRefused:
			closed = append(closed, p)
		case !answered(p) && p.Cause != kDNSRefused && p.Cause != kDNSServfail && p.Cause != kDNSNotFound:
			// No response at all: whatever the error, it is not an
			// answer about the name.
			dead = append(dead, p)
		case p.Cause == kDNSTimeout || p.Cause == kTimeout || p.Cause == kRefused || p.Cause == kHostUnreach || p.Cause == kNetUnreach || p.Cause == kCanceled:
			dead = append(dead, p)
		case p.Cause == kDNSRefused:
			refused = append(refused, p)
		case p.Cause == kDNSServfail:
			servfail = append(servfail, p)
		default:
			notfound = append(notfound, p)
		}
	}
	ev := func(ps []Probe) []string {
		var out []string
		for _, p := range ps {
			s := fmt.Sprintf("nameserver %s for %s: ", p.Server, p.Name)
			if p.OK {
				s += fmt.Sprintf("ok in %.0f ms (%d names asked)", p.DurationMS, len(p.Tries))
			} else if answered(p) {
				var rcs []string
				for _, tr := range p.Tries {
					rcs = append(rcs, tr.Name+" "+tr.Rcode)
				}
				s += strings.Join(rcs, ", ")
			} else {
				s += p.Error
			}
			out = append(out, s)
		}
		if rp.Kind != "" {
			s := fmt.Sprintf("Go resolver lookup %s: ", rp.Name)
			if rp.OK {
				s += fmt.Sprintf("%v in %.0f ms", rp.Addrs, rp.DurationMS)
			} else {
				s += rp.Error
			}
			if n := len(rp.Tries); n > 0 {
				s += fmt.Sprintf(" (%d queries sent)", n)
			}
			out = append(out, s)
		}
		return out
	}
	servers := func(ps []Probe) string {
		var s []string
		for _, p := range ps {
			s = appendUniq(s, p.Server)
		}
		return strings.Join(s, ", ")
	}
	sev := SevWarn
	if !resolveOK {
		sev = SevError
	}
	var root *Finding
	switch {
	case rc.Defaulted:
		if !resolveOK {
			root = a.get(idDNSNoNameserver)
			if root != nil {
				root.Evidence = appendUniq(root.Evidence, ev(dnsP)...)
			}
		}
	case len(closed) > 0 && (!resolveOK || len(ok) > 0):
		// The server's host answers, with an ICMP port unreachable (or a
		// reset on TCP): no DNS server runs there. Go's resolver reports it
		// at once as "connection refused".
		lines := a.resolvLines(servers(closed))
		f := a.add(idDNSServerPortClosed, Finding{Severity: sev, key: servers(closed), Targets: targets,
			Cause:    loopbackDNSCause(servers(closed), a.portClosedCause()),
			Summary:  fmt.Sprintf("nameserver %s refuses DNS on port 53 (connection refused: no DNS server runs there)", servers(closed)),
			Evidence: append(append(ev(append(append([]Probe(nil), closed...), ok...)), lines...), dockerTrailer(rc)...),
			Fix: append([]string{
				"Change or remove the resolv.conf line " + strings.Join(lines, ", ") + ": point it at a host that runs a DNS server (check it with dig @<IP> <name>, or berth doctor)",
			}, specs[idDNSServerPortClosed].fix...)})
		if !resolveOK {
			root = f
		}
	case len(dead) > 0 && (!resolveOK || len(ok) > 0):
		// An unreachable server costs timeout x attempts per name even when another answers.
		s := fmt.Sprintf("nameserver %s does not answer", servers(dead))
		if len(ok) == 0 {
			s = fmt.Sprintf("no nameserver answers (%s)", servers(dead))
		}
		cause := loopbackDNSCause(servers(dead), "DNS queries to the nameserver get no answer at all (dropped by a firewall or NetworkPolicy, or the host is down), so every lookup waits for the resolver timeout.")
		unreach := true
		for _, p := range dead {
			if p.Cause != kHostUnreach && p.Cause != kNetUnreach {
				unreach = false
			}
		}
		local := true
		for _, p := range dead {
			if p.Cause != kUnknown {
				local = false
			}
		}
		switch {
		case unreach:
			s = fmt.Sprintf("nameserver %s is unreachable (%s)", servers(dead), causeWords(dead[0].Cause))
			cause = "The network answered at once that the nameserver's address cannot be reached (an ICMP host unreachable or no route): the address is wrong or stale, or a REJECT rule is in the way."
		case local:
			s = fmt.Sprintf("queries to nameserver %s fail before they are sent (%s)", servers(dead), dead[0].Error)
			cause = "The query could not be sent: the local socket call failed, so this is the system's network stack or its sandbox, not the network."
		}
		lines := a.resolvLines(servers(dead))
		f := a.add(idDNSServerUnreachable, Finding{Severity: sev, key: servers(dead), Targets: targets,
			Summary:  s,
			Cause:    cause,
			Evidence: append(append(ev(append(append([]Probe(nil), dead...), ok...)), lines...), dockerTrailer(rc)...),
			Fix:      append([]string{"The resolv.conf line " + strings.Join(lines, ", ") + " names the server that does not answer: fix the path to it or replace the line"}, specs[idDNSServerUnreachable].fix...)})
		if !resolveOK {
			root = f
		}
	case !resolveOK && len(refused) > 0 && len(ok) == 0:
		root = a.add(idDNSServerRefused, Finding{Severity: SevError, key: servers(refused), Targets: targets,
			Summary:  fmt.Sprintf("nameserver %s refuses to answer (REFUSED)", servers(refused)),
			Evidence: ev(refused)})
	case !resolveOK && len(servfail) > 0 && len(ok) == 0:
		root = a.add(idDNSServfail, Finding{Severity: SevError, key: servers(servfail), Targets: targets,
			Summary:  fmt.Sprintf("nameserver %s answers SERVFAIL (Go prints \"server misbehaving\")", servers(servfail)),
			Evidence: append(ev(servfail), dockerTrailer(rc)...)})
	case !resolveOK && (len(notfound) > 0 || rp.Cause == kDNSNotFound):
		var names []string
		for _, tr := range firstTries(notfound) {
			names = append(names, tr.Name+" "+tr.Rcode)
		}
		root = a.add(idDNSNotFound, Finding{Severity: SevError, key: host, host: host, Targets: targets,
			Summary:  fmt.Sprintf("%s does not exist in DNS (NXDOMAIN for every name tried)", hostWords),
			Evidence: append(ev(notfound), "names tried: "+strings.Join(names, ", ")),
			Fix: []string{"Check the spelling of " + host + " and that the record exists on the nameserver the container uses",
				"Kubernetes: a Service in another namespace is <svc>.<namespace>; check the search line",
				"Docker: container names resolve only on the same user-defined network (not the default bridge)"}})
	case !resolveOK:
		fid := idDNSServerUnreachable
		if rp.Cause == kDNSServfail {
			fid = idDNSServfail
		}
		root = a.add(fid, Finding{Severity: SevError, key: host, host: host, Targets: targets,
			Summary: "lookup of " + hostWords + " failed: " + rp.Error, Cause: "The Go resolver could not resolve the name.", Evidence: ev(dnsP)})
	}
	if root != nil {
		return root
	}
	// The lookup worked: look at how.
	var slow []string
	for _, p := range ok {
		for _, tr := range p.Tries {
			if tr.MS >= 500 {
				slow = append(slow, fmt.Sprintf("nameserver %s answered %s in %.0f ms", p.Server, tr.Name, tr.MS))
			}
		}
	}
	for _, p := range ok {
		if q := p.AAAA; q != nil && (q.Rcode == rcodeNoAnswer || q.MS >= 500) {
			what := fmt.Sprintf("answered AAAA for %s in %.0f ms", q.Name, q.MS)
			if q.Rcode == rcodeNoAnswer {
				what = fmt.Sprintf("did not answer AAAA for %s (waited %.0f ms)", q.Name, q.MS)
			}
			slow = append(slow, fmt.Sprintf("nameserver %s answered A but %s: Go asks A and AAAA together and waits for both", p.Server, what))
		}
	}
	if rp.OK && rp.DurationMS >= 1000 {
		slow = append(slow, fmt.Sprintf("Go resolver lookup of %s took %.0f ms", rp.Name, rp.DurationMS))
	}
	if len(slow) > 0 && len(dead) == 0 {
		a.add(idDNSSlow, Finding{Severity: SevWarn, key: host, Targets: targets,
			Summary:  fmt.Sprintf("DNS answers for %s are slow", host),
			Evidence: slow})
	}
	// Search-list amplification and wrong-host answers.
	for _, p := range ok {
		if len(p.Tries) == 0 {
			continue
		}
		win := p.Tries[len(p.Tries)-1]
		bare := strings.TrimSuffix(host, ".") + "."
		if win.Name != bare && p.Bare != nil && p.Bare.N > 0 && !sameSet(p.Addrs, p.BareAddrs) {
			return a.add(idDNSSearchAmp, Finding{Severity: SevError, key: host, Targets: targets,
				Summary: fmt.Sprintf("%s resolved as %s through the search list: probably the wrong host", host, win.Name),
				Cause: fmt.Sprintf("With ndots:%d a name with fewer dots is tried with each search suffix first, and a record (often a wildcard) under a search domain answered before the real name was asked.",
					rc.Ndots),
				Evidence: append([]string{fmt.Sprintf("search %v, ndots:%d", rc.Search, rc.Ndots), fmt.Sprintf("answer %v from %s", p.Addrs, win.Name),
					fmt.Sprintf("the name as given, %s, is %v", bare, p.BareAddrs)}, triesEv(p.Tries)...)})
		}
		if len(p.Tries) >= 3 {
			a.add(idDNSSearchAmp, Finding{Severity: SevWarn, key: host, Targets: targets,
				Summary:  fmt.Sprintf("resolving %s asks %d names before the real one (ndots:%d with %d search domains)", host, len(p.Tries), rc.Ndots, len(rc.Search)),
				Evidence: append([]string{fmt.Sprintf("search %v, ndots:%d", rc.Search, rc.Ndots)}, triesEv(p.Tries)...)})
		}
		break
	}
	return nil
}

// nameConfig puts the configuration that sent the connection where it
// failed in front of a target's root finding: the GOPROXY value for a
// GOPROXY entry, the proxy variable when the path went through a proxy.
func (a *analysis) nameConfig(t Target, f *Finding, ps []Probe) {
	via := ""
	for _, p := range ps {
		if p.Via != "" && p.Kind != "http-direct" && p.Kind != "http-via-proxy" {
			via = p.Via // the app's path, not the other one
		}
	}
	g := &a.r.Facts.Go
	var conf, fix string
	switch {
	case via != "":
		v := a.proxyVar(t)
		conf = v + "=" + via
		np := "NO_PROXY"
		if a.r.Facts.Proxy.NoProxy != "" {
			np = "NO_PROXY=" + a.r.Facts.Proxy.NoProxy
		}
		fix = fmt.Sprintf("%s sends %s through the proxy %s (contacted: %s): fix the proxy or the variable, or add %s to %s if it should be reached directly", v, t.Host, via, orNone(f.host), t.Host, np)
	case t.Role == "goproxy":
		conf = "GOPROXY=" + g.GOPROXY
		fix = fmt.Sprintf("GOPROXY=%s sends the go command to %s (contacted: %s): fix the path to it, or set GOPROXY to a proxy that works from here (GOPROXY=https://<proxy>,direct); berth doctor <URL> tests one", g.GOPROXY, t.Input, orNone(f.host))
	default:
		return
	}
	if !strings.HasPrefix(f.Summary, conf+": ") {
		f.Summary = conf + ": " + f.Summary
	}
	if !slices.Contains(f.Fix, fix) {
		f.Fix = append([]string{fix}, f.Fix...)
	}
	f.Evidence = appendUniq(f.Evidence, conf)
}

// portClosedCause is dns.server-port-closed's cause on this OS: Go on
// Windows turns UDP port-unreachable reports off (SIO_UDP_CONNRESET,
// net/fd_windows.go), so there Go's own resolver waits instead.
func (a *analysis) portClosedCause() string {
	if a.r.Facts.OS != "windows" {
		return ""
	}
	return "The nameserver's host answers port 53 with a refusal (ICMP port unreachable, or a reset over TCP): no DNS server runs there. Go on Windows switches UDP port-unreachable reports off, so a program using Go's resolver (netdns=go) waits out its timeout, and the native resolver's DNS Client tries its other servers."
}

// loopbackDNSCause explains a nameserver on the container's loopback, or
// returns def.
func loopbackDNSCause(servers, def string) string {
	switch {
	case strings.Contains(servers, "127.0.0.11:53"):
		return "127.0.0.11 is Docker's embedded DNS server, which exists only inside containers on a user-defined network; here nothing answers on it (the resolv.conf was copied or the network was changed), so every lookup fails."
	case strings.Contains(servers, "127.0.0.") || strings.Contains(servers, "[::1]"):
		return "The nameserver is on the container's own loopback, where no DNS server runs (a host's 127.0.0.53 systemd-resolved or dnsmasq is not visible inside the container)."
	}
	return def
}

// nativeDiffers reports Windows' native resolver and Go's own disagreeing
// about a name: an error when the native one, the app's default, fails.
func (a *analysis) nativeDiffers(t Target, native, gop Probe) {
	ev := []string{"GetAddrInfoW (native, the default on Windows): " + probeWords(native), "Go's resolver (netdns=go) to " + strings.Join(a.r.Facts.ResolvConf.Nameservers, ", ") + ": " + probeWords(gop)}
	if !native.OK {
		a.add(idResolverWindows, Finding{Severity: SevError, key: native.Name, Targets: []string{t.Input}, host: native.Name,
			Summary:  fmt.Sprintf("Windows' native resolver (GetAddrInfoW) fails for %s where Go's own resolver answers", native.Name),
			Cause:    "A Windows Go program resolves names through the DNS Client (GetAddrInfoW) by default, with its own server list, suffixes and cache; it fails here although the adapters' DNS servers answer Go's resolver.",
			Evidence: ev,
			Fix: []string{"Windows: compare Resolve-DnsName " + native.Name + " with Resolve-DnsName " + native.Name + " -Server <adapter DNS server>; Get-DnsClientServerAddress lists the servers; Clear-DnsClientCache",
				"Or make the program use Go's resolver: GODEBUG=netdns=go (or build with -tags netgo)",
				"Docker for Windows: set the container's DNS with --dns <IP>; on nat networks the host's DNS proxy answers, on transparent/l2bridge networks the container asks the network's servers itself"}})
		return
	}
	a.add(idResolverWindows, Finding{Severity: SevWarn, key: native.Name, Targets: []string{t.Input}, host: native.Name,
		Summary:  fmt.Sprintf("Go's own resolver fails for %s where Windows' native resolver (GetAddrInfoW) answers", native.Name),
		Cause:    "The program uses the native resolver by default and works; a program run with GODEBUG=netdns=go, -tags netgo or PreferGo asks the adapters' DNS servers directly, without the DNS Client's suffixes, hosts handling and cache, and fails.",
		Evidence: ev,
		Fix: []string{"Keep the native resolver (unset GODEBUG=netdns=go) or fix the adapters' DNS servers (Get-DnsClientServerAddress; Set-DnsClientServerAddress)",
			"Docker for Windows: --dns <IP> sets the servers the container's adapter reports"}})
}

func probeWords(p Probe) string {
	if p.OK {
		return fmt.Sprintf("%v in %.0f ms", p.Addrs, p.DurationMS)
	}
	return p.Error
}

// otherPath adds the fix when the path the environment did not choose
// works: direct while the proxy fails (NO_PROXY should name the host), or
// through the proxy while NO_PROXY's direct path fails.
func (a *analysis) otherPath(t Target, f *Finding, ps []Probe) {
	np := a.r.Facts.Proxy.NoProxy
	for _, p := range ps {
		if p.Status == 0 || p.Cause != "" && p.Cause != kHTTPStatus {
			continue // that path failed too, or was not tried
		}
		switch p.Kind {
		case "http-direct":
			f.Evidence = appendUniq(f.Evidence, fmt.Sprintf("the direct path works: GET %s without the proxy answered %d in %.0f ms", p.Name, p.Status, p.DurationMS))
			next := t.Host
			if np != "" {
				next = np + "," + t.Host
			}
			f.Fix = append([]string{fmt.Sprintf("%s is reachable directly and not through %s: add it to NO_PROXY (NO_PROXY=%s), or fix the proxy", t.Host, a.proxyVar(t), next)}, f.Fix...)
		case "http-via-proxy":
			f.Evidence = appendUniq(f.Evidence, fmt.Sprintf("the proxy path works: GET %s through %s answered %d in %.0f ms", p.Name, p.Via, p.Status, p.DurationMS))
			f.Fix = append([]string{fmt.Sprintf("NO_PROXY=%s sends %s direct, where it fails; through %s it answers: take %s out of NO_PROXY", np, t.Host, p.Via, t.Host)}, f.Fix...)
			if !strings.HasPrefix(f.Summary, "NO_PROXY=") && !strings.Contains(f.Summary, "=") {
				f.Summary = "NO_PROXY=" + np + ": " + f.Summary
			}
		}
	}
}

// proxyVar names the variable that routes t through a proxy: HTTPS_PROXY
// for https, HTTP_PROXY for http, lowercase when that is what was set.
func (a *analysis) proxyVar(t Target) string {
	want := "HTTPS_PROXY"
	if t.Scheme == "http" {
		want = "HTTP_PROXY"
	}
	for _, f := range a.r.Facts.Proxy.From {
		if strings.EqualFold(f, want) {
			return f
		}
	}
	return want
}

// resolvLines returns the /etc/resolv.conf lines that name the servers (a
// comma-separated list of ip:port), as the user would find them in the file.
func (a *analysis) resolvLines(servers string) []string {
	var out []string
	for _, s := range strings.Split(servers, ", ") {
		h, _, err := net.SplitHostPort(s)
		if err != nil {
			h = s
		}
		line := "nameserver " + h
		if a.r.Facts.OS == "windows" {
			line = "DNS server " + h + " (adapter settings, as GetAdaptersAddresses reports them)"
		} else if a.r.Facts.ResolvConf.Defaulted {
			line = "nameserver " + h + " (Go's default: resolv.conf names none)"
		} else {
			line = "/etc/resolv.conf: " + line
		}
		out = appendUniq(out, line)
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

func firstTries(ps []Probe) []NameTry {
	for _, p := range ps {
		return p.Tries
	}
	return nil
}

func triesEv(ts []NameTry) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("asked %s: %s (%d answers, %.0f ms)", t.Name, t.Rcode, t.N, t.MS))
	}
	return out
}

func dockerTrailer(rc *ResolvConf) []string {
	var out []string
	for _, d := range rc.Docker {
		out = append(out, "resolv.conf (Docker): "+d)
	}
	return out
}

// connFinding classifies a failed TCP connect (to the target or to its proxy).
func (a *analysis) connFinding(t Target, p Probe, all []Probe) *Finding {
	targets := []string{t.Input}
	var ev []string
	for _, q := range all {
		ev = append(ev, fmt.Sprintf("connect %s: %s (%.0f ms)", q.Server, q.Error, q.DurationMS))
	}
	if p.Via != "" {
		return a.add(idProxyUnreachable, Finding{Severity: SevError, key: p.Via, Targets: targets,
			Summary:  fmt.Sprintf("the proxy %s is unreachable (%s)", p.Via, causeWords(p.Cause)),
			Evidence: append(ev, "proxy from "+strings.Join(a.r.Facts.Proxy.From, ", "))})
	}
	base := Finding{Severity: SevError, key: net.JoinHostPort(t.Host, t.Port), Targets: targets, Evidence: ev}
	var fid id
	switch p.Cause {
	case kRefused:
		fid = idTCPRefused
		base.Summary = fmt.Sprintf("%s refuses connections on port %s", t.Host, t.Port)
	case kTimeout, kCanceled:
		fid = idTCPTimeout
		base.Summary = fmt.Sprintf("connecting to %s port %s times out", t.Host, t.Port)
	case kHostUnreach:
		fid = idTCPUnreachable
		base.Summary = fmt.Sprintf("%s is unreachable (no route to host)", t.Host)
	case kNetUnreach:
		if !a.r.Facts.DefaultRoute {
			fid = idNetNoRoute
			base.key = ""
			base.Summary = "no route to " + t.Host + ": the container has no default route"
			base.Cause = "The kernel has no route for the destination (network is unreachable): the container is on an internal network, or has no default gateway."
		} else {
			fid = idTCPUnreachable
			base.Summary = fmt.Sprintf("no route to the network of %s (network is unreachable)", t.Host)
			base.Cause = "The kernel has no route for the destination address family or prefix (for example an AAAA answer without an IPv6 route)."
		}
	case kReset:
		fid = idTCPReset
		base.Summary = fmt.Sprintf("%s resets the connection", t.Host)
	default:
		fid = idTCPTimeout
		base.Summary = fmt.Sprintf("connecting to %s port %s failed: %s", t.Host, t.Port, p.Error)
		base.Cause = "The connection could not be established."
	}
	return a.add(fid, base)
}

func causeWords(c string) string {
	switch c {
	case kRefused:
		return "connection refused"
	case kTimeout, kCanceled:
		return "connect timed out"
	case kHostUnreach:
		return "no route to host"
	case kNetUnreach:
		return "network is unreachable"
	case kReset:
		return "connection reset"
	}
	return c
}

// vendors are issuer names of TLS-intercepting products.
var vendors = []string{"zscaler", "netskope", "palo alto", "fortinet", "fortigate", "blue coat", "bluecoat", "forcepoint", "websense",
	"sophos", "check point", "checkpoint", "mcafee", "symantec web", "cisco umbrella", "barracuda", "kaspersky", "eset", "avast",
	"mitmproxy", "charles proxy", "fiddler", "burp", "squid", "intercept", "inspection", "decrypt"}

func interceptor(chain []CertInfo) string {
	for _, c := range chain {
		s := strings.ToLower(c.Issuer + " " + strings.Join(c.IssuerOrg, " "))
		for _, v := range vendors {
			if strings.Contains(s, v) {
				return c.Issuer
			}
		}
	}
	return ""
}

func (a *analysis) tlsFinding(t Target, p Probe) *Finding {
	targets := []string{t.Input}
	ev := []string{fmt.Sprintf("TLS handshake with %s (%s): %s", t.Host, p.Server, p.Error)}
	for i, c := range p.Chain {
		ev = append(ev, fmt.Sprintf("chain[%d] subject %q issuer %q valid %s..%s names %v", i, c.Subject, c.Issuer, c.NotBefore, c.NotAfter, c.DNSNames))
	}
	key := net.JoinHostPort(t.Host, t.Port)
	switch p.Cause {
	case kTLSHSTimeout:
		var mtus []string
		for _, i := range a.r.Facts.Interfaces {
			mtus = append(mtus, fmt.Sprintf("%s mtu %d", i.Name, i.MTU))
		}
		return a.add(idTLSHandshakeTimeout, Finding{Severity: SevError, key: key, Targets: targets,
			Summary:  fmt.Sprintf("TCP to %s connects but the TLS handshake never completes", t.Host),
			Evidence: append(ev, "interface MTUs: "+strings.Join(mtus, ", "))})
	case kReset, kEOF:
		return a.add(idTCPReset, Finding{Severity: SevError, key: key, Targets: targets,
			Summary:  fmt.Sprintf("%s closes or resets the connection during the TLS handshake", t.Host),
			Cause:    "The TCP connection opens and is then reset: a DPI firewall or proxy that blocks the TLS server name, a load balancer without a backend, or a server that does not speak TLS on this port.",
			Evidence: ev})
	case kTLSUnknownCA:
		if f := a.get(idTLSNoRoots); f != nil && f.Severity == SevError {
			f.Explains = append(f.Explains, Consequence{ID: string(idTLSUnknownAuthority), Summary: t.Host + ": " + p.Error})
			return f
		}
		issuer := ""
		if n := len(p.Chain); n > 0 {
			issuer = p.Chain[n-1].Issuer
		}
		f := Finding{Severity: SevError, key: key, Targets: targets,
			Summary:  fmt.Sprintf("%s presents a certificate from an authority this container does not trust (issuer %q)", t.Host, issuer),
			Evidence: append(ev, fmt.Sprintf("roots loaded: %d", a.r.Facts.CA.Loaded))}
		if a.r.Facts.CA.System == "windows" {
			f.Evidence[len(f.Evidence)-1] = fmt.Sprintf("Windows ROOT store: %d certificates (crypto/x509 verifies with CertGetCertificateChain; SSL_CERT_FILE and Unix CA files are ignored)", a.r.Facts.CA.Loaded)
			f.Cause = "The chain does not lead to a root the Windows certificate store trusts (Cert:\\LocalMachine\\Root, or a root Windows fetches through its automatic root update): a private or corporate CA that is not installed in the container."
		}
		if v := interceptor(p.Chain); v != "" {
			f.Summary = fmt.Sprintf("TLS to %s is intercepted by a proxy (issuer %q)", t.Host, v)
			f.Cause = "The certificate was issued by a TLS-inspecting proxy, not by the site's CA: the network decrypts and re-signs HTTPS, and the proxy's root CA is not in the image."
			f.Fix = []string{"Get the corporate/proxy root CA certificate (PEM) from your IT or security team; do not use GOINSECURE or InsecureSkipVerify",
				"Docker (Debian/Ubuntu): COPY corp-root.crt /usr/local/share/ca-certificates/ && RUN update-ca-certificates; scratch: COPY a combined bundle to /etc/ssl/certs/ca-certificates.crt",
				"Kubernetes: mount the CA from a ConfigMap and set SSL_CERT_FILE (or SSL_CERT_DIR) to it",
				"Host: add it to the system trust (update-ca-certificates / update-ca-trust) and rebuild the image"}
		}
		return a.add(idTLSUnknownAuthority, f)
	case kTLSExpired:
		f := Finding{Severity: SevError, key: key, Targets: targets,
			Summary:  fmt.Sprintf("the certificate of %s is expired or not yet valid", t.Host),
			Evidence: append(ev, "local time "+a.r.Facts.Now)}
		if clock := a.clockSuspect(p); clock != "" {
			f.Summary += ": the local clock is the likely culprit"
			f.Cause = "The certificate is valid; the container's (host's or VM's) clock is wrong. " + clock
			f.Evidence = append(f.Evidence, clock)
			f.Fix = []string{"Fix the host clock (containers share the kernel clock): timedatectl set-ntp true, or chronyc makestep",
				"Docker Desktop / VM: restart the VM after sleep, or enable time sync",
				"Kubernetes: check NTP on the node (chrony/systemd-timesyncd)"}
		}
		return a.add(idTLSExpired, f)
	case kTLSHostname:
		return a.add(idTLSHostname, Finding{Severity: SevError, key: key, Targets: targets,
			Summary:  fmt.Sprintf("the certificate presented for %s is for other names", t.Host),
			Evidence: ev})
	case kTLSPlainHTTP:
		fix := []string{
			fmt.Sprintf("Use http://%s/ if the service is meant to be plain HTTP, or the port where it speaks TLS (usually 443)", key),
			"Or enable TLS on the server for this port",
		}
		if t.Role == "goproxy" {
			fix = append([]string{fmt.Sprintf("Change GOPROXY=%s to the scheme the server speaks: http://%s (the go command accepts http:// GOPROXY entries)", a.r.Facts.Go.GOPROXY, key)}, fix...)
		}
		return a.add(idTLSPlainHTTP, Finding{Severity: SevError, key: key, Targets: targets,
			Summary:  fmt.Sprintf("%s speaks plain HTTP, not TLS: the URL says https:// for a plain-HTTP port", key),
			Evidence: ev, Fix: fix})
	case kTLSClientCert:
		return a.add(idTLSClientCert, Finding{Severity: SevError, key: key, Targets: targets,
			Summary:  fmt.Sprintf("%s demands a client certificate (mutual TLS) and the client presents none", key),
			Evidence: append(ev, p.ClientAuth...)})
	}
	return a.add(idTLSFailed, Finding{Severity: SevError, key: key, Targets: targets,
		Summary: fmt.Sprintf("TLS with %s failed: %s", t.Host, p.Error), Evidence: ev})
}

// clockSuspect explains why the local clock, not the certificate, is wrong.
func (a *analysis) clockSuspect(p Probe) string {
	now := time.Now()
	for _, c := range p.Chain {
		nb, err := time.Parse(time.RFC3339, c.NotBefore)
		if err == nil && now.Before(nb) {
			return fmt.Sprintf("Local time %s is before the certificate's NotBefore %s.", now.UTC().Format(time.RFC3339), c.NotBefore)
		}
	}
	for _, q := range a.r.Probes {
		if q.Date == "" {
			continue
		}
		if d, err := time.Parse(time.RFC1123, q.Date); err == nil {
			if skew := now.Sub(d); skew > 10*time.Minute || skew < -10*time.Minute {
				return fmt.Sprintf("Server %s says the time is %s; the local clock is off by %s.", q.Name, q.Date, skew.Round(time.Second))
			}
		}
	}
	return ""
}

// fromHTTPError finds a root from an HTTP probe when no stage probe failed
// (for example when the target is reached through a proxy).
func (a *analysis) fromHTTPError(t Target, p Probe) *Finding {
	switch p.Cause {
	case kProxyConnect:
		f := Finding{Severity: SevError, key: p.Via, Targets: []string{t.Input},
			Summary: "the proxy " + p.Via + " is unreachable", Cause: "Go sends requests for this URL to the proxy, and connecting to it failed.",
			Evidence: []string{"GET " + p.Name + ": " + p.Error}}
		if p.Status != 0 {
			// The proxy answered the CONNECT, with a refusal.
			f.Summary = "the proxy " + p.Via + " did not open a tunnel to " + t.Host
			f.Cause = "The HTTP proxy in HTTPS_PROXY/HTTP_PROXY refused or failed the CONNECT request."
		}
		return a.add(idProxyUnreachable, f)
	case kProxyAuth:
		return a.add(idProxyAuth, Finding{Severity: SevError, key: p.Via, Targets: []string{t.Input},
			Summary: "the proxy " + p.Via + " requires authentication", Cause: "The proxy answered 407.", Evidence: []string{"GET " + p.Name + ": " + p.Error}})
	case kTLSUnknownCA, kTLSExpired, kTLSHostname, kTLSHSTimeout:
		return a.tlsFinding(t, Probe{Cause: p.Cause, Error: p.Error, Server: p.Via})
	case kRefused, kTimeout, kHostUnreach, kNetUnreach, kReset:
		pp := p
		pp.Server = t.Host
		return a.connFinding(t, pp, []Probe{pp})
	}
	return a.add(idHTTPFailed, Finding{Severity: SevError, key: t.Input, Targets: []string{t.Input},
		Summary:  "GET " + p.Name + " failed: " + p.Error,
		Evidence: []string{"GET " + p.Name + ": " + p.Error}})
}

// goproxyChecks judges the GOPROXY protocol probes of each proxy entry
// whose network path worked, and the checksum database.
func (a *analysis) goproxyChecks(byTarget map[string][]Probe) {
	g := &a.r.Facts.Go
	for _, t := range a.r.Targets {
		if t.Role != "goproxy" {
			continue
		}
		rooted := false
		for _, f := range a.findings {
			for _, x := range f.Targets {
				if x == t.Input && f.Severity == SevError {
					rooted = true
				}
			}
		}
		for _, p := range byTarget[t.Input] {
			if rooted {
				continue
			}
			if p.Kind == "goproxy" && a.goproxyAnswer(t, p) {
				continue
			}
			if p.OK {
				continue
			}
			switch {
			case p.Kind == "goproxy" && (p.Status == 404 || p.Status == 410):
				asked := "the version list"
				if isInfoProbe(p) {
					asked = strings.TrimPrefix(p.Name, strings.TrimSuffix(t.URL, "/")+"/")
				}
				a.add(idGoproxyModuleMissing, Finding{Severity: SevInfo, key: t.Input, Targets: []string{t.Input},
					Summary: "the proxy has no versions of the probe module", Cause: "The proxy answered " + p.Error + " for " + asked + "; it works but may not serve public modules.",
					Evidence: []string{"GET " + p.Name + ": " + p.Error}})
			case p.Kind == "goproxy":
				e := p.Error
				if p.Message != "" {
					e += ": " + p.Message
				}
				a.add(idGoproxyUnreachable, Finding{Severity: SevError, key: t.Input, Targets: []string{t.Input},
					Summary:  fmt.Sprintf("GOPROXY %s does not serve modules (%s)", t.Input, e),
					Evidence: []string{"GET " + p.Name + ": " + p.Error, "body: " + p.Body, "GOPROXY=" + g.GOPROXY}})
			case p.Kind == "sumdb" && strings.HasSuffix(p.Name, "/latest"):
				a.add(idGoproxySumDB, Finding{Severity: SevError, key: "proxy", Targets: []string{t.Input},
					Summary:  fmt.Sprintf("the checksum database %s is not reachable through %s", g.SumDBName, t.Input),
					Evidence: []string{"GET " + p.Name + ": " + p.Error, "GOSUMDB=" + g.GOSUMDB}})
			case p.Kind == "sumdb" && p.Status != 404 && p.Status != 410:
				a.add(idGoproxySumDB, Finding{Severity: SevError, key: "proxy", Targets: []string{t.Input},
					Summary:  fmt.Sprintf("%s fails /sumdb/%s/supported (%s)", t.Input, g.SumDBName, p.Error),
					Cause:    "The go command asks each proxy whether it proxies the checksum database; an error other than 404/410 stops verification.",
					Evidence: []string{"GET " + p.Name + ": " + p.Error, "GOSUMDB=" + g.GOSUMDB}})
			}
		}
	}
	if st := a.sumdbRoot; st != nil {
		ev := []string{fmt.Sprintf("every GOPROXY entry answered 404/410 to /sumdb/%s/supported, so go contacts %s directly", g.SumDBName, g.SumDBURL),
			"direct path: " + st.Summary}
		ev = append(ev, st.Evidence...)
		a.add(idGoproxySumDB, Finding{Severity: SevError, key: "direct", Targets: st.Targets,
			Summary:  fmt.Sprintf("the checksum database %s is unreachable: the proxy does not serve it and the direct path fails", g.SumDBName),
			Cause:    "Your GOPROXY does not proxy the checksum database, so the go command connects to it directly, and this network blocks that connection.",
			Evidence: ev, Explains: st.Explains})
	}
}

// goproxyAnswer judges a GOPROXY version-list answer that is not the
// module protocol: a 401/403 challenge, a redirect to a sign-in page, an
// HTML page or a JSON document where lines of versions belong. It reports
// whether it added a finding.
func (a *analysis) goproxyAnswer(t Target, p Probe) bool {
	g := &a.r.Facts.Go
	u, _ := url.Parse(t.URL)
	machine := t.Host
	if u != nil {
		machine = u.Host
	}
	conf := "GOPROXY=" + g.GOPROXY
	ev := []string{conf, fmt.Sprintf("GET %s: %d, Content-Type %q, body: %s", p.Name, p.Status, p.ContentType, clip(p.Body, 120))}
	for _, r := range p.Redirects {
		ev = append(ev, "redirected to "+r)
	}
	credEv := func() []string {
		out := []string{"credentials: " + orNone(g.Auth)}
		if p.Credentials != "" {
			out = append(out, "sent: "+p.Credentials)
		} else {
			out = append(out, "sent: none (no netrc machine "+machine+")")
		}
		for _, m := range g.NetrcMachines {
			if m != machine && (strings.HasPrefix(m, t.Host+":") || m == t.Host) {
				out = append(out, fmt.Sprintf("netrc has machine %s, but the go command looks for %s: a machine must match the URL's host:port exactly", m, machine))
			}
		}
		return out
	}
	netrcFix := []string{
		fmt.Sprintf("Give the go command credentials for %s: a line \"machine %s login <user> password <token>\" in $HOME/.netrc (or the file NETRC names; %%USERPROFILE%%\\_netrc on Windows); the machine is the URL's host with its port when it has one", t.URL, machine),
		"GOAUTH decides where credentials come from: unset means netrc; GOAUTH=off sends none; GOAUTH='git <dir>' asks git credential",
		"If only private modules need these credentials, list them in GOPRIVATE (and GONOPROXY) and keep a public GOPROXY for the rest",
		"Docker: RUN --mount=type=secret,id=netrc,target=/root/.netrc go mod download (docker build --secret id=netrc,src=$HOME/.netrc), never ENV or COPY",
	}
	switch {
	case p.Status == 401 || p.Status == 403:
		if p.Authenticate != "" {
			ev = append(ev, "WWW-Authenticate: "+p.Authenticate)
		}
		sum := fmt.Sprintf("%s: %s answers %s to the module protocol: it wants credentials", conf, t.Input, p.Error)
		cause := "The proxy requires authentication and the go command sends none for this URL, so every download fails with \"" + strings.ToLower(p.Error) + "\"."
		if p.Credentials != "" {
			sum = fmt.Sprintf("%s: %s answers %s to the module protocol: the credentials sent are refused", conf, t.Input, p.Error)
			cause = "The go command sends the netrc credentials for " + machine + " and the proxy refuses them (wrong or expired token, or no read permission on the repository)."
		}
		a.add(idGoproxyAuth, Finding{Severity: SevError, key: t.Input, Targets: []string{t.Input},
			Summary: sum, Cause: cause, Evidence: append(ev, credEv()...), Fix: netrcFix})
		return true
	case p.Status >= 200 && p.Status < 300 && len(p.Redirects) > 0 && !goproxyShapeOK(p):
		last := p.Redirects[len(p.Redirects)-1]
		a.add(idGoproxyLoginRedirect, Finding{Severity: SevError, key: t.Input, Targets: []string{t.Input},
			Summary:  fmt.Sprintf("%s: %s redirects module requests to %s, a page, not the module protocol", conf, t.Input, last),
			Evidence: append(ev, credEv()...),
			Fix: append([]string{fmt.Sprintf("The proxy sends requests without credentials to a sign-in page; the go command cannot log in. Use the proxy's API URL and give it a token: %s", netrcFix[0])},
				netrcFix[1:]...)})
		return true
	case p.Status >= 200 && p.Status < 300 && isInfoProbe(p) && p.Shape != "info":
		a.infoNotAProxy(t, p, conf, ev, netrcFix[0])
		return true
	case p.Status >= 200 && p.Status < 300 && (p.Shape == "html" || p.Shape == "json" || p.Shape == "text"):
		what := map[string]string{"html": "an HTML page", "json": "a JSON document", "text": "text"}[p.Shape]
		cause := "GOPROXY must be the base URL of the module protocol, where <module>/@v/list answers lines of versions; this URL answers with " + what + " instead (a web UI or sign-in page, a repository manager's URL without its Go API path, a captive portal), and the go command fails with \"invalid version\" or \"unexpected content\"."
		if p.Message != "" {
			ev = append(ev, "message: "+p.Message)
		}
		shape := what + ", not a version list"
		if p.Shape == "text" {
			shape = "text that is not a version list"
		}
		a.add(idGoproxyNotAProxy, Finding{Severity: SevError, key: t.Input, Targets: []string{t.Input},
			Summary: fmt.Sprintf("%s: %s answers the module protocol with %s", conf, t.Input, shape),
			Cause:   cause, Evidence: ev,
			Fix: []string{
				fmt.Sprintf("Set GOPROXY to the module API URL, the one under which <module>/@v/list prints versions: test with curl -fsS %s/golang.org/x/text/@v/list (PowerShell: Invoke-WebRequest -UseBasicParsing %s/golang.org/x/text/@v/list)", strings.TrimSuffix(t.URL, "/"), strings.TrimSuffix(t.URL, "/")),
				"A repository manager serves Go modules under its repository's API path (for example https://repo.example.test/api/go/<repo>), not under its web UI",
				"If the page is a sign-in page, the proxy wants credentials: " + netrcFix[0],
			}})
		return true
	}
	return false
}

// isInfoProbe reports whether p asked a version's info (<module>/@v/<v>.info
// or <module>/@latest) rather than the version list.
func isInfoProbe(p Probe) bool {
	return p.Kind == "goproxy" && (strings.HasSuffix(p.Name, ".info") || strings.HasSuffix(p.Name, "/@latest"))
}

// goproxyShapeOK reports whether a GOPROXY answer's body is what the module
// protocol answers there: lines of versions (or none) for the list, a
// version's JSON for .info and @latest.
func goproxyShapeOK(p Probe) bool {
	if isInfoProbe(p) {
		return p.Shape == "info"
	}
	return p.Shape == "versions" || p.Shape == "empty"
}

// infoNotAProxy reports a GOPROXY entry that answers the version list but
// answers a version's .info (or @latest) with a 2xx that is not the
// version's JSON.
func (a *analysis) infoNotAProxy(t Target, p Probe, conf string, ev []string, netrcFix string) {
	base := strings.TrimSuffix(t.URL, "/")
	path := strings.TrimPrefix(p.Name, base+"/")
	want := "a valid Version"
	if v, ok := strings.CutSuffix(path, ".info"); ok {
		_, v, _ = strings.Cut(v, "/@v/")
		if uv, err := module.UnescapeVersion(v); err == nil {
			v = uv
		}
		want = "Version " + v
	}
	what := map[string]string{"html": "an HTML page", "json": "a JSON document without " + want, "empty": "an empty body"}[p.Shape]
	if what == "" {
		what = "text"
	}
	if p.Message != "" {
		ev = append(ev, "message: "+p.Message)
	}
	a.add(idGoproxyNotAProxy, Finding{Severity: SevError, key: t.Input, Targets: []string{t.Input},
		Summary: fmt.Sprintf("%s: %s answers %s with %s, not a version's JSON", conf, t.Input, path, what),
		Cause: "The go command asks <module>/@v/<version>.info (and <module>/@latest) for every version it resolves and expects JSON with that Version; " +
			"this URL answers the version list but " + path + " with " + what + " (a repository manager or web server that serves only some of the module protocol's paths, a rewrite or sign-in page in front of the proxy), " +
			"so go get and go mod download fail with \"invalid character\" or \"proxy returned info for version ... instead of requested version\".",
		Evidence: ev,
		Fix: []string{
			fmt.Sprintf("Set GOPROXY to a module API URL that serves the whole protocol: curl -fsS %s/%s must print {\"Version\":...} (PowerShell: Invoke-WebRequest -UseBasicParsing %s/%s)", base, path, base, path),
			"A repository manager serves Go modules under its repository's API path (for example https://repo.example.test/api/go/<repo>); check that its Go repository answers .info, .mod and .zip, not only @v/list",
			"If the page is a sign-in page, the proxy wants credentials: " + netrcFix,
		}})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// listenChecks compares --listen addresses with the sockets in /proc/net/tcp.
func (a *analysis) listenChecks(byTarget map[string][]Probe) {
	for _, l := range a.o.Listen {
		ap, err := parseListen(l)
		if err != nil {
			continue
		}
		var found []Listener
		for _, s := range a.r.Facts.Listeners {
			if s.Port == int(ap.Port()) {
				found = append(found, s)
			}
		}
		var ev []string
		for _, s := range found {
			ev = append(ev, "listening on "+s.Addr)
		}
		for _, p := range byTarget[l] {
			if p.Server != "" {
				if p.OK {
					ev = append(ev, "connect "+p.Server+": ok")
				} else {
					ev = append(ev, "connect "+p.Server+": "+p.Error)
				}
			}
		}
		any, loop := false, len(found) > 0
		for _, s := range found {
			if s.Any || (!ap.Addr().IsUnspecified() && s.Addr == ap.String()) {
				any = true
			}
			if !s.Loopback {
				loop = false
			}
		}
		switch {
		case len(found) == 0:
			a.add(idListenNotListening, Finding{Severity: SevError, key: l, Targets: []string{l},
				Summary:  fmt.Sprintf("nothing listens on port %d", ap.Port()),
				Evidence: append(ev, fmt.Sprintf("%d listening sockets in /proc/net/tcp{,6}", len(a.r.Facts.Listeners)))})
		case loop:
			a.add(idListenLoopback, Finding{Severity: SevError, key: l, Targets: []string{l},
				Summary:  fmt.Sprintf("port %d listens on loopback only; it is unreachable from outside the container", ap.Port()),
				Evidence: ev})
		case !any && !ap.Addr().IsUnspecified():
			a.add(idListenNotListening, Finding{Severity: SevError, key: l, Targets: []string{l},
				Summary: fmt.Sprintf("port %d does not listen on %s", ap.Port(), ap.Addr()), Cause: "The service listens on the port but on another address.",
				Evidence: ev, Fix: []string{"Bind to 0.0.0.0 (\":PORT\" in Go) or to " + ap.Addr().String()}})
		}
	}
}

// A foldRule says that a root finding, when it is an error, explains the
// error findings of the listed ids: they move under it as consequences.
type foldRule struct {
	root    id
	absorbs []id
}

// foldRules are applied in order.
var foldRules = []foldRule{
	// Without a network nothing on it works.
	{idNetNoRoute, []id{idDNSServerUnreachable, idDNSServerPortClosed, idDNSServerRefused, idDNSServfail,
		idTCPRefused, idTCPTimeout, idTCPUnreachable, idTCPReset,
		idProxyUnreachable, idGoproxyUnreachable, idGoproxySumDB, idHTTPFailed}},
	// Without a nameserver no DNS answer is worth a finding of its own.
	{idDNSNoNameserver, []id{idDNSServerUnreachable, idDNSServerPortClosed, idDNSServerRefused, idDNSServfail,
		idDNSNotFound, idDNSSearchAmp, idDNSSlow}},
	// An ignored proxy variable sends connections direct, into the firewall.
	{idProxyMalformed, []id{idTCPRefused, idTCPTimeout, idTCPUnreachable, idTCPReset, idHTTPFailed}},
	// Without roots no TLS peer is trusted.
	{idTLSNoRoots, []id{idTLSUnknownAuthority, idGoproxySumDB}},
}

// fold moves findings that a lower-layer finding explains under it.
func (a *analysis) fold() {
	// A malformed proxy variable that Go reads as another host explains
	// every failure to reach that host: its lookup, its connection, the
	// proxy path through it.
	for _, root := range append([]*Finding(nil), a.findings...) {
		if root.ID != string(idProxyMalformed) || root.proxyHost == "" {
			continue
		}
		for _, f := range append([]*Finding(nil), a.findings...) {
			if f == root || f.Severity != SevError || f.host != root.proxyHost {
				continue
			}
			root.Explains = append(root.Explains, Consequence{ID: f.ID, Summary: f.Summary})
			root.Explains = append(root.Explains, f.Explains...)
			root.Targets = appendUniq(root.Targets, f.Targets...)
			a.removeFinding(f)
			a.folded = append(a.folded, folding{idProxyMalformed, id(f.ID)})
		}
	}
	for _, r := range foldRules {
		root := a.get(r.root)
		if root == nil || root.Severity != SevError {
			continue
		}
		for _, f := range append([]*Finding(nil), a.findings...) {
			if f == root || f.Severity != SevError || !slices.Contains(r.absorbs, id(f.ID)) {
				continue
			}
			root.Explains = append(root.Explains, Consequence{ID: f.ID, Summary: f.Summary})
			root.Explains = append(root.Explains, f.Explains...)
			root.Targets = appendUniq(root.Targets, f.Targets...)
			a.removeFinding(f)
			a.folded = append(a.folded, folding{r.root, id(f.ID)})
		}
	}
}
