// Package lab is berth's fault lab: it builds real network faults in Linux
// network namespaces for the doctor's integration tests and benchmarks.
//
// A Pair is two namespaces joined by a veth: the client, where berth doctor
// runs with its own /etc/resolv.conf (bind-mounted by "ip netns exec" from
// /etc/netns/<ns>/) and its own environment, and the server, where fixture
// servers (DNS, HTTPS, CONNECT proxy, GOPROXY) run from a Config. Addresses
// are 10.213.0.0/24 and exist only inside the pair, so a test never sends a
// packet to a host it did not create. Faults are iptables rules inside the
// server namespace, server modes (SERVFAIL, truncation, resets) and
// certificates from lab CAs.
package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Addresses inside every pair.
const (
	ServerIP = "10.213.0.1" // the server namespace's veth: DNS, HTTPS, proxy
	ClientIP = "10.213.0.2"
	// DeadIP is a server-namespace address whose traffic is dropped.
	DeadIP = "10.213.0.3"
	// AltIP is a second server address for fixtures that need their own.
	AltIP = "10.213.0.4"
)

// Available reports why the lab cannot run here, or "" when it can.
func Available() string {
	if os.Geteuid() != 0 {
		return "the fault lab needs root (network namespaces, veth, iptables); run it in .ci/run or with sudo"
	}
	for _, b := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(b); err != nil {
			return b + " is not installed (apt-get install iproute2 iptables)"
		}
	}
	return ""
}

var seq atomic.Int64

// Pair is a client and a server namespace joined by a veth.
type Pair struct {
	t      testing.TB
	Client string
	Server string
	Dir    string // scratch directory for this pair
}

// NewPair creates the namespaces. With link false the client has only
// loopback (as with docker run --network none). Everything is removed in
// t.Cleanup.
func NewPair(t testing.TB, link bool) *Pair {
	t.Helper()
	n := seq.Add(1)
	id := fmt.Sprintf("%d%02d", os.Getpid()%100000, n)
	p := &Pair{t: t, Client: "blc" + id, Server: "bls" + id, Dir: t.TempDir()}
	va, vb := "bva"+id, "bvb"+id
	t.Cleanup(func() {
		for _, ns := range []string{p.Client, p.Server} {
			_ = exec.Command("ip", "netns", "del", ns).Run()
			_ = os.RemoveAll(filepath.Join("/etc/netns", ns))
		}
		_ = exec.Command("ip", "link", "del", va).Run()
	})
	p.ip("netns", "add", p.Client)
	p.ip("netns", "add", p.Server)
	p.ip("-n", p.Client, "link", "set", "lo", "up")
	p.ip("-n", p.Server, "link", "set", "lo", "up")
	if link {
		p.ip("link", "add", va, "type", "veth", "peer", "name", vb)
		p.ip("link", "set", va, "netns", p.Client)
		p.ip("link", "set", vb, "netns", p.Server)
		p.ip("-n", p.Client, "addr", "add", ClientIP+"/24", "dev", va)
		p.ip("-n", p.Client, "link", "set", va, "up")
		for _, a := range []string{ServerIP, DeadIP, AltIP} {
			p.ip("-n", p.Server, "addr", "add", a+"/24", "dev", vb)
		}
		p.ip("-n", p.Server, "link", "set", vb, "up")
		p.ip("-n", p.Client, "route", "add", "default", "via", ServerIP)
		// DeadIP: everything sent to it disappears.
		p.Iptables("-A", "INPUT", "-d", DeadIP, "-j", "DROP")
	}
	return p
}

// NoDefaultRoute removes the client's default route: only 10.213.0.0/24 stays reachable.
func (p *Pair) NoDefaultRoute() {
	p.t.Helper()
	p.ip("-n", p.Client, "route", "del", "default")
}

// ServerAddr adds another address to the server's veth.
func (p *Pair) ServerAddr(cidr string) {
	p.t.Helper()
	p.ip("-n", p.Server, "addr", "add", cidr, "dev", "bvb"+strings.TrimPrefix(p.Server, "bls"))
}

func (p *Pair) ip(args ...string) {
	p.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		p.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Iptables adds a rule in the server namespace's filter table.
func (p *Pair) Iptables(args ...string) {
	p.t.Helper()
	full := append([]string{"netns", "exec", p.Server, "iptables", "-w"}, args...)
	if out, err := exec.Command("ip", full...).CombinedOutput(); err != nil {
		p.t.Fatalf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// EtcFile writes /etc/<name> as the client namespace sees it.
func (p *Pair) EtcFile(name, content string) {
	p.t.Helper()
	dir := filepath.Join("/etc/netns", p.Client)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// StartServers runs the fixture servers of c in namespace ns (p.Server or
// p.Client) using bin (a test binary whose TestMain calls ServeMain when
// ServerEnv is set) and waits until they are ready.
func (p *Pair) StartServers(ns, bin string, c Config) {
	p.t.Helper()
	data, _ := json.Marshal(c)
	cfg := filepath.Join(p.Dir, fmt.Sprintf("server-%s.json", ns))
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, bin)
	cmd.Env = []string{ServerEnv + "=" + cfg}
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := sc.Scan() && sc.Text() == "ready"
		ready <- ok
		_, _ = bufio.NewReader(out).WriteTo(devNull{})
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			p.t.Fatalf("fixture servers failed: %s", stderr.String())
		}
	case <-time.After(10 * time.Second):
		p.t.Fatalf("fixture servers not ready after 10s: %s", stderr.String())
	}
}

type devNull struct{}

func (devNull) Write(b []byte) (int, error) { return len(b), nil }

// Result is one doctor run in the client namespace.
type Result struct {
	Code   int
	Stdout []byte
	Stderr []byte
	Wall   time.Duration
}

// RunDoctor runs "berth doctor" (binary berth) in the client namespace with
// exactly env as its environment, in an empty working directory, and
// returns its output and wall-clock time. wrap, when set, prefixes the
// command (e.g. to enter a cgroup).
//
// "ip netns exec" mounts a fresh /sys, which hides /sys/fs/cgroup; a run
// with wrap set therefore stays in the host's namespaces (it is meant for
// checks that need no network).
func (p *Pair) RunDoctor(berth string, env []string, args []string, wrap ...string) Result {
	p.t.Helper()
	var full []string
	if len(wrap) == 0 {
		full = append([]string{"ip", "netns", "exec", p.Client, "env", "-i"}, env...)
	} else {
		full = append(append(append([]string(nil), wrap...), "env", "-i"), env...)
	}
	full = append(full, berth, "doctor")
	full = append(full, args...)
	cmd := exec.Command(full[0], full[1:]...)
	wd := filepath.Join(p.Dir, "wd")
	_ = os.MkdirAll(wd, 0o755)
	cmd.Dir = wd
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	r := Result{Stdout: so.Bytes(), Stderr: se.Bytes(), Wall: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("running doctor: %v", err)
	}
	return r
}
