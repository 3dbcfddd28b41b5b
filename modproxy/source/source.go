package source

import (
	"context"
	"io"

	"github.com/berth-dev/berth/internal/goenv"
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
	// Revision is, from version control (VCS), what the go command reported
	// about the version: origin and go.sum hashes, for the ledger. Nil from a
	// proxy.
	Revision *Revision
}

// Route sends the module paths its patterns match to its own source.
type Route struct {
	// Patterns is a comma-separated list of glob patterns in GOPRIVATE syntax
	// (golang.org/x/mod/module.MatchPrefixPatterns): "corp.example/*,*.internal".
	Patterns goenv.Patterns
	// Source answers the matching paths.
	Source Source
}

// Router is a Source that sends each module path to the first of Routes whose
// patterns match it, and every other path to Default. Checksum databases are
// Default's: a route's modules are not in a public checksum database.
type Router struct {
	Routes  []Route
	Default Source
}

func (r *Router) route(path string) Source {
	for _, rt := range r.Routes {
		if rt.Patterns.Match(path) {
			return rt.Source
		}
	}
	return r.Default
}

// List implements Source.
func (r *Router) List(ctx context.Context, path string) (*Body, error) {
	return r.route(path).List(ctx, path)
}

// Latest implements Source.
func (r *Router) Latest(ctx context.Context, path string) (*Body, error) {
	return r.route(path).Latest(ctx, path)
}

// Info implements Source.
func (r *Router) Info(ctx context.Context, path, query string) (*Body, error) {
	return r.route(path).Info(ctx, path, query)
}

// Mod implements Source.
func (r *Router) Mod(ctx context.Context, path, version string) (*Body, error) {
	return r.route(path).Mod(ctx, path, version)
}

// Zip implements Source.
func (r *Router) Zip(ctx context.Context, path, version string) (*Body, error) {
	return r.route(path).Zip(ctx, path, version)
}

// SumDB implements Source.
func (r *Router) SumDB(ctx context.Context, name, path string) (*Body, error) {
	return r.Default.SumDB(ctx, name, path)
}
