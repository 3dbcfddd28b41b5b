// Package source fetches module files from upstreams with GOPROXY semantics:
// an ordered list of proxy URLs where an entry followed by "," falls through to
// the next only when it answers 404 or 410, and an entry followed by "|" falls
// through on any error; "off" refuses every fetch.
//
// The "direct" entry (fetching from version control) is not implemented yet;
// a list is cut at "direct", which is where the go command stops reading it too.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"
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

// Parse parses a GOPROXY value: entries separated by "," or "|". A bare
// host[/path] gets https://. Schemes allowed: https, http, file.
func Parse(s string) (*Chain, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty upstream list: set --upstream (a GOPROXY-style list such as 'https://proxy.internal,https://mirror.internal')")
	}
	c := &Chain{}
	for s != "" {
		var entry string
		anyErr := false
		if i := strings.IndexAny(s, ",|"); i >= 0 {
			entry, anyErr = s[:i], s[i] == '|'
			s = s[i+1:]
		} else {
			entry, s = s, ""
		}
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		switch entry {
		case "off":
			if len(c.Upstreams) == 0 {
				c.Off = true
			}
			c.Ignored = append(c.Ignored, cutRest("off", s))
			return c, nil
		case "direct":
			c.Ignored = append(c.Ignored, cutRest("direct", s))
			if len(c.Upstreams) == 0 {
				return nil, errors.New(`upstream list starts with "direct": berth cannot fetch from version control yet; give it a proxy to fetch from with --upstream or BERTH_UPSTREAM`)
			}
			return c, nil
		}
		if !strings.Contains(entry, "://") {
			entry = "https://" + entry
		}
		u, err := url.Parse(entry)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", entry, err)
		}
		switch u.Scheme {
		case "http", "https":
			if u.Host == "" {
				return nil, fmt.Errorf("upstream %q: no host", entry)
			}
		case "file":
		default:
			return nil, fmt.Errorf("upstream %q: scheme %q not supported (want https, http or file)", entry, u.Scheme)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		c.Upstreams = append(c.Upstreams, Upstream{URL: u, AnyError: anyErr})
	}
	if len(c.Upstreams) == 0 {
		return nil, errors.New("upstream list has no entries")
	}
	return c, nil
}

func cutRest(entry, rest string) string {
	if rest == "" {
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

// GoEnv returns a Go configuration variable as the go command sees it: the
// environment if set, else `go env NAME` when a go binary is on PATH.
func GoEnv(ctx context.Context, name string) (string, error) {
	if v, ok := lookupEnv(name); ok {
		return strings.TrimSpace(v), nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%s is not set and no go command is on PATH", name)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("%s is not set and `go env %s` failed: %w", name, name, err)
	}
	return strings.TrimSpace(string(out)), nil
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
