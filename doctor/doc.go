// Package doctor diagnoses why a Go program in a container cannot reach the
// network, the way the Go runtime itself sees it.
//
// A Run has three parts. Facts are gathered once and send no packet:
// resolv.conf and nsswitch.conf read with Go's own rules, /etc/hosts, the CA
// files crypto/x509 would load, the proxy variables as net/http applies them,
// the go command's module variables, cgroup limits and local listeners.
// Probes then run in parallel under one deadline: a DNS query to each
// nameserver (github.com/miekg/dns), the Go resolver's own lookup with every
// name it asks recorded, a TCP connect per address, a TLS handshake that
// keeps the presented chain, an HTTP request with phase timings, and for
// GOPROXY entries the module protocol and the checksum database. Checks turn
// both into Findings with stable IDs (dns.server-unreachable, tls.expired,
// ...), root causes first, each with its evidence and a fix.
//
// The report is plain data: berth doctor prints it as text or JSON, and
// Handler serves it from inside a running service.
package doctor
