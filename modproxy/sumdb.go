package modproxy

import (
	"io"

	"bytes"
	"context"
	"errors"
	"fmt"
	"golang.org/x/mod/sumdb/tlog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/modproxy/source"
)

// sumdbState remembers which upstream proxies a checksum database.
type sumdbState struct {
	up  *source.Upstream // nil: no upstream proxies it
	err error            // the failure that stopped the walk, if any
	at  time.Time
}

const (
	sumdbSupportedTTL   = 10 * time.Minute
	sumdbUnsupportedTTL = time.Minute
)

// supportedKey marks in the store that a database is proxied, so the store
// answers /supported when every upstream is down, and a store used as a
// GOPROXY=file:// tree proxies the database too.
func supportedKey(name string) string { return "sumdb/" + name + "/supported" }

// sumdbUpstream returns the first upstream that proxies the database name,
// following GOPROXY fall-through rules, cached.
func (p *Proxy) sumdbUpstream(ctx context.Context, name string) sumdbState {
	p.sumdbMu.Lock()
	s, ok := p.sumdbBase[name]
	p.sumdbMu.Unlock()
	if ok && s.err == nil {
		ttl := sumdbUnsupportedTTL
		if s.up != nil {
			ttl = sumdbSupportedTTL
		}
		if time.Since(s.at) < ttl {
			return s
		}
	}
	v, _, _ := p.mutable.Do("sumdb-supported:"+name, func() (any, error) {
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		defer cancel()
		s := sumdbState{at: time.Now()}
		if p.cfg.Offline || p.cfg.Fetcher.Chain.Off {
			return s, nil
		}
		ups := p.cfg.Fetcher.Chain.Upstreams
		for i := range ups {
			resp, _, err := p.cfg.Fetcher.GetFrom(ctx, ups[i:i+1], "sumdb/"+name+"/supported")
			if err == nil {
				resp.Body.Close()
				u := ups[i]
				s.up = &u
				break
			}
			if errors.Is(err, source.ErrNotFound) {
				continue
			}
			if ups[i].AnyError && i < len(ups)-1 {
				continue
			}
			s.err = err
			break
		}
		p.log.Info("checksum database support", "name", name, "upstream", upString(s.up), "err", s.err)
		if s.up != nil {
			p.saveMutable(ctx, supportedKey(name), nil)
		}
		p.sumdbMu.Lock()
		p.sumdbBase[name] = s
		p.sumdbMu.Unlock()
		return s, nil
	})
	return v.(sumdbState)
}

func upString(u *source.Upstream) string {
	if u == nil {
		return "none"
	}
	return u.String()
}

// storeHas reports whether key is committed in the store.
func (p *Proxy) storeHas(ctx context.Context, key string) bool {
	f, err := p.st.Open(ctx, key)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// serveSumDB proxies /sumdb/<name>/...: "supported" says whether an upstream
// (or the store) has the database; lookups and full tiles are immutable and
// stored; "latest" and partial tiles are cached briefly in memory.
func (p *Proxy) serveSumDB(w http.ResponseWriter, r *http.Request, req Request) {
	if req.SumDBPath == "supported" {
		s := p.sumdbUpstream(r.Context(), req.SumDB)
		if s.up != nil || p.storeHas(r.Context(), supportedKey(req.SumDB)) {
			writeBody(w, r, KindSumDB, nil, "no-cache")
			return
		}
		if s.err != nil {
			// Any status but 200/404/410 is fatal to the go command, which is
			// right: we cannot tell whether the database is proxied.
			httpError(w, http.StatusBadGateway, "berth: cannot tell whether checksum database %s is proxied: %v", req.SumDB, s.err)
			return
		}
		httpError(w, http.StatusNotFound, "not found: no upstream of berth proxies checksum database %s", req.SumDB)
		return
	}
	if req.Key != "" && (p.hot.get(req.Key) != nil || p.storeHas(r.Context(), req.Key)) {
		p.serveImmutable(w, r, req, nil)
		return
	}
	if body := p.sliceStoredTile(r.Context(), req); body != nil {
		// A partial hash tile is the first W hashes of any wider copy of it.
		p.m.hit(KindSumDB)
		writeBody(w, r, KindSumDB, body, immutableCacheControl)
		return
	}
	s := p.sumdbUpstream(r.Context(), req.SumDB)
	if s.up == nil {
		if req.Key == "" {
			// Offline or upstream down: a partial tile or latest may still be in memory.
			if body, _, ok := p.mem.getStale(req.UpstreamPath()); ok {
				markStale(w)
				writeBody(w, r, KindSumDB, body, "no-cache")
				return
			}
		}
		if s.err != nil {
			httpError(w, http.StatusBadGateway, "berth: checksum database %s unreachable through any upstream: %v", req.SumDB, s.err)
			return
		}
		httpError(w, http.StatusNotFound, "not found: %s is not in berth's store and no upstream proxies checksum database %s", req.SumDBPath, req.SumDB)
		return
	}
	ups := []source.Upstream{*s.up}
	if req.Key != "" {
		p.serveImmutable(w, r, req, ups)
		return
	}
	p.serveMem(w, r, req, ups)
}

// readSumDB reads path (relative to /sumdb/<name>/ of the verifier's database)
// through the proxy itself, so verification reads and fills the same store as
// clients do, and works offline from the store.
func (p *Proxy) readSumDB(ctx context.Context, path string) (_ []byte, err error) {
	defer func() {
		// A broken transfer aborts the handler with a panic; here it is an error.
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			err = fmt.Errorf("/sumdb/%s/%s: transfer failed", p.verifier.Name(), path)
		}
	}()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "/sumdb/"+p.verifier.Name()+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	w := &bufferWriter{h: http.Header{}, code: 200}
	p.ServeHTTP(w, r)
	if w.code != http.StatusOK {
		return nil, fmt.Errorf("/sumdb/%s/%s: %d %s", p.verifier.Name(), path, w.code, strings.TrimSpace(w.buf.String()))
	}
	return w.buf.Bytes(), nil
}

// bufferWriter is an in-memory http.ResponseWriter for the proxy's own reads.
type bufferWriter struct {
	h     http.Header
	code  int
	buf   bytes.Buffer
	wrote bool
}

func (w *bufferWriter) Header() http.Header { return w.h }
func (w *bufferWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
}
func (w *bufferWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.buf.Write(b)
}

// storeNarrowerTiles stores, beside a partial hash tile of width W, the
// partial tiles of widths 1..W-1 that are missing: each is the first w hashes
// of it. A client that verified a smaller tree earlier asks for those, and a
// store used as a GOPROXY=file:// tree (offline, air-gapped) cannot compute
// them on request. Data tiles and full tiles are left alone.
func (p *Proxy) storeNarrowerTiles(ctx context.Context, req Request, tmp io.ReaderAt, size int64) {
	t, err := tlog.ParseTilePath(req.SumDBPath)
	if err != nil || t.L < 0 || t.W >= 1<<t.H || size != int64(t.W)*tlog.HashSize {
		return
	}
	data := make([]byte, size)
	if _, err := tmp.ReadAt(data, 0); err != nil && err != io.EOF {
		return
	}
	for w := t.W - 1; w >= 1; w-- {
		nt := t
		nt.W = w
		key := "sumdb/" + req.SumDB + "/" + nt.Path()
		if p.storeHas(ctx, key) {
			break // narrower ones were stored with it
		}
		p.saveMutable(ctx, key, data[:w*tlog.HashSize])
	}
}

// sliceStoredTile answers a partial hash tile request from a wider copy of the
// same tile in the store (the full tile or a wider partial), or returns nil.
func (p *Proxy) sliceStoredTile(ctx context.Context, req Request) []byte {
	if !strings.HasPrefix(req.SumDBPath, "tile/") {
		return nil
	}
	t, err := tlog.ParseTilePath(req.SumDBPath)
	if err != nil || t.L < 0 || t.W >= 1<<t.H {
		return nil
	}
	for w := 1 << t.H; w > t.W; w-- {
		wt := t
		wt.W = w
		f, err := p.st.Open(ctx, "sumdb/"+req.SumDB+"/"+wt.Path())
		if err != nil {
			continue
		}
		b := make([]byte, t.W*tlog.HashSize)
		_, err = f.ReadAt(b, 0)
		f.Close()
		if err == nil {
			return b
		}
	}
	return nil
}
