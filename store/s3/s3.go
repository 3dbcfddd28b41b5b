// Package s3 is a store.Store over a bucket of an S3-compatible object store
// (AWS S3, MinIO, versitygw, ...), so that berth replicas on several machines
// can share one cache.
//
// Correctness comes from conditional writes and HEAD requests, never from
// listings:
//
//   - A key is visible only when whole: a Writer spools to a local file and
//     uploads it with one PUT at Commit (no multipart upload, so a crash leaves
//     nothing in the bucket). Module zips are at most 500 MiB, far below the
//     5 GiB a single PUT may carry.
//   - No write is blind. Create HEADs the key and remembers what it saw.
//     Commit of a key that was absent is create-only (If-None-Match: *); of a
//     key that was present, a compare-and-swap on the ETag it saw (If-Match).
//     Of writers racing for one key exactly one wins; the others' Commits
//     return nil (the key holds one whole content, as store.Writer promises)
//     and their Lost method reports true, so that a caller holding checksum
//     data can check the winner's content if it wants to.
//   - The modification time given to Commit is object metadata
//     (x-amz-meta-berth-mtime) and is what Stat, Open and WalkKeys return.
//
// Keys are of two kinds. Immutable keys, whose content is fixed by the
// checksum database or by the Go module protocol, are a module version's
// .info, .mod and .zip and a checksum database's lookup/ and tile/ entries;
// everything else (@v/list, sumdb/<name>/supported, ...) is mutable. Both are
// written the same way, as above. They differ in the local cache: every
// replica keeps a bounded local disk cache of hot objects (least recently used
// evicted first) so that warm reads return an *os.File that net/http serves
// with sendfile. An immutable key found in the cache is served without asking
// the bucket at all; a mutable key is revalidated on every Open with a
// conditional GET (If-None-Match on the cached ETag, so a 304 costs one round
// trip and no body). A replica may thus serve an immutable key from its cache
// after another replica removed or rewrote it in the bucket; for immutable
// content that is still the right answer.
//
// Listings (WalkKeys) are used only for eviction and export: they page through
// the bucket (past 1000 objects) and HEAD each object for its metadata.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/store"
)

// DefaultCacheSize is the size of the local cache when Options.CacheSize is zero.
const DefaultCacheSize = 1 << 30

// Options configures a Store. The zero value of every field but Bucket works.
type Options struct {
	// Bucket is the bucket's name. It must exist.
	Bucket string

	// Prefix is prepended, with a slash, to every key ("" for none), so that
	// several stores can share a bucket.
	Prefix string

	// Endpoint is the URL of an S3-compatible server, such as
	// "http://127.0.0.1:9000"; buckets are then addressed path-style
	// (http://host/bucket/key). Empty means AWS S3 itself, addressed as AWS
	// prefers (virtual-hosted).
	Endpoint string

	// Region is the bucket's region; empty lets the client ask the server
	// (AWS), or use us-east-1 (most S3-compatible servers).
	Region string

	// Creds are the credentials. Nil reads them as AWS's tools do: the
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
	// environment variables, then the shared credentials file
	// (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials, profile
	// AWS_PROFILE), then an IAM role (EC2, ECS, web identity).
	Creds *credentials.Credentials

	// Transport is the HTTP transport; nil uses minio-go's default.
	Transport http.RoundTripper

	// CacheDir is the directory of the local cache and of the files Writers
	// spool to, in its objects and spool subdirectories. It belongs to one
	// Store at a time: they are emptied when the Store opens; other entries
	// are left alone (berth proxy keeps version control's caches in vcs).
	// Empty means a new temporary directory, removed by Close.
	CacheDir string

	// CacheSize bounds the bytes kept in the local cache (spooling writers
	// not counted). Zero means DefaultCacheSize; negative keeps nothing, so
	// that every Open downloads.
	CacheSize int64

	// Registerer, when set, gets the store's Prometheus series:
	// berth_store_request_duration_seconds{op,result} (every request to the
	// bucket), berth_store_local_cache_total{result} (hit, revalidated,
	// miss), berth_store_local_cache_bytes and
	// berth_store_local_cache_limit_bytes. Nil registers none.
	Registerer prometheus.Registerer
}

// Store is a store.Store over an S3 bucket. It is a store.Walker and a
// store.Checker; its Writers are store.Localers.
type Store struct {
	opts    Options
	core    minio.Core
	base    string // Prefix with a trailing slash, or ""
	where   string // s3://bucket/prefix, for messages
	cache   *cache
	dir     string // the local cache's directory
	tmpDir  string // CacheDir when Open made it, removed by Close
	flights flights
	m       *metrics
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Walker  = (*Store)(nil)
	_ store.Checker = (*Store)(nil)
	_ store.Localer = (*writer)(nil)
)

// Open returns a Store for a URL of the form
//
//	s3://BUCKET[/PREFIX][?endpoint=URL][&region=R][&cache=DIR][&cache_size=SIZE]
//
// with the fields of Options (cache_size in bytes, or with a KiB, MiB or GiB
// suffix). It checks that the bucket answers (Check).
func Open(ctx context.Context, rawURL string) (*Store, error) {
	opts, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return New(ctx, opts)
}

// ParseURL returns the Options of an s3:// URL (see Open).
func ParseURL(rawURL string) (Options, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Options{}, fmt.Errorf("store: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return Options{}, fmt.Errorf("store: %q is not an S3 store URL: want s3://BUCKET/PREFIX?endpoint=URL&region=R", rawURL)
	}
	opts := Options{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "endpoint":
			opts.Endpoint = v
		case "region":
			opts.Region = v
		case "cache":
			opts.CacheDir = v
		case "cache_size":
			n, err := parseSize(v)
			if err != nil {
				return Options{}, fmt.Errorf("store: %s: cache_size=%q: %w", rawURL, v, err)
			}
			opts.CacheSize = n
		default:
			return Options{}, fmt.Errorf("store: %s: unknown parameter %q (known: endpoint, region, cache, cache_size)", rawURL, k)
		}
	}
	return opts, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("want a number of bytes, optionally with a KiB, MiB or GiB suffix")
	}
	return n * mult, nil
}

// New returns a Store for opts. It checks that the bucket answers (Check).
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Bucket == "" {
		return nil, errors.New("store: no S3 bucket named")
	}
	if opts.Prefix != "" {
		if err := store.CheckKey(opts.Prefix); err != nil {
			return nil, fmt.Errorf("store: S3 prefix: %w", err)
		}
	}
	s := &Store{opts: opts, where: "s3://" + path.Join(opts.Bucket, opts.Prefix), m: newMetrics()}
	if opts.Prefix != "" {
		s.base = opts.Prefix + "/"
	}
	mo := &minio.Options{
		Creds:     opts.Creds,
		Region:    opts.Region,
		Transport: opts.Transport,
		// minio-go retries 10 times by default; the core has its own
		// retries and deadlines, so fail within a few seconds instead.
		MaxRetries: 3,
	}
	if mo.Creds == nil {
		mo.Creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	host := "s3.amazonaws.com"
	mo.Secure = true
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("store: S3 endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT]", opts.Endpoint)
		}
		host, mo.Secure = u.Host, u.Scheme == "https"
		mo.BucketLookup = minio.BucketLookupPath
	} else if opts.Region != "" {
		host = "s3." + opts.Region + ".amazonaws.com"
	}
	if opts.Registerer != nil {
		next := opts.Transport
		if next == nil {
			t, err := minio.DefaultTransport(mo.Secure)
			if err != nil {
				return nil, fmt.Errorf("store: %s: %w", s.where, err)
			}
			next = t
		}
		mo.Transport = &timedTransport{next: next, m: s.m, bucket: "/" + opts.Bucket}
	}
	c, err := minio.New(host, mo)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", s.where, err)
	}
	s.core = minio.Core{Client: c}

	dir := opts.CacheDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "berth-s3-"); err != nil {
			return nil, fmt.Errorf("store: local cache for %s: %w", s.where, err)
		}
		s.tmpDir = dir
	}
	s.dir = dir
	size := opts.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if s.cache, err = newCache(dir, max(size, 0)); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: local cache for %s: %w (choose another cache= directory)", s.where, err)
	}
	if err := s.Check(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if opts.Registerer != nil {
		if err := s.m.register(opts.Registerer, s.cache); err != nil {
			s.Close()
			return nil, fmt.Errorf("store: %s: registering its metrics: %w", s.where, err)
		}
	}
	return s, nil
}

// Close removes the local cache directory when New made it. Files already
// opened stay readable.
func (s *Store) Close() error {
	if s.tmpDir != "" {
		return os.RemoveAll(s.tmpDir)
	}
	return nil
}

// String returns the store's s3:// location.
func (s *Store) String() string { return s.where }

// CacheDir returns the directory of the local cache: Options.CacheDir, or
// the temporary directory New made (removed by Close).
func (s *Store) CacheDir() string { return s.dir }

// CacheUsage returns the bytes in the local cache and its bound.
func (s *Store) CacheUsage() (size, limit int64) { return s.cache.bytes(), s.cache.limit }

// Check implements store.Checker with a HEAD on the bucket.
func (s *Store) Check(ctx context.Context) error {
	ok, err := s.core.BucketExists(ctx, s.opts.Bucket)
	if err != nil {
		return fmt.Errorf("store: %s: %w (check the endpoint, the region and the credentials)", s.where, s.explain(err))
	}
	if !ok {
		return fmt.Errorf("store: %s: the bucket does not exist: create it, or fix the bucket name in --store", s.where)
	}
	return nil
}

// explain adds the server's own words to a minio-go error.
func (s *Store) explain(err error) error {
	var r minio.ErrorResponse
	if errors.As(err, &r) && r.Code != "" && !strings.Contains(err.Error(), r.Code) {
		return fmt.Errorf("%s: %w", r.Code, err)
	}
	return err
}

// object returns the object name of a checked key.
func (s *Store) object(key string) (string, error) {
	if err := store.CheckKey(key); err != nil {
		return "", err
	}
	return s.base + key, nil
}

// immutable reports whether key's content never changes once written: a
// module version's .info, .mod and .zip, and a checksum database's lookups
// and tiles.
func immutable(key string) bool {
	if rest, ok := strings.CutPrefix(key, "sumdb/"); ok {
		_, sub, _ := strings.Cut(rest, "/")
		return strings.HasPrefix(sub, "lookup/") || strings.HasPrefix(sub, "tile/")
	}
	i := strings.LastIndex(key, "/@v/")
	if i < 0 {
		return false
	}
	f := key[i+len("/@v/"):]
	return !strings.Contains(f, "/") && (strings.HasSuffix(f, ".info") || strings.HasSuffix(f, ".mod") || strings.HasSuffix(f, ".zip"))
}

const mtimeMeta = "Berth-Mtime" // x-amz-meta-berth-mtime: Unix nanoseconds

// modTime returns the modification time berth recorded for an object, or the
// server's own when there is none (an object put there by another tool).
func modTime(oi minio.ObjectInfo) time.Time {
	v := oi.Metadata.Get("X-Amz-Meta-" + mtimeMeta)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(0, n)
	}
	return oi.LastModified
}

// isStatus reports whether err is an S3 error response with HTTP status code.
func isStatus(err error, code int) bool {
	var r minio.ErrorResponse
	return errors.As(err, &r) && r.StatusCode == code
}

func (s *Store) notExist(key string, err error) error {
	return fmt.Errorf("store: %s/%s: %w (%v)", s.where, key, fs.ErrNotExist, err)
}

// head returns the object's info; the error wraps fs.ErrNotExist when there
// is none.
func (s *Store) head(ctx context.Context, key, obj string) (minio.ObjectInfo, error) {
	oi, err := s.core.StatObject(ctx, s.opts.Bucket, obj, minio.StatObjectOptions{})
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return oi, s.notExist(key, err)
		}
		return oi, fmt.Errorf("store: HEAD %s/%s: %w", s.where, key, s.explain(err))
	}
	if isDirectory(oi) {
		return oi, s.notExist(key, errors.New("a directory of the server's file system, not an object"))
	}
	return oi, nil
}

// isDirectory reports whether oi is a directory a file-system-backed server
// (versitygw's posix backend) shows at a prefix of other keys; berth never
// writes such an object.
func isDirectory(oi minio.ObjectInfo) bool {
	return strings.HasSuffix(oi.Key, "/") || oi.ContentType == "application/x-directory"
}

// Stat implements store.Store: from the local cache for an immutable key it
// holds, else a HEAD request.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	obj, err := s.object(key)
	if err != nil {
		return store.Info{}, err
	}
	if immutable(key) {
		if e, ok := s.cache.peek(key); ok {
			return store.Info{Size: e.size, ModTime: e.mod}, nil
		}
	}
	oi, err := s.head(ctx, key, obj)
	if err != nil {
		return store.Info{}, err
	}
	return store.Info{Size: oi.Size, ModTime: modTime(oi)}, nil
}

// Open implements store.Store. It returns an *os.File: from the local cache
// (without a round trip for an immutable key, with a conditional GET for a
// mutable one), else downloaded by one GET into the cache first.
func (s *Store) Open(ctx context.Context, key string) (store.File, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if immutable(key) {
		if f, ok := s.cache.open(key, ""); ok {
			s.m.hit.Inc()
			return f, nil
		}
	}
	return s.flights.do(ctx, key, func(ctx context.Context) (*os.File, bool, error) {
		return s.download(ctx, key, obj)
	})
}

// download GETs key into the local cache (conditionally, when a mutable key
// is cached) and opens it. shared is true when the File came from the cache
// and any caller may open the key's cache entry instead; false when the
// object does not fit the cache and f is the only handle on it.
func (s *Store) download(ctx context.Context, key, obj string) (f *os.File, shared bool, err error) {
	var opts minio.GetObjectOptions
	cached, isCached := s.cache.peek(key)
	if isCached {
		opts.SetMatchETagExcept(cached.etag)
	}
	body, oi, _, err := s.core.GetObject(ctx, s.opts.Bucket, obj, opts)
	if err != nil {
		switch {
		case isCached && isStatus(err, http.StatusNotModified):
			if f, ok := s.cache.open(key, cached.etag); ok {
				s.m.revalidate.Inc()
				return f, true, nil
			}
			// Evicted meanwhile: fetch it whole.
			s.cache.remove(key)
			return s.download(ctx, key, obj)
		case isStatus(err, http.StatusNotFound):
			s.cache.remove(key)
			return nil, false, s.notExist(key, err)
		}
		return nil, false, fmt.Errorf("store: GET %s/%s: %w", s.where, key, s.explain(err))
	}
	defer body.Close()
	if isDirectory(oi) {
		return nil, false, s.notExist(key, errors.New("a directory of the server's file system, not an object"))
	}
	tmp, err := s.cache.spool()
	if err != nil {
		return nil, false, err
	}
	buf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(tmp, body, *buf)
	copyBufs.Put(buf)
	if err == nil && n != oi.Size {
		err = fmt.Errorf("got %d bytes, the server announced %d", n, oi.Size)
	}
	mod := modTime(oi)
	if err == nil {
		err = os.Chtimes(tmp.Name(), mod, mod)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, false, fmt.Errorf("store: GET %s/%s: %w", s.where, key, err)
	}
	s.m.miss.Inc()
	if s.cache.add(key, tmp.Name(), entryInfo{etag: oi.ETag, size: n, mod: mod}) {
		// tmp is now the cache entry; its offset is at the end, so give the
		// caller its own handle.
		tmp.Close()
		if f, ok := s.cache.open(key, oi.ETag); ok {
			return f, true, nil
		}
		return s.download(ctx, key, obj)
	}
	// Too large for the cache: the caller gets the only handle, unlinked.
	os.Remove(tmp.Name())
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("store: %w", err)
	}
	return tmp, false, nil
}

// copyBufs are the buffers downloads are copied through: larger than
// io.Copy's, for fewer system calls per object.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Remove implements store.Store.
func (s *Store) Remove(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	s.cache.remove(key)
	if _, err := s.head(ctx, key, obj); errors.Is(err, fs.ErrNotExist) {
		return nil // also: a directory of a posix-backed server, which is no key
	}
	err = s.core.RemoveObject(ctx, s.opts.Bucket, obj, minio.RemoveObjectOptions{})
	if err != nil && !isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("store: DELETE %s/%s: %w", s.where, key, s.explain(err))
	}
	s.cache.remove(key)
	return nil
}

// WalkKeys implements store.Walker by listing the bucket, page by page, and
// HEADing each object for the modification time berth recorded. It is for
// eviction and export; nothing else relies on listings.
func (s *Store) WalkKeys(ctx context.Context, prefix string, fn func(key string, info store.Info) error) error {
	if strings.ContainsAny(prefix, "\\\x00") || strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("%w: prefix %q: backslash, NUL or leading slash", store.ErrBadKey, prefix)
	}
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if err := store.CheckKey(prefix[:i]); err != nil {
			return fmt.Errorf("prefix: %w", err)
		}
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objs := s.core.Client.ListObjects(lctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: s.base + prefix, Recursive: true})
	defer func() {
		cancel()
		for range objs { // let the lister's goroutine end
		}
	}()
	const batch = 200
	var page []minio.ObjectInfo
	flush := func() error {
		infos := make([]*store.Info, len(page))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for i, oi := range page {
			g.Go(func() error {
				key := strings.TrimPrefix(oi.Key, s.base)
				h, err := s.head(gctx, key, oi.Key)
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed since the listing
				}
				if err != nil {
					return err
				}
				infos[i] = &store.Info{Size: h.Size, ModTime: modTime(h)}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for i, info := range infos {
			if info == nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(strings.TrimPrefix(page[i].Key, s.base), *info); err != nil {
				return err
			}
		}
		page = page[:0]
		return nil
	}
	for oi := range objs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if oi.Err != nil {
			return fmt.Errorf("store: listing %s/%s: %w", s.where, prefix, s.explain(oi.Err))
		}
		key, ok := strings.CutPrefix(oi.Key, s.base)
		if !ok || !strings.HasPrefix(key, prefix) || store.CheckKey(key) != nil || isDirectory(oi) {
			continue
		}
		page = append(page, oi)
		if len(page) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return flush()
}

// flights joins concurrent downloads of one key.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done   chan struct{}
	f      *os.File // when not shared: the leader's alone
	shared bool
	err    error
}

// do runs fetch once for concurrent callers of one key. A follower gets a
// File of its own: from the cache when the leader's was shared, else by
// running fetch itself.
func (g *flights) do(ctx context.Context, key string, fetch func(context.Context) (*os.File, bool, error)) (store.File, error) {
	g.mu.Lock()
	if fl, ok := g.m[key]; ok {
		g.mu.Unlock()
		select {
		case <-fl.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if fl.err == nil && fl.shared {
			f, err := os.Open(fl.f.Name())
			if err == nil {
				return f, nil
			}
		}
		if fl.err != nil && errors.Is(fl.err, os.ErrNotExist) {
			return nil, fl.err
		}
		f, _, err := fetch(ctx)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	fl := &flight{done: make(chan struct{})}
	if g.m == nil {
		g.m = map[string]*flight{}
	}
	g.m[key] = fl
	g.mu.Unlock()
	fl.f, fl.shared, fl.err = fetch(ctx)
	g.mu.Lock()
	delete(g.m, key)
	g.mu.Unlock()
	close(fl.done)
	if fl.err != nil {
		return nil, fl.err
	}
	return fl.f, nil
}
