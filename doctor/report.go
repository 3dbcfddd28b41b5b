package doctor

import "time"

// SchemaVersion is the version of the JSON report. It changes only when a
// field is removed or changes meaning; new fields may appear at any time.
// docs/doctor-json.md documents it.
const SchemaVersion = 1

// Severity ranks a finding.
type Severity string

// Severities, most serious first.
const (
	SevError Severity = "error"
	SevWarn  Severity = "warn"
	SevInfo  Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case SevError:
		return 0
	case SevWarn:
		return 1
	}
	return 2
}

// Report is the result of one Run: the facts gathered, every probe with its
// outcome and the findings derived from both, root causes first.
type Report struct {
	Schema     int       `json:"schema"`
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`
	TimeoutMS  float64   `json:"timeout_ms"`
	Targets    []Target  `json:"targets"`
	Facts      Facts     `json:"facts"`
	Probes     []Probe   `json:"probes"`
	Findings   []Finding `json:"findings"`
}

// Healthy reports whether no finding has severity error; berth doctor exits 0 then.
func (r *Report) Healthy() bool {
	for _, f := range r.Findings {
		if f.Severity == SevError {
			return false
		}
	}
	return true
}

// Target is one thing the doctor was asked to reach.
type Target struct {
	// Input is the target as given ("https://proxy.example.test", "db:5432").
	Input string `json:"input"`
	// Role is "target" for a user target, "goproxy" for a GOPROXY entry and
	// "sumdb" for a checksum database reached directly.
	Role   string `json:"role"`
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host"`
	Port   string `json:"port"`
	// URL is the URL requested for HTTP targets.
	URL string `json:"url,omitempty"`
}

// Probe is one measurement.
type Probe struct {
	// Kind is one of dns, resolve, tcp, proxy, tls, http, goproxy, sumdb, listen.
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Server is what was contacted: a nameserver, an address, a proxy.
	Server string `json:"server,omitempty"`
	// Name is the DNS name asked or the URL requested.
	Name string `json:"name,omitempty"`
	OK   bool   `json:"ok"`
	// Cause is the failure class from netkit's taxonomy (dns-timeout, refused,
	// tls-unknown-authority, ...); empty when OK.
	Cause      string  `json:"cause,omitempty"`
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// Skipped says why a probe did not run (an earlier stage failed).
	Skipped string `json:"skipped,omitempty"`

	Rcode     string    `json:"rcode,omitempty"`
	Transport string    `json:"transport,omitempty"` // udp, tcp
	Tries     []NameTry `json:"tries,omitempty"`
	Addrs     []string  `json:"addrs,omitempty"`
	// AAAA is the answer to the AAAA question for the name that answered A:
	// Go's resolver asks both at once and waits for both.
	AAAA *NameTry `json:"aaaa,omitempty"`
	// Bare is the answer for the name as given (rooted) when a search-list
	// name answered first: it tells a Kubernetes short name from a wrong host.
	Bare *NameTry `json:"bare,omitempty"`
	// BareAddrs are the addresses of Bare.
	BareAddrs  []string   `json:"bare_addrs,omitempty"`
	Via        string     `json:"via,omitempty"` // proxy URL when proxied
	Status     int        `json:"status,omitempty"`
	Chain      []CertInfo `json:"chain,omitempty"`
	TLSVersion string     `json:"tls_version,omitempty"`
	// ClientAuth describes the server's CertificateRequest, when it sent one.
	ClientAuth []string     `json:"client_auth,omitempty"`
	Timings    *HTTPTimings `json:"timings,omitempty"`
	Date       string       `json:"server_date,omitempty"`
	Body       string       `json:"body,omitempty"`
	// ContentType is the answer's Content-Type; Shape what its body looks
	// like: versions, empty, html, json or text, and info for a .info or
	// @latest answer that is JSON with the Version asked (any valid one for
	// @latest). Message is the message of a JSON error document.
	ContentType string `json:"content_type,omitempty"`
	Shape       string `json:"body_shape,omitempty"`
	Message     string `json:"message,omitempty"`
	// Authenticate is the WWW-Authenticate challenge of a 401.
	Authenticate string `json:"www_authenticate,omitempty"`
	// Redirects are the URLs a GOPROXY request was redirected to, in order.
	Redirects []string `json:"redirects,omitempty"`
	// Credentials names the netrc machine whose credentials were sent.
	Credentials string    `json:"credentials,omitempty"`
	started     time.Time // for the waterfall
	err         error     // the raw error, for classification
}

// NameTry is one name asked during a lookup, with its answer.
type NameTry struct {
	Name  string  `json:"name"`
	Type  string  `json:"type,omitempty"`
	Rcode string  `json:"rcode"`
	MS    float64 `json:"ms"`
	N     int     `json:"answers,omitempty"`
}

// CertInfo describes one certificate of a presented chain.
type CertInfo struct {
	Subject   string   `json:"subject"`
	Issuer    string   `json:"issuer"`
	IssuerOrg []string `json:"issuer_org,omitempty"`
	DNSNames  []string `json:"dns_names,omitempty"`
	IPs       []string `json:"ips,omitempty"`
	NotBefore string   `json:"not_before"`
	NotAfter  string   `json:"not_after"`
	IsCA      bool     `json:"is_ca,omitempty"`
}

// HTTPTimings are the phases of one HTTP request, in milliseconds from its start.
type HTTPTimings struct {
	DNSStart     float64 `json:"dns_start_ms,omitempty"`
	DNSDone      float64 `json:"dns_done_ms,omitempty"`
	ConnectStart float64 `json:"connect_start_ms,omitempty"`
	ConnectDone  float64 `json:"connect_done_ms,omitempty"`
	TLSStart     float64 `json:"tls_start_ms,omitempty"`
	TLSDone      float64 `json:"tls_done_ms,omitempty"`
	WroteRequest float64 `json:"wrote_request_ms,omitempty"`
	FirstByte    float64 `json:"first_byte_ms,omitempty"`
	Done         float64 `json:"done_ms,omitempty"`
}

// Finding is one conclusion: what is wrong (or notable), why, and the fix.
type Finding struct {
	// ID is stable across releases (dns.server-unreachable, tls.expired, ...).
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Cause    string   `json:"cause"`
	// Fix lists concrete steps; steps specific to an environment start with
	// "Docker:", "Kubernetes:" or "Host:".
	Fix      []string `json:"fix"`
	Evidence []string `json:"evidence"`
	// Targets lists the targets this finding affects.
	Targets []string `json:"targets,omitempty"`
	// Explains lists failures that are consequences of this finding.
	Explains []Consequence `json:"explains,omitempty"`

	layer int // for ordering: lower layers explain higher ones
	key   string
	// host is the host a network finding failed to reach (the proxy's
	// host when the path went through one); proxyHost is the host a
	// malformed proxy variable makes Go dial.
	host, proxyHost string
}

// Consequence is a failure explained by a root finding.
type Consequence struct {
	ID      string `json:"id,omitempty"`
	Summary string `json:"summary"`
}
