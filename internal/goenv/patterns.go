package goenv

import "golang.org/x/mod/module"

// Patterns is a comma-separated list of module path globs as in GOPRIVATE,
// GONOPROXY and GONOSUMDB. A glob matches a module path when it matches the
// path's leading elements (path.Match syntax), so "*.corp.example" matches
// every module under a host of that domain. Empty entries and a trailing "/"
// are ignored, spaces are not (" a.example" matches nothing); the zero value
// matches nothing.
type Patterns string

// Match reports whether the module path matches any pattern, with the go
// command's rule (golang.org/x/mod/module.MatchPrefixPatterns).
func (p Patterns) Match(modulePath string) bool {
	return module.MatchPrefixPatterns(string(p), modulePath)
}

// NoProxy returns the patterns of modules the go command fetches directly,
// bypassing GOPROXY: GONOPROXY, which defaults to GOPRIVATE when empty.
// vars holds the variables by name, as Read returns them.
func NoProxy(vars map[string]string) Patterns {
	return orPrivate(vars, "GONOPROXY")
}

// NoSumDB returns the patterns of modules the go command does not check
// against the checksum database: GONOSUMDB, which defaults to GOPRIVATE when
// empty. vars holds the variables by name, as Read returns them.
func NoSumDB(vars map[string]string) Patterns {
	return orPrivate(vars, "GONOSUMDB")
}

func orPrivate(vars map[string]string, name string) Patterns {
	if v := vars[name]; v != "" {
		return Patterns(v)
	}
	return Patterns(vars["GOPRIVATE"])
}
