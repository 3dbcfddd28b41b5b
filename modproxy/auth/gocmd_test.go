package auth_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/lab"
	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy"
	"github.com/berth-dev/berth/modproxy/auth"
	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// syncBuffer collects a logger's output across goroutines.
type syncBuffer = testmod.SyncBuffer

// authProxy is berth's proxy behind the auth handler, served over https with
// a certificate from a test CA.
type authProxy struct {
	URL    string // https://127.0.0.1:port
	Host   string // 127.0.0.1:port
	CAFile string
	Store  *auth.Store
	Cert   *auth.Certificate
	CA     *lab.CA
	Dir    string
	Up     *testmod.Upstream
	Log    *syncBuffer
}

func privateModules() []testmod.Module {
	return append(testmod.BaseModules(),
		testmod.Module{Path: "corp.example/team/m", Version: "v1.0.0", Files: map[string]string{"m.go": "package m\n"}},
		testmod.Module{Path: "corp.example/team/secret", Version: "v1.0.0", Files: map[string]string{"s.go": "package secret\n"}},
	)
}

// startAuthProxy writes authFile's text, opens it and serves the proxy.
func startAuthProxy(t *testing.T, authText string) *authProxy {
	t.Helper()
	ap := &authProxy{Dir: t.TempDir(), Log: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(ap.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ap.Up = testmod.NewUpstream(t, privateModules())
	st, err := store.OpenDisk(filepath.Join(ap.Dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := source.Parse(ap.Up.URL())
	if err != nil {
		t.Fatal(err)
	}
	px, err := modproxy.New(modproxy.Config{
		Config: cache.Config{Store: st, Source: &source.Fetcher{Chain: chain, Client: source.NewClient(nil), Logger: log},
			SumDBKey: ap.Up.GOSUMDB(), Logger: log},
		Fetched: auth.Audit(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	authFile := filepath.Join(ap.Dir, "auth")
	if err := os.WriteFile(authFile, []byte(authText), 0o600); err != nil {
		t.Fatal(err)
	}
	if ap.Store, err = auth.Open(authFile, log); err != nil {
		t.Fatal(err)
	}
	if ap.CA, err = lab.NewCA("berth test CA", "berth"); err != nil {
		t.Fatal(err)
	}
	ap.CAFile = filepath.Join(ap.Dir, "ca.pem")
	os.WriteFile(ap.CAFile, ap.CA.PEM, 0o644)
	certFile, keyFile, err := ap.CA.Issue(ap.Dir, "berth", []string{"127.0.0.1", "localhost"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ap.Cert, err = auth.LoadCertificate(certFile, keyFile, log); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("/", px)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: &auth.Handler{Store: ap.Store, Next: mux, Logger: log}, TLSConfig: ap.Cert.TLSConfig(),
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() { defer close(done); srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		px.Close()
		if t.Failed() {
			t.Logf("berth log:\n%s", ap.Log)
		}
	})
	ap.Host = ln.Addr().String()
	ap.URL = "https://" + ap.Host
	return ap
}

// goEnv is a hermetic environment for the real go command, which trusts the
// test CA only.
type goEnv struct {
	t   *testing.T
	env []string
	dir string
}

func newGoEnv(t *testing.T, ap *authProxy, goproxy string, extra ...string) *goEnv {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is required for this test: %v", err)
	}
	gocache, _ := exec.Command("go", "env", "GOCACHE").Output()
	home := noTelemetryHome(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"GOPATH=" + filepath.Join(home, "gopath"),
		"GOMODCACHE=" + filepath.Join(home, "modcache"),
		"GOCACHE=" + strings.TrimSpace(string(gocache)),
		"GOPROXY=" + goproxy,
		"GOSUMDB=" + ap.Up.GOSUMDB(),
		"GOFLAGS=-modcacherw",
		"GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOTOOLCHAIN=local",
		"SSL_CERT_FILE=" + ap.CAFile,
		"NETRC=" + filepath.Join(home, "no-netrc"),
	}
	env = append(env, extra...)
	dir := filepath.Join(home, "main")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/main\n\ngo 1.21\n"), 0o644)
	return &goEnv{t: t, env: env, dir: dir}
}

// download runs go mod download -json for the module versions and returns
// the output.
func (g *goEnv) download(mods ...string) (string, error) {
	g.t.Helper()
	cmd := exec.Command("go", append([]string{"mod", "download", "-json"}, mods...)...)
	cmd.Dir, cmd.Env = g.dir, g.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		return out.String(), errors.New("timed out")
	}
}

// noTelemetryHome returns a new home directory whose go telemetry mode is
// off: otherwise the go command leaves a child process writing counters under
// it after it exits, and removing the directory at the end of the test races
// with it.
func noTelemetryHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "go", "telemetry")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mode"), []byte("off\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return home
}

func (g *goEnv) mustDownload(mods ...string) {
	g.t.Helper()
	if out, err := g.download(mods...); err != nil {
		g.t.Fatalf("go mod download %s: %v\n%s", strings.Join(mods, " "), err, out)
	}
}

func (g *goEnv) mustFail(want string, mods ...string) string {
	g.t.Helper()
	out, err := g.download(mods...)
	if err == nil {
		g.t.Fatalf("go mod download %s succeeded, want an error with %q:\n%s", strings.Join(mods, " "), want, out)
	}
	if !strings.Contains(out, want) {
		g.t.Fatalf("go mod download %s: want %q in:\n%s", strings.Join(mods, " "), want, out)
	}
	return out
}

// newToken appends a token to the proxy's auth file and returns its secret.
func newToken(t *testing.T, ap *authProxy, name string, scope auth.Scope) string {
	t.Helper()
	secret, h := auth.NewSecret()
	f, err := os.OpenFile(ap.Store.Path(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(auth.Token{Name: name, Hash: h, Scope: scope}.Line() + "\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := ap.Store.Reload(); err != nil {
		t.Fatal(err)
	}
	return secret
}

func writeNetrc(t *testing.T, g *goEnv, machine, secret string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "netrc")
	os.WriteFile(p, []byte(fmt.Sprintf("machine %s login berth password %s\n", machine, secret)), 0o600)
	g.env = append(g.env, "NETRC="+p)
}

const ciScope = "example.test,corp.example/team/*"

// TestGoCommandNetrc: a netrc entry for host:port authenticates the go command
// over https; a host-only entry does not match a URL with a port, and the go
// command shows berth's 401 text.
func TestGoCommandNetrc(t *testing.T) {
	ap := startAuthProxy(t, "")
	secret := newToken(t, ap, "ci", auth.Scope{Read: ciScope, Deny: "corp.example/team/secret"})

	g := newGoEnv(t, ap, ap.URL)
	writeNetrc(t, g, ap.Host, secret)
	g.mustDownload("example.test/lib@v1.0.0", "corp.example/team/m@v1.0.0")

	host := newGoEnv(t, ap, ap.URL)
	writeNetrc(t, host, "127.0.0.1", secret)
	out := host.mustFail("401 Unauthorized", "example.test/lib@v1.1.0")
	if !strings.Contains(out, "server response: berth: authentication required") {
		t.Errorf("the go command does not show berth's reason:\n%s", out)
	}

	logs := ap.Log.String()
	if !strings.Contains(logs, `msg="audit: module version fetched for the first time" module=corp.example/team/m version=v1.0.0 file=zip token=ci remote=127.0.0.1:`) {
		t.Errorf("no audit line for the first fetch of corp.example/team/m:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("the secret reached the log")
	}
}

// TestGoCommandUserinfo: a token as the password in GOPROXY's userinfo.
func TestGoCommandUserinfo(t *testing.T) {
	ap := startAuthProxy(t, "")
	secret := newToken(t, ap, "ci", auth.Scope{Read: ciScope})
	u, _ := url.Parse(ap.URL)
	u.User = url.UserPassword("ci", secret)
	newGoEnv(t, ap, u.String(), "GOAUTH=off").mustDownload("example.test/lib@v1.0.0")

	u.User = url.UserPassword("ci", secret+"x")
	out := newGoEnv(t, ap, u.String(), "GOAUTH=off").mustFail("401 Unauthorized", "example.test/lib@v1.0.0")
	if !strings.Contains(out, "the token is not valid") {
		t.Errorf("a wrong token is not explained:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the go command's error shows the secret")
	}
}

// TestGoCommandDenied: a token may not read a path outside its scope: 403,
// whose text the go command shows; checksum database lookups of such a path
// are refused the same way.
func TestGoCommandDenied(t *testing.T) {
	ap := startAuthProxy(t, "")
	secret := newToken(t, ap, "ci", auth.Scope{Read: ciScope, Deny: "corp.example/team/secret"})
	g := newGoEnv(t, ap, ap.URL)
	writeNetrc(t, g, ap.Host, secret)
	out := g.mustFail("403 Forbidden", "corp.example/team/secret@v1.0.0")
	if !strings.Contains(out, `server response: berth: token \"ci\" may not read corp.example/team/secret`) { // in -json output
		t.Errorf("the go command does not show why:\n%s", out)
	}
	if n := ap.Up.Count("/corp.example/team/secret/@v/v1.0.0.info"); n != 0 {
		t.Errorf("a denied path reached the upstream %d times", n)
	}

	req, _ := http.NewRequest("GET", ap.URL+"/sumdb/"+ap.Up.SumDBName+"/lookup/corp.example/team/secret@v1.0.0", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := ap.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 403 || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.Contains(string(body), "may not look up corp.example/team/secret") {
		t.Errorf("sumdb lookup of a denied path: %d %q", res.StatusCode, body)
	}
}

// TestGoCommandNoCredentials: without credentials the go command gets 401;
// with an anonymous line it reads what that line allows and nothing else.
func TestGoCommandNoCredentials(t *testing.T) {
	ap := startAuthProxy(t, "")
	out := newGoEnv(t, ap, ap.URL).mustFail("401 Unauthorized", "example.test/lib@v1.0.0")
	if !strings.Contains(out, "server response: berth: authentication required") {
		t.Errorf("no reason shown:\n%s", out)
	}

	ap2 := startAuthProxy(t, "anonymous read=example.test\n")
	newGoEnv(t, ap2, ap2.URL).mustDownload("example.test/lib@v1.0.0")
	newGoEnv(t, ap2, ap2.URL).mustFail("401 Unauthorized", "corp.example/team/m@v1.0.0")
	res, err := ap2.client().Get(ap2.URL + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", res, err)
	}
	res.Body.Close()
}

// TestReloadWithoutRestart: a token added to the auth file works, and one
// removed stops working, without a restart; a renewed certificate is served.
func TestReloadWithoutRestart(t *testing.T) {
	ap := startAuthProxy(t, "")
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ap.Store.Watch(ctx, 20*time.Millisecond) }()
	go func() { defer wg.Done(); ap.Cert.Watch(ctx, 20*time.Millisecond) }()
	defer wg.Wait()
	defer cancel()

	secret, h := auth.NewSecret()
	line := auth.Token{Name: "late", Hash: h, Scope: auth.Scope{Read: "example.test"}}.Line() + "\n"
	os.WriteFile(ap.Store.Path(), []byte(line), 0o600)
	waitFor(t, "the new token", func() bool { _, ok := ap.Store.Lookup(secret); return ok })
	g := newGoEnv(t, ap, ap.URL)
	writeNetrc(t, g, ap.Host, secret)
	g.mustDownload("example.test/lib@v1.0.0")

	// A broken file keeps the token in force.
	os.WriteFile(ap.Store.Path(), []byte("token late sha256:nothex\n"), 0o600)
	waitFor(t, "the refusal", func() bool { return strings.Contains(ap.Log.String(), "auth file not reloaded") })
	g.mustDownload("example.test/lib@v1.1.0")

	os.WriteFile(ap.Store.Path(), []byte("# revoked\n"), 0o600)
	waitFor(t, "the revocation", func() bool { _, ok := ap.Store.Lookup(secret); return !ok })
	g.mustFail("401 Unauthorized", "example.test/lib/v2@v2.0.0")

	// The certificate: a new one from the same CA is served after the files change.
	old := ap.served(t)
	time.Sleep(10 * time.Millisecond) // a new serial number (it is the time in ns)
	if _, _, err := ap.CA.Issue(ap.Dir, "berth", []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(2*time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new certificate", func() bool { return ap.served(t).SerialNumber.Cmp(old.SerialNumber) != 0 })
	// A broken key keeps the pair in force.
	os.WriteFile(filepath.Join(ap.Dir, "berth.key"), []byte("not a key"), 0o600)
	waitFor(t, "the refusal", func() bool { return strings.Contains(ap.Log.String(), "TLS certificate not reloaded") })
	if ap.served(t) == nil {
		t.Fatal("no certificate served")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (ap *authProxy) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ap.CA.PEM)
	return pool
}

func (ap *authProxy) client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ap.pool()}}, Timeout: 30 * time.Second}
}

// served returns the leaf certificate a new TLS connection gets.
func (ap *authProxy) served(t *testing.T) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", ap.Host, &tls.Config{RootCAs: ap.pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}
