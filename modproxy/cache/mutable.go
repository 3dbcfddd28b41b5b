package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
)

// list answers <module>/@v/list from the store while it is younger than
// ListTTL, else from the source (and refreshes the store), else stale. The
// stored list's modification time is its age, so replicas sharing a store
// share it: one fetched by any of them is fresh for all, and stale for all
// when every upstream fails.
func (c *Cache) list(ctx context.Context, r proto.Request) (*Content, error) {
	stored, modTime, err := c.readStored(ctx, r.Key, maxMutable)
	if err != nil {
		return nil, err
	}
	have := stored != nil
	age := time.Since(modTime)
	if c.cfg.Offline {
		return c.offlineList(ctx, r, stored)
	}
	if have && age < c.cfg.ListTTL {
		return &Content{body: stored, Size: int64(len(stored)), ModTime: modTime, Hit: true, Mutable: true}, nil
	}
	if msg, ok := c.neg.get(r.UpstreamPath(), c.cfg.NegativeTTL); ok {
		return nil, &NotFoundError{Reason: string(msg)}
	}
	body, err := c.fetchSmall(r)
	switch {
	case err == nil:
		c.saveMutable(ctx, r.Key, body)
		return &Content{body: body, Size: int64(len(body)), Mutable: true}, nil
	case errors.Is(err, ErrNotFound):
		c.neg.put(r.UpstreamPath(), []byte(err.(*NotFoundError).Reason))
		return nil, err
	case have:
		c.m.stale.WithLabelValues(r.Kind.String()).Inc()
		c.log.Warn("serving a stale version list because every upstream failed", "module", r.Module, "age", age.Round(time.Second).String(), "err", err)
		return &Content{body: stored, Size: int64(len(stored)), ModTime: modTime, Mutable: true, Stale: true, Age: age}, nil
	}
	return nil, c.noCopy(r, err)
}

// query answers @latest, .info of a query, and the checksum database's
// latest tree from memory (ListTTL), the source, or stale. Unlike lists they
// are this replica's own: replicas sharing a store each ask the source once
// per ListTTL. Stale @latest falls back to the shared store's list.
func (c *Cache) query(ctx context.Context, r proto.Request) (*Content, error) {
	key := r.UpstreamPath()
	answer := func(body []byte) *Content {
		return &Content{body: body, Size: int64(len(body)), Mutable: true}
	}
	if body, ok := c.mem.get(key, c.cfg.ListTTL); ok {
		ct := answer(body)
		ct.Hit = true
		return ct, nil
	}
	if c.cfg.Offline && r.Kind == proto.KindLatest {
		return c.offlineLatest(ctx, r)
	}
	if c.cfg.Offline {
		if body, _, ok := c.mem.getStale(key); ok {
			ct := answer(body)
			ct.Hit = true
			return ct, nil
		}
		return nil, notFound("%s is not cached and berth is offline", key)
	}
	if msg, ok := c.neg.get(key, c.cfg.NegativeTTL); ok {
		return nil, &NotFoundError{Reason: string(msg)}
	}
	body, err := c.fetchSmall(r)
	switch {
	case err == nil:
		c.mem.put(key, body)
		return answer(body), nil
	case errors.Is(err, ErrNotFound):
		c.neg.put(key, []byte(err.(*NotFoundError).Reason))
		return nil, err
	}
	if body, at, ok := c.mem.getStale(key); ok {
		c.m.stale.WithLabelValues(r.Kind.String()).Inc()
		c.log.Warn("serving a stale answer because every upstream failed", "path", key, "age", time.Since(at).Round(time.Second).String(), "err", err)
		ct := answer(body)
		ct.Stale, ct.Age = true, time.Since(at)
		return ct, nil
	}
	if r.Kind == proto.KindLatest {
		if ct, version := c.latestFromList(ctx, r); ct != nil {
			c.m.stale.WithLabelValues(r.Kind.String()).Inc()
			c.log.Warn("serving a stale @latest, the newest version of the stored list, because every upstream failed",
				"module", r.Module, "version", version, "age", ct.Age.Round(time.Second).String(), "err", err)
			return ct, nil
		}
	}
	return nil, c.noCopy(r, err)
}

// latestFromList answers @latest when every upstream failed and this replica
// has no copy of its own (@latest is kept in memory, per replica): with the
// stored .info of the version the go command would choose from the module's
// stored list, which any replica sharing the store may have fetched. Its age
// is the list's. It is nil when the store has no list, or no .info of its
// newest versions (a few are tried: each is a store read).
func (c *Cache) latestFromList(ctx context.Context, r proto.Request) (ct *Content, version string) {
	lk, err := proto.ListKey(r.Module)
	if err != nil {
		return nil, ""
	}
	list, modTime, err := c.readStored(ctx, lk, maxMutable)
	if err != nil || list == nil {
		return nil, ""
	}
	var vs []string
	for _, line := range strings.Split(string(list), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			vs = append(vs, f[0])
		}
	}
	for range 3 {
		v := latestOf(vs)
		if v == "" {
			return nil, ""
		}
		if key, err := proto.VersionKey(r.Module, v, proto.KindInfo); err == nil {
			if body, _, err := c.readStored(ctx, key, maxMutable); err == nil && body != nil {
				return &Content{body: body, Size: int64(len(body)), Mutable: true, Stale: true, Age: time.Since(modTime)}, v
			}
		}
		vs = slices.DeleteFunc(vs, func(s string) bool { return s == v })
	}
	return nil, ""
}

// noCopy is the answer to a mutable request (list, @latest, query) that the
// source failed and of which berth has no copy: not found, not a failure.
// The go command asks for the list of every prefix of a package path and
// aborts on any status but 404/410, so a failure here would break builds
// that berth's store can serve, and a client's own "," list falls through to
// its next proxy.
func (c *Cache) noCopy(r proto.Request, err error) error {
	if passesThrough(err) {
		return err
	}
	c.log.Warn("every upstream failed and berth has no copy; answering 404", "path", r.UpstreamPath(), "err", err)
	return notFound("berth has no copy of %s and every upstream failed: %v", r.UpstreamPath(), err)
}

// readStored returns the committed content of key (at most limit bytes) and
// its modification time, or nil when the store has none.
func (c *Cache) readStored(ctx context.Context, key string, limit int64) ([]byte, time.Time, error) {
	f, err := c.st.Open(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, &StoreError{Op: "cannot read " + key, Err: err}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, &StoreError{Op: "cannot read " + key, Err: err}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, time.Time{}, &StoreError{Op: "cannot read " + key, Err: err}
	}
	if b == nil {
		b = []byte{}
	}
	return b, info.ModTime(), nil
}

// saveMutable writes a fresh mutable answer to the store. A failure is logged
// and otherwise ignored: the answer is still served.
func (c *Cache) saveMutable(ctx context.Context, key string, body []byte) {
	c.put(ctx, key, body, time.Time{})
}

func (c *Cache) put(ctx context.Context, key string, body []byte, modTime time.Time) {
	if err := store.Put(ctx, c.st, key, bytes.NewReader(body), modTime); err != nil {
		c.log.Error("cannot save to the store; serving without caching", "key", key, "err", err)
	}
}

// presentVersions returns the lines of a stored list whose version has its
// .mod in the store.
func (c *Cache) presentVersions(ctx context.Context, r proto.Request, list []byte) []byte {
	out := []byte{}
	for _, line := range strings.Split(string(list), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		key, err := proto.VersionKey(r.Module, fields[0], proto.KindMod)
		if err != nil {
			continue
		}
		if ok, _ := store.Has(ctx, c.st, key); ok {
			out = append(out, line+"\n"...)
		}
	}
	return out
}
