package doctor

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
)

// HostsEntry is one address of /etc/hosts with its names.
type HostsEntry struct {
	Addr  string   `json:"addr"`
	Names []string `json:"names"`
}

// ParseHosts parses /etc/hosts content as Go does (src/net/hosts.go): comments
// after '#', an IP literal then names; lines with an invalid address are
// skipped. It returns at most 1024 entries and never fails.
func ParseHosts(data []byte) (entries []HostsEntry, skipped int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(scanLinesLenient)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			if len(f) == 1 {
				skipped++
			}
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			skipped++
			continue
		}
		if len(entries) >= 1024 {
			skipped++
			continue
		}
		names := f[1:]
		if len(names) > 16 {
			names = names[:16]
		}
		for i := range names {
			names[i] = clip(strings.ToLower(names[i]), 253)
		}
		entries = append(entries, HostsEntry{Addr: a.String(), Names: names})
	}
	return entries, skipped
}

// Listener is one listening TCP socket from /proc/net/tcp or tcp6.
type Listener struct {
	Addr string `json:"addr"` // "127.0.0.1:8080", "[::]:443"
	Port int    `json:"port"`
	// Loopback reports that the socket accepts only loopback connections.
	Loopback bool `json:"loopback,omitempty"`
	// Any reports a wildcard address (0.0.0.0 or ::).
	Any bool `json:"any,omitempty"`
}

// ParseProcNetTCP returns the LISTEN sockets (st 0A) of /proc/net/tcp or
// /proc/net/tcp6 content. IPv4 addresses are little-endian hex; IPv6 ones
// are four little-endian 32-bit words. Malformed lines are counted in bad.
func ParseProcNetTCP(data []byte) (ls []Listener, bad int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(scanLinesLenient)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			if strings.Contains(line, "local_address") {
				continue
			}
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			if len(f) > 0 {
				bad++
			}
			continue
		}
		if f[3] != "0A" {
			continue
		}
		ap, ok := parseHexAddrPort(f[1])
		if !ok {
			bad++
			continue
		}
		if len(ls) >= 4096 {
			continue
		}
		a := ap.Addr().Unmap()
		ls = append(ls, Listener{Addr: netip.AddrPortFrom(a, ap.Port()).String(), Port: int(ap.Port()),
			Loopback: a.IsLoopback(), Any: a.IsUnspecified()})
	}
	return ls, bad
}

func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok || len(p) != 4 {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return netip.AddrPort{}, false
	}
	switch len(b) {
	case 4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}), uint16(port)), true
	case 16:
		var a [16]byte
		for w := 0; w < 4; w++ {
			for i := 0; i < 4; i++ {
				a[w*4+i] = b[w*4+3-i]
			}
		}
		return netip.AddrPortFrom(netip.AddrFrom16(a), uint16(port)), true
	}
	return netip.AddrPort{}, false
}

// Route summarises /proc/net/route and /proc/net/ipv6_route.
type Route struct {
	Iface   string `json:"iface"`
	Dest    string `json:"dest"`
	Gateway string `json:"gateway,omitempty"`
	Default bool   `json:"default,omitempty"`
}

// ParseProcNetRoute parses /proc/net/route content (IPv4, little-endian hex).
func ParseProcNetRoute(data []byte) (rs []Route, bad int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(scanLinesLenient)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] == "Iface" {
			if len(f) > 0 && f[0] != "Iface" {
				bad++
			}
			continue
		}
		d, ok1 := hexLE4(f[1])
		g, ok2 := hexLE4(f[2])
		m, ok3 := hexLE4(f[7])
		if !ok1 || !ok2 || !ok3 {
			bad++
			continue
		}
		if len(rs) >= 1024 {
			continue
		}
		bits := 0
		for _, x := range m.As4() {
			for i := 7; i >= 0 && x&(1<<i) != 0; i-- {
				bits++
			}
		}
		r := Route{Iface: clip(f[0], 32), Dest: netip.PrefixFrom(d, bits).String(), Default: bits == 0}
		if !g.IsUnspecified() {
			r.Gateway = g.String()
		}
		rs = append(rs, r)
	}
	return rs, bad
}

// ParseProcNetIPv6Route parses /proc/net/ipv6_route content (big-endian hex).
func ParseProcNetIPv6Route(data []byte) (rs []Route, bad int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(scanLinesLenient)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			if len(f) > 0 {
				bad++
			}
			continue
		}
		db, err1 := hex.DecodeString(f[0])
		pl, err2 := strconv.ParseUint(f[1], 16, 8)
		gb, err3 := hex.DecodeString(f[4])
		if err1 != nil || err2 != nil || err3 != nil || len(db) != 16 || len(gb) != 16 || pl > 128 {
			bad++
			continue
		}
		iface := f[len(f)-1]
		if iface == "lo" || len(rs) >= 1024 {
			continue
		}
		d := netip.AddrFrom16([16]byte(db))
		g := netip.AddrFrom16([16]byte(gb))
		r := Route{Iface: clip(iface, 32), Dest: netip.PrefixFrom(d, int(pl)).String(), Default: pl == 0}
		if !g.IsUnspecified() {
			r.Gateway = g.String()
		}
		rs = append(rs, r)
	}
	return rs, bad
}

func hexLE4(s string) (netip.Addr, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}), true
}

// ParseCPUMax parses cgroup v2 cpu.max ("max 100000" or "200000 100000")
// and returns the CPU limit in CPUs, 0 when unlimited.
func ParseCPUMax(data []byte) (cpus float64, ok bool) {
	f := strings.Fields(string(firstLine(data)))
	if len(f) < 1 {
		return 0, false
	}
	if f[0] == "max" {
		return 0, true
	}
	q, err := strconv.ParseFloat(f[0], 64)
	if err != nil || q <= 0 {
		return 0, false
	}
	period := 100000.0
	if len(f) > 1 {
		if p, err := strconv.ParseFloat(f[1], 64); err == nil && p > 0 {
			period = p
		}
	}
	return q / period, true
}

// ParseMemMax parses cgroup memory.max (v2) or memory.limit_in_bytes (v1).
// It returns 0 for no limit ("max", or the v1 "unlimited" near-MaxInt64 value).
func ParseMemMax(data []byte) (limit int64, ok bool) {
	s := strings.TrimSpace(string(firstLine(data)))
	if s == "max" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	if n >= 1<<62 {
		return 0, true
	}
	return n, true
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 256 {
		b = b[:256]
	}
	return b
}
