package doctor

import (
	"crypto/x509"
	"net"
	"os"
	"time"
)

// Options configures a Run. The zero value diagnoses this process's own
// environment: the real environment variables, /etc files, /proc, and the
// roots crypto/x509 would load.
type Options struct {
	// Targets are URLs or host:port pairs to check. When empty, the targets
	// are the Go module path: each GOPROXY entry and the checksum database
	// through it.
	Targets []string
	// Listen lists addresses (":8080", "0.0.0.0:8080") a service must accept
	// connections on from outside the container.
	Listen []string
	// Timeout bounds every probe of the run together. Default 5s.
	Timeout time.Duration
	// LookupEnv reads an environment variable. Default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Root prefixes every file the doctor reads (/etc/resolv.conf, /proc/...),
	// for diagnosing a mounted image. Default "" (the real root).
	Root string
	// Resolver resolves target names. Default: Go's own resolver
	// (PreferGo) with the names it asks recorded.
	Resolver *net.Resolver
	// Roots are the trusted certificate authorities. Default: the roots
	// crypto/x509 loads on this system (SSL_CERT_FILE, SSL_CERT_DIR, the
	// distribution bundles), loaded from the files so they can be counted.
	Roots *x509.CertPool
	// ProbeModule is the module whose version list is fetched through each
	// GOPROXY entry. Default "golang.org/x/text".
	ProbeModule string
	// Modules are module paths the build needs (GOPRIVATE checks). Default:
	// the requirements of ./go.mod when it exists.
	Modules []string
	// GoCommand allows running "go env" when GOPROXY and friends are not in
	// the environment. Default false for the library; berth doctor sets it.
	GoCommand bool
}

func (o *Options) lookupEnv(k string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(k)
	}
	return os.LookupEnv(k)
}

func (o *Options) getenv(k string) string {
	v, _ := o.lookupEnv(k)
	return v
}

func (o *Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 5 * time.Second
	}
	return o.Timeout
}
