//go:build unix

package main

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
)

// TestProxyListenErrors runs the real binary with --listen values a user
// gets wrong: an address in use, a malformed one and one this host does not
// have each get their own one-line reason (a malformed one is a usage error,
// with the pointer to --help), and no log line follows.
func TestProxyListenErrors(t *testing.T) {
	bin := buildBerth(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	help := "Run 'berth proxy --help' for the flags.\n"
	want := "want host:port or :port with a port from 0 to 65535, such as :3000 or 127.0.0.1:3000"
	for _, c := range []struct {
		listen string
		code   int
		stderr string
	}{
		{busy.Addr().String(), 1, "berth proxy: cannot listen on " + busy.Addr().String() + ": the address is already in use: another process (or a berth still stopping) listens on the port; stop it or choose another port with --listen\n"},
		{"banana", 2, "berth proxy: --listen=banana: missing port in address: " + want + "\n" + help},
		{":99999", 2, "berth proxy: --listen=:99999: invalid port: " + want + "\n" + help},
		{"127.0.0.1:-1", 2, "berth proxy: --listen=127.0.0.1:-1: invalid port: " + want + "\n" + help},
		{"192.0.2.1:3000", 1, "berth proxy: cannot listen on 192.0.2.1:3000: 192.0.2.1 is not an address of this host (cannot assign requested address); use one of its addresses, or :3000 for all of them\n"},
	} {
		code, out, errs := runBin(t, bin, nil, "proxy", "--upstream", "off", "--sumdb", "off", "--store", t.TempDir(), "--listen", c.listen)
		if code != c.code || out != "" || errs != c.stderr {
			t.Errorf("berth proxy --listen %s: exit %d, stdout %q, stderr:\n%s\nwant exit %d and stderr:\n%s", c.listen, code, out, errs, c.code, c.stderr)
		}
	}
}

// TestFatalStartErrorIsTheLastLine: when berth cannot start, its error is the
// last thing it prints. Here the upstream is slow to say whether it proxies
// the checksum database, and the port is taken: before, the start went as far
// as asking the upstream, and the cancelled question was logged after the
// listen error.
func TestFatalStartErrorIsTheLastLine(t *testing.T) {
	bin := buildBerth(t)
	up := testmod.NewUpstream(t, airgapModules())
	release := make(chan struct{})
	defer close(release)
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/sumdb/") {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return true
		}
		return false
	})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	code, _, errs := runBin(t, bin, nil, "proxy", "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "--store", t.TempDir(), "--listen", busy.Addr().String())
	if code != 1 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "berth proxy: cannot listen on ") {
		t.Errorf("berth proxy on a taken port: exit %d, stderr:\n%s\nwant exit 1 and the one line of the listen error", code, errs)
	}
}

// TestNoNilErrInLog: a start that goes well logs no nil error (err=<nil> in
// text, "err":null in JSON).
func TestNoNilErrInLog(t *testing.T) {
	bin := buildBerth(t)
	up := testmod.NewUpstream(t, airgapModules())
	for _, format := range []string{"json"} {
		_, base, logs := startBerthProc(t, bin, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "--store", t.TempDir(), "--log-format", format)
		if code, err := get(base + "/example.test/lib/@v/v1.1.0.info"); code != 200 {
			t.Fatalf("GET .info: %d %v\n%s", code, err, logs.String())
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), "checksum database support") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		l := logs.String()
		if !strings.Contains(l, "checksum database support") {
			t.Fatalf("--log-format %s: no checksum database line to check:\n%s", format, l)
		}
		if strings.Contains(l, "err=<nil>") || strings.Contains(l, `"err":null`) || strings.Contains(l, "<nil>") {
			t.Errorf("--log-format %s: a nil error is logged:\n%s", format, l)
		}
	}
}
