//go:build docker && linux

package dockertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
)

// report is the part of the doctor's JSON report (docs/doctor-json.md,
// schema 1) the tests read.
type report struct {
	Schema   int `json:"schema"`
	Findings []struct {
		ID       string   `json:"id"`
		Severity string   `json:"severity"`
		Summary  string   `json:"summary"`
		Evidence []string `json:"evidence"`
	} `json:"findings"`
	Probes []struct {
		Kind   string `json:"kind"`
		Target string `json:"target"`
		Server string `json:"server"`
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Cause  string `json:"cause"`
		Status int    `json:"status"`
	} `json:"probes"`
	Facts struct {
		ResolvConf struct {
			Nameservers []string `json:"nameservers"`
		} `json:"resolv_conf"`
		CA struct {
			Loaded int `json:"loaded"`
		} `json:"ca"`
	} `json:"facts"`
	exit int
	raw  string
}

func (r *report) errors() []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity == "error" {
			out = append(out, f.ID)
		}
	}
	return out
}

func (r *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exit %d, findings:", r.exit)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\n  %s [%s] %s", f.ID, f.Severity, f.Summary)
	}
	for _, p := range r.Probes {
		fmt.Fprintf(&b, "\n  probe %s %s server=%s ok=%v cause=%s status=%d", p.Kind, p.Target, p.Server, p.OK, p.Cause, p.Status)
	}
	return b.String()
}

// doctor runs "berth doctor --json" in a new container of img with the given
// docker run flags. The Go module variables are set so that the doctor probes
// only what the test names: GOPROXY=off unless runFlags set it.
func (e *env) doctor(what, img string, runFlags []string, args ...string) *report {
	e.t.Helper()
	flags := append([]string{"-e", "GOPROXY=off", "-e", "GOSUMDB=off"}, runFlags...)
	cmd := append(append(flags, "--entrypoint", "/berth", img, "doctor", "--json"), args...)
	start := time.Now()
	stdout, stderr, code := e.run(what, 2*time.Minute, cmd...)
	r := &report{exit: code, raw: stdout}
	if err := json.Unmarshal([]byte(stdout), r); err != nil {
		e.t.Fatalf("berth doctor (exit %d): no JSON report: %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
	}
	if r.Schema != 1 {
		e.t.Errorf("report schema %d, want 1", r.Schema)
	}
	e.t.Logf("doctor %s: %s in %s", what, r, time.Since(start).Round(time.Millisecond))
	return r
}

// wantFirst checks that the doctor exits 1 and names id as its first finding.
func wantFirst(t *testing.T, r *report, id string) {
	t.Helper()
	if len(r.Findings) == 0 || r.Findings[0].ID != id {
		t.Errorf("first finding: want %s\n%s", id, r)
		return
	}
	if r.Findings[0].Severity != "error" || r.exit != 1 {
		t.Errorf("%s: severity %s, exit %d; want error and exit 1", id, r.Findings[0].Severity, r.exit)
	}
}

// wantHealthy checks that the doctor exits 0 with no error finding.
func wantHealthy(t *testing.T, r *report) {
	t.Helper()
	if r.exit != 0 || len(r.errors()) > 0 {
		t.Errorf("want a healthy report (exit 0, no error finding)\n%s", r)
	}
}

// berthService starts a berth proxy container that serves only its store and
// waits for its HEALTHCHECK.
func (e *env) berthService(what string, runFlags []string, proxyArgs ...string) *container {
	e.t.Helper()
	args := append(append([]string{"--health-interval", "500ms", "--health-start-period", "30s"}, runFlags...), imgBerth, "proxy")
	if len(proxyArgs) == 0 {
		proxyArgs = []string{"--upstream", "off"}
	}
	c := e.start(what, append(args, proxyArgs...)...)
	c.waitHealthy(30 * time.Second)
	return c
}

// TestDoctor runs berth doctor inside containers on real Docker networks, one
// fault per case, and checks that it names that fault first. Every packet goes
// to a container or network of the test, or to the host's bridge gateway.
func TestDoctor(t *testing.T) {
	t.Parallel()
	need(t)
	t.Run("DefaultBridge", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		svc := e.berthService("svc", nil)
		// On the default bridge containers reach each other by address only.
		r := e.doctor("doctor", imgBerth, nil, "http://"+svc.ip("bridge")+":3000/readyz")
		wantHealthy(t, r)
		if !probed(r, "http", 200) {
			t.Errorf("no successful HTTP probe of the service\n%s", r)
		}
		for _, ns := range r.Facts.ResolvConf.Nameservers {
			if strings.HasPrefix(ns, "127.0.0.11") {
				t.Errorf("default bridge: resolv.conf names Docker's embedded DNS %s; it has none", ns)
			}
		}
	})
	t.Run("DefaultBridgeByName", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		// The default bridge has no embedded DNS: a container name goes to the
		// nameservers of resolv.conf, which have never heard of it. Ours
		// (--dns, a container of the test) answers NXDOMAIN like they do.
		svc := e.berthService("svc", nil)
		ns := e.start("nameserver", imgNXDNS)
		nsAddr := ns.ip("bridge")
		r := e.doctor("doctor", imgBerth, []string{"--dns", nsAddr}, "http://"+svc.Name+":3000/readyz")
		wantFirst(t, r, "dns.not-found")
		asked := false
		for _, p := range r.Probes {
			if p.Kind == "dns" && p.Server == nsAddr+":53" && p.Cause == "dns-not-found" {
				asked = true
			}
		}
		if !asked {
			t.Errorf("no DNS probe of %s answered NXDOMAIN\n%s", nsAddr, r)
		}
		if !strings.Contains(r.raw, "not the default bridge") {
			t.Errorf("the fix does not name the default bridge:\n%s", r.raw)
		}
	})
	t.Run("UserDefinedNetwork", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		nw, _ := e.network("net")
		// berth serves a generated module tree (its upstream is a file:// tree)
		// and is reached by its container name through Docker's embedded DNS.
		tree := moduleTree(t)
		svc := e.berthService("berth", []string{"--network", nw, "-v", tree + ":/tree:ro"},
			"--upstream", "file:///tree")
		r := e.doctor("doctor", imgBerth, []string{"--network", nw, "-e", "GOPROXY=http://" + svc.Name + ":3000"},
			"--probe-module", "example.test/dep")
		wantHealthy(t, r)
		if !probed(r, "goproxy", 0) {
			t.Errorf("no successful GOPROXY protocol probe through %s\n%s", svc.Name, r)
		}
		if ns := r.Facts.ResolvConf.Nameservers; len(ns) != 1 || !strings.HasPrefix(ns[0], "127.0.0.11") {
			t.Errorf("user-defined network: nameservers %v, want Docker's embedded DNS 127.0.0.11", ns)
		}
	})
	t.Run("NetworkNone", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		// The target is the gateway of a network of ours; with --network none
		// nothing leaves the container anyway.
		_, gw := e.network("net")
		r := e.doctor("doctor", imgBerth, []string{"--network", "none"}, "http://"+gw+":3000/")
		wantFirst(t, r, "net.no-route")
	})
	t.Run("DNSServerDropsPort53", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() != 0 {
			t.Skip("needs root to add an iptables rule in a container's network namespace (nsenter)")
		}
		e := newEnv(t)
		// A container of ours whose network namespace drops DNS.
		ns := e.berthService("nameserver", nil)
		pid := ns.inspect("{{.State.Pid}}")
		for _, proto := range []string{"udp", "tcp"} {
			if out, err := exec.Command("nsenter", "-t", pid, "-n", "iptables", "-A", "INPUT", "-p", proto, "--dport", "53", "-j", "DROP").CombinedOutput(); err != nil {
				t.Fatalf("iptables in %s's namespace: %v: %s", ns.Name, err, out)
			}
		}
		// The name is never resolved anywhere else: the only nameserver is ours.
		r := e.doctor("doctor", imgBerth, []string{"--dns", ns.ip("bridge")}, "http://"+e.name("nowhere")+".test:3000/")
		wantFirst(t, r, "dns.server-unreachable")
		// The queries reached our nameserver and were dropped there.
		out, err := exec.Command("nsenter", "-t", pid, "-n", "iptables", "-L", "INPUT", "-n", "-v", "-x").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -L: %v: %s", err, out)
		}
		if !droppedSome(string(out)) {
			t.Errorf("the DROP rules saw no packet: the doctor did not ask our nameserver\n%s", out)
		}
	})
	t.Run("NoCACertificates", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		nw, gw := e.network("net")
		// A TLS server on the host, on the network's gateway address.
		srv := tlsServer(t, gw)
		r := e.doctor("doctor", imgNoCerts, []string{"--network", nw}, srv)
		wantFirst(t, r, "tls.no-roots")
		if r.Facts.CA.Loaded != 0 {
			t.Errorf("image without CA certificates: %d roots loaded", r.Facts.CA.Loaded)
		}
		// The same server from the image with the CA bundle: the bundle is
		// there, the server's certificate is not signed by it.
		r = e.doctor("doctor-ca", imgBerth, []string{"--network", nw}, srv)
		wantFirst(t, r, "tls.unknown-authority")
		if r.Facts.CA.Loaded == 0 {
			t.Errorf("image with the CA bundle: no roots loaded")
		}
	})
	t.Run("HTTPSProxyStopped", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		nw, _ := e.network("net")
		proxy := e.berthService("proxy", []string{"--network", nw})
		proxyIP := proxy.ip(nw)
		// The doctor runs in the network namespace of a container started
		// while the proxy still held its address, so the address stays free.
		holder := e.berthService("holder", []string{"--network", nw})
		e.docker(time.Minute, "stop", proxy.Name)
		r := e.doctor("doctor", imgBerth, []string{"--network", "container:" + holder.Name,
			"-e", "HTTPS_PROXY=http://" + proxyIP + ":3128"}, "--timeout", "8s", "https://"+e.name("origin")+".test/")
		wantFirst(t, r, "proxy.unreachable")
	})
	t.Run("ListenLoopbackOnly", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		// The classic: the service binds 127.0.0.1 inside its container and is
		// published with -p; the published port answers nothing.
		svc := e.berthService("svc", []string{"-p", "127.0.0.1::3000"}, "--upstream", "off", "--listen", "127.0.0.1:3000")
		hostPort := svc.inspect(`{{(index (index .NetworkSettings.Ports "3000/tcp") 0).HostPort}}`)
		c := &http.Client{Timeout: 5 * time.Second}
		if resp, err := c.Get("http://127.0.0.1:" + hostPort + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("published port 127.0.0.1:%s answered %s; want a failure", hostPort, resp.Status)
		}
		r := e.doctor("doctor", imgBerth, []string{"--network", "container:" + svc.Name}, "--listen", ":3000")
		wantFirst(t, r, "listen.loopback-only")
	})
}

func probed(r *report, kind string, status int) bool {
	for _, p := range r.Probes {
		if p.Kind == kind && p.OK && (status == 0 || p.Status == status) {
			return true
		}
	}
	return false
}

// droppedSome reports whether an iptables -L -v -x listing shows a DROP rule
// that matched at least one packet.
func droppedSome(listing string) bool {
	for _, l := range strings.Split(listing, "\n") {
		f := strings.Fields(l)
		if len(f) > 2 && f[2] == "DROP" && f[0] != "0" {
			return true
		}
	}
	return false
}

// tlsServer serves HTTPS on ip with a certificate for ip signed by a CA of
// the test (so that only the authority is unknown) and returns its URL.
func tlsServer(t *testing.T, ip string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth dockertest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP(ip)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on the bridge gateway %s: %v", ip, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the doctor's failed handshakes are the point
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// moduleTree writes a small generated module tree (a GOPROXY=file:// tree)
// readable by the image's non-root user and returns its directory.
func moduleTree(t *testing.T) string {
	t.Helper()
	built, err := testmod.Build([]testmod.Module{
		{Path: "example.test/dep", Version: "v1.0.0", Files: map[string]string{"dep.go": "package dep\n"}},
		{Path: "example.test/dep", Version: "v1.1.0", Files: map[string]string{"dep.go": "package dep\n"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := testmod.WriteTree(dir, built); err != nil {
		t.Fatal(err)
	}
	openUp(t, dir)
	return dir
}

// openUp makes dir and its parents up to the temp root world-readable, so that
// the non-root user in a container can read a bind mount of it.
func openUp(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
