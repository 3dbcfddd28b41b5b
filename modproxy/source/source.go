package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/sync/singleflight"
)

// Source is where module files come from, at the level of the GOPROXY
// protocol. The upstream proxy chain (Fetcher) is one implementation; version
// control is another; Router chooses between sources by module path.
//
// Paths and versions are unescaped (module.CheckPath-valid). Every method
// returns an error wrapping ErrNotFound when the file does not exist there
// (the go command's 404/410, which lets a "," list fall through), and any
// other error when the source failed. Implementations are safe for
// concurrent use; callers bound concurrency and pass deadlines in ctx.
type Source interface {
	// List answers <path>/@v/list: known versions, one per line.
	List(ctx context.Context, path string) (*Body, error)
	// Latest answers <path>/@latest: the .info JSON of the latest version.
	Latest(ctx context.Context, path string) (*Body, error)
	// Info answers <path>/@v/<query>.info, for a canonical version or a
	// query such as a branch name or a commit prefix.
	Info(ctx context.Context, path, query string) (*Body, error)
	// Mod answers the go.mod of a canonical version.
	Mod(ctx context.Context, path, version string) (*Body, error)
	// Zip answers the module zip of a canonical version.
	Zip(ctx context.Context, path, version string) (*Body, error)
	// SumDB answers /sumdb/<name>/<path> of a checksum database this source
	// proxies: "supported" (an empty body: it is proxied), "latest",
	// "lookup/..." and "tile/...".
	SumDB(ctx context.Context, name, path string) (*Body, error)
}

// Body is one answer of a Source. The caller must close it.
type Body struct {
	io.ReadCloser
	// Size is the body's length in bytes, or -1 when unknown.
	Size int64
	// Origin names where the answer came from for logs (a redacted URL, or
	// "direct"); it never holds credentials.
	Origin string
}

// Upstream paths of the GOPROXY protocol, relative to a proxy's base URL.
func listPath(path string) (string, error) {
	ep, err := module.EscapePath(path)
	return ep + "/@v/list", err
}

func versionPath(path, version, ext string) (string, error) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	return ep + "/@v/" + ev + ext, nil
}

// List implements Source.
func (f *Fetcher) List(ctx context.Context, path string) (*Body, error) {
	rel, err := listPath(path)
	if err != nil {
		return nil, err
	}
	return f.fetch(ctx, f.Chain.Upstreams, rel)
}

// Latest implements Source.
func (f *Fetcher) Latest(ctx context.Context, path string) (*Body, error) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return nil, err
	}
	return f.fetch(ctx, f.Chain.Upstreams, ep+"/@latest")
}

// Info implements Source.
func (f *Fetcher) Info(ctx context.Context, path, query string) (*Body, error) {
	return f.fetchVersion(ctx, path, query, ".info")
}

// Mod implements Source.
func (f *Fetcher) Mod(ctx context.Context, path, version string) (*Body, error) {
	return f.fetchVersion(ctx, path, version, ".mod")
}

// Zip implements Source.
func (f *Fetcher) Zip(ctx context.Context, path, version string) (*Body, error) {
	return f.fetchVersion(ctx, path, version, ".zip")
}

func (f *Fetcher) fetchVersion(ctx context.Context, path, version, ext string) (*Body, error) {
	rel, err := versionPath(path, version, ext)
	if err != nil {
		return nil, err
	}
	return f.fetch(ctx, f.Chain.Upstreams, rel)
}

// SumDB implements Source: the database is read from the first upstream of
// the chain that proxies it (GOPROXY fall-through rules, remembered for a
// while); "supported" reports whether one does.
func (f *Fetcher) SumDB(ctx context.Context, name, path string) (*Body, error) {
	up, err := f.sumdbUpstream(ctx, name)
	if err != nil {
		return nil, err
	}
	if path == "supported" {
		return &Body{ReadCloser: io.NopCloser(eofReader{}), Size: 0, Origin: up.String()}, nil
	}
	return f.fetch(ctx, []Upstream{up}, "sumdb/"+name+"/"+path)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func (f *Fetcher) fetch(ctx context.Context, ups []Upstream, rel string) (*Body, error) {
	resp, up, err := f.GetFrom(ctx, ups, rel)
	if err != nil {
		return nil, err
	}
	return &Body{ReadCloser: resp.Body, Size: resp.ContentLength, Origin: up.String()}, nil
}

// sumdbState remembers which upstream proxies a checksum database.
type sumdbState struct {
	up  *Upstream // nil: no upstream proxies it
	err error     // the failure that stopped the walk, if any
	at  time.Time
}

const (
	sumdbSupportedTTL   = 10 * time.Minute
	sumdbUnsupportedTTL = time.Minute
)

// sumdbFinder finds, once per database and TTL however many ask, the first
// upstream of a chain that proxies a checksum database.
type sumdbFinder struct {
	mu     sync.Mutex
	states map[string]sumdbState
	group  singleflight.Group
}

// sumdbUpstream returns the upstream that proxies database name, an error
// wrapping ErrNotFound when none does, or the failure that stopped the walk
// (then nobody can tell whether the database is proxied).
func (f *Fetcher) sumdbUpstream(ctx context.Context, name string) (Upstream, error) {
	f.sumdbOnce.Do(func() { f.sumdb = &sumdbFinder{states: map[string]sumdbState{}} })
	sf := f.sumdb
	sf.mu.Lock()
	s, ok := sf.states[name]
	sf.mu.Unlock()
	ttl := sumdbUnsupportedTTL
	if s.up != nil {
		ttl = sumdbSupportedTTL
	}
	if !ok || s.err != nil || time.Since(s.at) >= ttl {
		v, _, _ := sf.group.Do(name, func() (any, error) {
			// Detached from the caller: others share this walk.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			s := f.findSumDB(ctx, name)
			sf.mu.Lock()
			sf.states[name] = s
			sf.mu.Unlock()
			return s, nil
		})
		s = v.(sumdbState)
	}
	switch {
	case s.up != nil:
		return *s.up, nil
	case s.err != nil:
		return Upstream{}, fmt.Errorf("cannot tell whether checksum database %s is proxied: %w", name, s.err)
	}
	return Upstream{}, fmt.Errorf("%w: no upstream proxies checksum database %s", ErrNotFound, name)
}

func (f *Fetcher) findSumDB(ctx context.Context, name string) sumdbState {
	s := sumdbState{at: time.Now()}
	if f.Chain.Off {
		return s
	}
	ups := f.Chain.Upstreams
	for i := range ups {
		resp, _, err := f.GetFrom(ctx, ups[i:i+1], "sumdb/"+name+"/supported")
		if err == nil {
			resp.Body.Close()
			u := ups[i]
			s.up = &u
			break
		}
		if errors.Is(err, ErrNotFound) || isClientError(err) {
			// The real upstream answers 400 for a database it does not know.
			continue
		}
		if ups[i].AnyError && i < len(ups)-1 {
			continue
		}
		s.err = err
		break
	}
	up := "none"
	if s.up != nil {
		up = s.up.String()
	}
	f.logger().Info("checksum database support", "name", name, "upstream", up, "err", s.err)
	return s
}

// isClientError reports whether err is an upstream's 4xx answer: the
// upstream understood the request and refuses it, so it does not proxy that.
func isClientError(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status >= 400 && se.Status < 500
}

func (f *Fetcher) logger() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.Default()
}
