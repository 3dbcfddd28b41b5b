package doctor

import (
	"bufio"
	"bytes"
	"strings"
)

// NSSwitch is the "hosts:" line of /etc/nsswitch.conf as Go reads it (src/net/nss.go).
type NSSwitch struct {
	// Found reports that the file had a hosts line. Without one Go uses files,dns.
	Found bool `json:"found"`
	// Sources are the hosts sources in order, with criteria as written, e.g. "dns [!UNAVAIL=return]".
	Sources []string `json:"sources,omitempty"`
	// Order is the order Go's own resolver uses: "files,dns", "dns,files", "files", "dns".
	Order string `json:"order"`
	// CgoReasons lists what would make a cgo-enabled Go program hand
	// lookups to libc instead (unknown sources, non-default criteria, mdns, myhostname).
	CgoReasons []string `json:"cgo_reasons,omitempty"`
}

// ParseNSSwitch parses nsswitch.conf content and derives the lookup order
// Go's resolver (the one a CGO_ENABLED=0 binary always uses) applies to an
// ordinary host name. It never fails.
func ParseNSSwitch(data []byte) NSSwitch {
	ns := NSSwitch{Order: "files,dns"}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(scanLinesLenient)
	type src struct {
		name     string
		criteria bool
		defaults bool
	}
	var srcs []src
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		colon := strings.IndexByte(line, ':')
		if colon == -1 {
			continue
		}
		if strings.TrimSpace(line[:colon]) != "hosts" {
			continue
		}
		ns.Found = true
		ns.Sources = nil
		srcs = nil
		rest := strings.TrimSpace(line[colon+1:])
		for rest != "" && len(srcs) < 32 {
			sp := strings.IndexAny(rest, " \t[")
			var name string
			if sp == -1 {
				name, rest = rest, ""
			} else {
				name, rest = rest[:sp], strings.TrimLeft(rest[sp:], " \t")
			}
			s := src{name: strings.ToLower(name), defaults: true}
			shown := name
			if strings.HasPrefix(rest, "[") {
				end := strings.IndexByte(rest, ']')
				if end == -1 {
					// Go's parser gives up on the line: treat as unparsable.
					ns.CgoReasons = append(ns.CgoReasons, "unterminated [criteria] in hosts line")
					rest = ""
					s.criteria = true
				} else {
					crit := rest[1:end]
					shown += " [" + crit + "]"
					s.criteria = true
					s.defaults = defaultCriteria(s.name, crit)
					rest = strings.TrimLeft(rest[end+1:], " \t")
				}
			}
			if name != "" {
				srcs = append(srcs, s)
				ns.Sources = append(ns.Sources, clip(shown, 80))
			}
		}
	}
	if !ns.Found || len(srcs) == 0 {
		ns.Order = "files,dns"
		return ns
	}
	var filesSeen, dnsSeen, dnsFirst bool
	for _, s := range srcs {
		switch s.name {
		case "files", "dns":
			if !s.defaults {
				ns.CgoReasons = append(ns.CgoReasons, "non-default criteria on "+s.name)
			}
			if s.name == "files" {
				filesSeen = true
			} else {
				if !filesSeen {
					dnsFirst = true
				}
				dnsSeen = true
			}
		case "myhostname":
			ns.CgoReasons = append(ns.CgoReasons, "myhostname (for localhost and the own hostname)")
		default:
			if strings.HasPrefix(s.name, "mdns") {
				ns.CgoReasons = append(ns.CgoReasons, s.name+" (for .local names)")
			} else {
				ns.CgoReasons = append(ns.CgoReasons, "source "+clip(s.name, 40))
			}
		}
		if len(ns.CgoReasons) > 16 {
			ns.CgoReasons = ns.CgoReasons[:16]
		}
	}
	switch {
	case filesSeen && dnsSeen && dnsFirst:
		ns.Order = "dns,files"
	case filesSeen && dnsSeen:
		ns.Order = "files,dns"
	case filesSeen:
		// Without cgo an unknown source counts as dns when no real dns is listed.
		other := false
		for _, s := range srcs {
			if s.name != "files" && s.name != "myhostname" {
				other = true
			}
		}
		if other {
			ns.Order = "files,dns"
		} else {
			ns.Order = "files"
		}
	case dnsSeen:
		ns.Order = "dns"
	default:
		ns.Order = "dns"
	}
	return ns
}

// defaultCriteria reports whether crit is the default action set for a
// source, which Go accepts; anything else makes Go defer to libc.
func defaultCriteria(name, crit string) bool {
	for _, c := range strings.Fields(crit) {
		neg := strings.HasPrefix(c, "!")
		c = strings.TrimPrefix(c, "!")
		k, v, ok := strings.Cut(c, "=")
		if !ok {
			return false
		}
		k, v = strings.ToUpper(k), strings.ToLower(v)
		// The only criterion Go treats as default is success=return
		// (and for "files", notfound=continue, the default behaviour).
		switch {
		case !neg && k == "SUCCESS" && v == "return":
		case !neg && k == "NOTFOUND" && v == "continue" && name != "dns":
		case !neg && (k == "UNAVAIL" || k == "TRYAGAIN") && v == "continue":
		default:
			return false
		}
	}
	return true
}
