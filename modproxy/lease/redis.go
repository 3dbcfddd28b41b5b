// Package lease holds the backends of cache.Lease, which keeps one upstream
// fetch per file across berth replicas sharing one store. Redis is the one
// backend: a key per lease, taken with SET NX PX, renewed and released only by
// its holder (a token compared in a script), expiring on its own when its
// holder dies.
//
// A lease is an optimisation: the store's create-only commits keep replicas
// correct without it, so the backend is asked with short timeouts and no
// retries, and a failure is the caller's cue to fetch without it.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultTTL is how long a lease outlives its holder's last renewal.
const DefaultTTL = 10 * time.Second

// Redis is a cache.Lease in a Redis server. Its methods are safe for
// concurrent use.
type Redis struct {
	c      *redis.Client
	ttl    time.Duration
	prefix string
	where  string
}

// RedisOptions configures a Redis lease. The zero value of each field is a
// working default.
type RedisOptions struct {
	// TTL is how long a lease lives past its last renewal; the holder renews
	// it every TTL/3 while its fetch runs, so a replica that dies mid-fetch
	// is taken over within TTL. Default DefaultTTL.
	TTL time.Duration
	// Prefix starts every lease's Redis key. Default "berth:lease:".
	Prefix string
	// Timeout bounds one request to Redis, the dial included. Default 1s.
	Timeout time.Duration
}

var quietOnce sync.Once

// quiet keeps go-redis's own log lines (dial failures, one per attempt) out of
// berth's output: the core says an outage once, in its own words.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// OpenRedis returns a lease in the Redis server rawURL names:
// redis://[[USER]:PASSWORD@]HOST:PORT[/DB], or rediss:// for TLS. It does not
// connect: a server that is down at start is an outage like any other.
func OpenRedis(rawURL string, opts RedisOptions) (*Redis, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, fmt.Errorf("lease %q: want redis://HOST:PORT (or rediss:// for TLS, with an optional USER:PASSWORD@ and /DB)", redact(rawURL))
	}
	ro, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", redact(rawURL), err)
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Prefix == "" {
		opts.Prefix = "berth:lease:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = opts.Timeout, opts.Timeout, opts.Timeout
	ro.MaxRetries = -1 // the caller goes on without the lease instead
	ro.DialerRetries = 1
	ro.ContextTimeoutEnabled = true
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	quietOnce.Do(func() { redis.SetLogger(quiet{}) })
	return &Redis{c: redis.NewClient(ro), ttl: opts.TTL, prefix: opts.Prefix, where: redact(rawURL)}, nil
}

// redact hides a password in a Redis URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return strings.Replace(u.String(), u.User.String()+"@", "REDACTED@", 1)
}

// String names the server (without its password), for logs.
func (r *Redis) String() string { return r.where }

// Close closes the connections to the server.
func (r *Redis) Close() error { return r.c.Close() }

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("lease backend %s: %w", r.where, err)
	}
	return nil
}

// The holder's token guards renewal and release, so a holder whose lease
// expired and was taken never extends or deletes the new holder's.
var (
	renewScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) end return 0`)
	dropScript  = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)
)

// Acquire takes key's lease if nobody holds it and renews it every TTL/3
// until release is called; release deletes it (when still ours) and waits for
// the renewal to stop.
func (r *Redis) Acquire(ctx context.Context, key string) (bool, func(), error) {
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	k := r.prefix + key
	ok, err := r.c.SetNX(ctx, k, token, r.ttl).Result()
	if err != nil {
		return false, nil, fmt.Errorf("lease backend %s: %w", r.where, err)
	}
	if !ok {
		return false, nil, nil
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			rctx, cancel := context.WithTimeout(context.Background(), r.ttl/3)
			n, err := renewScript.Run(rctx, r.c, []string{k}, token, r.ttl.Milliseconds()).Int()
			cancel()
			if err == nil && n == 0 {
				return // lost (expired and taken): the fetch goes on, the store decides
			}
		}
	}()
	var once sync.Once
	release := func() {
		once.Do(func() {
			close(stop)
			<-done
			rctx, cancel := context.WithTimeout(context.Background(), r.ttl/3)
			defer cancel()
			// On failure it expires on its own within TTL.
			_ = dropScript.Run(rctx, r.c, []string{k}, token).Err()
		})
	}
	return true, release, nil
}
