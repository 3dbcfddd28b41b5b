// Package proto is the GOPROXY protocol's model, in one place: what a request
// path names (Kind, Request, ParsePath), the store key of each answer in the
// module cache's own layout (VersionKey, ListKey, LookupKey, VersionOf), the
// path asked of an upstream, and version lists (ParseList, FormatList). The
// HTTP face, the proxy's core, eviction and the air-gap tools all use it, so
// escaping and keys are written once.
package proto

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/tlog"
)

// Kind is what a request path asks for.
type Kind int

// The kinds of request in the GOPROXY protocol.
const (
	KindList   Kind = iota + 1 // $module/@v/list
	KindInfo                   // $module/@v/$version.info
	KindMod                    // $module/@v/$version.mod
	KindZip                    // $module/@v/$version.zip
	KindLatest                 // $module/@latest
	KindSumDB                  // /sumdb/$name/...
)

// String returns the short endpoint name used in metrics and logs.
func (k Kind) String() string {
	switch k {
	case KindList:
		return "list"
	case KindInfo:
		return "info"
	case KindMod:
		return "mod"
	case KindZip:
		return "zip"
	case KindLatest:
		return "latest"
	case KindSumDB:
		return "sumdb"
	}
	return "other"
}

// MaxPathLen is the longest request path accepted; longer paths are refused
// before any parsing.
const MaxPathLen = 2048

// Request is a parsed, validated GOPROXY protocol request.
type Request struct {
	Kind Kind

	// Module and Version are the unescaped module path and version (Version is
	// empty for list and latest). For KindInfo, Version may be a query such as a
	// branch name when Canonical is false.
	Module, Version string
	// Canonical reports whether Version is a canonical semantic version valid for
	// Module, so that the answer is immutable.
	Canonical bool

	// SumDB is the checksum database name and SumDBPath what follows
	// /sumdb/<name>/ ("supported", "latest", "lookup/...", "tile/...").
	SumDB, SumDBPath string

	// Key is the store key of the answer, in the module cache layout
	// (escaped module path and version), or "" when the answer is not stored.
	Key string
}

// Immutable reports whether the answer to r never changes once it exists.
func (r Request) Immutable() bool {
	switch r.Kind {
	case KindMod, KindZip:
		return true
	case KindInfo:
		return r.Canonical
	case KindSumDB:
		return sumdbImmutable(r.SumDBPath)
	}
	return false
}

// UpstreamPath returns the path to request from an upstream proxy, relative to
// its base URL and without a leading slash: the escaped form on the wire.
func (r Request) UpstreamPath() string {
	if r.Kind == KindSumDB {
		return "sumdb/" + r.SumDB + "/" + r.SumDBPath
	}
	em, _ := module.EscapePath(r.Module)
	switch r.Kind {
	case KindList:
		return em + "/@v/list"
	case KindLatest:
		return em + "/@latest"
	}
	ev, _ := module.EscapeVersion(r.Version)
	switch r.Kind {
	case KindInfo:
		return em + "/@v/" + ev + ".info"
	case KindMod:
		return em + "/@v/" + ev + ".mod"
	case KindZip:
		return em + "/@v/" + ev + ".zip"
	}
	return ""
}

// PathError is a request path that is not a valid GOPROXY request. Status is the
// HTTP status to answer with (400 or 404).
type PathError struct {
	Path   string
	Status int
	Reason string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("invalid request path %q: %s", truncate(e.Path, 200), e.Reason)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func notFound(p, format string, args ...any) error {
	return &PathError{Path: p, Status: 404, Reason: fmt.Sprintf(format, args...)}
}

func badRequest(p, format string, args ...any) error {
	return &PathError{Path: p, Status: 400, Reason: fmt.Sprintf(format, args...)}
}

// ParsePath parses and validates a decoded URL path (as in http.Request.URL.Path,
// with the proxy's base prefix already removed; a leading slash is optional).
// It never touches the file system. Errors are *PathError.
//
// Paths that cannot name a module (for example path prefixes the go command
// probes, such as "github.com/@v/list") get a 404, so the go command moves on
// quickly; malformed paths get a 400.
func ParsePath(p string) (Request, error) {
	orig := p
	if len(p) > MaxPathLen {
		return Request{}, badRequest(truncate(orig, 64), "longer than %d bytes", MaxPathLen)
	}
	p = strings.TrimPrefix(p, "/")
	if p != "" && HasDotElem(orig) {
		return Request{}, badRequest(orig, "empty, . or .. path element")
	}
	if strings.HasPrefix(p, "sumdb/") {
		return parseSumDB(orig, strings.TrimPrefix(p, "sumdb/"))
	}
	if strings.ContainsAny(p, "\\\x00") {
		return Request{}, badRequest(orig, "contains a backslash or NUL")
	}
	if esc, ok := strings.CutSuffix(p, "/@latest"); ok {
		mod, err := unescapeModule(orig, esc)
		if err != nil {
			return Request{}, err
		}
		return Request{Kind: KindLatest, Module: mod}, nil
	}
	esc, file, ok := strings.Cut(p, "/@v/")
	if !ok {
		return Request{}, notFound(orig, "not a GOPROXY path: want <module>/@v/<file>, <module>/@latest or /sumdb/<name>/...")
	}
	mod, err := unescapeModule(orig, esc)
	if err != nil {
		return Request{}, err
	}
	if file == "list" {
		return Request{Kind: KindList, Module: mod, Key: esc + "/@v/list"}, nil
	}
	var kind Kind
	var escVer string
	switch {
	case strings.HasSuffix(file, ".info"):
		kind, escVer = KindInfo, strings.TrimSuffix(file, ".info")
	case strings.HasSuffix(file, ".mod"):
		kind, escVer = KindMod, strings.TrimSuffix(file, ".mod")
	case strings.HasSuffix(file, ".zip"):
		kind, escVer = KindZip, strings.TrimSuffix(file, ".zip")
	default:
		return Request{}, notFound(orig, "unknown file %q: want list, <version>.info, .mod or .zip", truncate(file, 64))
	}
	if escVer == "" || strings.Contains(escVer, "/") {
		return Request{}, badRequest(orig, "invalid version element %q", truncate(escVer, 64))
	}
	ver, err := module.UnescapeVersion(escVer)
	if err != nil {
		return Request{}, badRequest(orig, "%v", err)
	}
	r := Request{Kind: kind, Module: mod, Version: ver}
	r.Canonical = module.Check(mod, ver) == nil && semver.Canonical(ver) == trimBuild(ver) && semver.IsValid(ver)
	if !r.Canonical {
		if kind != KindInfo {
			if err := module.Check(mod, ver); err != nil {
				return Request{}, notFound(orig, "%v", err)
			}
			return Request{}, notFound(orig, "version %q is not canonical; ask for its .info first", ver)
		}
		// A query such as a branch or commit prefix: answered, not stored.
		if ver == "" || ver[0] == '.' || ver == "latest" || ver == "upgrade" || ver == "patch" {
			return Request{}, notFound(orig, "version query %q is not supported by proxies", ver)
		}
		return r, nil
	}
	r.Key = esc + "/@v/" + escVer + "." + kind.String()
	return r, nil
}

// HasDotElem reports whether the slash-separated path p (ignoring one
// leading slash) has an empty, "." or ".." element: no GOPROXY path has one,
// and path cleaning would make it name another file.
func HasDotElem(p string) bool {
	for elem := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if elem == "" || elem == "." || elem == ".." {
			return true
		}
	}
	return false
}

// trimBuild returns v without a "+incompatible" suffix, which semver.Canonical drops.
func trimBuild(v string) string {
	return strings.TrimSuffix(v, "+incompatible")
}

func unescapeModule(orig, esc string) (string, error) {
	if esc == "" {
		return "", notFound(orig, "empty module path")
	}
	mod, err := module.UnescapePath(esc)
	if err != nil {
		// Uppercase letters, bad escapes and impossible paths are client errors;
		// path prefixes that merely are not modules (no dot in the first
		// element, and so on) are "not here", so a "," list falls through.
		var ie *module.InvalidPathError
		if strings.ContainsAny(esc, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || (errors.As(err, &ie) && strings.Contains(ie.Err.Error(), "escap")) {
			return "", badRequest(orig, "%v", err)
		}
		return "", notFound(orig, "%v", err)
	}
	return mod, nil
}

func parseSumDB(orig, rest string) (Request, error) {
	name, sub, ok := strings.Cut(rest, "/")
	if !ok || !validDBName(name) {
		return Request{}, notFound(orig, "want /sumdb/<name>/supported, /lookup/..., /tile/... or /latest with a host-like database name")
	}
	r := Request{Kind: KindSumDB, SumDB: name, SumDBPath: sub}
	switch {
	case sub == "supported" || sub == "latest":
	case strings.HasPrefix(sub, "lookup/"):
		mv := strings.TrimPrefix(sub, "lookup/")
		i := strings.LastIndex(mv, "@")
		if i < 0 {
			return Request{}, badRequest(orig, "lookup wants <module>@<version>")
		}
		mod, err := module.UnescapePath(mv[:i])
		if err != nil {
			return Request{}, badRequest(orig, "%v", err)
		}
		ver, err := module.UnescapeVersion(mv[i+1:])
		if err != nil {
			return Request{}, badRequest(orig, "%v", err)
		}
		if err := module.Check(mod, ver); err != nil && !strings.HasSuffix(ver, "/go.mod") {
			return Request{}, notFound(orig, "%v", err)
		}
		r.Module, r.Version = mod, ver
		r.Key = "sumdb/" + name + "/" + sub
	case strings.HasPrefix(sub, "tile/"):
		if _, err := tlog.ParseTilePath(sub); err != nil {
			return Request{}, notFound(orig, "malformed tile path")
		}
		if sumdbImmutable(sub) {
			r.Key = "sumdb/" + name + "/" + sub
		}
	default:
		return Request{}, notFound(orig, "unknown checksum database endpoint %q", truncate(sub, 64))
	}
	return r, nil
}

// validDBName accepts host names such as "sum.example.test": lowercase letters,
// digits, dots and dashes, with no empty label.
func validDBName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// sumdbImmutable reports whether a checksum-database sub-path names data that
// never changes: lookups of a module version, and tiles. A partial tile of
// width W holds the first W entries of its tile, which never change either, so
// it is kept too: offline clients ask for the partial tiles of the tree sizes
// they saw.
func sumdbImmutable(sub string) bool {
	if strings.HasPrefix(sub, "lookup/") {
		return true
	}
	if strings.HasPrefix(sub, "tile/") {
		_, err := tlog.ParseTilePath(sub)
		return err == nil
	}
	return false
}
