package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/redistest"
	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/netkit"
	"github.com/berth-dev/berth/store"
)

// readyz GETs base/readyz and decodes it.
func readyz(t *testing.T, base string) (int, readyReport, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var rep readyReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("/readyz: %v: %s", err, body)
	}
	return resp.StatusCode, rep, string(body)
}

// counter returns the value of series in the /metrics text m.
func counter(t *testing.T, m, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(m, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", series)
	return 0
}

// pollReadyz polls /readyz until cond holds, for at most 30 seconds.
func pollReadyz(t *testing.T, base, what string, cond func(int, readyReport) bool) (int, readyReport, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, rep, body := readyz(t, base)
		if cond(code, rep) {
			return code, rep, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for /readyz to show %s; last: %d %s", what, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadyzStoreAndLease runs berth on a real MinIO bucket with a real
// redis-server as its lease: /readyz shows both ok, the store's local cache
// and, in /metrics, the store's requests; with Redis stopped the lease is
// reported down and readiness stays 200; with MinIO stopped readiness is 503
// and the store's error says which store. No credential is ever shown.
func TestReadyzStoreAndLease(t *testing.T) {
	rs := redistest.Start(t)
	bin := buildBerth(t)
	ms := minioBucket(t, "readyz")
	noise := make([]byte, 100<<10) // incompressible: the zip is larger than the proxy keeps in memory
	rand.NewChaCha8([32]byte{}).Read(noise)
	up := testmod.NewUpstream(t, []testmod.Module{{Path: "example.test/ready", Version: "v1.0.0",
		Files: map[string]string{"r.go": "package ready\n", "noise.txt": hex.EncodeToString(noise)}}})
	env := replicaEnv(ms)
	secretFree := func(what, s string) {
		t.Helper()
		if strings.Contains(s, ms.Secret) || strings.Contains(s, ms.Access) {
			t.Errorf("%s holds the S3 credentials: %s", what, s)
		}
	}
	replica := func() string {
		base, _, _ := startReplica(t, bin, env, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "--lease", rs.URL(),
			"--store", bucketStore(t, ms, "readyz")+"&cache_size=64MiB")
		return base
	}
	base, other := replica(), replica()
	metrics := func(base string) string {
		t.Helper()
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		m, _ := io.ReadAll(resp.Body)
		secretFree("/metrics", string(m))
		return string(m)
	}
	get := func(base, p string) {
		t.Helper()
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}

	// A zip too large for the proxy's memory: once committed, a GET of it
	// is the local cache's hit; the other replica's first GET its miss.
	const zip = "/example.test/ready/@v/v1.0.0.zip"
	hit, miss := `berth_store_local_cache_total{result="hit"}`, `berth_store_local_cache_total{result="miss"}`
	get(base, zip)
	deadline := time.Now().Add(30 * time.Second)
	for counter(t, metrics(base), hit) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no local cache hit in 30s of GETs of %s:\n%s", zip, metrics(base))
		}
		get(base, zip) // the first GETs may join the flight still committing it
	}
	m := metrics(other)
	h0, m0 := counter(t, m, hit), counter(t, m, miss)
	get(other, zip)
	m = metrics(other)
	if h, mi := counter(t, m, hit)-h0, counter(t, m, miss)-m0; h != 0 || mi != 1 {
		t.Errorf("the other replica's first GET of %s: %v hits, %v misses; want 0 and 1", zip, h, mi)
	}
	m = metrics(base)
	for _, want := range []string{
		`berth_store_request_duration_seconds_count{op="check",result="ok"} `,
		`berth_store_request_duration_seconds_count{op="put",result="ok"} `,
		`berth_store_request_duration_seconds_count{op="head",result="not_found"} `,
		"berth_store_local_cache_limit_bytes 6.7108864e+07\n",
		"berth_proxy_lease_backend_up 1\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	code, rep, body := readyz(t, base)
	secretFree("/readyz", body)
	st := rep.Store
	if code != 200 || st == nil || !st.OK || st.Kind != "s3" || st.Name != "s3://readyz/berth" || st.Error != "" || st.LatencyMS <= 0 {
		t.Fatalf("/readyz: %d %s; want 200 and an ok s3 store named s3://readyz/berth with its check's latency", code, body)
	}
	if st.CacheBytes == nil || *st.CacheBytes <= 0 || st.CacheLimit == nil || *st.CacheLimit != 64<<20 {
		t.Errorf("/readyz: local cache %v of %v bytes; want some of 64 MiB: %s", st.CacheBytes, st.CacheLimit, body)
	}
	if rep.Lease == nil || !rep.Lease.OK || rep.Lease.Backend != rs.URL() || rep.Lease.Error != "" {
		t.Errorf("/readyz: lease %+v; want %s ok", rep.Lease, rs.URL())
	}

	// Redis stops: nothing needs the lease, yet /readyz says so, and stays
	// ready.
	rs.Stop()
	code, rep, body = pollReadyz(t, base, "the lease down", func(_ int, r readyReport) bool { return r.Lease != nil && !r.Lease.OK })
	if code != 200 || rep.Status != "ok" || !rep.Store.OK {
		t.Errorf("/readyz with Redis stopped: %d %s; want 200 with the store ok: the lease is an optimisation", code, body)
	}
	if l := rep.Lease; l.Error == "" || l.Effect != leaseEffect || l.Since == "" || !strings.Contains(l.Error, rs.Addr) {
		t.Errorf("/readyz with Redis stopped: lease %+v; want its error (naming %s), since when and the effect %q", l, rs.Addr, leaseEffect)
	}
	rs.Restart()
	pollReadyz(t, base, "the lease back", func(_ int, r readyReport) bool { return r.Lease != nil && r.Lease.OK })

	// MinIO stops: the store fails readiness.
	ms.Stop()
	_, rep, body = pollReadyz(t, base, "the store down", func(c int, _ readyReport) bool { return c == http.StatusServiceUnavailable })
	secretFree("/readyz with MinIO stopped", body)
	if rep.Status != "fail" || rep.Store == nil || rep.Store.OK || !strings.Contains(rep.Store.Error, "s3://readyz/berth") {
		t.Errorf("/readyz with MinIO stopped: %s; want status fail and a store error naming s3://readyz/berth", body)
	}
	t.Logf("/readyz with MinIO stopped: %s", body)
}

// TestReadyzDisk: with a disk store /readyz names its directory, reports no
// local cache and no lease, and during shutdown says the store was not
// checked.
func TestReadyzDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	var health netkit.Health
	var fail atomic.Bool
	health.AddReadiness(storeCheck, time.Second, func(ctx context.Context) error {
		if fail.Load() {
			return errors.New("disk full")
		}
		return store.Check(ctx, st)
	})
	srv := httptest.NewServer(&readiness{health: &health, store: st, where: st.Root()})
	defer srv.Close()
	code, rep, body := readyz(t, srv.URL)
	if code != 200 || rep.Store == nil || !rep.Store.OK || rep.Store.Kind != "disk" || rep.Store.Name != dir || rep.Store.CacheBytes != nil || rep.Lease != nil {
		t.Errorf("/readyz on a disk store: %d %s; want 200, an ok disk store named %s, no cache, no lease", code, body, dir)
	}
	fail.Store(true)
	if code, rep, body = readyz(t, srv.URL); code != 503 || rep.Store.OK || rep.Store.Error != "disk full" {
		t.Errorf("/readyz with the store's check failing: %d %s; want 503 and its error", code, body)
	}
	health.ShuttingDown()
	if code, rep, body = readyz(t, srv.URL); code != 503 || rep.Store.OK || !strings.Contains(rep.Store.Error, "shutting-down") {
		t.Errorf("/readyz shutting down: %d %s; want 503 and the store not checked", code, body)
	}
}
