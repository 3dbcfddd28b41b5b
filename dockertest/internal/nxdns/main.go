// Command nxdns is a nameserver for the Docker suite: it answers every query
// with NXDOMAIN, as a resolver outside Docker does for a container name, so a
// test can show what happens when a container on the default bridge looks up
// another container by name without sending a query anywhere but to its own
// container.
package main

import (
	"log"

	"github.com/miekg/dns"
)

func main() {
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		m.RecursionAvailable = true
		w.WriteMsg(m)
	})
	errc := make(chan error, 2)
	for _, network := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: ":53", Net: network, Handler: h}
		go func() { errc <- srv.ListenAndServe() }()
	}
	log.Fatal(<-errc)
}
