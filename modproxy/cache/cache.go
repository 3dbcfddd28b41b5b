// Package cache is the module proxy's core, with a Go API: it answers
// GOPROXY requests (a proto.Request) from its store, or from its source on a
// miss, and owns everything between the two: one fetch per file however many
// ask (flights), verification against the checksum database before anything
// is stored, the negative and mutable caches, eviction, look-ahead lookups and
// the bound on concurrent fetches.
//
// How the parts fit:
//
//	Get (get.go)        classifies a request: immutable, list, query, sumdb;
//	                    answers a Content (a stored file, bytes, or a flight)
//	  store hit         the committed file (store.Store), read whole when small
//	  miss -> flight    flight.go: one fetch per key, streamed to every waiter
//	     lease.go       Config.Lease: the flight waits while another replica
//	                    sharing the store fetches the key (an optimisation)
//	     fetch.go       source.Source -> store.Writer, verify, Commit
//	     sumdb.Verifier reads the checksum database through Get itself
//	  mutable (mutable.go)  list, @latest, queries: TTL, stale-if-error
//	evict.go, prefetch.go   background work the core owns and waits for
//
// The HTTP face (package modproxy) renders a Content and maps the typed
// errors (errors.go) to statuses; warm (package airgap) calls Ensure. Nothing
// here knows HTTP.
package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/sumdb"
)

// Config configures a Cache. The zero value of each optional field is a
// working default.
type Config struct {
	// Store holds the cached files. Required.
	Store store.Store
	// Source answers what the store lacks. Required unless Offline.
	Source source.Source

	// ListTTL is how long a module's version list and @latest answer are served
	// from the cache before the source is asked again. Default 1 minute. Lists
	// are kept in the store, so replicas sharing it share them; @latest is
	// kept in each replica's memory.
	ListTTL time.Duration
	// NegativeTTL is how long a "not found" from the source is remembered,
	// and a file refused by verification (a checksum mismatch, a bad zip): a
	// request within it gets the refusal again without a fetch. Default 1
	// minute.
	NegativeTTL time.Duration
	// FetchTimeout bounds one fetch of one file, including the body. Callers
	// that give up do not cancel a fetch others wait for. Default 10 minutes.
	FetchTimeout time.Duration
	// MaxStoreSize bounds the bytes of module files in the store (0: no limit).
	// Past it, whole module versions go, least recently used first, down to 90%.
	// It needs a store that can walk its keys (store.Walker). With a Lease,
	// the replicas sharing the store evict one at a time: the one holding the
	// eviction lease walks the store (every replica's files), every few
	// minutes and when its own count goes over, and leaves a version alone
	// while any replica fetches a file of it (see evict.go).
	MaxStoreSize int64
	// MaxFetches caps fetches from the source running at once; more wait their
	// turn. It protects the upstream (and the disk) from a cold-build storm.
	// Default 64.
	MaxFetches int

	// Offline serves only what the store holds: everything else is not found,
	// so the go command's own fall-through works. A source of "off" is offline.
	Offline bool

	// SumDBKey is the verifier key ("name+hash+key") of the checksum database
	// every fetched .mod and .zip is checked against before it is stored; the
	// database is read through this cache (store first, then the source).
	// Empty means no verification.
	SumDBKey string
	// NoSumDB reports module paths that are not checked (private modules, as
	// GONOSUMDB/GOPRIVATE say); the checksum database is never asked about
	// them, not even for a client's lookup (a PrivateError). Nil means every
	// module is checked.
	NoSumDB func(modulePath string) bool
	// Ledger, if set, records the hashes and origin of each version of the
	// modules it covers (private ones, which the checksum database cannot
	// vouch for) on first fetch, and refuses a later fetch that differs.
	Ledger Ledger
	// WarmSumDB verifies the checksum database's latest tree when the cache
	// starts, so that the first files to verify do not wait for it. A
	// long-running server sets it; a batch that may have all it needs does not.
	WarmSumDB bool
	// PrefetchLookups looks up, in the background, the checksum-database
	// records of the requirements of every go.mod fetched, so that when the go
	// command asks for them next (it loads the module graph a go.mod at a
	// time), their verification needs no round trip.
	PrefetchLookups bool
	// PrefetchMinRTT: lookups are made ahead only while source lookups take
	// at least this long on average. 0 means 15ms; negative, always.
	PrefetchMinRTT time.Duration

	// Lease, if set, keeps a fetch single across replicas sharing Store (an
	// S3 bucket): a replica that finds a key's lease taken waits for the
	// object, and fetches itself if the lease expires. Nil: fetches are single
	// per process only, which is all one replica needs.
	Lease Lease

	// Removed, if set, is called with each key eviction removes, so that a
	// cache in front of this one (the HTTP face's memory) drops it too.
	Removed func(key string)

	// Logger receives one line per fetch from the source and per error.
	// Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the core's metrics. Nil means no registration.
	Registerer prometheus.Registerer
}

// Cache is the proxy's core. Its methods are safe for concurrent use.
type Cache struct {
	cfg Config
	st  store.Store
	src source.Source
	log *slog.Logger
	m   *metrics

	ctx    context.Context // parent of fetches; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetches and commits: Wait and Close wait for them
	bg     sync.WaitGroup // background work nobody waits for: Close stops it

	flightsMu sync.Mutex
	flights   map[string]*flight

	mutable   singleflight.Group // one fetch per mutable path
	mem       *memCache          // @latest, query .info, sumdb latest
	neg       *memCache          // not-found answers
	rejected  *memCache          // refused files: reason word, NUL, message
	supported sync.Map           // sumdb names whose "supported" marker is stored

	leaseH leaseHealth

	verifier *sumdb.Verifier // nil: no checksum verification
	// wholeZipHashes counts zips hashed after they were whole, because they
	// could not be hashed as they arrived (sumdb.ErrNotStreamable).
	wholeZipHashes atomic.Int64
	fetchSem       chan struct{} // bounds concurrent fetches
	evict          *evictor      // nil: no size limit
	ahead          *lookahead    // nil: no look-ahead lookups
}

// New returns a Cache for cfg and starts its background work (the checksum
// tree warm-up, look-ahead workers, the eviction index); Close stops it.
func New(cfg Config) (*Cache, error) {
	if cfg.Store == nil {
		return nil, errors.New("cache: Config.Store is required")
	}
	if cfg.Source == nil && !cfg.Offline {
		return nil, errors.New("cache: Config.Source is required unless Offline")
	}
	if cfg.ListTTL <= 0 {
		cfg.ListTTL = time.Minute
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = time.Minute
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PrefetchMinRTT == 0 {
		cfg.PrefetchMinRTT = defaultPrefetchMinRTT
	}
	if cfg.MaxFetches <= 0 {
		cfg.MaxFetches = 64
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		cfg:      cfg,
		st:       cfg.Store,
		src:      cfg.Source,
		log:      cfg.Logger,
		m:        newMetrics(cfg.Registerer),
		ctx:      ctx,
		cancel:   cancel,
		flights:  map[string]*flight{},
		mem:      newMemCache(20000),
		neg:      newMemCache(20000),
		rejected: newMemCache(20000),
		fetchSem: make(chan struct{}, cfg.MaxFetches),
	}
	if cfg.SumDBKey != "" {
		v, err := sumdb.NewVerifier(ctx, cfg.SumDBKey, c.readSumDB)
		if err != nil {
			cancel()
			return nil, err
		}
		c.verifier = v
		if cfg.WarmSumDB && !cfg.Offline {
			c.bg.Add(1)
			go c.warmSumDB()
		}
		if cfg.PrefetchLookups && !cfg.Offline {
			c.startLookahead()
		}
	}
	c.startEvictor()
	return c, nil
}

// warmSumDB verifies the database's latest tree off any client's path: its
// edge tiles can take the upstream seconds to produce.
func (c *Cache) warmSumDB() {
	defer c.bg.Done()
	start := time.Now()
	if err := c.verifier.Warm(c.ctx); err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("cannot read the checksum database's latest tree yet; files are verified when it can be read",
				"name", c.verifier.Name(), "err", err)
		}
		return
	}
	c.log.Info("checksum database tree verified", "name", c.verifier.Name(), "size", c.verifier.Tree().N, "ms", time.Since(start).Milliseconds())
}

// Offline reports whether the cache serves only its store.
func (c *Cache) Offline() bool { return c.cfg.Offline }

// Store returns the cache's store.
func (c *Cache) Store() store.Store { return c.st }

// SumDBName returns the name of the checksum database files are verified
// against, or "" when there is none.
func (c *Cache) SumDBName() string {
	if c.verifier == nil {
		return ""
	}
	return c.verifier.Name()
}

// Checked reports whether a module's files are checked against the checksum
// database.
func (c *Cache) Checked(modulePath string) bool {
	return c.verifier != nil && (c.cfg.NoSumDB == nil || !c.cfg.NoSumDB(modulePath))
}

// Close cancels running fetches (their temporary content is discarded),
// stops background work and waits for both.
func (c *Cache) Close() error {
	c.cancel()
	c.wg.Wait()
	c.bg.Wait()
	return nil
}

// Wait blocks until no fetch or commit is running or ctx is done; graceful
// shutdown uses it to let fetches that clients wait for finish, and warm to
// know that what it fetched is durable.
func (c *Cache) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquireFetch takes one of MaxFetches slots; release with releaseFetch.
func (c *Cache) acquireFetch(ctx context.Context) error {
	select {
	case c.fetchSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Cache) releaseFetch() { <-c.fetchSem }
