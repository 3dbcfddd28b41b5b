package netkit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
)

// Kind names one cause of a network failure. The strings are stable: they appear
// in logs, metrics labels and the doctor's JSON output.
type Kind string

// The causes Classify can return.
const (
	KindDNSNotFound         Kind = "dns-not-found"         // NXDOMAIN or no records of the type asked
	KindDNSTimeout          Kind = "dns-timeout"           // no answer from the DNS server in time
	KindDNSServFail         Kind = "dns-servfail"          // the DNS server answered SERVFAIL or another error rcode
	KindDNSUnreachable      Kind = "dns-unreachable"       // the DNS server could not be reached (refused, unreachable)
	KindRefused             Kind = "refused"               // nothing listens at the address, or a REJECT rule
	KindTimeout             Kind = "timeout"               // no answer in time: a DROP rule, a dead host, a slow server
	KindUnreachable         Kind = "unreachable"           // the host is unreachable (ICMP host unreachable or prohibited)
	KindNoRoute             Kind = "no-route"              // no route to the network at all (no interface or default route)
	KindReset               Kind = "reset"                 // the connection was reset or aborted mid-stream
	KindTLSUnknownAuthority Kind = "tls-unknown-authority" // the certificate chain ends in a root the client does not trust
	KindTLSExpired          Kind = "tls-expired"           // a certificate is expired or not yet valid
	KindTLSHostname         Kind = "tls-hostname"          // the certificate is not valid for the name requested
	KindTLSHandshakeTimeout Kind = "tls-handshake-timeout" // TCP connected but the TLS handshake did not finish in time
	KindTLSOther            Kind = "tls-other"             // any other TLS failure (alerts, a plain-HTTP server, bad records)
	KindProxyConnect        Kind = "proxy-connect"         // the HTTP proxy could not be reached or refused the CONNECT
	KindProxyAuth           Kind = "proxy-auth"            // the HTTP proxy answered 407 Proxy Authentication Required
	KindHTTPStatus          Kind = "http-status"           // the server answered with a non-2xx status
	KindCanceled            Kind = "canceled"              // the caller canceled the request
	KindEOF                 Kind = "eof"                   // the connection closed early: a truncated body or no response
	KindCircuitOpen         Kind = "circuit-open"          // a netkit circuit breaker refused the request without sending it
	KindUnknown             Kind = "unknown"               // none of the above
)

// Describe returns one sentence saying what k means, for people.
func (k Kind) Describe() string {
	switch k {
	case KindDNSNotFound:
		return "the name does not exist in DNS (NXDOMAIN or no records)"
	case KindDNSTimeout:
		return "the DNS server did not answer in time"
	case KindDNSServFail:
		return "the DNS server answered with an error (SERVFAIL or REFUSED)"
	case KindDNSUnreachable:
		return "the DNS server could not be reached"
	case KindRefused:
		return "the connection was refused: nothing listens there, or a firewall rejects it"
	case KindTimeout:
		return "no answer in time: a firewall dropping packets, a dead host or a slow server"
	case KindUnreachable:
		return "the host is unreachable: an ICMP reject, a stale address or a firewall"
	case KindNoRoute:
		return "there is no route to the network: no interface or default route for it"
	case KindReset:
		return "the connection was reset by the peer or something in between"
	case KindTLSUnknownAuthority:
		return "the server's certificate is signed by an authority this client does not trust"
	case KindTLSExpired:
		return "a certificate in the server's chain is expired or not yet valid"
	case KindTLSHostname:
		return "the server's certificate is not valid for the requested name"
	case KindTLSHandshakeTimeout:
		return "TCP connected but the TLS handshake did not finish (often an MTU black hole)"
	case KindTLSOther:
		return "the TLS handshake failed"
	case KindProxyConnect:
		return "the HTTP proxy could not be reached or refused the tunnel"
	case KindProxyAuth:
		return "the HTTP proxy requires authentication (407)"
	case KindHTTPStatus:
		return "the server answered with an error status"
	case KindCanceled:
		return "the request was canceled by the caller"
	case KindEOF:
		return "the connection closed before the response was complete"
	case KindCircuitOpen:
		return "the circuit breaker for this host is open after repeated failures"
	case KindUnknown:
		return "an unclassified error"
	}
	return ""
}

// Cause is a classified network failure: one Kind and the detail that locates it.
type Cause struct {
	Kind   Kind
	Server string // DNS server or proxy address, when known
	Addr   string // remote address dialed, when known
	Host   string // host name looked up or requested, when known
	Status int    // HTTP status, for KindHTTPStatus and KindProxyAuth/KindProxyConnect answers
	// Op is the socket operation that failed, from *net.OpError: "dial" (so a
	// KindTimeout with Op "dial" is a connect attempt with no answer, as with a
	// DROP rule), "read", "write", "proxyconnect"; empty when unknown.
	Op  string
	Err error // the original error
}

// Temporary reports whether the failure is worth retrying or falling through to
// another endpoint: timeouts, refused, reset, unreachable, early EOF, DNS
// timeouts, SERVFAIL and an unreachable DNS server, and the HTTP statuses 408,
// 429 and 5xx other than 501 and 505. Canceled, TLS verification failures,
// not-found names and other statuses are not.
func (c Cause) Temporary() bool {
	switch c.Kind {
	case KindTimeout, KindRefused, KindReset, KindUnreachable, KindEOF,
		KindDNSTimeout, KindDNSServFail, KindDNSUnreachable, KindTLSHandshakeTimeout:
		return true
	case KindHTTPStatus:
		return retryableStatus(c.Status)
	}
	return false
}

func retryableStatus(s int) bool {
	switch {
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests:
		return true
	case s == http.StatusNotImplemented, s == http.StatusHTTPVersionNotSupported:
		return false
	}
	return s >= 500 && s <= 599
}

// String returns the kind followed by the known detail, e.g.
// "refused addr=127.0.0.1:1" or "http-status status=503 host=example.test".
func (c Cause) String() string {
	if c.Kind == "" {
		return "ok"
	}
	s := string(c.Kind)
	if c.Status != 0 {
		s += fmt.Sprintf(" status=%d", c.Status)
	}
	if c.Host != "" {
		s += " host=" + c.Host
	}
	if c.Addr != "" {
		s += " addr=" + c.Addr
	}
	if c.Server != "" {
		s += " server=" + c.Server
	}
	return s
}

// StatusError is the error for an HTTP answer outside 2xx. Classify maps it to
// KindHTTPStatus with its Status.
type StatusError struct {
	Method string // request method, may be empty
	URL    string // request URL, may be empty
	Status int    // HTTP status code
	// RetryAfter is the raw Retry-After header of the answer, if any.
	RetryAfter string
}

// Error says which request got which status.
func (e *StatusError) Error() string {
	text := http.StatusText(e.Status)
	switch {
	case e.Method != "" && e.URL != "":
		return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, text)
	case e.URL != "":
		return fmt.Sprintf("%s: %d %s", e.URL, e.Status, text)
	}
	return fmt.Sprintf("HTTP %d %s", e.Status, text)
}

// CheckStatus returns nil when resp has a 2xx status and a *StatusError otherwise.
// It does not read or close the body.
func CheckStatus(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	e := &StatusError{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if resp.Request != nil {
		e.Method = resp.Request.Method
		if resp.Request.URL != nil {
			e.URL = resp.Request.URL.Redacted()
		}
	}
	return e
}

// ProxyError is the error for an HTTP proxy that did not answer a CONNECT with 200.
// Clients made by NewClient return it (wrapped); Classify maps status 407 to
// KindProxyAuth and any other status to KindProxyConnect.
type ProxyError struct {
	Proxy  string // proxy URL, credentials removed
	Status int    // the status of the CONNECT answer
}

// Error names the proxy and its answer to the CONNECT.
func (e *ProxyError) Error() string {
	return fmt.Sprintf("proxy %s: CONNECT answered %d %s", e.Proxy, e.Status, http.StatusText(e.Status))
}

// handshakeTimeoutType is net/http's unexported error type for a TLS handshake timeout;
// it has no exported type or sentinel, so Classify recognises it by its type.
var handshakeTimeoutType = "http.tlsHandshakeTimeoutError"

// Go's resolver reports SERVFAIL and other error rcodes with this fixed text
// (net.errServerMisbehaving); it is Go's own constant, not operating-system text.
const dnsServerMisbehaving = "server misbehaving"

// Classify turns an error from net, net/http, crypto/tls, crypto/x509, a proxy or a
// netkit client into one Cause. It looks at types and errno values (including the
// Windows WSAE* codes), never at message text; the one exception is the fixed
// "server misbehaving" string of Go's own resolver, which has no other form.
// Classify(nil) returns the zero Cause (Kind "").
func Classify(err error) Cause {
	if err == nil {
		return Cause{}
	}
	c := Cause{Err: err, Kind: classifyKind(err)}
	fillDetail(&c, err)
	return c
}

func classifyKind(err error) Kind {
	var se *StatusError
	if errors.As(err, &se) {
		return KindHTTPStatus
	}
	var be *BreakerOpenError
	if errors.As(err, &be) {
		return KindCircuitOpen
	}
	var pe *ProxyError
	if errors.As(err, &pe) {
		if pe.Status == http.StatusProxyAuthRequired {
			return KindProxyAuth
		}
		return KindProxyConnect
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "proxyconnect" {
		return KindProxyConnect
	}
	if errors.Is(err, context.Canceled) {
		return KindCanceled
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsNotFound:
			return KindDNSNotFound
		case de.IsTimeout, errors.Is(de, context.DeadlineExceeded):
			return KindDNSTimeout
		case de.Err == dnsServerMisbehaving:
			return KindDNSServFail
		case de.IsTemporary:
			// Socket-level errors talking to the server (refused, unreachable).
			return KindDNSUnreachable
		}
		return KindDNSServFail
	}
	if k := tlsKind(err); k != "" {
		return k
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if reflect.TypeOf(e).String() == handshakeTimeoutType {
			return KindTLSHandshakeTimeout
		}
	}
	if k := errnoKindOf(err); k != "" {
		return k
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return KindEOF
	}
	if isTimeout(err) {
		return KindTimeout
	}
	return KindUnknown
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func tlsKind(err error) Kind {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return KindTLSUnknownAuthority
	}
	var sr x509.SystemRootsError
	if errors.As(err, &sr) {
		return KindTLSUnknownAuthority
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		return KindTLSHostname
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		if ci.Reason == x509.Expired {
			return KindTLSExpired
		}
		return KindTLSOther
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return KindTLSOther
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return KindTLSOther // a plain-HTTP server on the HTTPS port
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return KindTLSOther
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return KindTLSOther
	}
	var ea *tls.ECHRejectionError
	if errors.As(err, &ea) {
		return KindTLSOther
	}
	return ""
}

func fillDetail(c *Cause, err error) {
	var se *StatusError
	if errors.As(err, &se) {
		c.Status = se.Status
		if u, perr := url.Parse(se.URL); perr == nil {
			c.Host = u.Host
		}
	}
	var pe *ProxyError
	if errors.As(err, &pe) {
		c.Status = pe.Status
		c.Server = pe.Proxy
	}
	var be *BreakerOpenError
	if errors.As(err, &be) {
		c.Host = be.Host
	}
	var ue *url.Error
	if errors.As(err, &ue) && c.Host == "" {
		if u, perr := url.Parse(ue.URL); perr == nil {
			c.Host = u.Host
		}
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		c.Server = de.Server
		if de.Name != "" {
			c.Host = de.Name
		}
	}
	// Walk every *net.OpError in the chain: a proxyconnect error wraps the dial
	// error that knows the proxy's address.
	proxy := false
	for e := err; e != nil; e = errors.Unwrap(e) {
		oe, ok := e.(*net.OpError)
		if !ok {
			continue
		}
		if c.Op == "" {
			c.Op = oe.Op
		}
		if oe.Op == "proxyconnect" {
			proxy = true
			continue
		}
		if oe.Addr != nil {
			if proxy {
				if c.Server == "" {
					c.Server = oe.Addr.String()
				}
			} else if c.Addr == "" {
				c.Addr = oe.Addr.String()
			}
		}
	}
}
