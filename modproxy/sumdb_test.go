package modproxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/internal/testmod"
)

// TestInternalReadsAreNotClientRequests: verifying a .mod reads the checksum
// database through the core, not through the HTTP handler, so one client
// .mod request moves the requests counter of "mod" only.
func TestInternalReadsAreNotClientRequests(t *testing.T) {
	up := testmod.NewUpstream(t, testModules())
	reg := prometheus.NewRegistry()
	px := startProxy(t, up.URL(), t.TempDir(), func(c *Config) {
		c.SumDBKey = up.GOSUMDB()
		c.Registerer = reg
	})
	resp, body := get(t, "GET", px.URL+"/example.test/lib/@v/v1.1.0.mod")
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "module example.test/lib") {
		t.Fatalf("GET .mod: %d %q", resp.StatusCode, body)
	}
	if n := up.Count("/sumdb/" + up.SumDBName + "/lookup/example.test/lib@v1.1.0"); n != 1 {
		t.Fatalf("the .mod was verified with %d lookups at the upstream, want 1", n)
	}
	if n := metric(t, reg, "berth_proxy_requests_total", "endpoint", "mod", "code", "200"); n != 1 {
		t.Errorf("requests_total{mod,200} = %v, want 1", n)
	}
	if n := metric(t, reg, "berth_proxy_requests_total", "endpoint", "sumdb"); n != 0 {
		t.Errorf("requests_total{sumdb} = %v after one client .mod request, want 0 (internal reads counted as clients)", n)
	}
}

// TestSumDBSupportedNotProxied: when every upstream answers a 4xx for a
// database's /supported (the real upstream answers 400 for a name it does
// not know), berth answers 404, so the go command connects to that database
// directly as it would with no proxy in between.
func TestSumDBSupportedNotProxied(t *testing.T) {
	up := testmod.NewUpstream(t, testModules())
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/sumdb/sum.other.test/") {
			http.Error(w, "unknown checksum database", http.StatusBadRequest)
			return true
		}
		return false
	})
	px := startProxy(t, up.URL(), t.TempDir(), nil)
	for _, db := range []string{"sum.other.test", up.SumDBName} {
		resp, body := get(t, "GET", px.URL+"/sumdb/"+db+"/supported")
		want := 404
		if db == up.SumDBName {
			want = 200
		}
		if resp.StatusCode != want {
			t.Errorf("/sumdb/%s/supported: %d %q, want %d", db, resp.StatusCode, body, want)
		}
	}
}
