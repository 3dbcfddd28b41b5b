package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/berth-dev/berth/store"
)

// Lease keeps a fetch single across replicas that share one store: a flight
// takes the lease of its key before it asks the source, and a replica that
// finds it taken waits for the holder's object to appear in the store instead
// of fetching too. It is an optimisation only: correctness comes from the
// store's create-only commits, so a lease backend that fails costs duplicate
// fetches, never an answer.
type Lease interface {
	// Acquire tries to take the lease of key without waiting. held reports
	// that the caller has it; it keeps it (the implementation renews it) until
	// release is called, or loses it when the process dies and the lease
	// expires. held false with a nil error: another holder has it. An error
	// means the backend could not answer.
	Acquire(ctx context.Context, key string) (held bool, release func(), err error)
}

// errStoredElsewhere completes a flight whose key was committed between its
// callers' miss and the flight's start (by an earlier flight, or by another
// replica while this one waited on its lease): callers read the store again.
var errStoredElsewhere = errors.New("cache: committed by another replica")

// Lease waits poll the store from leasePollMin, doubling up to leasePollMax.
// While the backend is down, it is tried again every leaseRetry.
var (
	leasePollMin = 20 * time.Millisecond
	leasePollMax = 500 * time.Millisecond
	leaseRetry   = 2 * time.Second
)

// leaseHealth tracks whether the lease backend answers, so that an outage is
// said once (a WARN line, a gauge, LeaseStatus) and fetches do not wait on a
// backend that is gone: while it is down only one fetch per leaseRetry tries it.
type leaseHealth struct {
	mu      sync.Mutex
	down    bool
	since   time.Time
	retryAt time.Time
	err     error
}

// LeaseStatus reports whether the lease backend answered the last time it
// was asked. ok is true without a Config.Lease; otherwise err is the
// backend's failure and since when it has been down. Readiness reports it
// and does not fail for it: replicas stay correct without the lease.
func (c *Cache) LeaseStatus() (ok bool, since time.Time, err error) {
	h := &c.leaseH
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.down, h.since, h.err
}

// skipLease reports that the backend is down and not due for another try.
func (c *Cache) skipLease() bool {
	h := &c.leaseH
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return false
	}
	if now := time.Now(); now.After(h.retryAt) {
		h.retryAt = now.Add(leaseRetry)
		return false
	}
	return true
}

func (c *Cache) leaseAnswered() {
	h := &c.leaseH
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		// Said under the lock, so that whoever sees the state also sees the
		// line and the gauge.
		c.m.leaseUp.Set(1)
		c.log.Info("lease backend answers again; fetches are single across replicas again", "down_for", time.Since(h.since).Round(time.Millisecond).String())
	}
	h.down, h.err = false, nil
}

func (c *Cache) leaseFailed(err error) {
	c.m.leaseErrors.Inc()
	h := &c.leaseH
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err, h.retryAt = err, time.Now().Add(leaseRetry)
	if !h.down {
		h.down, h.since = true, time.Now()
		c.m.leaseUp.Set(0)
		attrs := []any{"err", err}
		if c.evict != nil {
			attrs = append(attrs, "eviction", "each replica evicts from its own count until it is back")
		}
		c.log.Warn("lease backend unreachable: files are still served correctly, but a file may be fetched once per replica instead of once in all until it is back", attrs...)
		// Called from a fetch, which Close waits for before it waits for bg,
		// or from the eviction loop, which bg counts.
		c.bg.Add(1)
		go c.probeLease()
	}
}

// probeKey is a lease no file has (store keys never start with a dot).
const probeKey = ".berth-lease-probe"

// probeLease asks the backend every leaseRetry until it answers, so that a
// replica whose files are all in the store (no fetch to try the lease) still
// learns that the outage is over.
func (c *Cache) probeLease() {
	defer c.bg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(leaseRetry):
		}
		if ok, _, _ := c.LeaseStatus(); ok {
			return // a fetch saw it back first
		}
		ctx, cancel := context.WithTimeout(c.ctx, leaseRetry)
		held, rel, err := c.cfg.Lease.Acquire(ctx, probeKey)
		cancel()
		if err == nil {
			if held {
				rel()
			}
			c.leaseAnswered()
			return
		}
	}
}

// holdLease takes key's lease for a fetch about to start. It returns the
// release to call when the fetch is over (committed or failed), or stored
// when another replica committed the key meanwhile. It waits while another
// replica holds the lease, for at most FetchTimeout; after that, or when the
// backend fails, the fetch goes ahead here without the lease. err is only ctx's.
func (c *Cache) holdLease(ctx context.Context, key string) (release func(), stored bool, err error) {
	noop := func() {}
	if c.cfg.Lease == nil {
		return noop, false, nil
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.FetchTimeout)
	defer cancel()
	waited := false
	pause := leasePollMin
	for {
		if c.skipLease() {
			return noop, false, nil
		}
		held, rel, err := c.cfg.Lease.Acquire(wctx, key)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, false, ctx.Err()
		case err != nil && wctx.Err() != nil:
			c.log.Warn("another replica held a lease past the fetch timeout; fetching here", "key", key)
			return noop, false, nil
		case err != nil:
			c.leaseFailed(err)
			return noop, false, nil
		}
		c.leaseAnswered()
		if held {
			// The holder may have committed and released between our miss and
			// this Acquire: the store is the truth.
			if ok, _ := store.Has(ctx, c.st, key); ok {
				rel()
				return nil, true, nil
			}
			if waited {
				c.m.leaseTakeovers.Inc()
				c.log.Info("lease taken over: the replica that held it stopped before committing", "key", key)
			}
			return rel, false, nil
		}
		if !waited {
			waited = true
			c.m.leaseWaits.Inc()
		}
		if ok, _ := store.Has(wctx, c.st, key); ok {
			return nil, true, nil
		}
		select {
		case <-time.After(pause):
			pause = min(2*pause, leasePollMax)
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			c.log.Warn("another replica held a lease past the fetch timeout; fetching here", "key", key)
			return noop, false, nil
		}
	}
}
