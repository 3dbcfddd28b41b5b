package modproxy

import (
	"strings"

	"context"
	"errors"
	"fmt"
	"golang.org/x/mod/module"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/modproxy/source"
)

// maxMutable bounds a list, @latest or query answer held in memory.
const maxMutable = 8 << 20

// fetchSmall fetches a small upstream answer into memory, once for all
// concurrent callers of the same path, on a context detached from any client.
func (p *Proxy) fetchSmall(req Request, ups []source.Upstream) ([]byte, error) {
	path := req.UpstreamPath()
	if ups == nil {
		ups = p.cfg.Fetcher.Chain.Upstreams
	}
	v, err, _ := p.mutable.Do(path, func() (any, error) {
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.FetchTimeout)
		defer cancel()
		start := time.Now()
		p.m.inflight.Inc()
		defer p.m.inflight.Dec()
		ep := req.Kind.String()
		body, up, err := p.getSmall(ctx, ups, path)
		result := "ok"
		switch {
		case err == nil:
		case errors.Is(err, source.ErrNotFound):
			result = "not_found"
		default:
			result = "error"
		}
		p.m.upstream.WithLabelValues(ep, result).Inc()
		p.m.fetchDurations.WithLabelValues(ep).Observe(time.Since(start).Seconds())
		attrs := []any{"path", path, "upstream", up.URLString(), "result", result, "bytes", len(body), "ms", time.Since(start).Milliseconds()}
		if result == "error" {
			p.log.Warn("upstream fetch failed", append(attrs, "err", err)...)
		} else {
			p.log.Info("upstream fetch", attrs...)
		}
		return body, err
	})
	b, _ := v.([]byte)
	return b, err
}

func (p *Proxy) getSmall(ctx context.Context, ups []source.Upstream, path string) ([]byte, upstreamName, error) {
	if err := p.acquireFetch(ctx); err != nil {
		return nil, upstreamName{}, err
	}
	defer p.releaseFetch()
	resp, up, err := p.cfg.Fetcher.GetFrom(ctx, ups, path)
	if err != nil {
		return nil, upstreamName{up}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMutable+1))
	if err != nil {
		return nil, upstreamName{up}, fmt.Errorf("reading %s from %s: %w", path, up, err)
	}
	if len(b) > maxMutable {
		return nil, upstreamName{up}, fmt.Errorf("%s from %s is larger than %d bytes", path, up, maxMutable)
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return nil, upstreamName{up}, fmt.Errorf("%s from %s: got %d bytes, Content-Length said %d", path, up, len(b), resp.ContentLength)
	}
	p.m.upstreamBytes.Add(float64(len(b)))
	return b, upstreamName{up}, nil
}

type upstreamName struct{ u source.Upstream }

func (n upstreamName) URLString() string {
	if n.u.URL == nil {
		return ""
	}
	return n.u.String()
}

// serveList answers $module/@v/list from the store while it is younger than
// ListTTL, else from the upstream (and refreshes the store), else stale.
func (p *Proxy) serveList(w http.ResponseWriter, r *http.Request, req Request) {
	ep := req.Kind.String()
	f, err := p.st.Open(r.Context(), req.Key)
	var age time.Duration = -1
	if err == nil {
		if info, serr := f.Stat(); serr == nil {
			age = time.Since(info.ModTime())
		}
		defer f.Close()
	}
	offline := p.cfg.Offline || p.cfg.Fetcher.Chain.Off
	if f != nil && offline {
		// Offline, list only what the store can serve, so the go command never
		// picks a version it cannot download here.
		p.m.hit(req.Kind)
		writeBody(w, r, req.Kind, p.presentVersions(r.Context(), req, f), "no-cache")
		return
	}
	if f != nil && age >= 0 && age < p.cfg.ListTTL {
		p.m.hit(req.Kind)
		serveFile(w, r, f, req.Kind, "no-cache")
		return
	}
	if offline {
		httpError(w, http.StatusNotFound, "not found: no version list of %s in berth's store and berth is offline", req.Module)
		return
	}
	if p.answerNegative(w, req.UpstreamPath(), req.Kind) {
		return
	}
	p.m.misses.WithLabelValues(ep).Inc()
	body, err := p.fetchSmall(req, nil)
	switch {
	case err == nil:
		p.saveMutable(r.Context(), req.Key, body)
		writeBody(w, r, req.Kind, body, "no-cache")
	case errors.Is(err, source.ErrNotFound):
		p.neg.put(req.UpstreamPath(), []byte("not found: "+err.Error()))
		p.writeFetchError(w, req, err)
	case f != nil:
		p.m.stale.WithLabelValues(ep).Inc()
		p.log.Warn("serving a stale version list because every upstream failed", "module", req.Module, "age", age.Round(time.Second).String(), "err", err)
		markStale(w)
		serveFile(w, r, f, req.Kind, "no-cache")
	default:
		p.noCopy(w, req, err)
	}
}

// saveMutable writes a fresh mutable answer to the store. A failure is logged
// and otherwise ignored: the answer is still served.
func (p *Proxy) saveMutable(ctx context.Context, key string, body []byte) {
	tmp, err := p.st.TempFile(key)
	if err == nil {
		_, err = tmp.Write(body)
		if err == nil {
			err = p.st.Commit(ctx, key, tmp)
		}
		if err == nil {
			tmp.Close()
		} else {
			p.st.Discard(tmp)
		}
	}
	if err != nil {
		p.log.Error("cannot save to the store; serving without caching", "key", key, "err", err)
	}
}

func markStale(w http.ResponseWriter) {
	w.Header().Set("X-Berth-Stale", "true")
	w.Header().Set("Warning", `110 berth "Response is Stale: every upstream failed"`)
}

func writeBody(w http.ResponseWriter, r *http.Request, kind Kind, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", contentType(kind))
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// serveMem answers @latest, .info of a query, and mutable checksum-database
// paths from the in-memory cache (ListTTL), the upstream, or stale.
func (p *Proxy) serveMem(w http.ResponseWriter, r *http.Request, req Request, ups []source.Upstream) {
	ep := req.Kind.String()
	key := req.UpstreamPath()
	if body, ok := p.mem.get(key, p.cfg.ListTTL); ok {
		p.m.hit(req.Kind)
		writeBody(w, r, req.Kind, body, "no-cache")
		return
	}
	if p.cfg.Offline || p.cfg.Fetcher.Chain.Off {
		if body, _, ok := p.mem.getStale(key); ok {
			writeBody(w, r, req.Kind, body, "no-cache")
			return
		}
		httpError(w, http.StatusNotFound, "not found: %s is not cached and berth is offline", key)
		return
	}
	if p.answerNegative(w, key, req.Kind) {
		return
	}
	p.m.misses.WithLabelValues(ep).Inc()
	body, err := p.fetchSmall(req, ups)
	switch {
	case err == nil:
		p.mem.put(key, body)
		writeBody(w, r, req.Kind, body, "no-cache")
		return
	case errors.Is(err, source.ErrNotFound):
		p.neg.put(key, []byte("not found: "+err.Error()))
		p.writeFetchError(w, req, err)
		return
	}
	if body, at, ok := p.mem.getStale(key); ok {
		p.m.stale.WithLabelValues(ep).Inc()
		p.log.Warn("serving a stale answer because every upstream failed", "path", key, "age", time.Since(at).Round(time.Second).String(), "err", err)
		markStale(w)
		writeBody(w, r, req.Kind, body, "no-cache")
		return
	}
	p.noCopy(w, req, err)
}

// noCopy answers a mutable request (list, @latest, query) that every upstream
// failed and of which berth has no copy. It answers 404, not 502: the go command
// asks for the list of every prefix of a package path and aborts on any status
// but 404/410, so a 502 here would break builds that berth's store can serve,
// and a client's own "," list falls through to its next proxy.
func (p *Proxy) noCopy(w http.ResponseWriter, req Request, err error) {
	p.log.Warn("every upstream failed and berth has no copy; answering 404", "path", req.UpstreamPath(), "err", err)
	httpError(w, http.StatusNotFound, "not found: berth has no copy of %s and every upstream failed: %v", req.UpstreamPath(), err)
}

// presentVersions returns the lines of a stored list whose version has its
// .mod in the store.
func (p *Proxy) presentVersions(ctx context.Context, req Request, f io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(f, maxMutable))
	em, _ := module.EscapePath(req.Module)
	var out []byte
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		ev, err := module.EscapeVersion(fields[0])
		if err == nil && p.storeHas(ctx, em+"/@v/"+ev+".mod") {
			out = append(out, line+"\n"...)
		}
	}
	return out
}

// answerNegative answers 404 from the negative cache when the upstream said
// "not found" for path less than NegativeTTL ago, and reports whether it did.
func (p *Proxy) answerNegative(w http.ResponseWriter, path string, kind Kind) bool {
	msg, ok := p.neg.get(path, p.cfg.NegativeTTL)
	if ok {
		p.m.hit(kind)
		httpError(w, http.StatusNotFound, "%s", msg)
	}
	return ok
}
