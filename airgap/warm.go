package airgap

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
)

// WarmConfig configures Warm.
type WarmConfig struct {
	// Cache is the proxy's core: Warm asks it for every file (Ensure), so
	// files are fetched, verified and stored exactly as when the go command
	// asks berth for them, and waits for its commits. Files its store already
	// holds are counted as present and not requested. Required.
	Cache *cache.Cache
	// SumDBKey is the verifier key of the checksum database the proxy verifies
	// against. The lookup of every checked module version is requested too, and
	// at the end every lookup in the store is verified the way Import will, so
	// that the store carries every tile the go command and an import need
	// offline. Empty: no checksum data.
	SumDBKey string
	// NoSumDB reports module paths that are not checked (no lookup is fetched).
	NoSumDB func(modulePath string) bool
	// Jobs is how many module versions are fetched at once. Default 8.
	Jobs int
	// Progress, if set, is called after each module version is done.
	Progress func(done, total int, bytes int64)
}

// WarmResult is what Warm did.
type WarmResult struct {
	// Fetched counts module versions with at least one file fetched; Present
	// those that were complete in the store already.
	Fetched, Present int
	// Failed lists module versions that could not be stored, with the reason.
	Failed []WarmError
	// Files and Bytes count the files and bytes fetched.
	Files int
	Bytes int64
	// Lists counts the modules whose version list is in the store (fetched,
	// or fresh there already). NoList names the modules whose list the source
	// did not give, with the reason. A missing list is not a failure: offline,
	// berth lists the versions its store holds.
	Lists  int
	NoList []ListError
	// SumDBErr is set when a lookup in the store could not be verified
	// (with the tiles it needs fetched): an import of the store would refuse it.
	SumDBErr error
	// Duration is the wall time of the run.
	Duration time.Duration
}

// WarmError is a module version Warm could not store.
type WarmError struct {
	Need Need
	Err  error
}

func (e WarmError) Error() string { return e.Need.String() + ": " + e.Err.Error() }

// ListError is a module whose version list Warm could not store.
type ListError struct {
	Module string
	Err    error
}

func (e ListError) Error() string { return e.Module + "/@v/list: " + e.Err.Error() }

// Files returns the store keys of the files a need consists of: .info, .mod
// and .zip (or the .mod only), and the lookup in checksum database sumdb when
// it is not empty. A key, with a leading slash, is also its GOPROXY request path.
func (n Need) Files(sumdb string) (keys []string, err error) {
	kinds := []proto.Kind{proto.KindInfo, proto.KindMod, proto.KindZip}
	if n.ModOnly {
		kinds = []proto.Kind{proto.KindMod}
	}
	for _, k := range kinds {
		key, err := proto.VersionKey(n.Path, n.Version.Version, k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	if sumdb != "" {
		key, err := proto.LookupKey(sumdb, n.Path, n.Version.Version)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// Warm makes the store hold every file of needs, fetching the missing ones
// through the proxy with at most Jobs module versions at a time, and the
// version list of each of their modules, so that an offline berth answers
// lists and @latest as the upstream did. Files already in the store cost no
// upstream request, so running it again fetches only lists older than the
// proxy's ListTTL.
func Warm(ctx context.Context, cfg WarmConfig, needs []Need) WarmResult {
	start := time.Now()
	jobs := cfg.Jobs
	if jobs <= 0 {
		jobs = 8
	}
	var (
		mu      sync.Mutex
		res     WarmResult
		done    int
		bytes   atomic.Int64
		fetched = make([]bool, len(needs))
		errs    = make([]error, len(needs))
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i, n := range needs {
		g.Go(func() error {
			f, files, err := warmOne(gctx, cfg, n, &bytes)
			mu.Lock()
			defer mu.Unlock()
			fetched[i], errs[i] = f, err
			res.Files += files
			done++
			if cfg.Progress != nil {
				cfg.Progress(done, len(needs), bytes.Load())
			}
			return nil
		})
	}
	if !cfg.Cache.Offline() {
		seen := map[string]bool{}
		for _, n := range needs {
			if seen[n.Path] {
				continue
			}
			seen[n.Path] = true
			g.Go(func() error {
				err := warmList(gctx, cfg, n.Path)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					res.NoList = append(res.NoList, ListError{Module: n.Path, Err: err})
				} else {
					res.Lists++
				}
				return nil
			})
		}
	}
	g.Wait()
	slices.SortFunc(res.NoList, func(a, b ListError) int { return strings.Compare(a.Module, b.Module) })
	// The proxy hands a verified body to its client before the file is
	// durable; wait for those commits, then check every fetched file is there.
	werr := cfg.Cache.Wait(ctx)
	for i, n := range needs {
		if errs[i] == nil && fetched[i] {
			if werr != nil {
				errs[i] = werr
			} else if missing := missingFiles(ctx, cfg, n); missing != "" {
				errs[i] = fmt.Errorf("%s was fetched but is not in the store (the log says why it was not stored)", missing)
			}
		}
		switch {
		case errs[i] != nil:
			res.Failed = append(res.Failed, WarmError{Need: n, Err: errs[i]})
		case fetched[i]:
			res.Fetched++
		default:
			res.Present++
		}
	}
	if cfg.SumDBKey != "" && ctx.Err() == nil {
		res.SumDBErr = preflight(ctx, cfg)
		if err := cfg.Cache.Wait(ctx); err != nil && res.SumDBErr == nil {
			res.SumDBErr = err
		}
	}
	res.Bytes = bytes.Load()
	res.Duration = time.Since(start)
	return res
}

// missingFiles returns the first file of n the store lacks, or "".
func missingFiles(ctx context.Context, cfg WarmConfig, n Need) string {
	keys, err := n.Files(sumdbFor(cfg, n))
	if err != nil {
		return err.Error()
	}
	for _, key := range keys {
		if ok, _ := store.Has(ctx, cfg.Cache.Store(), key); !ok {
			return key
		}
	}
	return ""
}

func sumdbFor(cfg WarmConfig, n Need) string {
	if cfg.SumDBKey == "" || (cfg.NoSumDB != nil && cfg.NoSumDB(n.Path)) {
		return ""
	}
	name, _, _ := strings.Cut(cfg.SumDBKey, "+")
	return name
}

func warmOne(ctx context.Context, cfg WarmConfig, n Need, total *atomic.Int64) (fetched bool, files int, err error) {
	keys, err := n.Files(sumdbFor(cfg, n))
	if err != nil {
		return false, 0, err
	}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return fetched, files, err
		}
		if ok, err := store.Has(ctx, cfg.Cache.Store(), key); err != nil {
			return fetched, files, fmt.Errorf("store: %w", err)
		} else if ok {
			continue
		}
		r, err := proto.ParsePath("/" + key)
		if err != nil {
			return fetched, files, err
		}
		nb, err := cfg.Cache.Ensure(ctx, r)
		if err != nil {
			return fetched, files, fmt.Errorf("%s: %w", key, err)
		}
		total.Add(nb)
		fetched = true
		files++
	}
	return fetched, files, nil
}

// warmList makes the store hold a fresh version list of mod: the proxy's
// core fetches and stores it, as when the go command asks for it.
func warmList(ctx context.Context, cfg WarmConfig, mod string) error {
	key, err := proto.ListKey(mod)
	if err != nil {
		return err
	}
	r, err := proto.ParsePath("/" + key)
	if err != nil {
		return err
	}
	ct, err := cfg.Cache.Get(ctx, r)
	if err != nil {
		return err
	}
	defer ct.Close()
	if ct.Stale {
		return fmt.Errorf("every upstream failed; the store keeps its list from %v ago", ct.Age.Round(time.Second))
	}
	return nil
}

func readAllLimit(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("input larger than %d bytes", limit)
	}
	return b, nil
}
