// Package source is where the proxy's core gets what its store lacks. Source
// (source.go) is the seam, at the level of the GOPROXY protocol: List, Latest,
// Info, Mod, Zip and SumDB, each answering a Body or an error wrapping
// ErrNotFound. Its implementations:
//
//   - Fetcher (fetcher.go): an upstream chain with GOPROXY semantics, an
//     ordered list of proxy URLs where an entry followed by "," falls through
//     to the next only when it answers 404 or 410, and an entry followed by
//     "|" falls through on any error; "off" refuses every fetch.
//   - VCS (vcs.go): version control, through the real go command run
//     hermetically with GOPROXY=direct.
//   - Router (source.go): module paths matching a route's patterns go to its
//     own source, the rest to a default.
//
// Lists are parsed as the go command parses GOPROXY (internal/goenv). The
// "direct" entry ends a list, as it does for the go command: what the walk
// passes on to it is fetched from version control (Fetcher.Direct, a VCS),
// and checksum databases no proxy of the list serves are read from the
// database's own host.
package source

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/goenv"
	"github.com/berth-dev/berth/modproxy/proto"
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
	// Direct is the "direct" entry (URL is nil): version control.
	Direct bool

	sumdbHost bool // URL is a checksum database's own host, not a proxy
}

func (u Upstream) String() string {
	if u.Direct {
		return "direct"
	}
	if u.URL.Scheme == "file" && u.URL.Path == "" {
		return "file://" // url.URL writes "file:", which is no proxy URL
	}
	return u.URL.Redacted()
}

// Chain is a parsed GOPROXY-style list of upstreams.
type Chain struct {
	Upstreams []Upstream
	// Off reports whether the list is "off" (or begins with it): nothing is fetched.
	Off bool
	// Ignored lists what follows "direct", which the go command never reads.
	Ignored []string
}

// Parse parses a GOPROXY value with the go command's rules
// (goenv.ParseProxyList) and its error texts: entries separated by "," or
// "|", a bare host[/path] gets https://, schemes https, http and file. The
// list ends at "off" or "direct", as it does for the go command: "direct" is
// the last of Upstreams, and what follows it goes to Ignored.
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
			if strings.Trim(e.Unread, " \t\n\r,|") != "" {
				c.Ignored = append(c.Ignored, e.Unread)
			}
			c.Upstreams = append(c.Upstreams, Upstream{Direct: true})
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
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		c.Upstreams = append(c.Upstreams, Upstream{URL: u, AnyError: e.FallbackOnError})
	}
	return c, nil
}

// Direct reports whether the chain ends in "direct".
func (c *Chain) Direct() bool {
	return len(c.Upstreams) > 0 && c.Upstreams[len(c.Upstreams)-1].Direct
}

// walk fetches rel (the request kind of path@version) from the chain's
// proxies with GOPROXY fall-through and, when the walk passes on to the
// final "direct" entry (every proxy answered 404/410, or the last failed
// and was followed by "|"), from Direct.
func (f *Fetcher) walk(ctx context.Context, kind proto.Kind, path, version, rel string) (*Body, error) {
	ups := f.Chain.Upstreams
	if !f.Chain.Direct() {
		return f.fetch(ctx, ups, rel)
	}
	ups = ups[:len(ups)-1]
	if len(ups) > 0 {
		resp, up, err := f.getFrom(ctx, ups, rel)
		if err == nil {
			return &Body{ReadCloser: resp.Body, Size: resp.ContentLength, Origin: up.String()}, nil
		}
		last := ups[len(ups)-1]
		passed := errors.Is(err, ErrNotFound) || up.URL == nil || (up.URL == last.URL && last.AnyError)
		if ctx.Err() != nil || !passed {
			return nil, err
		}
	}
	if f.Direct == nil {
		return nil, errors.New(`the upstream list ends in "direct" but berth has no version-control source`)
	}
	switch kind {
	case proto.KindList:
		return f.Direct.List(ctx, path)
	case proto.KindLatest:
		return f.Direct.Latest(ctx, path)
	case proto.KindInfo:
		return f.Direct.Info(ctx, path, version)
	case proto.KindMod:
		return f.Direct.Mod(ctx, path, version)
	case proto.KindZip:
		return f.Direct.Zip(ctx, path, version)
	}
	return nil, fmt.Errorf("source: cannot fetch a %s request directly", kind)
}

// directSumDB is the upstream of a checksum database read from its own host
// (https://<name>), as the go command does past its proxies.
func directSumDB(name string) *Upstream {
	return &Upstream{URL: &url.URL{Scheme: "https", Host: name}, sumdbHost: true}
}

// sumdbRel is the path of a checksum database's path below u.
func (u Upstream) sumdbRel(name, path string) string {
	if u.sumdbHost {
		return path
	}
	return "sumdb/" + name + "/" + path
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

// RouteSpec is a parsed route: module paths matching Patterns go to Chain.
type RouteSpec struct {
	Patterns goenv.Patterns
	Chain    *Chain
}

// String returns the route as ParseRoute reads it.
func (r RouteSpec) String() string { return string(r.Patterns) + "=" + r.Chain.String() }

// ParseRoute parses a route "PATTERNS=SOURCE": PATTERNS is a comma-separated
// list of GOPRIVATE-style globs (corp.example/*,*.internal), SOURCE a
// GOPROXY-style list ("direct" for version control, proxies with "," and
// "|", or "off" to refuse the paths).
func ParseRoute(s string) (RouteSpec, error) {
	pats, list, ok := strings.Cut(s, "=")
	if !ok {
		return RouteSpec{}, fmt.Errorf("route %q: want PATTERNS=SOURCE, such as 'corp.example/*=direct' or '*.internal=https://proxy.internal'", s)
	}
	pats = strings.TrimSpace(pats)
	var clean []string
	for p := range strings.SplitSeq(pats, ",") {
		p = strings.TrimRight(strings.TrimSpace(p), "/")
		if p == "" {
			continue
		}
		if strings.ContainsAny(p, " \t\n\r=") {
			return RouteSpec{}, fmt.Errorf("route %q: pattern %q has a space or '='", s, p)
		}
		if _, err := path.Match(p, p); err != nil {
			return RouteSpec{}, fmt.Errorf("route %q: pattern %q: %v", s, p, err)
		}
		clean = append(clean, p)
	}
	if len(clean) == 0 {
		return RouteSpec{}, fmt.Errorf("route %q: no module path pattern before '='", s)
	}
	c, err := Parse(strings.TrimSpace(list))
	if err != nil {
		return RouteSpec{}, fmt.Errorf("route %q: %w", s, err)
	}
	return RouteSpec{Patterns: goenv.Patterns(strings.Join(clean, ",")), Chain: c}, nil
}
