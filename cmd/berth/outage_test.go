package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

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
	mc, err := minio.New(strings.TrimPrefix(ms.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(ms.Access, ms.Secret, ""), BucketLookup: minio.BucketLookupPath})
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
//     come from another replica) cannot read the database's tiles from the
//     store, so it cannot verify the zip: its client sees the transfer cut
//     short of the last 64 KiB (an error, never a whole unverified zip),
//     with one WARN line;
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

	env := []string{"AWS_ACCESS_KEY_ID=" + ms.Access, "AWS_SECRET_ACCESS_KEY=" + ms.Secret, "GOPRIVATE=", "GONOSUMDB=", "GONOPROXY=", "GOFLAGS="}
	args := func() []string {
		return []string{"--upstream", up.URL(), "--sumdb", up.GOSUMDB(),
			"--store", "s3://outage/berth?endpoint=" + ms.Endpoint + "&cache=" + t.TempDir()}
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
	if got.err == nil || len(got.body) >= len(zips[coldZip]) || !bytes.HasPrefix(zips[coldZip], got.body) {
		t.Errorf("the cold replica's client got %d, %d bytes (%v); want the transfer cut short of the %d-byte zip, before its end", got.status, len(got.body), got.err, len(zips[coldZip]))
	} else {
		t.Logf("the cold replica's client: %d bytes of %d, then %v", len(got.body), len(zips[coldZip]), got.err)
	}
	waitUntil(t, "the cold replica's WARN line", func() bool { return strings.Contains(coldLog.String(), "client saw a broken transfer") })
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
