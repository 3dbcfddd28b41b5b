//go:build !linux

package doctor

// platformFacts gathers what this OS offers without /proc: interfaces and
// the Go runtime's limits. Windows facts (DNS client, certificate store)
// come in a later issue.
func platformFacts(f *Facts, _ *reader, o *Options) {
	f.Interfaces = interfaces()
	f.Limits = limitFacts(o)
	for _, i := range f.Interfaces {
		if i.Up && !i.Loopback && len(i.Addrs) > 0 {
			f.DefaultRoute = true // unknown without a route table; assume yes
		}
	}
}
