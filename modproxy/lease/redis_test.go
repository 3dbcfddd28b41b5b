package lease

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/berth-dev/berth/internal/redistest"
)

func open(t *testing.T, srv *redistest.Server, ttl time.Duration) *Redis {
	t.Helper()
	l, err := OpenRedis(srv.URL(), RedisOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func raw(t *testing.T, srv *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisOneHolder: a lease has one holder at a time across clients (two
// replicas); release frees it at once.
func TestRedisOneHolder(t *testing.T) {
	srv := redistest.Start(t)
	a, b := open(t, srv, 0), open(t, srv, 0)
	ctx := context.Background()
	held, release, err := a.Acquire(ctx, "example.test/m/@v/v1.0.0.zip")
	if err != nil || !held {
		t.Fatalf("first Acquire: held %v, err %v", held, err)
	}
	if held, _, err := b.Acquire(ctx, "example.test/m/@v/v1.0.0.zip"); err != nil || held {
		t.Fatalf("second replica's Acquire while held: held %v, err %v; want false, nil", held, err)
	}
	if held, rel, err := b.Acquire(ctx, "example.test/m/@v/v1.0.0.mod"); err != nil || !held {
		t.Fatalf("another key: held %v, err %v", held, err)
	} else {
		rel()
	}
	release()
	release() // twice is harmless
	held, rel, err := b.Acquire(ctx, "example.test/m/@v/v1.0.0.zip")
	if err != nil || !held {
		t.Fatalf("Acquire after release: held %v, err %v", held, err)
	}
	rel()
}

// TestRedisRenewAndExpire: a holder's lease outlives its TTL while it is
// renewed; one left by a holder that died expires within TTL; a holder whose
// lease was taken from it does not delete the new holder's.
func TestRedisRenewAndExpire(t *testing.T) {
	srv := redistest.Start(t)
	const ttl = 300 * time.Millisecond
	a, b := open(t, srv, ttl), open(t, srv, ttl)
	ctx := context.Background()
	held, release, err := a.Acquire(ctx, "k")
	if err != nil || !held {
		t.Fatalf("Acquire: held %v, err %v", held, err)
	}
	time.Sleep(3 * ttl)
	if held, _, err := b.Acquire(ctx, "k"); err != nil || held {
		t.Fatalf("Acquire of a renewed lease after 3 TTLs: held %v, err %v; want false", held, err)
	}
	// The lease is taken from a (as if it had expired): a's release must
	// leave the new holder's alone.
	rc := raw(t, srv)
	if err := rc.Set(ctx, "berth:lease:k", "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	release()
	if v, err := rc.Get(ctx, "berth:lease:k").Result(); err != nil || v != "someone-else" {
		t.Fatalf("after the old holder's release the lease is %q (%v); want the new holder's", v, err)
	}

	// A holder that died: its lease is there, nobody renews it.
	if err := rc.Set(ctx, "berth:lease:dead", "dead-holder", ttl).Err(); err != nil {
		t.Fatal(err)
	}
	if held, _, err := b.Acquire(ctx, "dead"); err != nil || held {
		t.Fatalf("Acquire of a fresh dead holder's lease: held %v, err %v; want false", held, err)
	}
	deadline := time.Now().Add(10 * ttl)
	for {
		held, rel, err := b.Acquire(ctx, "dead")
		if err != nil {
			t.Fatal(err)
		}
		if held {
			rel()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a dead holder's lease (TTL %v) still held after %v", ttl, 10*ttl)
		}
		time.Sleep(ttl / 10)
	}
}

// TestRedisDown: with the server gone Acquire fails fast (the caller goes on
// without the lease); when it is back, leases work again on the same client.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	l := open(t, srv, 0)
	ctx := context.Background()
	if err := l.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	held, _, err := l.Acquire(ctx, "k")
	if err == nil || held {
		t.Fatalf("Acquire with the server stopped: held %v, err %v; want an error", held, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Acquire with the server stopped took %v; a lease must not hold a fetch up", d)
	}
	t.Logf("server down: %v", err)
	srv.Restart()
	held, rel, err := l.Acquire(ctx, "k")
	if err != nil || !held {
		t.Fatalf("Acquire after the server is back: held %v, err %v", held, err)
	}
	rel()
}

func TestOpenRedisURL(t *testing.T) {
	for _, bad := range []string{"s3", "redis://", "http://127.0.0.1:6379", "127.0.0.1:6379"} {
		if _, err := OpenRedis(bad, RedisOptions{}); err == nil {
			t.Errorf("OpenRedis(%q) accepted", bad)
		}
	}
	l, err := OpenRedis("redis://:hunter2@127.0.0.1:6379/2", RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if s := l.String(); s != "redis://REDACTED@127.0.0.1:6379/2" {
		t.Errorf("String() = %q; want the password hidden", s)
	}
}
