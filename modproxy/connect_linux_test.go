package modproxy

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/netkit"
)

// TestUpstreamConnectTimeout: an upstream whose SYNs are dropped. Alone, the
// go command sees a gateway error naming the timeout and nothing is stored;
// followed by "|" and a good upstream, berth falls through and the download
// succeeds.
func TestUpstreamConnectTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	dead := "http://" + testmod.DroppingAddr(t)
	up := testmod.NewUpstream(t, testModules())
	client := func() *http.Client {
		return netkit.NewClient(netkit.ClientOptions{DialTimeout: 300 * time.Millisecond, Retry: &netkit.RetryPolicy{MaxAttempts: 1}})
	}
	for _, tc := range []struct {
		list   string
		wantOK bool
	}{
		{dead, false},
		{dead + "|" + up.URL(), true},
	} {
		storeDir := t.TempDir()
		px := startProxy(t, tc.list, storeDir, func(c *Config) {
			c.SumDBKey = up.GOSUMDB()
			c.FetchTimeout = 5 * time.Second
			c.Source.(*source.Fetcher).Client = client()
		})
		g := newGoEnv(t, px.URL, up.GOSUMDB())
		start := time.Now()
		out, err := g.try("mod", "download", "example.test/lib@v1.1.0")
		px.Wait(t.Context())
		if tc.wantOK != (err == nil) {
			t.Fatalf("%s: go mod download: %v\n%s", tc.list, err, out)
		}
		if !tc.wantOK && !strings.Contains(out, "timeout") {
			t.Errorf("%s: the go command's error does not say timeout:\n%s", tc.list, out)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("%s: took %v", tc.list, d)
		}
		_, serr := os.Stat(filepath.Join(storeDir, "example.test/lib/@v/v1.1.0.zip"))
		if tc.wantOK != (serr == nil) {
			t.Errorf("%s: zip stored = %v, want %v", tc.list, serr == nil, tc.wantOK)
		}
	}
}
