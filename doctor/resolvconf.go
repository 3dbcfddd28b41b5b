package doctor

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"time"
)

// ResolvConf is /etc/resolv.conf as Go's own resolver reads it (src/net/dnsconfig_unix.go).
type ResolvConf struct {
	// Nameservers are the servers Go will query, at most three, each an IP
	// literal with ":53" appended. When the file names none, Go uses
	// 127.0.0.1:53 and [::1]:53 and Defaulted is true.
	Nameservers []string `json:"nameservers"`
	// Defaulted reports that no usable nameserver was found and Go's default
	// (127.0.0.1:53, [::1]:53) applies.
	Defaulted bool `json:"defaulted,omitempty"`
	// Ignored lists nameserver lines Go drops: beyond the third, or not an IP literal.
	Ignored []string `json:"ignored_nameservers,omitempty"`
	// Search is the search list (last "search" or "domain" line wins; "." dropped).
	Search []string `json:"search"`
	// Ndots, Timeout and Attempts default to 1, 5s and 2.
	Ndots    int           `json:"ndots"`
	Timeout  time.Duration `json:"timeout_ns"`
	Attempts int           `json:"attempts"`
	// Options lists the options Go understood (rotate, use-vc, single-request, ...).
	Options []string `json:"options,omitempty"`
	// UnknownOptions lists options and directives Go does not know. Any of
	// them makes a cgo-enabled Go program hand lookups to libc.
	UnknownOptions []string `json:"unknown_options,omitempty"`
	// Docker holds the trailer comments Docker's embedded DNS writes
	// ("# ExtServers: [...]", "# Based on host file: ...").
	Docker []string `json:"docker_comments,omitempty"`
	// Lines is the number of lines read; Truncated reports that the file was
	// larger than the doctor reads.
	Lines     int  `json:"lines"`
	Truncated bool `json:"truncated,omitempty"`
}

// maxLine bounds the length of one line read from a configuration file.
const maxLine = 64 << 10

// ParseResolvConf parses resolv.conf content with Go's rules. It never fails:
// whatever cannot be understood is recorded in the result.
func ParseResolvConf(data []byte) ResolvConf {
	rc := ResolvConf{Ndots: 1, Timeout: 5 * time.Second, Attempts: 2}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(scanLinesLenient)
	for sc.Scan() {
		rc.Lines++
		line := sc.Text()
		if len(line) > 0 && (line[0] == ';' || line[0] == '#') {
			if c := strings.TrimSpace(line[1:]); isDockerComment(c) && len(rc.Docker) < 16 {
				rc.Docker = append(rc.Docker, c)
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 1 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				if len(rc.Nameservers) >= 3 {
					rc.addIgnored(f[1] + " (only the first 3 count)")
					break
				}
				if a, err := netip.ParseAddr(f[1]); err == nil {
					rc.Nameservers = append(rc.Nameservers, netip.AddrPortFrom(a, 53).String())
				} else {
					rc.addIgnored(f[1] + " (not an IP address)")
				}
			}
		case "domain":
			if len(f) > 1 {
				rc.Search = ensureRooted(f[1:2])
			}
		case "search":
			var s []string
			for _, d := range f[1:] {
				if d == "." {
					continue
				}
				s = append(s, d)
			}
			rc.Search = ensureRooted(s)
		case "options":
			for _, s := range f[1:] {
				rc.option(s)
			}
		default:
			rc.addUnknown(f[0])
		}
	}
	if len(rc.Nameservers) == 0 {
		rc.Nameservers = []string{"127.0.0.1:53", "[::1]:53"}
		rc.Defaulted = true
	}
	return rc
}

func (rc *ResolvConf) option(s string) {
	switch {
	case strings.HasPrefix(s, "ndots:"):
		n, _, _ := dtoi(s[6:])
		if n < 0 {
			n = 0
		} else if n > 15 {
			n = 15
		}
		rc.Ndots = n
	case strings.HasPrefix(s, "timeout:"):
		n, _, _ := dtoi(s[8:])
		if n < 1 {
			n = 1
		}
		rc.Timeout = time.Duration(n) * time.Second
	case strings.HasPrefix(s, "attempts:"):
		n, _, _ := dtoi(s[9:])
		if n < 1 {
			n = 1
		}
		rc.Attempts = n
	case s == "rotate", s == "single-request", s == "single-request-reopen", s == "use-vc", s == "usevc",
		s == "tcp", s == "trust-ad", s == "edns0", s == "no-reload":
		rc.addOpt(s)
	default:
		rc.addUnknown("options " + s)
	}
}

func (rc *ResolvConf) addOpt(s string) {
	if len(rc.Options) < 32 {
		rc.Options = append(rc.Options, s)
	}
}

func (rc *ResolvConf) addUnknown(s string) {
	if len(rc.UnknownOptions) < 16 {
		rc.UnknownOptions = append(rc.UnknownOptions, clip(s, 80))
	}
}

func (rc *ResolvConf) addIgnored(s string) {
	if len(rc.Ignored) < 16 {
		rc.Ignored = append(rc.Ignored, clip(s, 80))
	}
}

// dtoi mirrors net's decimal parser: it stops at the first non-digit and
// saturates on overflow, so "ndots:99999999999" reads as a large number.
func dtoi(s string) (n int, i int, ok bool) {
	const big = 0xFFFFFF
	n = 0
	for i = 0; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		if n >= big {
			return big, i, false
		}
	}
	if i == 0 {
		return 0, 0, false
	}
	return n, i, true
}

func isDockerComment(c string) bool {
	for _, p := range []string{"ExtServers:", "Based on host file:", "Overrides:", "Option ndots from:", "Used default nameservers", "NDots from:"} {
		if strings.HasPrefix(c, p) {
			return true
		}
	}
	return false
}

func ensureRooted(s []string) []string {
	out := make([]string, 0, len(s))
	for _, d := range s {
		if len(out) >= 32 {
			break
		}
		d = clip(d, 253)
		if !strings.HasSuffix(d, ".") {
			d += "."
		}
		out = append(out, d)
	}
	return out
}

// NameList returns the names Go's resolver tries for name, in order
// (src/net/dnsclient_unix.go nameList): a rooted name alone; a name with at
// least ndots dots as given first, then with each suffix; otherwise the
// suffixes first and the bare name last.
func (rc ResolvConf) NameList(name string) []string {
	if name == "" {
		return nil
	}
	if strings.HasSuffix(name, ".") {
		return []string{name}
	}
	if strings.HasSuffix(name, ".onion") {
		return nil
	}
	hasNdots := strings.Count(name, ".") >= rc.Ndots
	rooted := name + "."
	var names []string
	if hasNdots {
		names = append(names, rooted)
	}
	for _, s := range rc.Search {
		names = append(names, rooted+s)
	}
	if !hasNdots {
		names = append(names, rooted)
	}
	return names
}

// scanLinesLenient splits on \n like bufio.ScanLines but, instead of failing
// on a line longer than the buffer, cuts it: a garbage file must not stop the
// parse.
func scanLinesLenient(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte("\r")), nil
	}
	if atEOF {
		return len(data), data, nil
	}
	if len(data) >= maxLine-1 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
