package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3"
	"github.com/berth-dev/berth/store/s3/s3test"
	"github.com/berth-dev/berth/store/storetest"
)

var (
	dataDir string
	servers = map[s3test.Kind]*serverOnce{}
)

type serverOnce struct {
	once sync.Once
	srv  *s3test.Server
	err  error
}

func TestMain(m *testing.M) {
	var err error
	if dataDir, err = os.MkdirTemp("", "berth-s3-servers-"); err != nil {
		panic(err)
	}
	for _, k := range s3test.Kinds {
		servers[k] = &serverOnce{}
	}
	code := m.Run()
	for _, s := range servers {
		if s.srv != nil {
			s.srv.Stop()
		}
	}
	os.RemoveAll(dataDir)
	os.Exit(code)
}

// server returns kind's server, started once for the whole test binary, or
// skips the test when its binary is missing.
func server(t testing.TB, kind s3test.Kind) *s3test.Server {
	t.Helper()
	if _, err := s3test.Binary(kind); err != nil {
		t.Skip(err)
	}
	so := servers[kind]
	so.once.Do(func() {
		dir := s3test.DataDir(dataDir, kind)
		if so.err = os.MkdirAll(dir, 0o755); so.err == nil {
			so.srv, so.err = s3test.Start(context.Background(), kind, dir)
		}
	})
	if so.err != nil {
		t.Fatal(so.err)
	}
	return so.srv
}

// client returns a plain minio-go client of srv, for checks below the store.
func client(t testing.TB, srv *s3test.Server) *minio.Client {
	t.Helper()
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newBucket(t testing.TB, srv *s3test.Server) string {
	t.Helper()
	b := s3test.BucketName("berth")
	if err := client(t, srv).MakeBucket(context.Background(), b, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("creating bucket %s on %s: %v", b, srv.Kind, err)
	}
	return b
}

// countingTransport counts requests by method.
type countingTransport struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.Method]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	return n
}

func opts(t testing.TB, srv *s3test.Server, bucket string) s3.Options {
	return s3.Options{
		Bucket:   bucket,
		Prefix:   "cache/berth",
		Endpoint: srv.Endpoint,
		Creds:    credentials.NewStaticV4(srv.Access, srv.Secret, ""),
		CacheDir: t.TempDir(),
	}
}

func open(t testing.TB, o s3.Options) *s3.Store {
	t.Helper()
	st, err := s3.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestCompliance runs the store compliance suite on each server, with the
// local cache on (the default size) and off (every Open downloads).
func TestCompliance(t *testing.T) {
	for _, kind := range s3test.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := server(t, kind)
			for _, c := range []struct {
				name string
				size int64
			}{{"cached", 0}, {"uncached", -1}} {
				t.Run(c.name, func(t *testing.T) {
					storetest.Run(t, func(t *testing.T) store.Store {
						o := opts(t, srv, newBucket(t, srv))
						o.CacheSize = c.size
						return open(t, o)
					})
				})
			}
		})
	}
}

// TestConditionalWrites pins down what each server does with the
// conditional PUTs the store relies on, below the store.
func TestConditionalWrites(t *testing.T) {
	for _, kind := range s3test.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := server(t, kind)
			c, b, ctx := client(t, srv), newBucket(t, srv), t.Context()
			put := func(body, ifNoneMatch, ifMatch string) (minio.UploadInfo, error) {
				var o minio.PutObjectOptions
				if ifNoneMatch != "" {
					o.SetMatchETagExcept(ifNoneMatch)
				}
				if ifMatch != "" {
					o.SetMatchETag(ifMatch)
				}
				return c.PutObject(ctx, b, "k", strings.NewReader(body), int64(len(body)), o)
			}
			status := func(err error) int {
				var r minio.ErrorResponse
				if errors.As(err, &r) {
					return r.StatusCode
				}
				if err == nil {
					return 200
				}
				return -1
			}
			first, err := put("one", "*", "")
			if err != nil {
				t.Fatalf("If-None-Match: * on a missing key: %v", err)
			}
			if _, err := put("two", "*", ""); status(err) != http.StatusPreconditionFailed {
				t.Errorf("If-None-Match: * on an existing key: %v (status %d), want 412", err, status(err))
			}
			if _, err := put("three", "", "0123456789abcdef0123456789abcdef"); status(err) != http.StatusPreconditionFailed {
				t.Errorf("If-Match with another ETag: %v (status %d), want 412", err, status(err))
			}
			if _, err := put("four", "", first.ETag); err != nil {
				t.Errorf("If-Match with the object's ETag: %v, want success", err)
			}
			if _, err := c.PutObject(ctx, b, "missing", strings.NewReader("x"), 1, func() minio.PutObjectOptions {
				var o minio.PutObjectOptions
				o.SetMatchETag(first.ETag)
				return o
			}()); status(err) != http.StatusPreconditionFailed && status(err) != http.StatusNotFound {
				t.Errorf("If-Match on a missing key: %v (status %d), want 412 or 404", err, status(err))
			} else {
				t.Logf("If-Match on a missing key: status %d", status(err))
			}
			// A file-system-backed server may show a prefix of a key as a
			// directory object; the store must not take it for a key.
			if _, err := c.PutObject(ctx, b, "d/e/f", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"d", "d/e", "d/e/"} {
				oi, err := c.StatObject(ctx, b, k, minio.StatObjectOptions{})
				t.Logf("HEAD %q, a prefix of key d/e/f: status %d, key %q, size %d, content type %q", k, status(err), oi.Key, oi.Size, oi.ContentType)
			}
			r, err := c.GetObject(ctx, b, "k", minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if string(got) != "four" {
				t.Errorf("after the conditional writes the key holds %q, want %q", got, "four")
			}
		})
	}
}

// TestLostWriter: of two writers of a missing key, the one that commits
// second loses without an error, the key keeps the winner's content, and the
// loser still reads its own until Close.
func TestLostWriter(t *testing.T) {
	for _, kind := range s3test.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			srv := server(t, kind)
			o := opts(t, srv, newBucket(t, srv))
			a, b := open(t, o), open(t, func() s3.Options { o := o; o.CacheDir = t.TempDir(); return o }())
			ctx, key := t.Context(), "example.test/m/@v/v1.0.0.zip"
			wa, err := a.Create(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			defer wa.Close()
			wb, err := b.Create(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			defer wb.Close()
			io.WriteString(wa, "winner")
			io.WriteString(wb, "loser!")
			if err := wa.Commit(ctx, time.Time{}); err != nil {
				t.Fatal(err)
			}
			if err := wb.Commit(ctx, time.Time{}); err != nil {
				t.Fatalf("the losing Commit: %v, want nil", err)
			}
			lost := func(w store.Writer) bool { return w.(interface{ Lost() bool }).Lost() }
			if lost(wa) || !lost(wb) {
				t.Errorf("Lost: first %v, second %v; want false, true", lost(wa), lost(wb))
			}
			for _, st := range []*s3.Store{a, b} {
				f, err := st.Open(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(f)
				f.Close()
				if string(got) != "winner" {
					t.Errorf("%v holds %q, want the winner's", st, got)
				}
			}
			buf := make([]byte, 6)
			if n, err := wb.ReadAt(buf, 0); n != 6 || string(buf) != "loser!" {
				t.Errorf("the loser's ReadAt after Commit: %q, %v", buf[:n], err)
			}
		})
	}
}

// TestWalkPages lists past the 1000 objects of one listing page.
func TestWalkPages(t *testing.T) {
	for _, kind := range s3test.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			srv := server(t, kind)
			o := opts(t, srv, newBucket(t, srv))
			o.CacheSize = -1
			st := open(t, o)
			const n = 1050
			var wg sync.WaitGroup
			sem := make(chan struct{}, 16)
			for i := range n {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					k := fmt.Sprintf("example.test/m%04d/@v/list", i)
					if err := store.Put(t.Context(), st, k, strings.NewReader("v1.0.0\n"), time.Time{}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			seen := map[string]bool{}
			err := store.Walk(t.Context(), st, "example.test/", func(k string, info store.Info) error {
				if seen[k] || info.Size != 7 {
					t.Errorf("Walk: %s again or of %d bytes", k, info.Size)
				}
				seen[k] = true
				return nil
			})
			if err != nil || len(seen) != n {
				t.Fatalf("Walk listed %d keys, %v; want %d", len(seen), err, n)
			}
		})
	}
}

// TestRoundTrips counts the requests behind reads: a warm immutable key
// none, a warm mutable key one conditional GET, a cold key one GET.
func TestRoundTrips(t *testing.T) {
	for _, kind := range s3test.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			srv := server(t, kind)
			ct := &countingTransport{}
			o := opts(t, srv, newBucket(t, srv))
			o.Transport = ct
			st := open(t, o)
			ctx := t.Context()
			zip, list := "example.test/m/@v/v1.0.0.zip", "example.test/m/@v/list"
			for _, k := range []string{zip, list} {
				if err := store.Put(ctx, st, k, strings.NewReader("content of "+k), time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
			read := func(st *s3.Store, k string) {
				f, err := st.Open(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, ok := f.(*os.File); !ok {
					t.Errorf("Open(%s) returned a %T, want an *os.File", k, f)
				}
				b, _ := io.ReadAll(f)
				if string(b) != "content of "+k {
					t.Errorf("Open(%s) reads %q", k, b)
				}
			}
			ct.take()
			read(st, zip)
			if n := ct.take(); len(n) != 0 {
				t.Errorf("a warm immutable key took requests %v, want none", n)
			}
			if _, err := st.Stat(ctx, zip); err != nil {
				t.Fatal(err)
			}
			if n := ct.take(); len(n) != 0 {
				t.Errorf("Stat of a warm immutable key took requests %v, want none", n)
			}
			read(st, list)
			if n := ct.take(); n["GET"] != 1 || len(n) != 1 {
				t.Errorf("a warm mutable key took requests %v, want one GET", n)
			}
			o2 := o
			o2.CacheDir = t.TempDir()
			cold := open(t, o2)
			ct.take()
			read(cold, zip)
			if n := ct.take(); n["GET"] != 1 || len(n) != 1 {
				t.Errorf("a cold key took requests %v, want one GET", n)
			}
		})
	}
}

// TestCacheBound: the local cache keeps at most its size, least recently
// used out first.
func TestCacheBound(t *testing.T) {
	srv := server(t, s3test.MinIO)
	ct := &countingTransport{}
	o := opts(t, srv, newBucket(t, srv))
	o.Transport, o.CacheSize = ct, 100<<10
	st := open(t, o)
	ctx := t.Context()
	k := func(i int) string { return fmt.Sprintf("example.test/m/@v/v1.0.%d.zip", i) }
	for i := range 5 {
		if err := store.Put(ctx, st, k(i), bytes.NewReader(make([]byte, 40<<10)), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	ct.take()
	for i, wantGET := range []int{0, 0, 1} { // 4 and 3 are cached, 2 was evicted
		f, err := st.Open(ctx, k(4-i))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if n := ct.take(); n["GET"] != wantGET {
			t.Errorf("Open(%s) after 5 puts of 40 KiB into a 100 KiB cache: requests %v, want %d GET", k(4-i), n, wantGET)
		}
	}
	// Larger than the whole cache: served from an unlinked file.
	big := "example.test/m/@v/v2.0.0.zip"
	if err := store.Put(ctx, st, big, bytes.NewReader(make([]byte, 200<<10)), time.Time{}); err != nil {
		t.Fatal(err)
	}
	f, err := st.Open(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, _ := io.Copy(io.Discard, f); n != 200<<10 {
		t.Errorf("read %d bytes of a file larger than the cache", n)
	}
}

// TestOpenURL opens a store by URL with credentials from the standard AWS
// environment variables.
func TestOpenURL(t *testing.T) {
	srv := server(t, s3test.MinIO)
	b := newBucket(t, srv)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.Secret)
	dir := t.TempDir()
	st, err := s3.Open(t.Context(), "s3://"+b+"/some/prefix?endpoint="+srv.Endpoint+"&region=us-east-1&cache="+dir+"&cache_size=1MiB")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := store.Put(t.Context(), st, "example.test/m/@v/list", strings.NewReader("v1.0.0\n"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, srv).StatObject(t.Context(), b, "some/prefix/example.test/m/@v/list", minio.StatObjectOptions{}); err != nil {
		t.Errorf("the key is not under the URL's prefix: %v", err)
	}
	if _, err := s3.Open(t.Context(), "s3://no-such-bucket-berth?endpoint="+srv.Endpoint); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open of a missing bucket: %v, want it to say the bucket does not exist", err)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want s3.Options
		err  string
	}{
		{url: "s3://b", want: s3.Options{Bucket: "b"}},
		{url: "s3://b/p/q/?endpoint=http://127.0.0.1:9000&region=eu-west-1", want: s3.Options{Bucket: "b", Prefix: "p/q", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1"}},
		{url: "s3://b?cache=/var/cache/berth&cache_size=512MiB", want: s3.Options{Bucket: "b", CacheDir: "/var/cache/berth", CacheSize: 512 << 20}},
		{url: "s3://b?cache_size=-1", want: s3.Options{Bucket: "b", CacheSize: -1}},
		{url: "s3://b?cache_size=lots", err: "cache_size"},
		{url: "s3://b?endpint=x", err: `unknown parameter "endpint"`},
		{url: "/var/berth", err: "not an S3 store URL"},
		{url: "s3:///p", err: "not an S3 store URL"},
	} {
		got, err := s3.ParseURL(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) = %v, want an error with %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
	if _, err := s3.New(context.Background(), s3.Options{Bucket: "b", Prefix: "a/../b"}); !errors.Is(err, store.ErrBadKey) {
		t.Errorf("a prefix with ..: %v, want store.ErrBadKey", err)
	}
}
