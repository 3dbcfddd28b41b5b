package s3_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3"
	"github.com/berth-dev/berth/store/s3/s3test"
)

// requests returns how many requests of op ended with result, from reg's
// berth_store_request_duration_seconds.
func requests(t *testing.T, reg *prometheus.Registry, op, result string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "berth_store_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["op"] == op && l["result"] == result {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

// TestMetrics: with a Registerer, every request to the bucket is timed by
// op and result, and the local cache says what it answered, on each server.
func TestMetrics(t *testing.T) {
	for _, kind := range s3test.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			srv := server(t, kind)
			ctx := t.Context()
			reg := prometheus.NewRegistry()
			o := opts(t, srv, newBucket(t, srv))
			o.Registerer = reg
			st := open(t, o)
			if n := requests(t, reg, "check", "ok"); n != 1 {
				t.Errorf("check requests after New: %d, want 1 (the bucket's HEAD)", n)
			}
			zip, list := "example.test/m/@v/v1.0.0.zip", "example.test/m/@v/list"
			for _, k := range []string{zip, list} {
				if err := store.Put(ctx, st, k, strings.NewReader("content of "+k), time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
			if h, p := requests(t, reg, "head", "not_found"), requests(t, reg, "put", "ok"); h != 2 || p != 2 {
				t.Errorf("two Puts of new keys: %d HEADs not found, %d PUTs ok; want 2 and 2", h, p)
			}
			read := func(st *s3.Store, k string) {
				t.Helper()
				f, err := st.Open(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, f)
				f.Close()
			}
			local := func(reg *prometheus.Registry, result string) float64 {
				t.Helper()
				if n, err := testutil.GatherAndCount(reg, "berth_store_local_cache_total"); err != nil || n != 3 {
					t.Fatalf("berth_store_local_cache_total: %d series (%v), want hit, miss and revalidated", n, err)
				}
				return value(t, reg, "berth_store_local_cache_total", "result", result)
			}
			read(st, zip)
			read(st, zip)
			if n := local(reg, "hit"); n != 2 {
				t.Errorf("two Opens of a warm immutable key: %v hits, want 2", n)
			}
			if n := requests(t, reg, "get", "ok"); n != 0 {
				t.Errorf("warm immutable key: %d GETs, want none", n)
			}
			read(st, list)
			if r, g := local(reg, "revalidated"), requests(t, reg, "get", "not_modified"); r != 1 || g != 1 {
				t.Errorf("Open of a warm mutable key: %v revalidated, %d GETs not modified; want 1 and 1", r, g)
			}
			if _, err := st.Open(ctx, "example.test/m/@v/v9.0.0.zip"); err == nil {
				t.Fatal("Open of a missing key succeeded")
			}
			if n := requests(t, reg, "get", "not_found"); n != 1 {
				t.Errorf("Open of a missing key: %d GETs not found, want 1", n)
			}
			size, limit := st.CacheUsage()
			if want := int64(len("content of "+zip) + len("content of "+list)); size != want || limit != s3.DefaultCacheSize {
				t.Errorf("CacheUsage() = %d, %d; want %d, %d", size, limit, want, s3.DefaultCacheSize)
			}
			if v := value(t, reg, "berth_store_local_cache_bytes", "", ""); v != float64(size) {
				t.Errorf("berth_store_local_cache_bytes %v, want %d", v, size)
			}

			// A writer that loses a race: its PUT fails its condition.
			k := "example.test/m/@v/v1.1.0.mod"
			w1, err := st.Create(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			defer w1.Close()
			w2, err := st.Create(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			defer w2.Close()
			w1.Write([]byte("one"))
			w2.Write([]byte("two"))
			if err := w1.Commit(ctx, time.Time{}); err != nil {
				t.Fatal(err)
			}
			if err := w2.Commit(ctx, time.Time{}); err != nil {
				t.Fatal(err)
			}
			if n := requests(t, reg, "put", "precondition_failed"); n != 1 {
				t.Errorf("a lost conditional write: %d PUTs precondition_failed, want 1", n)
			}

			if err := store.Walk(ctx, st, "", func(string, store.Info) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if n := requests(t, reg, "list", "ok"); n != 1 {
				t.Errorf("a walk of 3 keys: %d list requests, want 1", n)
			}
			if err := st.Remove(ctx, zip); err != nil {
				t.Fatal(err)
			}
			if n := requests(t, reg, "delete", "ok"); n != 1 {
				t.Errorf("Remove: %d DELETEs ok, want 1", n)
			}

			// Another replica, cold: its first Open downloads.
			reg2 := prometheus.NewRegistry()
			o2 := o
			o2.CacheDir, o2.Registerer = t.TempDir(), reg2
			cold := open(t, o2)
			read(cold, list)
			if m, g := local(reg2, "miss"), requests(t, reg2, "get", "ok"); m != 1 || g != 1 {
				t.Errorf("cold Open: %v misses, %d GETs ok; want 1 and 1", m, g)
			}

			if _, err := s3.New(ctx, o); err == nil || !strings.Contains(err.Error(), "metrics") {
				t.Errorf("a second store on one registry: %v, want an error about its metrics", err)
			}
			if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
				t.Errorf("metric lint: %v %v", problems, err)
			}
			var text bytes.Buffer
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				expfmt.MetricFamilyToText(&text, mf)
			}
			if strings.Contains(text.String(), srv.Secret) || strings.Contains(text.String(), srv.Access) {
				t.Errorf("the metrics hold a credential")
			}
		})
	}
}

// value returns the value of reg's counter or gauge name, of the series
// whose labels include label=v ("" for a series without labels), or -1.
func value(t *testing.T, reg *prometheus.Registry, name, label, v string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || (lp.GetName() == label && lp.GetValue() == v)
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// TestMetricsHitAllocs: counting a local cache hit allocates nothing; an
// Open of a warm immutable key allocates as much with metrics as without.
func TestMetricsHitAllocs(t *testing.T) {
	srv := server(t, s3test.MinIO)
	bucket := newBucket(t, srv)
	ctx := t.Context()
	const zip = "example.test/m/@v/v1.0.0.zip"
	allocs := func(reg prometheus.Registerer) float64 {
		o := opts(t, srv, bucket)
		o.Registerer = reg
		st := open(t, o)
		if err := store.Put(ctx, st, zip, strings.NewReader("zip"), time.Time{}); err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(100, func() {
			f, err := st.Open(ctx, zip)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		})
	}
	without, with := allocs(nil), allocs(prometheus.NewRegistry())
	if with != without {
		t.Errorf("an Open of a warm immutable key: %v allocations with metrics, %v without", with, without)
	}
}
