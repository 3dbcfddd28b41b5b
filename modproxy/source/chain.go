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
	"net/url"
	"strings"

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
