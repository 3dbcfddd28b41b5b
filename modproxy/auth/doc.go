// Package auth is berth proxy's client access control: who may read which
// module paths, proven by tokens, over TLS.
//
// An auth file (Parse, File) lists tokens by name with the SHA-256 of each
// secret and a scope: GOPRIVATE-style patterns the token may read, patterns
// it may not, and admin for /metrics. A Store holds the file in force and
// reloads it when it changes; Handler is the http.Handler that wraps the
// proxy, takes a token from Bearer or Basic credentials (so netrc, userinfo
// in GOPROXY and GOAUTH commands all work), and answers 401 or 403 before the
// proxy sees a request it must not serve. Certificate serves a TLS
// certificate reloaded on change, since the go command sends credentials
// only over https. Audit is the hook that logs who first fetched each module
// version.
//
// Secrets never leave this package: files, logs, errors and the request
// context hold token names and hashes only.
package auth
