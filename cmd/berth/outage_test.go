package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/mod/module"

	"github.com/berth-dev/berth/internal/redistest"
	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store/s3/s3test"
)

// The tests of issue 14's outages: the bucket's server and the lease's
// Redis stopped and started again under load, and a rolling restart of the
// replicas behind nginx. Each runs the real binary on real servers.

// incompressible returns n bytes that do not compress, so that the zip holding them
// is about n bytes long.
func incompressible(n int) string {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return string(b)
}

// getWhole GETs url and reads the whole body, within 60 seconds.
func getWhole(url string) (int, []byte, error) {
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// readyStatus returns the status of base's /readyz and its report.
func readyStatus(base string) (int, readyReport, error) {
	var rep readyReport
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		return 0, rep, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&rep)
	return resp.StatusCode, rep, err
}

// metricValue returns the sum of the samples of the metric name in base's
// /metrics, whatever their labels, and whether there is any.
func metricValue(base, name string) (float64, bool) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

func minioClient(t *testing.T, ms *s3test.Server) *minio.Client {
	t.Helper()
	mc, err := ms.Client()
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// bucketContents returns the size of every object in the bucket, by name, and
// the names of incomplete multipart uploads.
func bucketContents(t *testing.T, mc *minio.Client, bucket string) (map[string]int64, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objs := map[string]int64{}
	for oi := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			t.Fatalf("listing the bucket: %v", oi.Err)
		}
		objs[oi.Key] = oi.Size
	}
	var uploads []string
	for u := range mc.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("listing incomplete uploads: %v", u.Err)
		}
		uploads = append(uploads, u.Key)
	}
	return objs, uploads
}

// answer is what a client of berth got.
type answer struct {
	status int
	body   []byte
	err    error
}

// getInBackground GETs url in a goroutine; headers is closed when the
// status line and headers are in (berth sends them once its fetch has a
// place in the store), done gets the answer.
func getInBackground(url string) (headers <-chan struct{}, done <-chan answer) {
	h, d := make(chan struct{}), make(chan answer, 1)
	go func() {
		c := &http.Client{Timeout: 90 * time.Second}
		resp, err := c.Get(url)
		close(h)
		if err != nil {
			d <- answer{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d <- answer{resp.StatusCode, body, err}
	}()
	return h, d
}

// within waits 30 seconds at most for c to be closed.
func within(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestProxyS3OutageMidFetch: the bucket's server (MinIO) is stopped while two
// replicas each stream a large zip from a slow upstream, and started again
// on the same port and data directory. What berth does, asserted:
//
//   - the replica that had already looked the module up in the checksum
//     database (it served the .mod first, as the go command asks for it)
//     verifies the zip without the store: its client gets the whole zip,
//     the commit fails with one ERROR line, and nothing of the zip is in the
//     bucket;
//   - the replica that had not (behind a load balancer the .mod may have
//     come from another replica) cannot read the database's lookup and tiles
//     from the store, so it fetches them from the upstream (checksum data is
//     small and verified in memory) and verifies the zip too: its client
//     gets the whole zip as well, and the zip's commit fails with one ERROR
//     line;
//   - while the bucket is down /readyz is 503 on both and a request for a
//     zip is a clean 5xx; once it is back /readyz is 200 and the next
//     request for either zip gets it whole, fetched again and committed
//     whole.
func TestProxyS3OutageMidFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two berth processes and stops and restarts MinIO")
	}
	bin := buildBerth(t)
	ms := minioBucket(t, "outage")
	mc := minioClient(t, ms)
	mods := []testmod.Module{
		{Path: "example.test/warm", Version: "v1.0.0", Files: map[string]string{"w.go": "package warm\n", "blob.bin": incompressible(2 << 20)}},
		{Path: "example.test/cold", Version: "v1.0.0", Files: map[string]string{"c.go": "package cold\n", "blob.bin": incompressible(2<<20 + 1)}},
	}
	built, err := testmod.Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	up, err := testmod.ServeBuilt(t.TempDir(), "sum.berth.test", built)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	const (
		warmZip = "/example.test/warm/@v/v1.0.0.zip"
		coldZip = "/example.test/cold/@v/v1.0.0.zip"
	)
	zips := map[string][]byte{warmZip: built[0].Zip, coldZip: built[1].Zip}
	warmReached, releaseWarm := up.Stall(warmZip, len(zips[warmZip])/2)
	defer releaseWarm()
	coldReached, releaseCold := up.Stall(coldZip, len(zips[coldZip])/2)
	defer releaseCold()
	// The cold replica's checksum lookup waits until the bucket is down, so
	// that verifying the zip needs the store then.
	lookupHeld := make(chan struct{})
	releaseLookup := sync.OnceFunc(func() { close(lookupHeld) })
	defer releaseLookup()
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/lookup/example.test/cold@") {
			select {
			case <-lookupHeld:
			case <-r.Context().Done():
			}
		}
		return false
	})

	env := replicaEnv(ms)
	args := func() []string {
		return []string{"--upstream", up.URL(), "--sumdb", up.GOSUMDB(),
			"--store", bucketStore(t, ms, "outage")}
	}
	warm, warmLog, _ := startReplica(t, bin, env, args()...)
	cold, coldLog, _ := startReplica(t, bin, env, args()...)
	replicas := []string{warm, cold}
	for _, base := range replicas {
		if code, rep, err := readyStatus(base); code != 200 {
			t.Fatalf("%s/readyz before the outage: %d %+v %v", base, code, rep, err)
		}
	}
	if code, body, err := getWhole(warm + "/example.test/warm/@v/v1.0.0.mod"); code != 200 {
		t.Fatalf("GET the .mod: %d %v %s", code, err, body)
	}

	warmHeaders, warmDone := getInBackground(warm + warmZip)
	coldHeaders, coldDone := getInBackground(cold + coldZip)
	within(t, "the warm replica's fetch to reach the stall", warmReached)
	within(t, "the cold replica's fetch to reach the stall", coldReached)
	within(t, "the warm replica's answer to start", warmHeaders)
	within(t, "the cold replica's answer to start", coldHeaders)
	stopped := time.Now()
	ms.Stop()
	for _, base := range replicas {
		waitUntil(t, base+"/readyz to fail with the bucket down", func() bool {
			code, _, _ := readyStatus(base)
			return code == http.StatusServiceUnavailable
		})
	}
	t.Logf("/readyz 503 on both replicas %v after MinIO stopped", time.Since(stopped).Round(time.Millisecond))
	releaseWarm()
	releaseCold()
	releaseLookup()

	wait := func(what string, c <-chan answer) answer {
		t.Helper()
		select {
		case a := <-c:
			return a
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: no answer within 60s", what)
		}
		return answer{}
	}
	got := wait("the warm replica's client", warmDone)
	if got.err != nil || got.status != 200 || !bytes.Equal(got.body, zips[warmZip]) {
		t.Errorf("the warm replica's client got %d, %d bytes (%v); want 200 and the whole %d-byte zip", got.status, len(got.body), got.err, len(zips[warmZip]))
	}
	waitUntil(t, "the warm replica's failed commit", func() bool {
		return strings.Contains(warmLog.String(), `"msg":"cannot commit a verified file to the store`)
	})
	got = wait("the cold replica's client", coldDone)
	if got.err != nil || got.status != 200 || !bytes.Equal(got.body, zips[coldZip]) {
		t.Errorf("the cold replica's client got %d, %d bytes (%v); want 200 and the whole %d-byte zip (its checksum data fetched from the upstream with the bucket down)", got.status, len(got.body), got.err, len(zips[coldZip]))
	}
	waitUntil(t, "the cold replica's failed commit of the zip", func() bool {
		return strings.Contains(coldLog.String(), `"msg":"cannot commit a verified file to the store; clients got it, the next request fetches it again","key":"`+coldZip[1:])
	})
	lines := func(log *testmod.SyncBuffer, substrs ...string) int {
		n := 0
	line:
		for _, l := range strings.Split(log.String(), "\n") {
			for _, s := range substrs {
				if !strings.Contains(l, s) {
					continue line
				}
			}
			n++
		}
		return n
	}
	if n := lines(warmLog, `"level":"ERROR"`, "cannot commit", warmZip[1:]); n != 1 {
		t.Errorf("the warm replica logged %d ERROR lines for the zip's commit, want 1", n)
	}
	if n := lines(coldLog, `"level":"ERROR"`, "cannot commit", coldZip[1:]); n != 1 {
		t.Errorf("the cold replica logged %d ERROR lines for the zip's commit, want 1", n)
	}
	if n := lines(coldLog, "client saw a broken transfer"); n != 0 {
		t.Errorf("the cold replica logged %d broken transfers, want 0", n)
	}
	for name, log := range map[string]*testmod.SyncBuffer{"warm": warmLog, "cold": coldLog} {
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, ".zip") && (strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`)) {
				t.Logf("%s replica: %.400s", name, line)
			}
		}
	}

	for _, base := range replicas {
		start := time.Now()
		code, body, err := getWhole(base + warmZip)
		if err != nil || code < 500 {
			t.Errorf("GET %s%s with the bucket down: %d, %d bytes, %v; want a whole 5xx answer", base, warmZip, code, len(body), err)
		}
		t.Logf("GET of a zip with the bucket down: %d in %v: %.200s", code, time.Since(start).Round(time.Millisecond), body)
	}

	restarted := time.Now()
	if err := ms.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, base := range replicas {
		waitUntil(t, base+"/readyz to pass with the bucket back", func() bool {
			code, _, _ := readyStatus(base)
			return code == 200
		})
	}
	t.Logf("/readyz 200 on both replicas %v after MinIO started again", time.Since(restarted).Round(time.Millisecond))
	objs, uploads := bucketContents(t, mc, "outage")
	for name, size := range objs {
		if strings.HasSuffix(name, ".zip") {
			t.Errorf("after the outage the bucket holds %s (%d bytes); want no zip: no commit succeeded", name, size)
		}
	}
	if len(uploads) > 0 {
		t.Errorf("incomplete multipart uploads left in the bucket: %v", uploads)
	}

	for _, p := range []string{warmZip, coldZip} {
		for _, base := range []string{cold, warm} {
			code, body, err := getWhole(base + p)
			if err != nil || code != 200 || !bytes.Equal(body, zips[p]) {
				t.Errorf("GET %s%s with the bucket back: %d, %d bytes (%v); want 200 and the whole zip", base, p, code, len(body), err)
			}
		}
		if n := up.Count(p); n != 2 {
			t.Errorf("upstream fetches of %s: %d, want 2 (the one during the outage, and one after)", p, n)
		}
	}
	objs, _ = bucketContents(t, mc, "outage")
	n := 0
	for name := range objs {
		if !strings.HasSuffix(name, ".zip") {
			continue
		}
		n++
		o, err := mc.GetObject(context.Background(), "outage", name, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(o)
		o.Close()
		if err != nil || !bytes.Equal(b, zips["/"+strings.TrimPrefix(name, "berth/")]) {
			t.Errorf("the bucket's %s: %d bytes (%v), not the zip", name, len(b), err)
		}
	}
	if n != 2 {
		t.Errorf("%d zips in the bucket after the outage, want 2: %v", n, objs)
	}
}

// TestProxyLeaseRedisRestart: three replicas share a bucket and a Redis
// lease. With Redis up, 8 clients get every new file and the upstream sees
// each once in all; Redis is stopped: the clients keep getting every file
// (each replica fetching on its own, at most once each), every replica says
// so in one WARN line and berth_proxy_lease_backend_up is 0; Redis starts
// again on the same port: every replica notices without a fetch to try it
// (one INFO line, the gauge 1 again), and new files are fetched once in all
// again.
func TestProxyLeaseRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three berth processes, MinIO and Redis, and stops and restarts Redis")
	}
	rs := redistest.Start(t)
	bin := buildBerth(t)
	ms := minioBucket(t, "redisrestart")
	var mods []testmod.Module
	for i := range 12 {
		mods = append(mods, testmod.Module{Path: fmt.Sprintf("example.test/rr%d", i), Version: "v1.0.0",
			Files: map[string]string{"r.go": "package r\n", "big.txt": strings.Repeat(fmt.Sprintf("%x", i*7919), 100<<10)}})
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
	for range 3 {
		base, log, _ := startReplica(t, bin, env, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "--lease", rs.URL(),
			"--store", bucketStore(t, ms, "redisrestart"))
		bases, logs = append(bases, base), append(logs, log)
	}
	files := func(from, to int) []string {
		var ps []string
		for i := from; i < to; i++ {
			for _, ext := range []string{".info", ".mod", ".zip"} {
				ps = append(ps, fmt.Sprintf("/example.test/rr%d/@v/v1.0.0%s", i, ext))
			}
		}
		return ps
	}
	// get has 8 clients, spread over the replicas, ask for every file of ps
	// at once, each in its own order.
	get := func(phase string, ps []string) {
		t.Helper()
		var wg sync.WaitGroup
		for c := range 8 {
			wg.Go(func() {
				for j := range ps {
					p := ps[(c*5+j)%len(ps)]
					code, body, err := getWhole(bases[c%3] + p)
					if err != nil || code != 200 {
						t.Errorf("%s: client %d: GET %s: %d, %v: %.200s", phase, c, p, code, err, body)
					}
				}
			})
		}
		wg.Wait()
	}
	gauge := func(i int) float64 {
		v, ok := metricValue(bases[i], "berth_proxy_lease_backend_up")
		if !ok {
			return -1
		}
		return v
	}
	const (
		downLine = "lease backend unreachable"
		backLine = "lease backend answers again"
	)

	before := files(0, 4)
	get("Redis up", before)
	for _, p := range before {
		if n := up.Count(p); n != 1 {
			t.Errorf("Redis up: upstream fetches of %s through three leased replicas: %d, want 1", p, n)
		}
	}

	rs.Stop()
	stopped := time.Now()
	// A miss on each replica first, so that each tries the lease.
	for i, base := range bases {
		p := fmt.Sprintf("/example.test/rr%d/@v/v1.0.0.info", 4+i)
		if code, body, err := getWhole(base + p); code != 200 {
			t.Fatalf("Redis down: replica %d: GET %s: %d %v %s", i, p, code, err, body)
		}
	}
	during := files(4, 8)
	get("Redis down", during)
	t.Logf("Redis down: %d files to 8 clients in %v", len(during), time.Since(stopped).Round(time.Millisecond))
	hist := map[int]int{}
	for _, p := range during {
		n := up.Count(p)
		hist[n]++
		if n < 1 || n > 3 {
			t.Errorf("Redis down: upstream fetches of %s: %d, want 1 to 3 (at most once per replica)", p, n)
		}
	}
	t.Logf("Redis down: upstream fetches per file %v (fetches: files)", hist)
	for i := range bases {
		if n := strings.Count(logs[i].String(), downLine); n != 1 {
			t.Errorf("replica %d: %d %q lines with Redis stopped, want 1", i, n, downLine)
		}
		if g := gauge(i); g != 0 {
			t.Errorf("replica %d: berth_proxy_lease_backend_up %v with Redis stopped, want 0", i, g)
		}
	}

	rs.Restart()
	restarted := time.Now()
	for i := range bases {
		waitUntil(t, fmt.Sprintf("replica %d to notice that Redis is back", i), func() bool {
			return strings.Contains(logs[i].String(), backLine) && gauge(i) == 1
		})
	}
	t.Logf("Redis back: every replica noticed within %v", time.Since(restarted).Round(time.Millisecond))
	after := files(8, 12)
	get("Redis back", after)
	for _, p := range after {
		if n := up.Count(p); n != 1 {
			t.Errorf("Redis back: upstream fetches of %s through three leased replicas: %d, want 1", p, n)
		}
	}
	for i := range bases {
		log := logs[i].String()
		if n := strings.Count(log, downLine); n != 1 {
			t.Errorf("replica %d: %d %q lines in all, want 1", i, n, downLine)
		}
		if n := strings.Count(log, backLine); n != 1 {
			t.Errorf("replica %d: %d %q lines, want 1", i, n, backLine)
		}
		if code, rep, err := readyStatus(bases[i]); code != 200 || rep.Lease == nil || !rep.Lease.OK {
			t.Errorf("replica %d: /readyz with Redis back: %d, lease %+v (%v); want 200 and the lease ok", i, code, rep.Lease, err)
		}
	}
}

// waitLong is waitUntil with a deadline of two minutes.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAddr returns a loopback address free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// replicaProc is a `berth proxy` process that a test stops with a signal
// and waits for.
type replicaProc struct {
	base string
	log  *testmod.SyncBuffer
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited; then err is its Wait
	err  error
}

// startReplicaProc is startReplica for a process the test stops itself:
// SIGTERM with stop, killed by t.Cleanup if it still runs.
func startReplicaProc(t *testing.T, bin string, env []string, args ...string) *replicaProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"proxy", "--listen", "127.0.0.1:0", "--drain-delay", "0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &replicaProc{log: &testmod.SyncBuffer{}, cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("replica %s log:\n%s", p.base, p.log.String())
		}
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		p.log.Write([]byte(line + "\n"))
		if strings.Contains(line, "berth proxy listening") {
			if i := strings.Index(line, `"addr":"`); i >= 0 {
				p.base = "http://" + strings.SplitN(line[i+len(`"addr":"`):], `"`, 2)[0]
				break
			}
		}
	}
	go func() {
		io.Copy(p.log, stderr) // EOF when the process exits: then Wait
		p.err = cmd.Wait()
		close(p.done)
	}()
	if p.base == "" {
		<-p.done
		t.Fatalf("no listening line (%v):\n%s", p.err, p.log.String())
	}
	return p
}

// TestProxyRollingRestart: three replicas share a bucket and a Redis lease
// behind nginx; 8 clients run the real `go mod download all` and `go mod
// verify` of a generated graph in a loop, each run with a fresh module
// cache, while each replica in turn gets SIGTERM (it drains: /readyz fails
// for --drain-delay while it still serves, then its listener closes and
// running requests finish) and a new replica is started on its address. No
// client run fails, and the upstream sees every file at most twice.
//
// nginx (open source) checks its servers passively: a refused connection is
// passed to the next server (proxy_next_upstream error) and, with the
// default max_fails=1 fail_timeout=10s, takes that server out for 10s. A
// rolling restart faster than that takes out one server after another until
// none is left, and nginx answers 502 "no live upstreams" instead of trying
// again (seen: 13 of 83 runs failed when each replica was restarted as soon
// as the last one listened again). So the servers here have max_fails=0: a
// refused connection is only retried on the next server, never counted
// against one; and each step waits, as a rolling restart does, for the new
// replica to be in service (to get requests through nginx).
//
// It runs twice: nginx opening a connection per request, and keeping idle
// connections to the replicas (keepalive), which a replica closes when it
// shuts down.
func TestProxyRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three berth processes, nginx, MinIO, Redis and the go command")
	}
	if runtime.GOOS == "windows" {
		t.Skip("stops replicas with SIGTERM")
	}
	for _, tc := range []struct{ name, upstreamExtra string }{
		{"connection-per-request", ""},
		{"keepalive", "keepalive 16;"},
	} {
		t.Run(tc.name, func(t *testing.T) { rollingRestart(t, tc.upstreamExtra) })
	}
}

func rollingRestart(t *testing.T, upstreamExtra string) {
	rs := redistest.Start(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := buildBerth(t)
	ms := minioBucket(t, "rolling")

	// The graph: 6 leaves, 4 modules requiring two leaves each, one on top.
	var mods []testmod.Module
	var leaves, mids []module.Version
	for i := range 6 {
		p := fmt.Sprintf("example.test/leaf%d", i)
		mods = append(mods, testmod.Module{Path: p, Version: "v1.0.0",
			Files: map[string]string{"l.go": "package leaf\n", "data.txt": strings.Repeat(fmt.Sprintf("leaf %d ", i), 20000)}})
		leaves = append(leaves, module.Version{Path: p, Version: "v1.0.0"})
	}
	for i := range 4 {
		p := fmt.Sprintf("example.test/mid%d", i)
		mods = append(mods, testmod.Module{Path: p, Version: "v1.2.0", Files: map[string]string{"m.go": "package mid\n"},
			Require: []module.Version{leaves[i], leaves[i+2]}})
		mids = append(mids, module.Version{Path: p, Version: "v1.2.0"})
	}
	mods = append(mods, testmod.Module{Path: "example.test/top", Version: "v2.0.0+incompatible", Files: map[string]string{"t.go": "package top\n"}, Require: mids})
	graph := len(mods)
	// Each client run also needs one module no run has needed before (until
	// they are all used), so that upstream fetches are running when the
	// replicas are stopped.
	const extras = 200
	for i := range extras {
		mods = append(mods, testmod.Module{Path: fmt.Sprintf("example.test/x%03d", i), Version: "v1.0.0",
			Files: map[string]string{"x.go": "package x\n", "data.txt": strings.Repeat(fmt.Sprintf("x%d ", i), 5000)}})
	}
	built, err := testmod.Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	up, err := testmod.ServeBuilt(t.TempDir(), "sum.berth.test", built)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/@v/") {
			time.Sleep(20 * time.Millisecond) // so that misses overlap across replicas
		}
		return false
	})
	fetches := func() int { // upstream requests for module files so far
		n := 0
		for p, c := range up.Counts() {
			if strings.Contains(p, "/@v/") {
				n += c
			}
		}
		return n
	}

	env := replicaEnv(ms)
	const drain = time.Second
	start := func(addr string) *replicaProc {
		return startReplicaProc(t, bin, env, "--listen", addr, "--drain-delay", drain.String(), "--shutdown-timeout", "10s",
			"--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "--lease", rs.URL(),
			"--store", bucketStore(t, ms, "rolling"))
	}
	var reps []*replicaProc
	var backends []string
	for range 3 {
		r := start(freeAddr(t))
		reps, backends = append(reps, r), append(backends, r.base)
	}
	lb, nginxDir := startNginxWith(t, backends, "max_fails=0", upstreamExtra)

	gocache, _ := exec.Command(goBin, "env", "GOCACHE").Output()
	var runs atomic.Int64
	// run is one client run: a fresh home and module cache, `go mod
	// download all`, `go mod verify` of the graph and the run's extra module.
	run := func() (string, error) {
		var gomod, gosum strings.Builder
		gomod.WriteString("module example.test/main\n\ngo 1.21\n\nrequire (\n")
		for _, b := range append(built[:graph:graph], built[graph+int(runs.Add(1)-1)%extras]) {
			fmt.Fprintf(&gomod, "\t%s %s\n", b.Path, b.Version.Version)
			fmt.Fprintf(&gosum, "%s %s %s\n%s %s/go.mod %s\n", b.Path, b.Version.Version, b.Sum, b.Path, b.Version.Version, b.ModSum)
		}
		gomod.WriteString(")\n")
		home, err := os.MkdirTemp(t.TempDir(), "home")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(home)
		main := filepath.Join(home, "main")
		os.MkdirAll(main, 0o755)
		os.WriteFile(filepath.Join(main, "go.mod"), []byte(gomod.String()), 0o644)
		os.WriteFile(filepath.Join(main, "go.sum"), []byte(gosum.String()), 0o644)
		var out bytes.Buffer
		for _, a := range [][]string{{"mod", "download", "all"}, {"mod", "verify"}} {
			cmd := exec.Command(goBin, a...)
			cmd.Dir = main
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOPATH=" + filepath.Join(home, "gopath"),
				"GOMODCACHE=" + filepath.Join(home, "modcache"), "GOCACHE=" + strings.TrimSpace(string(gocache)),
				"GOPROXY=" + lb, "GOSUMDB=" + up.GOSUMDB(), "GOFLAGS=-modcacherw", "GONOSUMDB=", "GOPRIVATE=",
				"GONOPROXY=", "GOINSECURE=", "GOTOOLCHAIN=local", "GOTELEMETRY=off"}
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.WaitDelay = time.Minute
			if err := cmd.Run(); err != nil {
				return out.String(), fmt.Errorf("go %s: %w", strings.Join(a, " "), err)
			}
		}
		if !strings.Contains(out.String(), "all modules verified") {
			return out.String(), fmt.Errorf("go mod verify did not say all modules verified")
		}
		return out.String(), nil
	}

	var (
		mu                  sync.Mutex
		running, done, fail int
		took                []time.Duration
	)
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return running, done
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				running++
				mu.Unlock()
				runStart := time.Now()
				out, err := run()
				mu.Lock()
				took = append(took, time.Since(runStart))
				running--
				done++
				if err != nil {
					fail++
				}
				mu.Unlock()
				if err != nil {
					t.Errorf("client %d: %v\n%s", c, err, out)
				}
			}
		})
	}
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopClients()

	began := time.Now()
	// The first replica is stopped while the first (cold) runs fetch the
	// graph. Runs of the go command take seconds each on a loaded machine:
	// the waits on them are longer than waitUntil's.
	waitLong(t, "the clients' first fetches", func() bool { return fetches() >= 10 })
	for i := range reps {
		waitLong(t, "client runs in progress", func() bool { r, _ := counts(); return r >= 4 })
		old := reps[i]
		_, doneBefore := counts()
		fetchesBefore := fetches()
		signalled := time.Now()
		old.cmd.Process.Signal(syscall.SIGTERM)
		// /readyz fails for the drain (unless this poll is starved for all
		// of it: the drain line says it happened).
		saw503 := false
		waitUntil(t, fmt.Sprintf("replica %d to exit after SIGTERM", i), func() bool {
			select {
			case <-old.done:
				return true
			default:
			}
			if !saw503 {
				code, _, _ := readyStatus(old.base)
				saw503 = code == http.StatusServiceUnavailable
			}
			return false
		})
		stoppedIn := time.Since(signalled)
		log := old.log.String()
		if old.err != nil || !strings.Contains(log, `"msg":"draining"`) || !strings.Contains(log, `"msg":"stopped"`) {
			t.Errorf("replica %d after SIGTERM: %v; want exit 0 after a drain and a 'stopped' line", i, old.err)
		}
		if stoppedIn < drain {
			t.Errorf("replica %d exited %v after SIGTERM, before its %v drain was over", i, stoppedIn, drain)
		}
		if !saw503 {
			t.Logf("replica %d: no /readyz poll answered during the drain (a starved poller); its log says it drained", i)
		}
		reps[i] = start(strings.TrimPrefix(old.base, "http://"))
		served := func() float64 { v, _ := metricValue(reps[i].base, "berth_proxy_requests_total"); return v }
		waitUntil(t, fmt.Sprintf("the new replica %d to get requests through nginx", i), func() bool { return served() > 0 })
		_, doneAfter := counts()
		t.Logf("replica %d: SIGTERM to exit %v, back and serving %v after the signal; meanwhile %d client runs ended and the upstream got %d requests for module files",
			i, stoppedIn.Round(time.Millisecond), time.Since(signalled).Round(time.Millisecond), doneAfter-doneBefore, fetches()-fetchesBefore)
	}
	_, doneRolled := counts()
	waitLong(t, "8 more client runs on the new replicas", func() bool { _, d := counts(); return d >= doneRolled+8 })
	stopClients()
	_, total := counts()
	slices.Sort(took)
	t.Logf("%d client runs in %v, %d failed; a run took %v to %v, median %v", total, time.Since(began).Round(time.Millisecond), fail,
		took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond))

	most, hist := 0, map[int]int{}
	for i, b := range built {
		esc, _ := module.EscapePath(b.Path)
		for _, ext := range []string{".info", ".mod", ".zip"} {
			p := "/" + esc + "/@v/" + b.Version.Version + ext
			n := up.Count(p)
			most = max(most, n)
			hist[n]++
			if n > 2 || n == 0 && (i < graph || i-graph < min(total, extras)) {
				t.Errorf("upstream fetches of %s over the rolling restart: %d, want 1 or 2", p, n)
			}
		}
	}
	t.Logf("upstream fetches per file: %v (fetches: files; 0 for extra modules no run needed), at most %d", hist, most)
	log, _ := os.ReadFile(filepath.Join(nginxDir, "error.log"))
	kinds := map[string]int{}
	for _, line := range strings.Split(string(log), "\n") {
		if _, msg, ok := strings.Cut(line, "[error] "); ok {
			msg, _, _ = strings.Cut(msg, ", client:")
			if f := strings.SplitN(msg, " ", 3); len(f) == 3 { // "pid#tid: *conn message"
				msg = f[2]
			}
			kinds[msg]++
		}
	}
	t.Logf("nginx's upstream errors, each passed to the next server: %v", kinds)
	if t.Failed() {
		t.Logf("nginx error.log:\n%s", log)
	}
}
