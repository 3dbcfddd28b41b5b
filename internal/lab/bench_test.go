package lab

import (
	"fmt"
	"os"
	"sort"
	"testing"
	"time"
)

// TestBenchDoctor measures whole doctor runs in the lab. It runs only with
// BERTH_BENCH=1 (bench/doctor/run.sh) and prints:
//
//   - a healthy run with 3 HTTPS targets (DNS, TCP, TLS, HTTP each): wall time;
//   - runs where every probe hangs (nameserver and targets dropped) with 3, 10
//     and 30 targets: wall time against --timeout;
//   - runs where every failure is immediate (nameserver port closed, target
//     ports reset) with 3, 10 and 30 targets: wall time, goal under 1 s.
func TestBenchDoctor(t *testing.T) {
	if os.Getenv("BERTH_BENCH") == "" {
		t.Skip("set BERTH_BENCH=1 to run the doctor benchmark (bench/doctor/run.sh)")
	}
	if labSkip != "" {
		t.Skip("fault lab skipped: " + labSkip)
	}
	runs := 7
	env := []string{"PATH=/usr/bin:/bin", "SSL_CERT_FILE=" + pki.Bundle, "SSL_CERT_DIR=" + pki.EmptyDir, "GOPROXY=off", "GOSUMDB=off", "GOMEMLIMIT=1GiB"}

	// Healthy: three names, one HTTPS server.
	p := NewPair(t, true)
	p.EtcFile("resolv.conf", "nameserver "+ServerIP+"\n")
	p.EtcFile("hosts", "127.0.0.1 localhost\n")
	p.StartServers(p.Server, selfBin, Config{
		DNS:   []DNSConfig{{Addr: ServerIP, Records: records}},
		HTTPS: []HTTPConfig{web(pki.Web)},
	})
	targets := []string{"https://web.example.test/", "https://web2.example.test/", "https://web3.example.test/"}
	var walls []time.Duration
	for i := 0; i < runs; i++ {
		r := p.RunDoctor(berthBin, env, append([]string{"--json", "--timeout", "5s"}, targets...))
		if r.Code != 0 {
			t.Fatalf("healthy run exit %d: %s", r.Code, r.Stderr)
		}
		walls = append(walls, r.Wall)
	}
	med, worst := stats(walls)
	fmt.Printf("BENCH healthy 3 targets: median %v, max %v over %d runs (goal < 1.5s)\n", med, worst, runs)
	if worst > 1500*time.Millisecond {
		t.Errorf("healthy run took %v, goal < 1.5s", worst)
	}

	// Every probe hangs: the nameserver and every target address drop all traffic.
	h := NewPair(t, true)
	h.EtcFile("resolv.conf", "nameserver "+DeadIP+"\n")
	h.EtcFile("hosts", "127.0.0.1 localhost\n")
	h.Iptables("-A", "INPUT", "-d", ServerIP, "-j", "DROP")
	const timeout = 2 * time.Second
	for _, n := range []int{3, 10, 30} {
		var ts []string
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				ts = append(ts, fmt.Sprintf("https://host%d.example.test/", i))
			} else {
				ts = append(ts, fmt.Sprintf("https://%s:%d/", ServerIP, 8000+i))
			}
		}
		var ws []time.Duration
		for i := 0; i < 3; i++ {
			r := h.RunDoctor(berthBin, env, append([]string{"--json", "--timeout", timeout.String()}, ts...))
			if r.Code != 1 {
				t.Fatalf("hanging run exit %d: %s", r.Code, r.Stderr)
			}
			ws = append(ws, r.Wall)
		}
		med, worst := stats(ws)
		fmt.Printf("BENCH all probes hang, %2d targets, --timeout %v: median %v, max %v (over by %v; goal <= +0.5s)\n", n, timeout, med, worst, worst-timeout)
		if worst > timeout+500*time.Millisecond {
			t.Errorf("%d hanging targets took %v with --timeout %v", n, worst, timeout)
		}
	}

	benchImmediate(t, env)
}

// benchImmediate: every failure is immediate (a nameserver host with
// nothing on port 53, target ports that reset): the run must end in well
// under a second, whatever the deadline.
func benchImmediate(t *testing.T, env []string) {
	p := NewPair(t, true)
	p.EtcFile("resolv.conf", "nameserver "+AltIP+"\n")
	p.EtcFile("hosts", "127.0.0.1 localhost\n")
	const timeout = 5 * time.Second
	for _, n := range []int{3, 10, 30} {
		var ts []string
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				ts = append(ts, fmt.Sprintf("https://host%d.example.test/", i))
			} else {
				ts = append(ts, fmt.Sprintf("https://%s:%d/", ServerIP, 8000+i))
			}
		}
		var ws []time.Duration
		for i := 0; i < 3; i++ {
			// The kernel sends a peer at most a burst of about six ICMP
			// errors, then one a second (icmp_ratelimit): the doctor spends
			// one per nameserver per run, so runs a second apart each get
			// theirs, as a user's runs would.
			time.Sleep(1100 * time.Millisecond)
			r := p.RunDoctor(berthBin, env, append([]string{"--json", "--timeout", timeout.String()}, ts...))
			if r.Code != 1 {
				t.Fatalf("immediate-failure run exit %d: %s", r.Code, r.Stderr)
			}
			ws = append(ws, r.Wall)
		}
		med, worst := stats(ws)
		fmt.Printf("BENCH all failures immediate, %2d targets, --timeout %v: median %v, max %v (goal < 1s)\n", n, timeout, med, worst)
		if worst >= time.Second {
			t.Errorf("%d immediately failing targets took %v, goal < 1s", n, worst)
		}
	}
}

func stats(ds []time.Duration) (median, worst time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond)
}
