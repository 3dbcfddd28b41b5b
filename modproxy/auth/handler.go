package auth

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/modproxy/proto"
)

// Handler checks every request's credentials against a Store before passing
// it to Next, the proxy (and its health and metrics endpoints):
//
//   - a path in Open is served to everyone;
//   - credentials are a token as "Authorization: Bearer TOKEN", or as the
//     password of Basic auth (the user name is ignored; a token given as the
//     user name with no password is accepted too), which is what netrc,
//     userinfo in GOPROXY and GOAUTH commands send;
//   - wrong credentials, or none when the file has no anonymous line, are a
//     401 with WWW-Authenticate (the go command then runs its GOAUTH
//     commands again and retries once);
//   - a path under Admin needs the admin scope;
//   - a module path (list, @latest, .info, .mod, .zip, and checksum
//     database lookups) needs a scope that reads it: a token that may not is
//     answered 403 text/plain; an anonymous client, 401 (a token may help);
//   - what names no module (checksum database tiles and /supported, paths
//     the proxy refuses anyway) is served to every authenticated client.
//
// The identity is in the request's context for the handlers behind (see
// FromContext); the secret never leaves this handler.
type Handler struct {
	Store *Store
	Next  http.Handler
	// Open lists the paths served without credentials. Default: /healthz and
	// /readyz.
	Open []string
	// Admin lists the path prefixes that need the admin scope. Default:
	// /metrics and /debug/.
	Admin []string
	// Realm is the realm in WWW-Authenticate. Default "berth".
	Realm string
	// Logger receives one debug line per refused request. Default
	// slog.Default().
	Logger *slog.Logger
}

// Identity is who made a request.
type Identity struct {
	// Name is the token's name, or "anonymous".
	Name      string
	Anonymous bool
	Scope
}

type identityKey struct{}

// FromContext returns the identity Handler put in a request's context.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.open(r.URL.Path) {
		h.Next.ServeHTTP(w, r)
		return
	}
	f := h.Store.File()
	var id Identity
	secret, given, scheme := credentials(r)
	switch {
	case given:
		t, ok := h.Store.Lookup(secret)
		if !ok {
			why := "the token is not valid: unknown or revoked; check the token (berth token list shows the names in force)"
			if scheme != "" {
				why = fmt.Sprintf("unsupported Authorization scheme %s: send the token as Bearer or as the Basic password", quoteSafe(scheme))
			}
			h.unauthorized(w, r, true, why)
			return
		}
		id = Identity{Name: t.Name, Scope: t.Scope}
	case f.Anonymous != nil:
		id = Identity{Name: "anonymous", Anonymous: true, Scope: *f.Anonymous}
	default:
		h.unauthorized(w, r, false, "authentication required")
		return
	}

	if h.admin(r.URL.Path) && !id.Admin {
		h.deny(w, r, id, "", "needs a token with the admin scope")
		return
	}
	if req, err := proto.ParsePath(r.URL.Path); err == nil && req.Module != "" && !id.CanRead(req.Module) {
		what := "read " + req.Module
		if req.Kind == proto.KindSumDB {
			what = "look up " + req.Module + " in the checksum database"
		}
		h.deny(w, r, id, req.Module, "may not "+what)
		return
	}
	h.Next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
}

// credentials returns the secret a request presents. scheme is set (and
// secret empty) for an Authorization header berth does not take.
func credentials(r *http.Request) (secret string, given bool, scheme string) {
	a := r.Header.Get("Authorization")
	if a == "" {
		return "", false, ""
	}
	if user, pass, ok := r.BasicAuth(); ok {
		if pass == "" {
			pass = user
		}
		return pass, true, ""
	}
	s, tok, _ := strings.Cut(a, " ")
	if strings.EqualFold(s, "Bearer") {
		return strings.TrimSpace(tok), true, ""
	}
	return "", true, s
}

func (h *Handler) open(p string) bool {
	open := h.Open
	if open == nil {
		open = []string{"/healthz", "/readyz"}
	}
	for _, o := range open {
		if p == o {
			return true
		}
	}
	return false
}

func (h *Handler) admin(p string) bool {
	admin := h.Admin
	if admin == nil {
		admin = []string{"/metrics", "/debug/"}
	}
	for _, a := range admin {
		if p == a || strings.HasSuffix(a, "/") && strings.HasPrefix(p, a) {
			return true
		}
	}
	return false
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// unauthorized answers 401 with the challenges the go command and curl know.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, wrong bool, why string) {
	realm := h.Realm
	if realm == "" {
		realm = "berth"
	}
	bearer := fmt.Sprintf("Bearer realm=%q", realm)
	if wrong {
		bearer += `, error="invalid_token"`
	}
	w.Header().Add("WWW-Authenticate", fmt.Sprintf("Basic realm=%q, charset=\"UTF-8\"", realm))
	w.Header().Add("WWW-Authenticate", bearer)
	h.logger().Debug("request refused: no valid credentials", "path", truncate(r.URL.Path, 200), "remote", r.RemoteAddr, "reason", why)
	textError(w, http.StatusUnauthorized, "berth: "+why+": send a token as \"Authorization: Bearer TOKEN\" or as the Basic auth password "+
		"(a netrc machine line with the host:port, https://user:TOKEN@host in GOPROXY, or GOAUTH='berth goauth'); the go command sends credentials only over https")
}

// deny answers an identified client that may not do what it asks: 403 for a
// token, 401 for an anonymous client (credentials may help).
func (h *Handler) deny(w http.ResponseWriter, r *http.Request, id Identity, mod, what string) {
	if id.Anonymous {
		h.unauthorized(w, r, false, "anonymous clients "+what)
		return
	}
	h.logger().Debug("request refused by the token's scope", "token", id.Name, "path", truncate(r.URL.Path, 200), "remote", r.RemoteAddr)
	msg := fmt.Sprintf("berth: token %q %s", id.Name, what)
	if mod != "" {
		msg += fmt.Sprintf(" (its scope: read=%s", id.Read)
		if id.Deny != "" {
			msg += " deny=" + id.Deny
		}
		msg += "); ask the berth operator for a token whose read= patterns match it"
	}
	textError(w, http.StatusForbidden, msg)
}

// textError writes a one-line text/plain error, which the go command prints
// as "server response:".
func textError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, strings.ReplaceAll(msg, "\n", " ")+"\n")
}

// Audit returns a hook for modproxy.Config.Fetched: one INFO line for each
// module version file (.info, .mod, .zip) fetched for the first time, saying
// who asked (the token's name), when (the line's time) and from where (the
// client's address).
func Audit(log *slog.Logger) func(r *http.Request, req proto.Request) {
	if log == nil {
		log = slog.Default()
	}
	return func(r *http.Request, req proto.Request) {
		switch req.Kind {
		case proto.KindInfo, proto.KindMod, proto.KindZip:
		default:
			return
		}
		if !req.Canonical {
			return
		}
		who := "-"
		if id, ok := FromContext(r.Context()); ok {
			who = id.Name
		}
		log.Info("audit: module version fetched for the first time", "module", req.Module, "version", req.Version,
			"file", req.Kind.String(), "token", who, "remote", r.RemoteAddr)
	}
}
