// Command s3 measures warm reads from the S3 store against the disk store:
// a file the bucket holds, read with the local cache cold (each Open
// downloads it), and with the local cache warm, on each S3-compatible server
// found (see store/s3/s3test), and prints the figures it is judged by:
//
//   - cold: the extra time over the disk store, in store round trips (one
//     raw GET of the same object through minio-go); at most 1.
//   - warm: the ratio to the disk store; at most 1.05.
//
// Run it with ./test.sh's BERTH_MINIO and BERTH_VERSITYGW exported:
//
//	go run ./bench/s3 [-size 1048576] [-n 300]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3"
	"github.com/berth-dev/berth/store/s3/s3test"
)

func main() {
	size := flag.Int("size", 1<<20, "bytes in the file read")
	n := flag.Int("n", 300, "reads per measurement")
	flag.Parse()
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "berth-bench-s3-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	body := make([]byte, *size)
	for i := range body {
		body[i] = byte(i * 7)
	}
	const key = "example.test/m/@v/v1.0.0.zip"
	disk, err := store.OpenDisk(tmp + "/disk")
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Put(ctx, disk, key, strings.NewReader(string(body)), time.Time{}); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("warm %d-byte file, %d reads each, median per read\n", *size, *n)
	diskT := measure(*n, func() { read(ctx, disk, key) })
	fmt.Printf("disk store                       %9s\n", diskT)
	ran := false
	for _, kind := range s3test.Kinds {
		if _, err := s3test.Binary(kind); err != nil {
			fmt.Printf("%s: skipped: %v\n", kind, err)
			continue
		}
		dir := s3test.DataDir(tmp, kind)
		os.MkdirAll(dir, 0o755)
		srv, err := s3test.Start(ctx, kind, dir)
		if err != nil {
			log.Fatal(err)
		}
		ran = true
		func() {
			defer srv.Stop()
			benchServer(ctx, srv, tmp, disk, key, body, *n)
		}()
	}
	if !ran {
		os.Exit(1)
	}
}

func benchServer(ctx context.Context, srv *s3test.Server, tmp string, disk store.Store, key string, body []byte, n int) {
	creds := credentials.NewStaticV4(srv.Access, srv.Secret, "")
	raw, err := minio.New(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{Creds: creds, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		log.Fatal(err)
	}
	bucket := s3test.BucketName("bench")
	if err := raw.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		log.Fatal(err)
	}
	var requests atomic.Int64
	counting := roundTripper(func(r *http.Request) (*http.Response, error) {
		requests.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})
	open := func(cacheSize int64) *s3.Store {
		st, err := s3.New(ctx, s3.Options{Bucket: bucket, Endpoint: srv.Endpoint, Creds: creds, Transport: counting,
			CacheDir: fmt.Sprintf("%s/cache-%s-%d", tmp, srv.Kind, cacheSize), CacheSize: cacheSize})
		if err != nil {
			log.Fatal(err)
		}
		return st
	}
	warm, cold := open(0), open(-1)
	defer warm.Close()
	defer cold.Close()
	if err := store.Put(ctx, warm, key, strings.NewReader(string(body)), time.Time{}); err != nil {
		log.Fatal(err)
	}
	rawGET := func() {
		o, err := raw.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
		if err != nil {
			log.Fatal(err)
		}
		if m, err := io.Copy(io.Discard, o); err != nil || m != int64(len(body)) {
			log.Fatalf("raw GET: %d bytes, %v", m, err)
		}
		o.Close()
	}
	// Each measured alternately with what it is compared to, so that the
	// other load on a shared machine weighs on both alike.
	requests.Store(0)
	read(ctx, cold, key)
	coldRequests := requests.Load()
	coldT, rt := measure2(n, func() { read(ctx, cold, key) }, rawGET)
	warmT, diskT := measure2(n, func() { read(ctx, warm, key) }, func() { read(ctx, disk, key) })
	fmt.Printf("%-9s one store round trip (GET)  %9s\n", srv.Kind, rt)
	fmt.Printf("%-9s s3 store, local cache cold  %9s  = disk + %.2f round trips of time; %d request (want <= 1)\n", srv.Kind, coldT, float64(coldT-diskT)/float64(rt), coldRequests)
	requests.Store(0)
	read(ctx, warm, key)
	fmt.Printf("%-9s requests for a warm read: %d\n", srv.Kind, requests.Load())
	fmt.Printf("%-9s s3 store, local cache warm  %9s  = %.3f x disk %s (want <= 1.05)\n", srv.Kind, warmT, float64(warmT)/float64(diskT), diskT)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// read opens key and copies it out, as a warm request does.
func read(ctx context.Context, st store.Store, key string) {
	f, err := st.Open(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, f); err != nil {
		log.Fatal(err)
	}
	f.Close()
}

// measure2 returns the median times of n runs each of a and b, alternated.
func measure2(n int, a, b func()) (time.Duration, time.Duration) {
	for range 5 {
		a()
		b()
	}
	ta, tb := make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		a()
		ta[i] = time.Since(start)
		start = time.Now()
		b()
		tb[i] = time.Since(start)
	}
	slices.Sort(ta)
	slices.Sort(tb)
	return ta[n/2], tb[n/2]
}

// measure returns the median time of n runs of fn, after a few to warm up.
func measure(n int, fn func()) time.Duration {
	for range 5 {
		fn()
	}
	ts := make([]time.Duration, n)
	for i := range ts {
		start := time.Now()
		fn()
		ts[i] = time.Since(start)
	}
	slices.Sort(ts)
	return ts[n/2]
}
