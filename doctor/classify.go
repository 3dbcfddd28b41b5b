package doctor

import (
	"strings"

	"github.com/berth-dev/berth/netkit"
)

// Failure classes: netkit's taxonomy (netkit.Kind), the one table of causes
// berth shares. Two names are the doctor's own: a DNS answer with rcode
// REFUSED, which only the doctor's own DNS probes see (Go's resolver reports it
// as "server misbehaving"), and the doctor's reading of netkit's dns-unreachable
// as "no answer" (see classify).
const (
	kDNSNotFound = string(netkit.KindDNSNotFound)
	kDNSTimeout  = string(netkit.KindDNSTimeout)
	kDNSServfail = string(netkit.KindDNSServFail)
	kDNSRefused  = "dns-refused" // rcode REFUSED from the doctor's own DNS probe
	// kTLSPlainHTTP is netkit's tls-other when the first record the server
	// sent is an HTTP response: a plain-HTTP port.
	kTLSPlainHTTP = "tls-plain-http"
	// kTLSClientCert is a handshake the server ends because the client
	// presented no certificate after a CertificateRequest.
	kTLSClientCert = "tls-client-cert"
	kRefused       = string(netkit.KindRefused)
	kTimeout       = string(netkit.KindTimeout)
	kReset         = string(netkit.KindReset)
	kTLSUnknownCA  = string(netkit.KindTLSUnknownAuthority)
	kTLSExpired    = string(netkit.KindTLSExpired)
	kTLSHostname   = string(netkit.KindTLSHostname)
	kTLSHSTimeout  = string(netkit.KindTLSHandshakeTimeout)
	kTLSOther      = string(netkit.KindTLSOther)
	kProxyConnect  = string(netkit.KindProxyConnect)
	kProxyAuth     = string(netkit.KindProxyAuth)
	kHTTPStatus    = string(netkit.KindHTTPStatus)
	kCanceled      = string(netkit.KindCanceled)
	kEOF           = string(netkit.KindEOF)
	kUnknown       = string(netkit.KindUnknown)
	kNetUnreach    = string(netkit.KindNoRoute)     // ENETUNREACH: no route at all
	kHostUnreach   = string(netkit.KindUnreachable) // EHOSTUNREACH: an ICMP reject
)

// classify maps an error to a failure class with netkit.Classify (by type and
// errno, never by message text). The one refinement: a DNS server that could
// not be reached at the socket level is, for the doctor's findings, a server
// that gave no answer (dns.server-unreachable), like a timeout.
func classify(err error) string {
	if err == nil {
		return ""
	}
	k := netkit.Classify(err).Kind
	if k == netkit.KindDNSUnreachable {
		return kDNSTimeout
	}
	return string(k)
}

// isTimeoutClass reports whether a class means "no answer".
func isTimeoutClass(k string) bool { return k == kTimeout || k == kDNSTimeout || k == kCanceled }

func errText(err error) string {
	if err == nil {
		return ""
	}
	return clip(strings.ReplaceAll(err.Error(), "\n", " "), 400)
}
