package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as indented JSON (schema in docs/doctor-json.md).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people: the verdict, findings with the
// root cause first, the path diagram and timing waterfall of each target,
// then the probes and the main facts.
func (r *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	errs, warns := 0, 0
	for _, f := range r.Findings {
		switch f.Severity {
		case SevError:
			errs++
		case SevWarn:
			warns++
		}
	}
	verdict := "healthy"
	if errs > 0 {
		verdict = "BROKEN"
	}
	okN := 0
	for _, p := range r.Probes {
		if p.OK {
			okN++
		}
	}
	fmt.Fprintf(b, "berth doctor: %s: %d error(s), %d warning(s); %d of %d probes passed in %.0f ms (timeout %.0f ms)\n",
		verdict, errs, warns, okN, len(r.Probes), r.DurationMS, r.TimeoutMS)
	f := &r.Facts
	rt := f.Container.Runtime
	if rt == "" {
		rt = "none detected"
	}
	fmt.Fprintf(b, "  %s/%s, container: %s, resolver: %s (%s), nameservers %s, search %v, ndots:%d, CA roots: %s, proxy: %s\n",
		f.OS, f.Arch, rt, f.Resolver.Mode, f.Resolver.Order, strings.Join(f.ResolvConf.Nameservers, " "), f.ResolvConf.Search,
		f.ResolvConf.Ndots, rootsStr(f.CA), proxyStr(f.Proxy))
	var passed, failed []string
	for _, t := range r.Targets {
		n, bad := 0, 0
		var kinds []string
		for _, p := range r.Probes {
			if p.Target != t.Input {
				continue
			}
			n++
			if !p.OK {
				bad++
			} else {
				kinds = appendUniq(kinds, p.Kind)
			}
		}
		switch {
		case n > 0 && bad == 0:
			passed = append(passed, fmt.Sprintf("%s (%s)", t.Input, strings.Join(kinds, ", ")))
		case bad > 0:
			failed = append(failed, t.Input)
		}
	}
	if len(passed) > 0 {
		fmt.Fprintf(b, "  passed: %s\n", strings.Join(passed, "; "))
	}
	if len(failed) > 0 {
		fmt.Fprintf(b, "  failed: %s\n", strings.Join(failed, "; "))
	}
	if len(r.Findings) > 0 {
		fmt.Fprintf(b, "\nFindings (root causes first):\n")
		for i, fd := range r.Findings {
			fmt.Fprintf(b, "\n%d. [%s] %s: %s\n", i+1, strings.ToUpper(string(fd.Severity)), fd.ID, fd.Summary)
			fmt.Fprintf(b, "   why: %s\n", fd.Cause)
			for _, e := range fd.Evidence {
				fmt.Fprintf(b, "   seen: %s\n", e)
			}
			for _, c := range fd.Explains {
				id := c.ID
				if id != "" {
					id += ": "
				}
				fmt.Fprintf(b, "   explains: %s%s\n", id, c.Summary)
			}
			for _, x := range fd.Fix {
				fmt.Fprintf(b, "   fix: %s\n", x)
			}
		}
	} else {
		fmt.Fprintf(b, "\nNo findings.\n")
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(b, "\nPaths:\n")
		for _, t := range r.Targets {
			fmt.Fprintf(b, "  %s\n", r.pathDiagram(t))
			for _, p := range r.Probes {
				if p.Target == t.Input && p.Timings != nil && (p.Kind == "http" || p.Kind == "goproxy" || p.Kind == "sumdb") {
					b.WriteString(waterfall(p))
				}
			}
		}
	}
	fmt.Fprintf(b, "\nProbes:\n")
	for _, p := range r.Probes {
		mark := "ok  "
		switch {
		case p.Skipped != "":
			mark = "skip"
		case !p.OK:
			mark = "FAIL"
		}
		what := p.Server
		if p.Name != "" {
			if what != "" {
				what += " "
			}
			what += p.Name
		}
		line := fmt.Sprintf("  %s %-8s %s", mark, p.Kind, what)
		if p.Status != 0 {
			line += fmt.Sprintf(" -> %d", p.Status)
		}
		if len(p.Addrs) > 0 {
			line += fmt.Sprintf(" -> %v", p.Addrs)
		}
		line += fmt.Sprintf(" (%.0f ms)", p.DurationMS)
		if p.Error != "" {
			line += ": " + p.Error
		}
		if p.Skipped != "" {
			line += ": " + p.Skipped
		}
		fmt.Fprintln(b, line)
	}
	if len(f.Unreadable) > 0 {
		fmt.Fprintf(b, "\nCould not read:\n")
		for _, u := range f.Unreadable {
			fmt.Fprintf(b, "  %s: %s\n", u.Path, u.Error)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func rootsStr(ca CAFacts) string {
	if ca.Custom {
		return "custom pool"
	}
	for _, f := range ca.Files {
		if f.Used {
			return fmt.Sprintf("%d (%s)", ca.Loaded, f.Path)
		}
	}
	return fmt.Sprintf("%d", ca.Loaded)
}

func proxyStr(p ProxyFacts) string {
	if p.HTTPSProxy == "" && p.HTTPProxy == "" {
		return "none"
	}
	s := "https=" + p.HTTPSProxy
	if p.HTTPProxy != "" {
		s += " http=" + p.HTTPProxy
	}
	if p.NoProxy != "" {
		s += " no_proxy=" + p.NoProxy
	}
	return s
}

// pathDiagram draws app -> resolver -> proxy -> upstream with each hop's result.
func (r *Report) pathDiagram(t Target) string {
	hop := func(name string, ok *bool, ms float64) string {
		switch {
		case ok == nil:
			return name
		case *ok:
			return fmt.Sprintf("%s [ok %.0fms]", name, ms)
		}
		return fmt.Sprintf("%s [FAIL]", name)
	}
	parts := []string{"app"}
	var via string
	var resolve, tcp, tls, req *Probe
	for i := range r.Probes {
		p := &r.Probes[i]
		if p.Target != t.Input {
			continue
		}
		switch p.Kind {
		case "resolve":
			resolve = p
		case "tcp":
			if tcp == nil || p.OK {
				tcp = p
			}
			if p.Via != "" {
				via = p.Via
			}
		case "tls":
			tls = p
		case "http", "goproxy":
			if req == nil {
				req = p
			}
		}
	}
	if resolve != nil {
		name := "resolver " + resolve.Server
		if resolve.Server == "go resolver" && len(r.Facts.ResolvConf.Nameservers) > 0 {
			name = "resolver (go, " + r.Facts.ResolvConf.Nameservers[0] + ")"
		}
		parts = append(parts, hop(name, &resolve.OK, resolve.DurationMS))
	}
	if via != "" && tcp != nil {
		parts = append(parts, hop("proxy "+tcp.Server, &tcp.OK, tcp.DurationMS))
	} else if tcp != nil {
		parts = append(parts, hop("tcp "+tcp.Server, &tcp.OK, tcp.DurationMS))
	}
	if tls != nil {
		parts = append(parts, hop("tls "+t.Host, &tls.OK, tls.DurationMS))
	}
	up := t.Host + ":" + t.Port
	if req != nil {
		ok := req.OK
		s := hop(up, &ok, req.DurationMS)
		if req.Status != 0 {
			s = fmt.Sprintf("%s [%d %.0fms]", up, req.Status, req.DurationMS)
		}
		parts = append(parts, s)
	} else {
		parts = append(parts, up)
	}
	return t.Input + ": " + strings.Join(parts, " -> ")
}

// waterfall draws the HTTP phases of one request on a 40-column scale.
func waterfall(p Probe) string {
	tm := p.Timings
	total := p.DurationMS
	if total <= 0 {
		return ""
	}
	const width = 40
	col := func(v float64) int {
		c := int(v / total * width)
		if c > width {
			c = width
		}
		if c < 0 {
			c = 0
		}
		return c
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "    %s (%.0f ms)\n", p.Name, total)
	row := func(name string, from, to float64) {
		if to <= 0 && from <= 0 {
			return
		}
		if to <= 0 {
			to = total
			name += " (unfinished)"
		}
		a, z := col(from), col(to)
		if z <= a {
			z = a + 1
		}
		fmt.Fprintf(b, "      %-20s |%s%s%s| %6.0f ms\n", name, strings.Repeat(" ", a), strings.Repeat("=", z-a), strings.Repeat(" ", max(0, width-z)), to-from)
	}
	row("dns", tm.DNSStart, tm.DNSDone)
	row("connect", tm.ConnectStart, tm.ConnectDone)
	row("tls", tm.TLSStart, tm.TLSDone)
	if tm.WroteRequest > 0 {
		row("wait (ttfb)", tm.WroteRequest, tm.FirstByte)
	}
	if tm.FirstByte > 0 {
		row("transfer", tm.FirstByte, tm.Done)
	}
	return b.String()
}
