package doctor

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/berth-dev/berth/internal/goenv"
)

// Facts is everything the doctor learns without sending a packet.
type Facts struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	GoVersion string `json:"go_version"`
	Hostname  string `json:"hostname,omitempty"`
	Now       string `json:"now"`

	Container  ContainerFacts `json:"container"`
	Limits     LimitFacts     `json:"limits"`
	Interfaces []Interface    `json:"interfaces"`
	Routes     []Route        `json:"routes,omitempty"`
	// DefaultRoute reports an IPv4 or IPv6 default route.
	DefaultRoute bool `json:"default_route"`

	ResolvConf     ResolvConf   `json:"resolv_conf"`
	ResolvConfRead string       `json:"resolv_conf_status"` // ok, missing, unreadable
	NSSwitch       NSSwitch     `json:"nsswitch"`
	Resolver       ResolverFact `json:"resolver"`
	Hosts          []HostsEntry `json:"hosts,omitempty"`
	HostsSkipped   int          `json:"hosts_skipped_lines,omitempty"`

	CA    CAFacts    `json:"ca"`
	Proxy ProxyFacts `json:"proxy"`
	Go    GoFacts    `json:"go"`

	// Windows is what a Windows system adds: adapters as
	// GetAdaptersAddresses reports them, the certificate store, the proxy
	// settings of WinINet and WinHTTP.
	Windows *WindowsFacts `json:"windows,omitempty"`

	Listeners []Listener `json:"listeners,omitempty"`
	// Unreadable lists files that exist but could not be read or parsed.
	Unreadable []Unreadable `json:"unreadable,omitempty"`
}

// ContainerFacts are the markers of a container runtime.
type ContainerFacts struct {
	// Runtime is docker, podman, kubernetes or "" when none was detected.
	Runtime string   `json:"runtime,omitempty"`
	Markers []string `json:"markers,omitempty"`
}

// LimitFacts puts cgroup limits beside the Go runtime's view of them.
type LimitFacts struct {
	Cgroup        int     `json:"cgroup_version,omitempty"`
	CPULimit      float64 `json:"cpu_limit,omitempty"`
	MemoryLimit   int64   `json:"memory_limit_bytes,omitempty"`
	NumCPU        int     `json:"num_cpu"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	GOMAXPROCSEnv string  `json:"gomaxprocs_env,omitempty"`
	GOMEMLIMITEnv string  `json:"gomemlimit_env,omitempty"`
	GOMEMLIMIT    int64   `json:"gomemlimit_bytes"`
}

// Interface is one network interface.
type Interface struct {
	Name     string   `json:"name"`
	Up       bool     `json:"up"`
	Loopback bool     `json:"loopback,omitempty"`
	MTU      int      `json:"mtu"`
	Addrs    []string `json:"addrs,omitempty"`
}

// ResolverFact is the resolver Go would use.
type ResolverFact struct {
	// Mode is "go" for a CGO_ENABLED=0 binary such as berth.
	Mode string `json:"mode"`
	// Order is the host lookup order (files,dns ...).
	Order string `json:"order"`
	// CgoReasons lists what would send a cgo-enabled program to libc.
	CgoReasons []string `json:"cgo_reasons,omitempty"`
	GODEBUG    string   `json:"godebug,omitempty"`
}

// CAFacts is the trust store as crypto/x509 finds it on this system.
type CAFacts struct {
	SSLCertFile string   `json:"ssl_cert_file,omitempty"`
	SSLCertDir  string   `json:"ssl_cert_dir,omitempty"`
	Files       []CAFile `json:"files"`
	Dirs        []CAFile `json:"dirs"`
	// Loaded is the number of certificates that load.
	Loaded int `json:"loaded"`
	// Custom reports that the roots came from Options.Roots.
	Custom bool `json:"custom,omitempty"`
	// System names a system verifier that replaces the CA files:
	// "windows" (the certificate store; Loaded counts its ROOT store).
	System string `json:"system,omitempty"`
}

// WindowsFacts are the Windows settings a Go program meets.
type WindowsFacts struct {
	// Adapters are the network adapters; DNS servers of the adapters that
	// are up are the servers Go's own resolver uses on Windows.
	Adapters []WinAdapter `json:"adapters"`
	// Resolver is the resolver Go uses by default on Windows:
	// "native (GetAddrInfoW)", or "go" with GODEBUG=netdns=go.
	Resolver string `json:"resolver"`
	// RootStore counts the certificates in the system's ROOT store, which
	// crypto/x509 verifies against (CertGetCertificateChain); SSL_CERT_FILE
	// and the Unix CA paths do not apply.
	RootStore int `json:"root_store_certs"`
	// RootStoreError is why the store could not be read.
	RootStoreError string `json:"root_store_error,omitempty"`
	// WinINetProxy is the per-user proxy (Internet Options: ProxyEnable,
	// ProxyServer, AutoConfigURL); WinHTTPProxy the machine-wide one
	// (netsh winhttp). Go reads neither.
	WinINetProxy      string `json:"wininet_proxy,omitempty"`
	WinINetAutoConfig string `json:"wininet_autoconfig_url,omitempty"`
	WinHTTPProxy      string `json:"winhttp_proxy,omitempty"`
	// HostsFile is the hosts file Go reads on Windows.
	HostsFile string `json:"hosts_file,omitempty"`
}

// WinAdapter is one adapter as GetAdaptersAddresses reports it.
type WinAdapter struct {
	Name       string   `json:"name"`
	Up         bool     `json:"up"`
	DNSServers []string `json:"dns_servers,omitempty"`
	DNSSuffix  string   `json:"dns_suffix,omitempty"`
	Gateways   []string `json:"gateways,omitempty"`
}

// CAFile is one bundle file or directory crypto/x509 looks at.
type CAFile struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
	Used   bool   `json:"used,omitempty"`
	Certs  int    `json:"certs,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ProxyFacts is the proxy configuration as Go's net/http applies it.
type ProxyFacts struct {
	HTTPProxy  string `json:"http_proxy,omitempty"`
	HTTPSProxy string `json:"https_proxy,omitempty"`
	NoProxy    string `json:"no_proxy,omitempty"`
	// From names the variables that supplied each value (uppercase wins).
	From []string `json:"from,omitempty"`
	// Malformed says, per malformed value, what Go does with it: drops it
	// (no proxy) or dials another host.
	Malformed []string `json:"malformed,omitempty"`
	// MalformedProxies are the same values, structured.
	MalformedProxies []MalformedProxy `json:"malformed_proxies,omitempty"`
	// Ignored lists values a tool like curl would use but Go does not.
	Ignored []string `json:"ignored,omitempty"`
	// CGI reports REQUEST_METHOD set, which disables HTTP_PROXY for http:// URLs.
	CGI bool `json:"cgi,omitempty"`
}

// GoFacts are the go command's module variables.
type GoFacts struct {
	GOPROXY    string `json:"GOPROXY"`
	GONOPROXY  string `json:"GONOPROXY,omitempty"`
	GOPRIVATE  string `json:"GOPRIVATE,omitempty"`
	GONOSUMDB  string `json:"GONOSUMDB,omitempty"`
	GOSUMDB    string `json:"GOSUMDB"`
	GOFLAGS    string `json:"GOFLAGS,omitempty"`
	GOINSECURE string `json:"GOINSECURE,omitempty"`
	// Source is "environment", "go env" or "default".
	Source string `json:"source"`
	// Proxies are the GOPROXY entries the go command uses, as it reads
	// them: up to "off" or "direct", a bare host name with https:// added.
	Proxies []GoProxyEntry `json:"proxies"`
	// ProxiesError is the go command's complaint about an invalid GOPROXY
	// (Proxies is empty then).
	ProxiesError string `json:"proxies_error,omitempty"`
	// SumDBName and SumDBURL come from GOSUMDB: the checksum database's
	// name and the URL the go command contacts when no proxy serves it.
	SumDBName string `json:"sumdb_name,omitempty"`
	SumDBURL  string `json:"sumdb_url,omitempty"`
	// SumDBError is the go command's complaint about an invalid GOSUMDB.
	SumDBError string `json:"sumdb_error,omitempty"`
	// Git is the path of git, empty when not found (needed by "direct").
	Git string `json:"git,omitempty"`
	// Auth says where the credentials for GOPROXY requests come from, as
	// GOAUTH chooses them: "netrc <path>", "no netrc file at <path>",
	// "GOAUTH=off". NetrcMachines are the machines of that file (no secrets).
	Auth          string   `json:"auth,omitempty"`
	NetrcMachines []string `json:"netrc_machines,omitempty"`
	// Modules are the module paths checked against GOPRIVATE.
	Modules []string `json:"modules,omitempty"`
}

// GoProxyEntry is one GOPROXY list element.
type GoProxyEntry struct {
	URL string `json:"url"` // a URL, "direct" or "off"
	// FallThrough is "," (next entry only on 404/410) or "|" (on any error)
	// for the separator after this entry.
	FallThrough string `json:"fallthrough,omitempty"`
}

// defaultGoProxy is the go command's default module proxy list.
var defaultGoProxy = "https://proxy." + "golang.org,direct"

func gatherFacts(ctx context.Context, o *Options) (Facts, *x509.CertPool) {
	r := &reader{root: o.Root}
	f := Facts{OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version(), Now: time.Now().UTC().Format(time.RFC3339)}
	f.Hostname, _ = os.Hostname()

	platformFacts(&f, r, o)

	// resolv.conf (on Windows: the adapters' DNS servers)
	var data []byte
	var trunc bool
	var err error
	if platformDNS(&f, r, o) {
		goto proxies
	}
	data, trunc, err = r.read("/etc/resolv.conf")
	switch {
	case err == nil:
		f.ResolvConf = ParseResolvConf(data)
		f.ResolvConf.Truncated = trunc
		f.ResolvConfRead = "ok"
	case errors.Is(err, fs.ErrNotExist):
		f.ResolvConf = ParseResolvConf(nil)
		f.ResolvConfRead = "missing"
	default:
		f.ResolvConf = ParseResolvConf(nil)
		f.ResolvConfRead = "unreadable"
	}
	data, _, err = r.read("/etc/nsswitch.conf")
	if err == nil {
		f.NSSwitch = ParseNSSwitch(data)
	} else {
		f.NSSwitch = ParseNSSwitch(nil)
	}
	if data, _, err = r.read("/etc/hosts"); err == nil {
		f.Hosts, f.HostsSkipped = ParseHosts(data)
	}
	f.Resolver = resolverFact(&f, o)

proxies:
	f.Proxy = proxyFacts(o)
	f.Go = goFacts(ctx, o, r)

	var pool *x509.CertPool
	if o.Roots != nil {
		pool = o.Roots
		f.CA.Custom = true
		f.CA.Loaded = -1
	} else if ca, p, ok := platformRoots(o); ok {
		f.CA, pool = ca, p
	} else {
		f.CA, pool = loadRoots(o, r)
	}
	f.Unreadable = r.unreadable
	return f, pool
}

func resolverFact(f *Facts, o *Options) ResolverFact {
	rf := ResolverFact{Mode: "go", Order: f.NSSwitch.Order, GODEBUG: o.getenv("GODEBUG")}
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		rf.Mode = "native"
	}
	for _, u := range f.ResolvConf.UnknownOptions {
		rf.CgoReasons = append(rf.CgoReasons, "resolv.conf: unknown "+u)
	}
	if f.ResolvConfRead == "unreadable" {
		rf.CgoReasons = append(rf.CgoReasons, "resolv.conf cannot be read")
	}
	for _, c := range f.NSSwitch.CgoReasons {
		rf.CgoReasons = append(rf.CgoReasons, "nsswitch.conf hosts: "+c)
	}
	if _, ok := o.lookupEnv("LOCALDOMAIN"); ok {
		rf.CgoReasons = append(rf.CgoReasons, "LOCALDOMAIN is set")
	}
	for _, k := range []string{"RES_OPTIONS", "HOSTALIASES"} {
		if o.getenv(k) != "" {
			rf.CgoReasons = append(rf.CgoReasons, k+" is set")
		}
	}
	return rf
}

// proxyConfig builds the httpproxy rules from the environment exactly as
// net/http does (uppercase first, then lowercase; REQUEST_METHOD = CGI).
func proxyConfig(o *Options) *httpproxy.Config {
	get := func(names ...string) string {
		for _, n := range names {
			if v := o.getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	return &httpproxy.Config{
		HTTPProxy:  get("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: get("HTTPS_PROXY", "https_proxy"),
		NoProxy:    get("NO_PROXY", "no_proxy"),
		CGI:        o.getenv("REQUEST_METHOD") != "",
	}
}

func proxyFacts(o *Options) ProxyFacts {
	c := proxyConfig(o)
	p := ProxyFacts{HTTPProxy: redact(c.HTTPProxy), HTTPSProxy: redact(c.HTTPSProxy), NoProxy: c.NoProxy, CGI: c.CGI}
	for _, pair := range [][2]string{{"HTTP_PROXY", "http_proxy"}, {"HTTPS_PROXY", "https_proxy"}, {"NO_PROXY", "no_proxy"}} {
		up, lo := o.getenv(pair[0]), o.getenv(pair[1])
		switch {
		case up != "":
			p.From = append(p.From, pair[0])
			if lo != "" && lo != up {
				p.Ignored = append(p.Ignored, pair[1]+"="+redact(lo)+" (uppercase "+pair[0]+" wins in Go; curl prefers lowercase)")
			}
		case lo != "":
			p.From = append(p.From, pair[1])
		}
	}
	for _, k := range []string{"ALL_PROXY", "all_proxy"} {
		if v := o.getenv(k); v != "" {
			p.Ignored = append(p.Ignored, k+"="+redact(v)+" (Go never reads ALL_PROXY)")
		}
	}
	for _, v := range []struct{ name, val, scheme string }{{"HTTP_PROXY", c.HTTPProxy, "http"}, {"HTTPS_PROXY", c.HTTPSProxy, "https"}} {
		if v.val == "" {
			continue
		}
		name := v.name
		for _, f := range p.From {
			if strings.EqualFold(f, v.name) {
				name = f
			}
		}
		if m, bad := malformedProxy(name, v.val, v.scheme); bad {
			p.MalformedProxies = append(p.MalformedProxies, m)
			if m.Dials == "" {
				p.Malformed = append(p.Malformed, name+"="+redact(v.val)+": does not parse as a URL (even with http:// prepended), so Go silently uses no proxy and connects directly")
			} else {
				p.Malformed = append(p.Malformed, fmt.Sprintf("%s=%s: Go reads it as %s and dials the proxy host %q (%s), without any error", name, redact(v.val), m.ReadAs, m.Host, m.Dials))
			}
		}
	}
	return p
}

// MalformedProxy is a proxy variable whose value Go reads other than meant.
type MalformedProxy struct {
	Var   string `json:"var"`
	Value string `json:"value"`
	// ReadAs is the URL net/http makes of the value, "" when it drops it.
	ReadAs string `json:"read_as,omitempty"`
	// Host and Dials are the proxy host Go derived and the host:port it
	// dials; empty when Go uses no proxy at all.
	Host  string `json:"host,omitempty"`
	Dials string `json:"dials,omitempty"`
}

// malformedProxy asks net/http's own proxy code (golang.org/x/net's
// httpproxy, vendored into net/http) what it makes of a proxy value, for a
// URL of the given scheme. The value is malformed when Go drops it (both it
// and "http://"+value fail to parse), or when the URL Go reads differs from
// the one written: the value did not parse as written, or the URL Go reads
// has a path or a scheme name for host ("http//proxy:3128" is read as
// http://http//proxy:3128, so Go dials the host "http" on port 80).
func malformedProxy(name, v, scheme string) (MalformedProxy, bool) {
	m := MalformedProxy{Var: name, Value: redact(v)}
	cfg := &httpproxy.Config{HTTPProxy: v, HTTPSProxy: v}
	pu, err := cfg.ProxyFunc()(&url.URL{Scheme: scheme, Host: "target.example.test"})
	if err != nil || pu == nil {
		return m, true
	}
	_, perr := url.Parse(v)
	switch pu.Hostname() {
	case "http", "https", "socks5", "socks5h":
	default:
		if perr == nil && (pu.Path == "" || pu.Path == "/") {
			return m, false
		}
	}
	m.ReadAs, m.Host = redact(pu.String()), pu.Hostname()
	port := pu.Port()
	if port == "" {
		port = map[string]string{"https": "443", "socks5": "1080", "socks5h": "1080"}[pu.Scheme]
		if port == "" {
			port = "80"
		}
	}
	m.Dials = net.JoinHostPort(pu.Hostname(), port)
	return m, true
}

// parseProxyValue mirrors httpproxy's parseProxy: a URL, or host[:port]
// with http:// prepended. When both parses fail Go drops the value silently
// and uses no proxy.
func parseProxyValue(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if u2, err2 := url.Parse("http://" + v); err2 == nil {
			return u2, nil
		}
		return nil, errors.New("does not parse as a URL, even with http:// prepended")
	}
	return u, nil
}

// redact hides a password in a proxy URL.
func redact(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return clip(v, 200)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return clip(u.String(), 200)
}

func goFacts(ctx context.Context, o *Options, r *reader) GoFacts {
	keys := []string{"GOPROXY", "GONOPROXY", "GOPRIVATE", "GONOSUMDB", "GOSUMDB", "GOFLAGS", "GOINSECURE"}
	vals := map[string]string{}
	g := GoFacts{Source: "default"}
	for _, k := range keys {
		if v, ok := o.lookupEnv(k); ok && v != "" {
			vals[k] = v
			g.Source = "environment"
		}
	}
	if vals["GOPROXY"] == "" && o.GoCommand {
		// The go command's own configuration (go/env files, GOROOT/go.env),
		// read with the go found on the PATH the options give, briefly: the
		// probes share the run's deadline.
		if goBin := lookPath("go", o.getenv("PATH"), ""); goBin != "" {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			env, _, err := goenv.Read(ctx, o.lookupEnv, goBin, keys...)
			cancel()
			if err == nil {
				for k, v := range env {
					if vals[k] == "" && v != "" {
						vals[k] = v
					}
				}
				g.Source = "go env"
			}
		}
	}
	g.GOPROXY, g.GONOPROXY, g.GOPRIVATE = vals["GOPROXY"], vals["GONOPROXY"], vals["GOPRIVATE"]
	g.GONOSUMDB, g.GOSUMDB, g.GOFLAGS, g.GOINSECURE = vals["GONOSUMDB"], vals["GOSUMDB"], vals["GOFLAGS"], vals["GOINSECURE"]
	if g.GOPROXY == "" {
		g.GOPROXY = defaultGoProxy
	}
	if g.GOSUMDB == "" {
		g.GOSUMDB = "sum.golang.org"
	}
	g.GONOPROXY, g.GONOSUMDB = string(goenv.NoProxy(vals)), string(goenv.NoSumDB(vals))
	g.Proxies, g.ProxiesError = goProxies(g.GOPROXY)
	db, err := goenv.ParseSumDB(g.GOSUMDB)
	if err != nil {
		// The go command refuses to verify with this value. The database
		// it names is still probed, so the report says whether it would be
		// reachable once the key is fixed.
		g.SumDBError = clip(err.Error(), 400)
		db = namedSumDB(g.GOSUMDB)
	}
	if !db.Off {
		g.SumDBName, g.SumDBURL = clip(db.Name, 253), clip(db.Direct(), 400)
	}
	if p := lookPath("git", o.getenv("PATH"), o.Root); p != "" {
		g.Git = p
	}
	g.Modules = o.Modules
	if len(g.Modules) == 0 {
		if data, _, err := r.read(goModPath()); err == nil {
			g.Modules = goModPaths(data)
		}
	}
	return g
}

func goModPath() string {
	wd, err := os.Getwd()
	if err != nil {
		return "go.mod"
	}
	return filepath.Join(wd, "go.mod")
}

func lookPath(name, path, root string) string {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || len(dir) > 4096 {
			continue
		}
		p := filepath.Join(dir, name)
		if runtime.GOOS == "windows" {
			p += ".exe"
		}
		full := p
		if root != "" {
			full = filepath.Join(root, p)
		}
		if st, err := os.Stat(full); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// goProxies returns the GOPROXY entries the go command uses, as it reads
// them (goenv.ParseProxyList): up to "off" or "direct", a bare host name
// with https:// added. An invalid list has no entries and the go command's
// complaint.
func goProxies(v string) ([]GoProxyEntry, string) {
	list, err := goenv.ParseProxyList(v)
	if err != nil {
		return nil, clip(err.Error(), 400)
	}
	var out []GoProxyEntry
	for i, e := range list {
		if i == 32 {
			break
		}
		ge := GoProxyEntry{URL: clip(e.URL, 400)}
		switch {
		case e.Off:
			ge.URL = "off"
		case e.Direct:
			ge.URL = "direct"
		}
		switch {
		case e.FallbackOnError:
			ge.FallThrough = "|"
		case i < len(list)-1:
			ge.FallThrough = ","
		}
		out = append(out, ge)
	}
	return out, ""
}

// namedSumDB is the database an invalid GOSUMDB value names: the name
// before any "+key", and the URL after it.
func namedSumDB(v string) goenv.SumDB {
	f := strings.Fields(v)
	if len(f) == 0 {
		return goenv.SumDB{Off: true}
	}
	db := goenv.SumDB{}
	db.Name, _, _ = strings.Cut(f[0], "+")
	if len(f) > 1 {
		db.URL = f[1]
	}
	return db
}

// goModPaths returns the module path and requirements named in go.mod content.
func goModPaths(data []byte) []string {
	var out []string
	inReq := false
	for _, line := range strings.Split(string(data), "\n") {
		if len(out) >= 256 {
			break
		}
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case strings.HasPrefix(line, "module "):
			out = append(out, strings.Trim(strings.TrimSpace(line[7:]), `"`))
		case line == "require (":
			inReq = true
		case inReq && line == ")":
			inReq = false
		case strings.HasPrefix(line, "require "):
			if f := strings.Fields(line[8:]); len(f) >= 1 {
				out = append(out, strings.Trim(f[0], `"`))
			}
		case inReq:
			if f := strings.Fields(line); len(f) >= 1 {
				out = append(out, strings.Trim(f[0], `"`))
			}
		}
	}
	return out
}

// caFiles and caDirs mirror crypto/x509's root_linux.go / root_unix.go lists.
var caFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

var caDirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}

// loadRoots loads roots the way crypto/x509 does on Unix: SSL_CERT_FILE
// replaces the file list (first readable file wins), SSL_CERT_DIR
// (colon-separated) replaces the directories, whose files are all read.
func loadRoots(o *Options, r *reader) (CAFacts, *x509.CertPool) {
	ca := CAFacts{SSLCertFile: o.getenv("SSL_CERT_FILE"), SSLCertDir: o.getenv("SSL_CERT_DIR")}
	pool := x509.NewCertPool()
	files := caFiles
	if ca.SSLCertFile != "" {
		files = []string{ca.SSLCertFile}
	}
	dirs := caDirs
	if ca.SSLCertDir != "" {
		dirs = filepath.SplitList(ca.SSLCertDir)
	}
	used := false
	seen := map[string]bool{} // Loaded counts each certificate once, wherever it was found
	// crypto/x509 reads every directory entry (following symlinks) and
	// skips what fails, so those failures are not worth reporting.
	quiet := &reader{root: r.root}
	for _, p := range files {
		cf := CAFile{Path: p}
		data, _, err := r.read(p)
		if err == nil {
			cf.Exists = true
			if !used {
				cf.Used = true
				used = true
				cf.Certs = addPEM(pool, data, seen)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			cf.Exists = true
			cf.Error = clip(err.Error(), 200)
		}
		ca.Files = append(ca.Files, cf)
	}
	for _, d := range dirs {
		cf := CAFile{Path: d}
		ents, err := os.ReadDir(r.path(d))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				cf.Exists = true
				cf.Error = clip(err.Error(), 200)
			}
			ca.Dirs = append(ca.Dirs, cf)
			continue
		}
		cf.Exists = true
		for i, e := range ents {
			if i >= 2000 {
				break
			}
			data, _, err := quiet.read(filepath.Join(d, e.Name()))
			if err != nil {
				continue
			}
			cf.Certs += addPEM(pool, data, seen)
		}
		cf.Used = cf.Certs > 0
		ca.Dirs = append(ca.Dirs, cf)
	}
	ca.Loaded = len(seen)
	return ca, pool
}

// addPEM adds the PEM certificates in data to pool and returns how many
// parsed; seen records unique certificates across files.
func addPEM(pool *x509.CertPool, data []byte, seen map[string]bool) int {
	n := 0
	for len(data) > 0 {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue
		}
		pool.AddCert(c)
		seen[string(c.Raw)] = true
		n++
	}
	return n
}

func interfaces() []Interface {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []Interface
	for _, i := range ifs {
		it := Interface{Name: i.Name, Up: i.Flags&net.FlagUp != 0, Loopback: i.Flags&net.FlagLoopback != 0, MTU: i.MTU}
		if as, err := i.Addrs(); err == nil {
			for _, a := range as {
				it.Addrs = append(it.Addrs, a.String())
			}
		}
		out = append(out, it)
		if len(out) >= 64 {
			break
		}
	}
	return out
}

func limitFacts(o *Options) LimitFacts {
	l := LimitFacts{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GOMAXPROCSEnv: o.getenv("GOMAXPROCS"), GOMEMLIMITEnv: o.getenv("GOMEMLIMIT")}
	l.GOMEMLIMIT = debug.SetMemoryLimit(-1)
	return l
}
