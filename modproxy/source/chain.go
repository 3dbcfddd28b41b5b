// Package source fetches module files from upstreams with GOPROXY semantics:
// an ordered list of proxy URLs where an entry followed by "," falls through to
// the next only when it answers 404 or 410, and an entry followed by "|" falls
// through on any error; "off" refuses every fetch.
//
// Lists are parsed as the go command parses GOPROXY (internal/goenv). The
// "direct" entry (fetching from version control) is not implemented yet; a
// list is cut at "direct", which is where the go command stops reading it too.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/goenv"
)

// ErrNotFound is returned (wrapped) when every upstream that was asked answered
// 404 or 410, or when the chain is "off".
var ErrNotFound = errors.New("not found upstream")

// Upstream is one proxy in a chain.
type Upstream struct {
	// URL is the base URL of the proxy (http, https or file).
	URL *url.URL
	// AnyError reports whether the entry was followed by "|": fall through to the
	// next entry on any error, not only on 404/410.
	AnyError bool
}

func (u Upstream) String() string { return u.URL.Redacted() }

// Chain is a parsed GOPROXY-style list of upstreams.
type Chain struct {
	Upstreams []Upstream
	// Off reports whether the list is "off" (or begins with it): nothing is fetched.
	Off bool
	// Ignored lists entries that were cut, such as "direct" and what follows it.
	Ignored []string
}

// Parse parses a GOPROXY value with the go command's rules
// (goenv.ParseProxyList) and its error texts: entries separated by "," or
// "|", a bare host[/path] gets https://, schemes https, http and file. The
// list ends at "off" or "direct", as it does for the go command. berth cannot
// fetch from version control yet, so "direct" and what follows it go to
// Ignored, and a list that starts with "direct" is an error.
func Parse(s string) (*Chain, error) {
	if s == "" {
		return nil, errors.New("empty upstream list: set --upstream (a GOPROXY-style list such as 'https://proxy.internal,https://mirror.internal')")
	}
	entries, err := goenv.ParseProxyList(s)
	if err != nil {
		return nil, err
	}
	c := &Chain{}
	for _, e := range entries {
		switch {
		case e.Off:
			// What follows "off" is never read, by the go command either.
			c.Off = len(c.Upstreams) == 0
			return c, nil
		case e.Direct:
			c.Ignored = append(c.Ignored, cutRest("direct", e.Unread))
			if len(c.Upstreams) == 0 {
				return nil, errors.New(`upstream list starts with "direct": berth cannot fetch from version control yet; give it a proxy to fetch from with --upstream or BERTH_UPSTREAM`)
			}
			return c, nil
		}
		u, err := url.Parse(e.URL)
		if err != nil {
			return nil, err // ParseProxyList has parsed it already
		}
		if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
			// The go command accepts it and fails on the first fetch.
			shown := e.URL
			if u.User != nil {
				shown = u.Redacted()
			}
			return nil, fmt.Errorf("invalid proxy URL missing host: %s", shown)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		c.Upstreams = append(c.Upstreams, Upstream{URL: u, AnyError: e.FallbackOnError})
	}
	return c, nil
}

func cutRest(entry, rest string) string {
	if strings.Trim(rest, " \t\n\r,|") == "" {
		return entry
	}
	return entry + " (and what follows: " + rest + ")"
}

// String returns the chain in GOPROXY syntax.
func (c *Chain) String() string {
	if c.Off {
		return "off"
	}
	var b strings.Builder
	for i, u := range c.Upstreams {
		if i > 0 {
			if c.Upstreams[i-1].AnyError {
				b.WriteByte('|')
			} else {
				b.WriteByte(',')
			}
		}
		b.WriteString(u.String())
	}
	return b.String()
}

// Default returns the user's own Go configuration for upstreams: $GOPROXY if
// set, else the output of `go env GOPROXY` when a go binary is on PATH.
func Default(ctx context.Context) (string, error) {
	v, err := GoEnv(ctx, "GOPROXY")
	if err != nil {
		return "", fmt.Errorf("no upstream configured: %w; set --upstream or BERTH_UPSTREAM", err)
	}
	if v == "" {
		return "", errors.New("no upstream configured: GOPROXY is empty; set --upstream or BERTH_UPSTREAM")
	}
	return v, nil
}

// GoEnv returns a Go configuration variable as the go command sees it
// (goenv.Read): the environment if set and not empty, else `go env NAME`
// when a go binary is on PATH.
func GoEnv(ctx context.Context, name string) (string, error) {
	vals, _, err := goenv.Read(ctx, lookupEnv, "", name)
	return vals[name], err
}

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

// Get fetches rel (an escaped path relative to an upstream base, no leading slash)
// from the chain and returns the first 200 response and the upstream that gave it.
// The caller must close the body. Errors: a StatusError or transport error of the
// upstream where the walk stopped (all 404/410 wrap ErrNotFound).
func (f *Fetcher) Get(ctx context.Context, rel string) (*http.Response, Upstream, error) {
	return f.GetFrom(ctx, f.Chain.Upstreams, rel)
}

// GetFrom is Get over a given sub-list of upstreams.
func (f *Fetcher) GetFrom(ctx context.Context, ups []Upstream, rel string) (*http.Response, Upstream, error) {
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
