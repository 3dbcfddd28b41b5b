package doctor

import (
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
)

// netrcLine is one machine of a netrc file.
type netrcLine struct{ machine, login, password string }

// parseNetrc reads netrc content the way the go command does
// (cmd/go/internal/auth/netrc.go): machine, login and password tokens, a
// "default" entry ends the file, macdef bodies are skipped, and only
// entries with all three are kept.
func parseNetrc(data string) []netrcLine {
	var out []netrcLine
	var l netrcLine
	inMacro := false
	for _, line := range strings.Split(data, "\n") {
		if inMacro {
			if line == "" {
				inMacro = false
			}
			continue
		}
		f := strings.Fields(line)
		i := 0
		for ; i < len(f)-1; i += 2 {
			switch f[i] {
			case "machine":
				l = netrcLine{machine: f[i+1]}
			case "default":
				return out
			case "login":
				l.login = f[i+1]
			case "password":
				l.password = f[i+1]
			case "macdef":
				inMacro = true
			}
			if l.machine != "" && l.login != "" && l.password != "" {
				out = append(out, l)
				l = netrcLine{}
			}
		}
		if i < len(f) && f[i] == "default" {
			return out
		}
	}
	return out
}

// netrcPath is the file the go command reads: $NETRC, else _netrc (when it
// exists, on Windows) or .netrc in the home directory.
func netrcPath(o *Options, r *reader) string {
	if v := o.getenv("NETRC"); v != "" {
		return v
	}
	home := o.getenv("HOME")
	if runtime.GOOS == "windows" {
		home = o.getenv("USERPROFILE")
		if home != "" {
			p := filepath.Join(home, "_netrc")
			if _, _, err := r.read(p); err == nil {
				return p
			}
		}
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".netrc")
}

// credentials are the GOAUTH credentials the go command would send: with
// GOAUTH unset or "netrc", the netrc file's machines, matched against the
// URL without its scheme, its path trimmed one element at a time, so a
// machine must name the port when the URL has one (host:port).
type credentials struct {
	// Source says where the credentials come from, for the evidence:
	// "GOAUTH=off", "netrc /root/.netrc (2 machines)", "no netrc file".
	Source   string
	machines map[string]netrcLine
	// Machines lists the machine names, for a mismatch hint.
	Machines []string
}

func loadCredentials(o *Options, r *reader) credentials {
	ga := strings.TrimSpace(o.getenv("GOAUTH"))
	if ga == "off" {
		return credentials{Source: "GOAUTH=off"}
	}
	if ga != "" && !strings.Contains(";"+strings.ReplaceAll(ga, " ", "")+";", ";netrc;") {
		return credentials{Source: "GOAUTH=" + clip(ga, 100) + " (a command the doctor does not run)"}
	}
	p := netrcPath(o, r)
	if p == "" {
		return credentials{Source: "no netrc file (HOME unset)"}
	}
	data, _, err := r.read(p)
	if err != nil {
		return credentials{Source: "no netrc file at " + p}
	}
	c := credentials{machines: map[string]netrcLine{}}
	lines := parseNetrc(string(data))
	for i := len(lines) - 1; i >= 0; i-- { // the first entry for a machine wins
		c.machines[lines[i].machine] = lines[i]
	}
	for _, l := range lines {
		c.Machines = appendUniq(c.Machines, l.machine)
	}
	c.Source = "netrc " + p
	return c
}

// add sets the Authorization header the go command would send for req (an
// https URL) and returns the machine that matched, or "".
func (c *credentials) add(req *http.Request) string {
	if req.URL.Scheme != "https" || len(c.machines) == 0 {
		return ""
	}
	prefix := strings.TrimSuffix(strings.TrimPrefix(req.URL.String(), "https://"), "/")
	for {
		if l, ok := c.machines[prefix]; ok {
			req.SetBasicAuth(l.login, l.password)
			return prefix
		}
		i := strings.LastIndexByte(prefix, '/')
		if i < 0 {
			return ""
		}
		prefix = prefix[:i]
	}
}
