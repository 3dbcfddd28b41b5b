package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/modproxy/auth"
	"github.com/berth-dev/berth/modproxy/proto"
)

// proxyAccessHelp is the part of berth proxy --help about client access.
const proxyAccessHelp = `
Client access (--auth-file): every request but /healthz and /readyz needs a
token, sent as "Authorization: Bearer <token>" or as the Basic auth password;
a token reads the module paths its scope allows (403 for the others; /metrics
needs admin), and what a client without a token may read is the file's
anonymous line (none: nothing; 401). The go command sends credentials only
over https: serve it with --tls-cert and --tls-key (or behind a TLS proxy).
Tokens come from berth token create; the file and the certificate are read
again when they change. Client side, one of:

    machine berth.corp.example:8443 login ci password <token>   (~/.netrc; with the port)
    GOPROXY=https://ci:<token>@berth.corp.example:8443
    GOAUTH='berth goauth' BERTH_TOKEN=<token>
    and GONOSUMDB=<private patterns>, not GOPRIVATE alone (it bypasses every proxy)
`

// accessReload is how often the auth file and the certificate are checked
// for changes.
const accessReload = 2 * time.Second

// access is berth proxy's client access control and TLS, from its flags.
type access struct {
	store *auth.Store
	cert  *auth.Certificate
	log   *slog.Logger
}

// accessUsageError is a flag combination that cannot work.
type accessUsageError struct{ msg string }

func (e *accessUsageError) Error() string { return e.msg }

// newAccess reads the auth file and the certificate. An *accessUsageError
// is a usage error.
func newAccess(authFile, certFile, keyFile string, log *slog.Logger) (*access, error) {
	a := &access{log: log}
	if (certFile == "") != (keyFile == "") {
		return nil, &accessUsageError{"--tls-cert and --tls-key go together: give both, or neither"}
	}
	var err error
	if certFile != "" {
		if a.cert, err = auth.LoadCertificate(certFile, keyFile, log); err != nil {
			return nil, err
		}
	}
	if authFile != "" {
		if a.store, err = auth.Open(authFile, log); err != nil {
			return nil, err
		}
		f := a.store.File()
		log.Info("client access control on", "auth_file", authFile, "tokens", len(f.Tokens), "anonymous", f.Anonymous != nil)
		if a.cert == nil {
			log.Warn("--auth-file without --tls-cert: the go command sends credentials only over https, so clients reaching berth over plain http cannot authenticate; serve https with --tls-cert and --tls-key, or put berth behind a TLS proxy")
		}
	}
	return a, nil
}

// handler wraps next with the token check when there is an auth file.
func (a *access) handler(next http.Handler) http.Handler {
	if a.store == nil {
		return next
	}
	return &auth.Handler{Store: a.store, Next: next, Logger: a.log}
}

// audit is the proxy's Fetched hook: an audit line per first fetch, when
// clients are identified.
func (a *access) audit() func(*http.Request, proto.Request) {
	if a.store == nil {
		return nil
	}
	return auth.Audit(a.log)
}

// tlsConfig is the server's TLS configuration, nil for plain http.
func (a *access) tlsConfig() *tls.Config {
	if a.cert == nil {
		return nil
	}
	return a.cert.TLSConfig()
}

// watch reloads the auth file and the certificate on change until stop is
// called; stop waits for the watchers.
func (a *access) watch(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if a.store != nil {
		wg.Go(func() { a.store.Watch(ctx, accessReload) })
	}
	if a.cert != nil {
		wg.Go(func() { a.cert.Watch(ctx, accessReload) })
	}
	return func() { cancel(); wg.Wait() }
}
