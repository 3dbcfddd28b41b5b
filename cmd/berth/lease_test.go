package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth/internal/redistest"
	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3/s3test"
)

// startReplica runs `berth proxy` on the bucket with the lease and returns
// its base URL, its log and its process.
func startReplica(t *testing.T, bin string, env []string, args ...string) (string, *testmod.SyncBuffer, *os.Process) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"proxy", "--listen", "127.0.0.1:0", "--drain-delay", "0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &testmod.SyncBuffer{}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("replica log:\n%s", logs.String())
		}
	})
	sc := bufio.NewScanner(stderr)
	addr := ""
	for sc.Scan() {
		line := sc.Text()
		logs.Write([]byte(line + "\n"))
		if strings.Contains(line, "berth proxy listening") {
			if i := strings.Index(line, `"addr":"`); i >= 0 {
				addr = strings.SplitN(line[i+len(`"addr":"`):], `"`, 2)[0]
				break
			}
		}
	}
	if addr == "" {
		t.Fatalf("no listening line:\n%s", logs.String())
	}
	go io.Copy(logs, stderr)
	return "http://" + addr, logs, cmd.Process
}

// TestProxyLeaseReplicas runs two berth processes on one MinIO bucket with
// --lease on a real redis-server: 8 clients get every file, which the
// upstream sees once in all; with Redis stopped both keep serving, each says
// so in one WARN line, and /readyz stays ready and reports it.
func TestProxyLeaseReplicas(t *testing.T) {
	rs := redistest.Start(t)
	bin := buildBerth(t)
	ms := minioBucket(t, "replicas")
	var mods []testmod.Module
	for i := range 4 {
		mods = append(mods, testmod.Module{Path: fmt.Sprintf("example.test/r%d", i), Version: "v1.0.0",
			Files: map[string]string{"r.go": "package r\n", "big.txt": strings.Repeat(fmt.Sprintf("%x", i*7919), 200<<10)}})
	}
	up := testmod.NewUpstream(t, mods)
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/@v/") {
			time.Sleep(50 * time.Millisecond) // so that the replicas' misses overlap
		}
		return false
	})
	env := replicaEnv(ms)
	var bases []string
	var logs []*testmod.SyncBuffer
	for range 2 {
		base, log, _ := startReplica(t, bin, env, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "--lease", rs.URL(),
			"--store", bucketStore(t, ms, "replicas"))
		bases, logs = append(bases, base), append(logs, log)
	}
	files := func(from, to int) []string {
		var ps []string
		for i := from; i < to; i++ {
			for _, ext := range []string{".info", ".mod", ".zip"} {
				ps = append(ps, fmt.Sprintf("/example.test/r%d/@v/v1.0.0%s", i, ext))
			}
		}
		return ps
	}
	get := func(ps []string) {
		var wg sync.WaitGroup
		for c := range 8 {
			wg.Go(func() {
				for j := range ps {
					p := ps[(c+j)%len(ps)]
					resp, err := http.Get(bases[c%2] + p)
					if err != nil {
						t.Errorf("client %d: GET %s: %v", c, p, err)
						continue
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 {
						t.Errorf("client %d: GET %s: %d, %v: %.200s", c, p, resp.StatusCode, err, body)
					}
				}
			})
		}
		wg.Wait()
	}
	with := files(0, 2)
	get(with)
	for _, p := range with {
		if n := up.Count(p); n != 1 {
			t.Errorf("upstream fetches of %s through two leased replicas: %d, want 1", p, n)
		}
	}

	rs.Stop()
	without := files(2, 4)
	get(without)
	for i, log := range logs {
		if n := strings.Count(log.String(), "lease backend unreachable"); n != 1 {
			t.Errorf("replica %d: %d 'lease backend unreachable' lines with Redis stopped, want 1", i, n)
		}
		resp, err := http.Get(bases[i] + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var rep readyReport
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || rep.Status != "ok" {
			t.Errorf("replica %d: /readyz with Redis stopped: %d %+v (%v); want 200: the lease is an optimisation", i, resp.StatusCode, rep, err)
		}
		if rep.Lease == nil || rep.Lease.OK || rep.Lease.Error == "" {
			t.Errorf("replica %d: /readyz does not report the lease backend down: %+v", i, rep.Lease)
		}
		resp, err = http.Get(bases[i] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(m), "\nberth_proxy_lease_backend_up 0\n") {
			t.Errorf("replica %d: /metrics does not say berth_proxy_lease_backend_up 0", i)
		}
	}
}

// TestOpenLease: --lease takes a Redis URL, and only with a shared store.
func TestOpenLease(t *testing.T) {
	disk, _, closeFn, err := openStore(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if l, _, err := openLease("", disk); l != nil || err != nil {
		t.Errorf("no --lease: %v, %v; want none", l, err)
	}
	if _, _, err := openLease("redis://127.0.0.1:6379", disk); err == nil || !strings.Contains(err.Error(), "s3://") {
		t.Errorf("--lease with a disk store: %v; want a refusal that names an s3:// store", err)
	}
	var shared struct{ store.Store } // not a disk store
	for _, bad := range []string{"s3", "redis://", "127.0.0.1:6379"} {
		if _, _, err := openLease(bad, shared); err == nil || !strings.Contains(err.Error(), "redis://HOST:PORT") {
			t.Errorf("--lease=%s: %v; want a refusal that shows the form", bad, err)
		}
	}
}

// TestProxyLeaseKill9: the replica holding a file's lease is killed with
// SIGKILL mid-fetch while another replica's client waits on the lease: the
// lease expires (no renewal), the other replica takes the fetch over and its
// client gets the whole file.
func TestProxyLeaseKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two berth processes, MinIO and Redis, and waits out a lease")
	}
	rs := redistest.Start(t)
	bin := buildBerth(t)
	ms := minioBucket(t, "kill9")
	blob := make([]byte, 512<<10)
	for i := range blob {
		blob[i] = byte(i*7919>>3) ^ byte(i>>11)
	}
	mods := []testmod.Module{{Path: "example.test/big", Version: "v1.0.0", Files: map[string]string{"big.go": "package big\n", "blob.bin": string(blob)}}}
	built, err := testmod.Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	up, err := testmod.ServeBuilt(t.TempDir(), "sum.berth.test", built)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	const zip = "/example.test/big/@v/v1.0.0.zip"
	var first sync.Once
	stuck := make(chan struct{})
	defer close(stuck)
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != zip {
			return false
		}
		isFirst := false
		first.Do(func() { isFirst = true })
		if !isFirst {
			return false
		}
		z := built[0].Zip
		w.Header().Set("Content-Length", fmt.Sprint(len(z)))
		w.Write(z[:len(z)/2])
		w.(http.Flusher).Flush()
		select { // until the replica is killed (its connection closes)
		case <-r.Context().Done():
		case <-stuck:
		}
		return true
	})
	env := replicaEnv(ms)
	args := func() []string {
		return []string{"--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "--lease", rs.URL(),
			"--store", bucketStore(t, ms, "kill9")}
	}
	a, _, aProc := startReplica(t, bin, env, args()...)
	b, bLog, _ := startReplica(t, bin, env, args()...)

	aDone := make(chan error, 1)
	go func() {
		resp, err := http.Get(a + zip)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		aDone <- err
	}()
	waitUntil(t, "the first replica's upstream fetch", func() bool { return up.Count(zip) == 1 })
	type answer struct {
		status int
		body   []byte
		err    error
	}
	bDone := make(chan answer, 1)
	go func() {
		resp, err := http.Get(b + zip)
		if err != nil {
			bDone <- answer{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		bDone <- answer{resp.StatusCode, body, err}
	}()
	waitUntil(t, "the second replica to wait on the lease", func() bool {
		resp, err := http.Get(b + "/metrics")
		if err != nil {
			return false
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(m), "\nberth_proxy_lease_waits_total 1\n")
	})
	killed := time.Now()
	aProc.Kill()
	if err := <-aDone; err == nil {
		t.Errorf("the killed replica's client got a whole body")
	}
	var got answer
	select {
	case got = <-bDone:
	case <-time.After(60 * time.Second):
		t.Fatalf("the waiting replica did not answer within 60s of the kill")
	}
	if got.err != nil || got.status != 200 || !bytes.Equal(got.body, built[0].Zip) {
		t.Fatalf("the waiting replica answered %d, %d bytes (%v); want 200 and the whole %d-byte zip", got.status, len(got.body), got.err, len(built[0].Zip))
	}
	t.Logf("taken over %v after the kill", time.Since(killed).Round(time.Millisecond))
	if n := strings.Count(bLog.String(), "lease taken over"); n != 1 {
		t.Errorf("%d 'lease taken over' lines in the surviving replica's log, want 1", n)
	}
	if n := up.Count(zip); n != 2 {
		t.Errorf("upstream fetches of the zip: %d, want 2 (the killed one and the takeover)", n)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replicaEnv is the environment of a replica on ms's buckets: its
// credentials, and none of the user's Go settings that would route modules
// past the upstream.
func replicaEnv(ms *s3test.Server) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + ms.Access, "AWS_SECRET_ACCESS_KEY=" + ms.Secret,
		"BERTH_PRIVATE=", "GOPRIVATE=", "GONOSUMDB=", "GONOPROXY=", "GOFLAGS="}
}

// bucketStore is the --store of a replica on bucket of ms (prefix berth),
// with a local cache of its own.
func bucketStore(t *testing.T, ms *s3test.Server, bucket string) string {
	return "s3://" + bucket + "/berth?endpoint=" + ms.Endpoint + "&cache=" + t.TempDir()
}

// minioBucket starts a MinIO server for the test (skipping, with how to get
// it, when there is none) and makes an empty bucket in it.
func minioBucket(t *testing.T, bucket string) *s3test.Server {
	t.Helper()
	if _, err := s3test.Binary(s3test.MinIO); err != nil {
		t.Skip(err)
	}
	ms, err := s3test.Start(context.Background(), s3test.MinIO, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Stop() })
	mc, err := ms.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return ms
}
