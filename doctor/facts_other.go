//go:build !linux && !windows

package doctor

import "crypto/x509"

// platformFacts gathers what this OS offers without /proc: interfaces and
// the Go runtime's limits.
func platformFacts(f *Facts, _ *reader, o *Options) {
	f.Interfaces = interfaces()
	f.Limits = limitFacts(o)
	for _, i := range f.Interfaces {
		if i.Up && !i.Loopback && len(i.Addrs) > 0 {
			f.DefaultRoute = true // unknown without a route table; assume yes
		}
	}
}

// platformDNS reports that resolv.conf is this system's DNS configuration.
func platformDNS(*Facts, *reader, *Options) bool { return false }

// platformRoots reports that the roots are the Unix CA files.
func platformRoots(*Options) (CAFacts, *x509.CertPool, bool) { return CAFacts{}, nil, false }
