package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/sumdb"
)

// smallBody is the largest body (other than a zip) read and verified in memory.
const smallBody = 64 << 10

// maxMutable bounds a list, @latest or query answer held in memory.
const maxMutable = 8 << 20

// open asks the source for r.
func (c *Cache) open(ctx context.Context, r proto.Request) (*source.Body, error) {
	if c.src == nil {
		return nil, notFound("berth is offline")
	}
	switch r.Kind {
	case proto.KindList:
		return c.src.List(ctx, r.Module)
	case proto.KindLatest:
		return c.src.Latest(ctx, r.Module)
	case proto.KindInfo:
		return c.src.Info(ctx, r.Module, r.Version)
	case proto.KindMod:
		return c.src.Mod(ctx, r.Module, r.Version)
	case proto.KindZip:
		return c.src.Zip(ctx, r.Module, r.Version)
	case proto.KindSumDB:
		return c.src.SumDB(ctx, r.SumDB, r.SumDBPath)
	}
	return nil, fmt.Errorf("cache: cannot fetch a %s request", r.Kind)
}

// asNotFound turns a source's "not found" into a NotFoundError that keeps its
// words; other errors are returned as they are.
func asNotFound(err error) error {
	var nf *NotFoundError
	if err != nil && errors.Is(err, source.ErrNotFound) && !errors.As(err, &nf) {
		return &NotFoundError{Reason: err.Error()}
	}
	return err
}

// fetch runs one fetch of an immutable file: stream it into a Writer of the
// store, verify, commit.
func (c *Cache) fetch(fl *flight, r proto.Request) {
	defer c.wg.Done()
	releaseLease, stored, err := c.holdLease(c.ctx, r.Key)
	if c.cfg.Lease == nil && err == nil {
		// Committed between the caller's miss and its join (holdLease asks
		// the store itself when there is a Lease).
		stored, _ = store.Has(c.ctx, c.st, r.Key)
	}
	if stored || err != nil {
		// Committed meanwhile, here or by another replica (callers read the
		// store), or Close.
		if stored {
			err = errStoredElsewhere
		}
		c.flightsMu.Lock()
		delete(c.flights, r.Key)
		c.flightsMu.Unlock()
		fl.complete(err, time.Time{})
		fl.release()
		return
	}
	// Released once the store answers for the key, or the fetch failed.
	defer releaseLease()
	ep := r.Kind.String()
	start := time.Now()
	c.m.inflight.Inc()
	defer c.m.inflight.Dec()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.FetchTimeout)
	defer cancel()

	if (r.Kind == proto.KindMod || r.Kind == proto.KindZip) && c.Checked(r.Module) {
		// Look the version up in the checksum database while the body
		// downloads, so that verification at the end is only local hashing.
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.verifier.Prefetch(ctx, r.Module, r.Version)
		}()
	}
	var origin string
	written, w, err := c.fetchInto(ctx, fl, r, &origin)
	if origin == "" {
		origin = originOf(err)
	}
	err = asNotFound(err)
	if err == nil && r.Kind == proto.KindSumDB {
		c.markSupported(ctx, r.SumDB)
		if strings.HasPrefix(r.SumDBPath, "lookup/") {
			c.noteLookupTime(time.Since(start))
		}
	}
	if err == nil && w == nil {
		// A small body, verified in memory: callers have it; now the store.
		fl.complete(nil, time.Time{})
		if r.Kind == proto.KindMod {
			c.lookAhead(fl.mem)
		}
		c.commitSmall(ctx, r, fl.mem, fl.modTime)
	} else if err == nil {
		// Verified: release the held-back bytes to the waiting callers now,
		// and make the content durable after, off their path. The flight
		// stays joinable until the store answers for the key.
		modTime := time.Now()
		fl.complete(nil, modTime)
		if cerr := w.Commit(ctx, modTime); cerr != nil {
			c.log.Error("cannot commit a verified file to the store; clients got it, the next request fetches it again",
				"key", r.Key, "err", cerr)
		} else if r.Kind == proto.KindSumDB {
			c.storeNarrowerTiles(ctx, r, w, written)
		} else {
			c.committed(ctx, r.Key, written)
		}
	}

	result := "ok"
	var re *RejectError
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		result = "not_found"
		c.neg.put(r.UpstreamPath(), []byte(err.(*NotFoundError).Reason))
	case errors.As(err, &re):
		result = "rejected"
		c.m.rejected.WithLabelValues(ep, re.Reason).Inc()
		c.rememberReject(r, re)
	default:
		result = "error"
	}
	c.m.upstream.WithLabelValues(ep, result).Inc()
	c.m.fetchDurations.WithLabelValues(ep).Observe(time.Since(start).Seconds())
	attrs := []any{"key", r.Key, "upstream", origin, "result", result, "bytes", written, "ms", time.Since(start).Milliseconds()}
	switch result {
	case "ok", "not_found":
		c.log.Info("upstream fetch", attrs...)
	default:
		c.log.Warn("upstream fetch failed; nothing was cached", append(attrs, "err", err)...)
	}
	// From now on the store answers for the key. A failed flight leaves the
	// table before its callers learn of the failure, so that a caller
	// retrying at once starts a new fetch instead of joining the failed one.
	c.flightsMu.Lock()
	delete(c.flights, r.Key)
	c.flightsMu.Unlock()
	if err != nil {
		fl.complete(err, time.Time{})
	}
	fl.release()
}

func maxSize(k proto.Kind) int64 {
	switch k {
	case proto.KindZip:
		return modzip.MaxZipFile
	case proto.KindMod:
		return modzip.MaxGoMod
	}
	return 16 << 20
}

// fetchInto streams the source's body into a Writer of the store that
// waiting callers read as it grows, and verifies it. On success it returns
// the writer, not yet committed (nil for a small body verified in memory,
// which is then in fl.mem); on failure the content is discarded when the
// flight's last reference goes.
func (c *Cache) fetchInto(ctx context.Context, fl *flight, r proto.Request, origin *string) (int64, store.Writer, error) {
	if err := c.acquireFetch(ctx); err != nil {
		return 0, nil, err
	}
	// The slot covers the transfer only: verification reads the checksum
	// database through the cache, which needs slots of its own.
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(c.releaseFetch) }
	defer release()
	body, err := c.open(ctx, r)
	if err != nil {
		return 0, nil, err
	}
	defer body.Close()
	*origin = body.Origin
	up := body.Origin
	limit := maxSize(r.Kind)
	if body.Size > limit {
		return 0, nil, reject("too_large", "%s@%s %s from %s is %d bytes, over the limit of %d", r.Module, r.Version, r.Kind, up, body.Size, limit)
	}
	if r.Kind != proto.KindZip && body.Size >= 0 && body.Size <= smallBody {
		// Small bodies (.info, .mod, checksum lookups and tiles) are read and
		// verified in memory, so no disk operation is on the callers' path.
		buf := make([]byte, body.Size)
		n, rerr := io.ReadFull(body, buf)
		c.m.upstreamBytes.Add(float64(n))
		if rerr != nil {
			return int64(n), nil, reject("truncated", "%s from %s: got %d bytes, the source said %d: %v", r.UpstreamPath(), up, n, body.Size, rerr)
		}
		release()
		if err := c.verify(ctx, r, buf, "", "", body.Revision); err != nil {
			return int64(n), nil, err
		}
		fl.startMem(buf, time.Now())
		return int64(n), nil, nil
	}
	w, err := c.st.Create(ctx, r.Key)
	if err != nil {
		return 0, nil, &StoreError{Op: "creating " + r.Key, Err: err}
	}
	if body.Size > 0 {
		// Reserve the space before the first byte goes to a caller, so a full
		// disk is a clean refusal instead of a broken transfer.
		if err := store.Reserve(w, body.Size); err != nil {
			w.Close()
			return 0, nil, &StoreError{Op: fmt.Sprintf("reserving %d bytes for %s", body.Size, r.Key), Err: err}
		}
	}
	// From here the flight owns w: its last reference closes it, which
	// discards it unless committed, so a reader never meets a closed writer.
	fl.start(w, body.Size)
	var zipSum <-chan zipHash
	if r.Kind == proto.KindZip && c.Checked(r.Module) {
		zipSum = c.hashAsItArrives(ctx, fl, w)
	}

	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	var written int64
	for {
		n, rerr := body.Read(*buf)
		if n > 0 {
			if written+int64(n) > limit {
				return written, nil, reject("too_large", "%s from %s exceeds the limit of %d bytes", r.UpstreamPath(), up, limit)
			}
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return written, nil, &StoreError{Op: "writing " + r.Key, Err: werr}
			}
			written += int64(n)
			c.m.upstreamBytes.Add(float64(n))
			fl.advance(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return written, nil, fmt.Errorf("reading %s from %s after %d bytes: %w", r.UpstreamPath(), up, written, rerr)
		}
	}
	if body.Size >= 0 && written != body.Size {
		return written, nil, reject("truncated", "%s from %s: got %d bytes, the source said %d", r.UpstreamPath(), up, written, body.Size)
	}
	fl.finishWrite()
	release()
	var small []byte
	zipFile := ""
	if r.Kind == proto.KindZip {
		name, ok := store.LocalName(w)
		if !ok {
			return written, nil, fmt.Errorf("cache: the store's writer for %s has no local file to check the zip in", r.Key)
		}
		zipFile = name
	} else {
		small = make([]byte, written)
		if _, err := w.ReadAt(small, 0); err != nil && err != io.EOF {
			return written, nil, &StoreError{Op: "reading back " + r.Key, Err: err}
		}
	}
	sum := ""
	if zipSum != nil {
		// Hashed while the bytes arrived: ready now, or nearly.
		if h := <-zipSum; h.err == nil {
			sum = h.sum
		} else {
			c.log.Debug("zip not hashed as it arrived; hashing the whole file", "key", r.Key, "err", h.err)
		}
	}
	if err := c.verify(ctx, r, small, zipFile, sum, body.Revision); err != nil {
		return written, nil, err
	}
	return written, w, nil
}

type zipHash struct {
	sum string
	err error
}

// hashAsItArrives hashes a zip's body (its h1:, what the checksum database
// records) as the flight writes it into w, on every core, in goroutines the
// cache waits for, so that the hash is ready about when the last byte is.
// The answer is an error when the zip cannot be hashed in order
// (sumdb.ErrNotStreamable: the caller then hashes the whole file) or the
// fetch failed first.
func (c *Cache) hashAsItArrives(ctx context.Context, fl *flight, w io.ReaderAt) <-chan zipHash {
	out := make(chan zipHash, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		sum, err := sumdb.HashZipParallel(&rawReader{ctx: ctx, fl: fl}, w, 0)
		out <- zipHash{sum, err}
	}()
	return out
}

// verify checks a whole body before it is committed: body holds it for .info
// and .mod, zipFile names the local file of a .zip, and zipSum is its h1:
// hash when it was computed as the zip arrived ("": hash the file now).
func (c *Cache) verify(ctx context.Context, r proto.Request, body []byte, zipFile, zipSum string, rev *source.Revision) error {
	switch r.Kind {
	case proto.KindInfo:
		var info struct{ Version string }
		if err := json.Unmarshal(body, &info); err != nil {
			return reject("bad_info", "%s: upstream .info is not JSON: %v", r.UpstreamPath(), err)
		}
		if info.Version != r.Version {
			return reject("bad_info", "%s: upstream .info names version %q, not %q", r.UpstreamPath(), info.Version, r.Version)
		}
	case proto.KindMod:
		if _, err := modfile.ParseLax("go.mod", body, nil); err != nil {
			return reject("bad_mod", "%s: upstream go.mod does not parse: %v", r.UpstreamPath(), err)
		}
		if c.Checked(r.Module) {
			if err := c.verifier.VerifyMod(ctx, r.Module, r.Version, body); err != nil {
				return sumReject(err)
			}
		}
	case proto.KindZip:
		if _, err := modzip.CheckZip(module.Version{Path: r.Module, Version: r.Version}, zipFile); err != nil {
			return reject("bad_zip", "%s: upstream zip is not a valid module zip: %v", r.UpstreamPath(), err)
		}
		if c.Checked(r.Module) {
			var err error
			if zipSum != "" {
				err = c.verifier.VerifyZipHash(ctx, r.Module, r.Version, zipSum)
			} else {
				c.wholeZipHashes.Add(1)
				err = c.verifier.VerifyZip(ctx, r.Module, r.Version, zipFile)
			}
			if err != nil {
				return sumReject(err)
			}
		}
	}
	return c.checkLedger(ctx, r, body, zipFile, rev)
}

// commitSmall writes a small verified body to the store with the
// modification time its callers' ETag promised.
func (c *Cache) commitSmall(ctx context.Context, r proto.Request, body []byte, modTime time.Time) {
	if err := store.Put(ctx, c.st, r.Key, bytes.NewReader(body), modTime); err != nil {
		c.log.Error("cannot commit a verified file to the store; clients got it, the next request fetches it again", "key", r.Key, "err", err)
		return
	}
	if r.Kind == proto.KindSumDB {
		c.storeNarrowerTiles(ctx, r, bytes.NewReader(body), int64(len(body)))
	} else {
		c.committed(ctx, r.Key, int64(len(body)))
	}
}

// fetchSmall fetches a small answer (list, @latest, query, sumdb latest or
// supported) into memory, once for all concurrent callers of the same path,
// on a context detached from any caller.
func (c *Cache) fetchSmall(r proto.Request) ([]byte, error) {
	path := r.UpstreamPath()
	v, err, _ := c.mutable.Do(path, func() (any, error) {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.FetchTimeout)
		defer cancel()
		start := time.Now()
		c.m.inflight.Inc()
		defer c.m.inflight.Dec()
		ep := r.Kind.String()
		body, origin, err := c.readSmall(ctx, r)
		if origin == "" {
			origin = originOf(err)
		}
		probe := r.Kind == proto.KindList || r.Kind == proto.KindLatest
		if probe && refused(err) {
			// The go command asks for the list (and @latest) of every prefix
			// of a package path; an upstream that refuses one says it is no
			// module, as a 404 does.
			err = &NotFoundError{Reason: fmt.Sprintf("the upstream refused %s: %v", path, err)}
		}
		err = asNotFound(err)
		result := "ok"
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound):
			result = "not_found"
		default:
			result = "error"
		}
		c.m.upstream.WithLabelValues(ep, result).Inc()
		c.m.fetchDurations.WithLabelValues(ep).Observe(time.Since(start).Seconds())
		attrs := []any{"path", path, "upstream", origin, "result", result, "bytes", len(body), "ms", time.Since(start).Milliseconds()}
		switch {
		case result == "error":
			c.log.Warn("upstream fetch failed", append(attrs, "err", err)...)
		case result == "not_found" && probe:
			// Mostly the go command's path-prefix probes: not worth a line
			// at info each.
			c.log.Debug("upstream fetch", append(attrs, "err", err)...)
		default:
			c.log.Info("upstream fetch", attrs...)
		}
		return body, err
	})
	b, _ := v.([]byte)
	return b, err
}

// refused reports whether err is an upstream's refusal of the path it was
// asked (a 4xx answer): not one that asks for credentials (401, 407), nor
// one that says "later" (408, 429), which are failures and not remembered.
func refused(err error) bool {
	var se *source.StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Status {
	case 401, 407, 408, 429:
		return false
	}
	return se.Status >= 400 && se.Status < 500
}

// originOf returns the upstream URL of a source's status error, for logs of
// fetches that got no body, or "".
func originOf(err error) string {
	var se *source.StatusError
	if errors.As(err, &se) {
		return se.URL
	}
	return ""
}

func (c *Cache) readSmall(ctx context.Context, r proto.Request) ([]byte, string, error) {
	if err := c.acquireFetch(ctx); err != nil {
		return nil, "", err
	}
	defer c.releaseFetch()
	body, err := c.open(ctx, r)
	if err != nil {
		return nil, "", err
	}
	defer body.Close()
	path, up := r.UpstreamPath(), body.Origin
	b, err := io.ReadAll(io.LimitReader(body, maxMutable+1))
	if err != nil {
		return nil, up, fmt.Errorf("reading %s from %s: %w", path, up, err)
	}
	if len(b) > maxMutable {
		return nil, up, fmt.Errorf("%s from %s is larger than %d bytes", path, up, maxMutable)
	}
	if body.Size >= 0 && int64(len(b)) != body.Size {
		return nil, up, fmt.Errorf("%s from %s: got %d bytes, the source said %d", path, up, len(b), body.Size)
	}
	c.m.upstreamBytes.Add(float64(len(b)))
	return b, up, nil
}
