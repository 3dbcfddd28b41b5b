package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestProxyTextsMatchGo holds what the doctor says about a proxy value to
// what Go does with it: a child process with HTTPS_PROXY set requests an
// https URL through net/http's own ProxyFromEnvironment and reports the
// address its transport dials. The finding must name that address: the
// derived proxy host, or the target itself when Go drops the value.
func TestProxyTextsMatchGo(t *testing.T) {
	if os.Getenv("BERTH_PROXY_CHILD") != "" {
		t.Skip("child")
	}
	for _, v := range []string{
		"http://squid example:3128",     // parses only with http:// prepended: host "http"
		"http//proxy.example.test:3128", // no scheme: host "http", path //proxy...
		"http:/proxy.example.test:3128", // one slash: host "http"
		"squid example:3128",            // parses in no way: dropped
		"http://[bad",                   // host "http" again
		"proxy.example.test:3128",       // fine: host:port
		"http://proxy.example.test:3128",
		"socks5://socks.example.test:1080",
	} {
		t.Run(v, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestProxyChild$")
			cmd.Env = []string{"BERTH_PROXY_CHILD=1", "HTTPS_PROXY=" + v}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			dialed := ""
			for _, l := range strings.Split(string(out), "\n") {
				if a, ok := strings.CutPrefix(l, "DIAL "); ok {
					dialed = a
				}
			}
			if dialed == "" {
				t.Fatalf("child dialed nothing:\n%s", out)
			}
			pf := realProxyFacts("HTTPS_PROXY", v)
			r := &Report{Facts: healthyFacts(), Targets: []Target{{Input: webURL, Role: "target", Scheme: "https", Host: webHost, Port: "443", URL: webURL}}}
			r.Facts.Proxy = pf
			analyse(r, &Options{LookupEnv: func(string) (string, bool) { return "", false }})
			f := findingByID(r, "proxy.malformed")
			switch {
			case dialed == "web.example.test:443":
				if f == nil || !strings.Contains(f.Summary, "connects directly") {
					t.Errorf("Go connects directly; the doctor says %+v", f)
				}
			case len(pf.MalformedProxies) == 0:
				if f != nil {
					t.Errorf("Go dials the proxy %s as written, yet the doctor reports %q", dialed, f.Summary)
				}
			default:
				if f == nil || !strings.Contains(f.Summary, "("+dialed+")") || !strings.Contains(f.Cause, dialed) {
					t.Errorf("Go dials %s; the doctor says %+v", dialed, f)
				}
			}
		})
	}
}

// TestProxyChild is the child of TestProxyTextsMatchGo.
func TestProxyChild(t *testing.T) {
	if os.Getenv("BERTH_PROXY_CHILD") == "" {
		t.Skip("run by TestProxyTextsMatchGo")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.DialContext = func(_ context.Context, _, addr string) (net.Conn, error) {
		fmt.Println("DIAL " + addr)
		return nil, errors.New("stop")
	}
	_, _ = (&http.Client{Transport: tr}).Get(webURL)
}
