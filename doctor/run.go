package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// ErrUsage wraps errors in Options that the caller must fix (a malformed
// target or listen address).
var ErrUsage = errors.New("usage")

// Run gathers the facts, runs every probe in parallel under one deadline
// (Options.Timeout) and returns the report with findings, root causes first.
// It returns an error only for invalid Options (wrapping ErrUsage); every
// network failure is a finding, not an error.
func Run(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	timeout := o.timeout()
	ctx, cancel := context.WithDeadline(ctx, start.Add(timeout))
	defer cancel()

	var targets []Target
	for _, s := range o.Targets {
		t, err := parseTarget(s, "target")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		targets = append(targets, t)
	}
	for _, l := range o.Listen {
		if _, err := parseListen(l); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
	}

	facts, roots := gatherFacts(ctx, &o)
	if len(o.Targets) == 0 {
		for _, e := range facts.Go.Proxies {
			if e.URL == "off" {
				break // the go command stops at off
			}
			if e.URL == "direct" {
				continue
			}
			if t, err := parseTarget(e.URL, "goproxy"); err == nil {
				targets = append(targets, t)
			}
		}
	}

	proxies := 0
	for _, t := range targets {
		if t.Role == "goproxy" {
			proxies++
		}
	}
	creds := loadCredentials(&o, &reader{root: o.Root})
	facts.Go.Auth, facts.Go.NetrcMachines = creds.Source, creds.Machines
	p := &prober{o: &o, facts: &facts, roots: roots, proxy: proxyFunc(&o), start: start, creds: creds,
		proxies: proxies, supported: make(chan int, proxies)}
	for _, t := range targets {
		p.goRun(func() { p.runTarget(ctx, t) })
	}
	if proxies > 0 && facts.Go.SumDBName != "" && !sumdbExcludedAll(&facts.Go) {
		p.goRun(func() { p.sumdbDirect(ctx) })
	}
	for _, l := range o.Listen {
		p.goRun(func() { p.listenProbe(ctx, l) })
	}
	p.wg.Wait()

	rep := &Report{Schema: SchemaVersion, Start: start.UTC(), TimeoutMS: ms(timeout), Targets: targets, Facts: facts}
	rep.Probes = sortProbes(p.probes)
	if p.sumdbTarget != nil {
		rep.Targets = append(rep.Targets, *p.sumdbTarget)
	}
	analyse(rep, &o)
	rep.DurationMS = ms(time.Since(start))
	return rep, nil
}

// sumdbExcludedAll reports checksum verification switched off for everything.
func sumdbExcludedAll(g *GoFacts) bool {
	return strings.TrimSpace(g.GONOSUMDB) == "*" || strings.Contains(g.GOFLAGS, "-insecure")
}

// sumdbDirect waits for the /sumdb/<name>/supported answers of every proxy.
// When all of them are 404 or 410 the go command contacts the checksum
// database itself, so the doctor does the same.
func (p *prober) sumdbDirect(ctx context.Context) {
	for range p.proxies {
		select {
		case <-ctx.Done():
			return
		case status := <-p.supported:
			if status != http.StatusNotFound && status != http.StatusGone {
				return // this proxy serves the checksum database, or failed to say
			}
		}
	}
	u := strings.TrimSuffix(p.facts.Go.SumDBURL, "/") + "/latest"
	tg, err := parseTarget(u, "sumdb")
	if err != nil {
		return
	}
	tg.Input = p.facts.Go.SumDBURL
	p.mu.Lock()
	p.sumdbTarget = &tg
	p.mu.Unlock()
	p.runTarget(ctx, tg)
}

func parseListen(s string) (netip.AddrPort, error) {
	h, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--listen %q: want [host]:port, e.g. :8080", s)
	}
	var pn uint16
	if _, err := fmt.Sscanf(port, "%d", &pn); err != nil || pn == 0 {
		return netip.AddrPort{}, fmt.Errorf("--listen %q: port must be 1-65535", s)
	}
	a := netip.IPv4Unspecified()
	if h != "" {
		if a, err = netip.ParseAddr(h); err != nil {
			return netip.AddrPort{}, fmt.Errorf("--listen %q: host must be an IP address or empty", s)
		}
	}
	return netip.AddrPortFrom(a, pn), nil
}

// listenProbe connects to the port on the container's first non-loopback
// address, the way a published port or a Service reaches it.
func (p *prober) listenProbe(ctx context.Context, l string) {
	ap, _ := parseListen(l)
	pr := Probe{Kind: "listen", Target: l, started: time.Now()}
	for _, i := range p.facts.Interfaces {
		if !i.Up || i.Loopback {
			continue
		}
		for _, a := range i.Addrs {
			if pf, err := netip.ParsePrefix(a); err == nil && pf.Addr().Is4() {
				pr.Server = netip.AddrPortFrom(pf.Addr(), ap.Port()).String()
				break
			}
		}
		if pr.Server != "" {
			break
		}
	}
	if pr.Server == "" {
		pr.Skipped = "no non-loopback IPv4 address"
		p.add(pr)
		return
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(cctx, "tcp", pr.Server)
	pr.DurationMS = ms(time.Since(start))
	if err != nil {
		pr.err, pr.Error, pr.Cause = err, errText(err), classify(err)
	} else {
		c.Close()
		pr.OK = true
	}
	p.add(pr)
}

func sortProbes(ps []Probe) []Probe {
	order := map[string]int{"dns": 0, "resolve": 1, "resolve-native": 1, "tcp": 2, "proxy": 3, "tls": 4, "http": 5, "http-direct": 5, "http-via-proxy": 5, "goproxy": 6, "sumdb": 7, "listen": 8}
	out := append([]Probe(nil), ps...)
	// Stable insertion sort by (target, kind, start): small n.
	less := func(a, b Probe) bool {
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if order[a.Kind] != order[b.Kind] {
			return order[a.Kind] < order[b.Kind]
		}
		return a.started.Before(b.started)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && less(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
