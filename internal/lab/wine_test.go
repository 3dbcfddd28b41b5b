package lab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/doctor"
)

var (
	wineOnce  sync.Once
	wine      *Wine
	wineSkip  string
	wineSetup time.Duration
)

// setupWine finds wine and the stub DLL, builds berth.exe and boots one
// prefix, once for the test binary.
func setupWine(t *testing.T) *Wine {
	t.Helper()
	if labSkip != "" {
		t.Skip("fault lab skipped: " + labSkip)
	}
	wineOnce.Do(func() {
		w, why := FindWine()
		if w == nil {
			wineSkip = why
			return
		}
		dir := filepath.Join(labDir, "wine") // removed with the lab's directory
		if err := os.MkdirAll(dir, 0o755); err != nil {
			wineSkip = err.Error()
			return
		}
		start := time.Now()
		if err := w.Setup(dir, "../../cmd/berth"); err != nil {
			wineSkip = "wine setup failed: " + err.Error()
			return
		}
		wineSetup = time.Since(start)
		wine = w
	})
	if wine == nil {
		t.Skip("wine runs skipped: " + wineSkip)
	}
	return wine
}

// wineScenario is a fault-lab scenario for berth.exe under wine.
type wineScenario struct {
	name, want string
	sev        doctor.Severity
	resolv     string
	servers    Config
	etc        map[string]string // extra /etc files of the client namespace
	reg        [][]string
	env        []string
	args       []string
	check      func(t *testing.T, r *doctor.Report, text string)
}

func wineScenarios() []wineScenario {
	return []wineScenario{
		{name: "wine-tcp-refused", want: "tcp.refused", args: []string{"https://" + ServerIP + ":8001/"},
			check: func(t *testing.T, r *doctor.Report, text string) {
				probeErrHas(t, r, "tcp", "connectex")
				fixHas(t, r, "tcp.refused", "Test-NetConnection")
			}},
		{name: "wine-dns-port-closed", want: "dns.server-port-closed", resolv: "nameserver " + AltIP + "\n", args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report, text string) {
				if r.Facts.ResolvConfRead != "GetAdaptersAddresses" || len(r.Facts.ResolvConf.Nameservers) == 0 || r.Facts.ResolvConf.Nameservers[0] != AltIP+":53" {
					t.Errorf("want the nameserver from GetAdaptersAddresses: %s %v", r.Facts.ResolvConfRead, r.Facts.ResolvConf.Nameservers)
				}
				evidenceHas(t, r, "dns.server-port-closed", "GetAdaptersAddresses")
			}},
		{name: "wine-dns-dead-nameserver", want: "dns.server-unreachable", resolv: "nameserver " + DeadIP + "\n", args: []string{webURL}},
		{name: "wine-tls-unknown-authority-system-store", want: "tls.unknown-authority", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report, text string) {
				if r.Facts.CA.System != "windows" || len(r.Facts.CA.Files) != 0 {
					t.Errorf("want the Windows certificate store and no Unix CA files: %+v", r.Facts.CA)
				}
				if strings.Contains(text, "/etc/ssl") || strings.Contains(text, "apt-get") {
					t.Errorf("the Windows report names Unix CA paths or apt-get:\n%s", text)
				}
				fixHas(t, r, "tls.unknown-authority", "Import-Certificate")
			}},
		{name: "wine-proxy-down", want: "proxy.unreachable", servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}},
			env: []string{"HTTPS_PROXY=http://" + ServerIP + ":3128"}, args: []string{webURL},
			check: func(t *testing.T, r *doctor.Report, text string) {
				summaryHas(t, r, "proxy.unreachable", "HTTPS_PROXY=http://"+ServerIP+":3128")
			}},
		{name: "wine-proxy-needs-auth", want: "proxy.auth-required",
			servers: Config{HTTPS: []HTTPConfig{web(pki.Web)}, Proxy: []ProxyConfig{{Addr: ServerIP + ":3128", Auth: "u:p"}}},
			env:     []string{"HTTPS_PROXY=http://" + ServerIP + ":3128"}, args: []string{webURL}},
		{name: "wine-windows-proxy-settings-ignored", want: "proxy.windows-settings-ignored", sev: doctor.SevWarn,
			reg: [][]string{
				{"add", `HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings`, "/v", "ProxyEnable", "/t", "REG_DWORD", "/d", "1", "/f"},
				{"add", `HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings`, "/v", "ProxyServer", "/t", "REG_SZ", "/d", "squid.example.test:3128", "/f"},
			},
			check: func(t *testing.T, r *doctor.Report, text string) {
				fixHas(t, r, "proxy.windows-settings-ignored", `$env:HTTPS_PROXY="http://squid.example.test:3128"`)
			}},
		{name: "wine-direct-without-git", want: "goproxy.direct-without-vcs", env: []string{"GOPROXY=direct"},
			check: func(t *testing.T, r *doctor.Report, text string) {
				fixHas(t, r, "goproxy.direct-without-vcs", "Git for Windows")
				if strings.Contains(text, "apt-get") {
					t.Errorf("the Windows report says apt-get:\n%s", text)
				}
			}},
	}
}

// TestWineLab runs the Windows build under wine in the lab's namespaces,
// for the DNS, TCP, TLS and proxy classes, and holds it to the lab's rule:
// the fault named first, the doctor within --timeout + 1 s (its own
// duration; the wall time may add wine's start-up, measured beside it).
func TestWineLab(t *testing.T) {
	w := setupWine(t)
	t.Logf("wine prefix booted and berth.exe built in %v", wineSetup.Round(time.Millisecond))
	for _, sc := range wineScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			runWine(t, w, sc)
		})
	}
}

func runWine(t *testing.T, w *Wine, sc wineScenario) {
	p := NewPair(t, true)
	resolv := sc.resolv
	if resolv == "" {
		resolv = "nameserver " + ServerIP + "\n"
	}
	p.EtcFile("resolv.conf", resolv)
	p.EtcFile("hosts", "127.0.0.1 localhost\n")
	for k, v := range sc.etc {
		p.EtcFile(k, v)
	}
	cfg := sc.servers
	cfg.DNS = append(cfg.DNS, DNSConfig{Addr: ServerIP, Records: records})
	p.StartServers(p.Server, selfBin, cfg)
	const timeout = 3 * time.Second
	env := append([]string{"GOPROXY=off", "GOSUMDB=off", "GOMEMLIMIT=1GiB"}, sc.env...)
	res := w.RunDoctor(p, env, append([]string{"--json", "--timeout", timeout.String()}, sc.args...), sc.reg...)
	var rep doctor.Report
	if err := json.Unmarshal(res.Stdout, &rep); err != nil {
		t.Fatalf("berth.exe output is not JSON (%v); exit %d\nstdout: %s\nstderr: %s", err, res.Code, res.Stdout, lastLines(res.Stderr, 30))
	}
	if rep.Facts.OS != "windows" {
		t.Fatalf("the report is from %s, not windows", rep.Facts.OS)
	}
	if d := time.Duration(rep.DurationMS * float64(time.Millisecond)); d > timeout+time.Second {
		t.Errorf("doctor took %v, want <= %v (--timeout + 1s)", d, timeout+time.Second)
	}
	if res.Wall > timeout+time.Second+res.Startup {
		t.Errorf("wall %v, want <= --timeout + 1s + wine start-up (%v)", res.Wall, res.Startup)
	}
	ids := summary(&rep)
	var first *doctor.Finding
	for i := range rep.Findings {
		if rep.Findings[i].Severity == doctor.SevError {
			first = &rep.Findings[i]
			break
		}
	}
	switch {
	case sc.sev == doctor.SevWarn:
		if first != nil {
			t.Errorf("want no error finding, got %s", ids)
		}
		if findingByID(&rep, sc.want) == nil {
			t.Errorf("want warning %s; findings %s", sc.want, ids)
		}
	case first == nil || first.ID != sc.want:
		t.Errorf("first error finding: want %s; findings %s", sc.want, ids)
	}
	text, _ := json.MarshalIndent(rep.Findings, "", " ")
	if sc.check != nil {
		sc.check(t, &rep, string(text))
	}
	t.Logf("wine: doctor %.0f ms, wall %v (start-up %v), findings %s", rep.DurationMS, res.Wall.Round(time.Millisecond), res.Startup.Round(time.Millisecond), ids)
	if testing.Verbose() {
		// The text report, as a person on Windows would read it.
		tr := w.RunDoctor(p, env, append([]string{"--timeout", timeout.String()}, sc.args...), sc.reg...)
		t.Logf("text report:\n%s", tr.Stdout)
	}
	if t.Failed() || testing.Verbose() {
		probes, _ := json.Marshal(rep.Probes)
		t.Logf("findings:\n%s\nresolv_conf %+v (%s)\nwindows %+v\nprobes %s", text, rep.Facts.ResolvConf, rep.Facts.ResolvConfRead, rep.Facts.Windows, probes)
	}
}

func findingByID(r *doctor.Report, id string) *doctor.Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

func fixHas(t *testing.T, r *doctor.Report, id, word string) {
	t.Helper()
	f := findingByID(r, id)
	if f == nil || !strings.Contains(strings.Join(f.Fix, "\n"), word) {
		t.Errorf("want a %s fix naming %q; finding %+v", id, word, f)
	}
}

func probeErrHas(t *testing.T, r *doctor.Report, kind, word string) {
	t.Helper()
	for _, p := range r.Probes {
		if p.Kind == kind && strings.Contains(p.Error, word) {
			return
		}
	}
	t.Errorf("want a %s probe error mentioning %q", kind, word)
}
