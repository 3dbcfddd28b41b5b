package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/sync/singleflight"

	"github.com/berth-dev/berth/modproxy/proto"
)

// Fetcher performs requests against a chain.
type Fetcher struct {
	Chain *Chain
	// Client sends the requests. Nil means a client with sensible transport
	// timeouts and no overall timeout (bodies can be large; callers pass deadlines
	// in the context).
	Client *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// Logger receives a line when the checksum databases the chain proxies
	// are found. Default slog.Default().
	Logger *slog.Logger
	// Direct answers what the walk of the chain passes on to its final
	// "direct" entry (version control: a *VCS). Nil with a chain that ends
	// in direct is an error at the first such request.
	Direct Source

	sumdbOnce sync.Once
	sumdb     *sumdbFinder
}

// StatusError is an upstream's answer other than 200.
type StatusError struct {
	URL    string
	Status int
	// Body is the start of the upstream's text/plain explanation, if any.
	Body string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// NotFound reports whether the status means "not here" to the go command.
func (e *StatusError) NotFound() bool { return e.Status == 404 || e.Status == 410 }

// Is makes a 404/410 StatusError match ErrNotFound.
func (e *StatusError) Is(target error) bool { return target == ErrNotFound && e.NotFound() }

// getFrom fetches rel (an escaped path relative to an upstream base, no
// leading slash) from ups with GOPROXY fall-through and returns the first 200
// response and the upstream that gave it. The caller must close the body.
// Errors: a StatusError or transport error of the upstream where the walk
// stopped (all 404/410 wrap ErrNotFound).
func (f *Fetcher) getFrom(ctx context.Context, ups []Upstream, rel string) (*http.Response, Upstream, error) {
	if f.Chain.Off || len(ups) == 0 {
		return nil, Upstream{}, fmt.Errorf("%w: upstream is off", ErrNotFound)
	}
	var firstNotFound, lastErr error
	for i, u := range ups {
		resp, err := f.get(ctx, u, rel)
		if err == nil {
			return resp, u, nil
		}
		if ctx.Err() != nil {
			return nil, u, err
		}
		if errors.Is(err, ErrNotFound) {
			if firstNotFound == nil {
				firstNotFound = err
			}
			continue
		}
		lastErr = err
		if !u.AnyError || i == len(ups)-1 {
			return nil, u, err
		}
	}
	if lastErr != nil {
		return nil, Upstream{}, lastErr
	}
	return nil, Upstream{}, firstNotFound
}

func (f *Fetcher) get(ctx context.Context, u Upstream, rel string) (*http.Response, error) {
	target := u.URL.JoinPath(rel)
	if u.URL.Scheme != "file" {
		// JoinPath escapes "!" which is fine but unusual; send the path as the go
		// command does: url.PathEscape per element.
		target.RawPath = ""
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, err
	}
	if f.UserAgent != "" {
		req.Header.Set("User-Agent", f.UserAgent)
	}
	client := f.Client
	if client == nil {
		client = DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	se := &StatusError{URL: target.Redacted(), Status: resp.StatusCode}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		se.Body = firstLine(string(b))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return nil, se
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// rel returns the escaped path of a request relative to a proxy's base URL.
func rel(kind proto.Kind, path, version string) (string, error) {
	if err := module.CheckPath(path); err != nil {
		return "", err
	}
	if version != "" {
		if _, err := module.EscapeVersion(version); err != nil {
			return "", err
		}
	}
	return proto.Request{Kind: kind, Module: path, Version: version}.UpstreamPath(), nil
}

// List implements Source.
func (f *Fetcher) List(ctx context.Context, path string) (*Body, error) {
	return f.fetchPath(ctx, proto.KindList, path, "")
}

// Latest implements Source.
func (f *Fetcher) Latest(ctx context.Context, path string) (*Body, error) {
	return f.fetchPath(ctx, proto.KindLatest, path, "")
}

// Info implements Source.
func (f *Fetcher) Info(ctx context.Context, path, query string) (*Body, error) {
	return f.fetchPath(ctx, proto.KindInfo, path, query)
}

// Mod implements Source.
func (f *Fetcher) Mod(ctx context.Context, path, version string) (*Body, error) {
	return f.fetchPath(ctx, proto.KindMod, path, version)
}

// Zip implements Source.
func (f *Fetcher) Zip(ctx context.Context, path, version string) (*Body, error) {
	return f.fetchPath(ctx, proto.KindZip, path, version)
}

func (f *Fetcher) fetchPath(ctx context.Context, kind proto.Kind, path, version string) (*Body, error) {
	p, err := rel(kind, path, version)
	if err != nil {
		return nil, err
	}
	return f.walk(ctx, kind, path, version, p)
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
	return f.fetch(ctx, []Upstream{up}, up.sumdbRel(name, path))
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func (f *Fetcher) fetch(ctx context.Context, ups []Upstream, rel string) (*Body, error) {
	resp, up, err := f.getFrom(ctx, ups, rel)
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
		if ups[i].Direct {
			// As the go command does: past the proxies, the database itself.
			s.up = directSumDB(name)
			break
		}
		resp, _, err := f.getFrom(ctx, ups[i:i+1], "sumdb/"+name+"/supported")
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
	if attrs := []any{"name", name, "upstream", up}; s.err == nil {
		f.logger().Info("checksum database support", attrs...)
	} else {
		f.logger().Info("checksum database support", append(attrs, "err", s.err)...)
	}
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
