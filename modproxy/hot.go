package modproxy

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/bounded"
	"github.com/berth-dev/berth/modproxy/proto"
)

// hotMaxFile is the largest immutable file kept in memory; hotBudget bounds the
// whole cache. Small immutable files (.info, .mod, checksum lookups, tiles) are
// most requests of a build; serving them from memory saves the open, fstat and
// close that every hit on disk costs.
const (
	hotMaxFile = 64 << 10
	hotBudget  = 64 << 20
)

type hotEntry struct {
	body    []byte
	kind    proto.Kind
	clen    []string
	ctype   []string
	etag    []string
	lastMod []string
	modTime time.Time
	used    time.Time
}

// hotCache is a byte-bounded in-memory cache of small immutable files.
type hotCache struct {
	mu    sync.RWMutex
	m     map[string]*hotEntry
	bytes int
}

func newHotCache() *hotCache { return &hotCache{m: make(map[string]*hotEntry)} }

func (c *hotCache) get(key string) *hotEntry {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	return e
}

func (c *hotCache) put(key string, kind proto.Kind, body []byte, modTime time.Time) *hotEntry {
	e := &hotEntry{
		body:    body,
		kind:    kind,
		clen:    []string{strconv.Itoa(len(body))},
		ctype:   []string{contentType(kind)},
		etag:    []string{etagFor(int64(len(body)), modTime)},
		lastMod: []string{modTime.UTC().Format(http.TimeFormat)},
		modTime: modTime,
		used:    time.Now(),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		c.bytes -= len(old.body)
	}
	for c.bytes+len(body) > hotBudget && len(c.m) > 0 {
		victim := bounded.SampleOldest(c.m, func(e *hotEntry) time.Time { return e.used })
		c.bytes -= len(c.m[victim].body)
		delete(c.m, victim)
	}
	c.m[key] = e
	c.bytes += len(body)
	return e
}

func (c *hotCache) remove(key string) {
	c.mu.Lock()
	if old := c.m[key]; old != nil {
		c.bytes -= len(old.body)
		delete(c.m, key)
	}
	c.mu.Unlock()
}

func etagFor(size int64, modTime time.Time) string {
	return `"` + strconv.FormatInt(size, 36) + "-" + strconv.FormatInt(modTime.UnixNano(), 36) + `"`
}

var (
	hdrImmutable   = []string{immutableCacheControl}
	hdrBytes       = []string{"bytes"}
	hdrContentType = http.CanonicalHeaderKey("Content-Type")
)

// serve answers from memory. Plain GETs are written directly; conditional and
// range requests go through http.ServeContent for its exact semantics.
func (e *hotEntry) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h[hdrContentType] = e.ctype
	h["Cache-Control"] = hdrImmutable
	h["Etag"] = e.etag
	if conditional(r) {
		http.ServeContent(w, r, "", e.modTime, bytes.NewReader(e.body))
		return
	}
	h["Last-Modified"] = e.lastMod
	h["Accept-Ranges"] = hdrBytes
	h["Content-Length"] = e.clen
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(e.body)
	}
}

// conditional reports whether r has range or conditional headers, which need
// http.ServeContent's full semantics.
func conditional(r *http.Request) bool {
	h := r.Header
	return h["Range"] != nil || h["If-None-Match"] != nil || h["If-Modified-Since"] != nil ||
		h["If-Range"] != nil || h["If-Match"] != nil || h["If-Unmodified-Since"] != nil
}
