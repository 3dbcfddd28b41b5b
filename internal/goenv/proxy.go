package goenv

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// ProxyEntry is one entry of a GOPROXY list.
type ProxyEntry struct {
	// URL is the proxy's base URL as the go command uses it: a complete
	// https://, http:// or file:// URL, with "https://" added to a bare
	// host[/path]. It is "" for Direct and Off.
	URL string
	// Direct is the "direct" entry: fetch from version control.
	Direct bool
	// Off is the "off" entry: refuse every fetch.
	Off bool
	// FallbackOnError reports whether the entry was followed by "|": the go
	// command then tries the next entry after any error, not only after a
	// 404 or 410 answer (",").
	FallbackOnError bool
	// Unread is, for the Direct or Off entry that ends a list, the rest of
	// the list after it as written, which the go command never reads.
	Unread string
}

// ErrEmptyProxyList is the go command's error for a GOPROXY list that is not
// empty but holds no entries, such as "," or " ".
var ErrEmptyProxyList = errors.New("GOPROXY list is not the empty string, but contains no entries")

// ParseProxyList parses a GOPROXY value as the go command does
// (cmd/go/internal/modfetch/proxy.go). Entries are separated by "," (the next
// is tried after a 404 or 410) or "|" (after any error); blank entries are
// skipped; "off" and "direct" end the list and what follows them is not read
// (nor checked). A token with a ".", ":" or "/" in it that contains no ":/"
// and is no absolute path is a host[/path] and gets "https://"; anything else
// must be a URL with scheme https, http or file, and a file URL has nothing
// but a path. So "off" is Off but "OFF" and "banana" are errors, as they are
// to the go command, with its words: "invalid proxy URL missing scheme:
// banana". An empty s is an error too (the go command never sees one: it
// then uses its default list).
func ParseProxyList(s string) ([]ProxyEntry, error) {
	if s == "" {
		return nil, errors.New("GOPROXY list is empty")
	}
	var list []ProxyEntry
	for s != "" {
		entry, rest, sep := s, "", byte(0)
		if i := strings.IndexAny(s, ",|"); i >= 0 {
			entry, rest, sep = s[:i], s[i+1:], s[i]
		}
		s = rest
		entry = strings.TrimSpace(entry)
		switch entry {
		case "":
			continue
		case "off":
			return append(list, ProxyEntry{Off: true, Unread: rest}), nil
		case "direct":
			return append(list, ProxyEntry{Direct: true, Unread: rest}), nil
		}
		if bareHost(entry) {
			entry = "https://" + entry
		}
		if err := checkProxyURL(entry); err != nil {
			return nil, err
		}
		list = append(list, ProxyEntry{URL: entry, FallbackOnError: sep == '|'})
	}
	if len(list) == 0 {
		return nil, ErrEmptyProxyList
	}
	return list, nil
}

// bareHost reports whether a GOPROXY token is a host[/path] without a scheme.
// One-word tokens are the go command's keywords, and what has ":/" or is an
// absolute path must already be a whole URL.
func bareHost(tok string) bool {
	if !strings.ContainsAny(tok, ".:/") || strings.Contains(tok, ":/") {
		return false
	}
	return !filepath.IsAbs(tok) && !path.IsAbs(tok)
}

// checkProxyURL applies the go command's checks to a proxy base URL, with its
// error texts. Passwords are hidden in what it prints.
func checkProxyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "https", "http":
		return nil
	case "file":
		if (*u != url.URL{Scheme: u.Scheme, Path: u.Path, RawPath: u.RawPath}) {
			return fmt.Errorf("invalid file:// proxy URL with non-path elements: %s", u.Redacted())
		}
		return nil
	case "":
		return fmt.Errorf("invalid proxy URL missing scheme: %s", u.Redacted())
	}
	return fmt.Errorf("invalid proxy URL scheme (must be https, http, file): %s", u.Redacted())
}

// FormatProxyList returns list in GOPROXY syntax: each entry's URL, "direct"
// or "off", joined by "|" after an entry with FallbackOnError and by ","
// otherwise (a last entry with FallbackOnError keeps its "|"). Unread is not
// written. ParseProxyList of the result gives list back, Unread aside, for
// any list ParseProxyList returned.
func FormatProxyList(list []ProxyEntry) string {
	var b strings.Builder
	for i, e := range list {
		switch {
		case e.Off:
			b.WriteString("off")
		case e.Direct:
			b.WriteString("direct")
		default:
			b.WriteString(e.URL)
		}
		if e.FallbackOnError {
			b.WriteByte('|')
		} else if i < len(list)-1 {
			b.WriteByte(',')
		}
	}
	return b.String()
}
