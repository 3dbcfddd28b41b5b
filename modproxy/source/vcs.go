package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/sync/singleflight"

	"github.com/berth-dev/berth/netkit"
)

// VCS is a Source that fetches modules from version control the way the go
// command does with GOPROXY=direct, by running the real go command, hermetic:
// its own module and build caches and HOME under Dir (never a client's), no
// proxy, no checksum database (berth verifies: its ledger for private
// modules), the local toolchain only, GOFLAGS cleared, and git never
// prompting. Credentials come only from the fields below and the variables
// of Environ it passes through (VCSPassEnv).
//
// One go command runs per module version however many ask (.info, .mod and
// .zip of a version come from one `go mod download`), and per list, latest
// or query at a time; at most PerHost run at once for one host, each within
// Timeout, and a breaker per host fails requests at once after repeated
// failures. The caller's cache keeps the files: the go command's copy of a
// version is removed once its zip has been handed over, so that a later
// fetch asks version control again (and a moved tag is seen).
type VCS struct {
	// Dir is berth's directory for the go command: GOMODCACHE, GOCACHE and
	// HOME live below it. Required.
	Dir string
	// GoBin is the go command. Default "go" on Environ's PATH.
	GoBin string
	// Netrc is a netrc file with the git hosts' credentials: the go command
	// reads it (NETRC) and git finds it as HOME/.netrc. Empty: none.
	Netrc string
	// GitConfig is a git config file used as git's global configuration
	// (url.<base>.insteadOf, credential.helper, http.sslCAInfo). Empty: an
	// empty one.
	GitConfig string
	// SSHKey is a private key file for ssh:// and scp-style remotes; an
	// agent is reached through SSH_AUTH_SOCK of Environ. SSHKnownHosts is
	// the known_hosts file that authenticates the hosts (default: ssh's).
	SSHKey, SSHKnownHosts string
	// Environ is the environment the variables of VCSPassEnv are taken
	// from. Nil means os.Environ().
	Environ []string
	// PerHost bounds the go commands running at once for one host (the
	// first element of the module path). Default 4.
	PerHost int
	// Timeout bounds one go command. Default 5 minutes.
	Timeout time.Duration
	// Breaker is the policy of the breaker kept per host. The zero value is
	// netkit's default (opens after 5 failures in a row).
	Breaker netkit.BreakerPolicy
	// Keep is how long the result of one download serves the other files of
	// its version (the go command asks .info, .mod and .zip one after the
	// other). Default 1 minute.
	Keep time.Duration
	// Logger receives one line per go command run. Default slog.Default().
	Logger *slog.Logger

	once    sync.Once
	initErr error
	env     []string
	goBin   string

	runs      atomic.Int64
	downloads singleflight.Group
	queries   singleflight.Group

	mu    sync.Mutex
	hosts map[string]*vcsHost
	memo  map[string]*download
}

// VCSPassEnv are the variables VCS passes from its Environ to the go
// command and git: how to authenticate (GOAUTH, an ssh agent), which hosts
// may use insecure schemes or which VCS (GOINSECURE, GOVCS), whom to trust
// (CA bundles: a corporate git host behind a corporate CA) and how to get
// there (proxies). Nothing else of berth's environment reaches them.
var VCSPassEnv = []string{
	"PATH", "GOAUTH", "GOINSECURE", "GOVCS", "GOROOT",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
	"SSH_AUTH_SOCK",
	"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

type vcsHost struct {
	sem     chan struct{}
	breaker *netkit.Breaker
}

// download is what `go mod download -json` reported for one version.
type download struct {
	Path, Version string
	Error         string
	Info, GoMod   string
	Zip, Dir      string
	Sum, GoModSum string
	Origin        *Revision
	at            time.Time
}

// Revision is what the go command reported about a version it fetched from
// version control: where it came from and its go.sum hashes. Nothing in it
// is secret (the URL is the remote as the go command names it, credentials
// never are part of it).
type Revision struct {
	// VCS, URL, Hash and Ref are the go command's Origin: "git", the
	// remote, the full commit hash and the ref (refs/tags/v1.2.0) if any.
	VCS, URL, Hash, Ref string
	// Sum and GoModSum are the h1: hashes of the zip and of the go.mod.
	Sum, GoModSum string
}

// AuthError is a git host refusing berth's credentials, or asking for ones
// berth does not have. Its text names the host and what to add; it holds no
// secret. The HTTP face answers it with 502 (never 404: the go command must
// not fall through and fail obscurely elsewhere).
type AuthError struct {
	// Host is the git host that refused ("git.corp.example").
	Host string
	// Module is the module path asked for.
	Module string
	// Detail is the go command's or git's own words (credentials redacted).
	Detail string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("git host %s refused berth's credentials for %s (%s): add the host to berth's --netrc file "+
		"(machine %s login <user> password <token>), or a credential helper or url.insteadOf rule to --git-config; "+
		"for ssh:// remotes give --ssh-key or an agent (SSH_AUTH_SOCK)", e.Host, e.Module, e.Detail, e.Host)
}

func (v *VCS) init() error {
	v.once.Do(func() { v.initErr = v.setup() })
	return v.initErr
}

func (v *VCS) setup() error {
	if v.Dir == "" {
		return errors.New("source: VCS.Dir is required")
	}
	abs, err := filepath.Abs(v.Dir)
	if err != nil {
		return err
	}
	v.Dir = abs
	home := filepath.Join(v.Dir, "home")
	for _, d := range []string{home, v.path("modcache"), v.path("gocache"), v.path("work"), v.path("tmp"), v.path("gopath")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("source: version control directory: %w", err)
		}
	}
	environ := v.Environ
	if environ == nil {
		environ = os.Environ()
	}
	get := func(name string) string {
		for i := len(environ) - 1; i >= 0; i-- {
			if k, val, ok := strings.Cut(environ[i], "="); ok && k == name {
				return val
			}
		}
		return ""
	}
	gitConfig := v.GitConfig
	if gitConfig == "" {
		gitConfig = filepath.Join(home, ".gitconfig")
		if err := os.WriteFile(gitConfig, nil, 0o600); err != nil {
			return fmt.Errorf("source: %w", err)
		}
	}
	netrc := filepath.Join(home, ".netrc")
	os.Remove(netrc)
	if v.Netrc != "" {
		src, err := filepath.Abs(v.Netrc)
		if err != nil {
			return err
		}
		// A link, so that a rotated credential is read on the next fetch.
		if err := os.Symlink(src, netrc); err != nil {
			return fmt.Errorf("source: linking the netrc file: %w", err)
		}
	}
	ssh := "ssh -o ControlMaster=no -o BatchMode=yes"
	if v.SSHKey != "" {
		ssh += " -o IdentitiesOnly=yes -i " + shellQuote(v.SSHKey)
	}
	if v.SSHKnownHosts != "" {
		ssh += " -o UserKnownHostsFile=" + shellQuote(v.SSHKnownHosts)
	}
	env := []string{
		"HOME=" + home,
		"GOMODCACHE=" + v.path("modcache"),
		"GOCACHE=" + v.path("gocache"),
		"GOPATH=" + v.path("gopath"),
		"TMPDIR=" + v.path("tmp"),
		"GOENV=off",
		"GOPROXY=direct",
		"GOSUMDB=off",
		"GONOPROXY=", "GONOSUMDB=", "GOPRIVATE=",
		"GOTOOLCHAIN=local",
		"GOFLAGS=",
		"GO111MODULE=on",
		"GOWORK=off",
		"NETRC=" + netrc,
		"GIT_TERMINAL_PROMPT=0",
		"GCM_INTERACTIVE=never",
		"GIT_CONFIG_GLOBAL=" + gitConfig,
		"GIT_SSH_COMMAND=" + ssh,
		"LC_ALL=C", // git's messages in the words classify knows
	}
	for _, name := range VCSPassEnv {
		if val := get(name); val != "" {
			env = append(env, name+"="+val)
		}
	}
	if get("GIT_SSL_CAINFO") == "" && get("SSL_CERT_FILE") != "" && v.GitConfig == "" {
		// One CA setting for both: git's TLS library may not read SSL_CERT_FILE.
		env = append(env, "GIT_SSL_CAINFO="+get("SSL_CERT_FILE"))
	}
	v.env = env
	v.goBin = v.GoBin
	if v.goBin == "" {
		v.goBin = "go"
		for _, dir := range filepath.SplitList(get("PATH")) {
			if p := filepath.Join(dir, "go"); isExecutable(p) {
				v.goBin = p
				break
			}
		}
	}
	v.hosts = map[string]*vcsHost{}
	v.memo = map[string]*download{}
	return nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (v *VCS) path(elem ...string) string { return filepath.Join(append([]string{v.Dir}, elem...)...) }

func (v *VCS) logger() *slog.Logger {
	if v.Logger != nil {
		return v.Logger
	}
	return slog.Default()
}

// Runs returns how many go commands the source has run.
func (v *VCS) Runs() int64 { return v.runs.Load() }

// List implements Source: the tagged versions (retracted ones included, as
// a proxy must), one per line.
func (v *VCS) List(ctx context.Context, path string) (*Body, error) {
	var res struct {
		Versions []string
		Error    *struct{ Err string }
	}
	if err := v.query(ctx, path, "latest", true, &res); err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, ver := range res.Versions {
		b.WriteString(ver + "\n")
	}
	return bodyOf([]byte(b.String())), nil
}

// Latest implements Source.
func (v *VCS) Latest(ctx context.Context, path string) (*Body, error) {
	return v.Info(ctx, path, "latest")
}

// Info implements Source: a canonical version comes from its download (the
// .mod and .zip asked next are then ready), a query (branch, commit prefix,
// latest) from `go list -m`. The go command's Origin is left out, as it must
// be for a private module.
func (v *VCS) Info(ctx context.Context, path, query string) (*Body, error) {
	if query != "latest" && semver.IsValid(query) && module.CanonicalVersion(query) == query && module.Check(path, query) == nil {
		d, err := v.download(ctx, path, query)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(d.Info)
		if err != nil {
			return nil, fmt.Errorf("reading the go command's %s@%s.info: %w", path, query, err)
		}
		var info infoJSON
		if err := json.Unmarshal(b, &info); err != nil {
			return nil, fmt.Errorf("the go command's %s@%s.info: %w", path, query, err)
		}
		return v.infoBody(info, d.Origin)
	}
	var res struct {
		infoJSON
		Error *struct{ Err string }
	}
	if err := v.query(ctx, path, query, false, &res); err != nil {
		return nil, err
	}
	return v.infoBody(res.infoJSON, nil)
}

type infoJSON struct {
	Version string
	Time    *time.Time `json:",omitempty"`
}

func (v *VCS) infoBody(info infoJSON, rev *Revision) (*Body, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	body := bodyOf(append(b, '\n'))
	body.Revision = rev
	return body, nil
}

// Mod implements Source.
func (v *VCS) Mod(ctx context.Context, path, version string) (*Body, error) {
	d, err := v.download(ctx, path, version)
	if err != nil {
		return nil, err
	}
	return v.openFile(d, d.GoMod, false)
}

// Zip implements Source. Once the zip is open, the go command's copy of
// the version is removed: the caller stores it.
func (v *VCS) Zip(ctx context.Context, path, version string) (*Body, error) {
	d, err := v.download(ctx, path, version)
	if err != nil {
		return nil, err
	}
	return v.openFile(d, d.Zip, true)
}

func (v *VCS) openFile(d *download, name string, handOver bool) (*Body, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading the go command's download of %s@%s: %w", d.Path, d.Version, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if handOver {
		v.forget(d)
	}
	return &Body{ReadCloser: f, Size: fi.Size(), Origin: "direct " + revURL(d.Origin), Revision: d.Origin}, nil
}

func revURL(r *Revision) string {
	if r == nil {
		return "(version control)"
	}
	return redact(r.URL)
}

// SumDB implements Source: version control proxies no checksum database.
func (v *VCS) SumDB(ctx context.Context, name, path string) (*Body, error) {
	return nil, fmt.Errorf("%w: version control does not serve checksum database %s", ErrNotFound, name)
}

func bodyOf(b []byte) *Body {
	return &Body{ReadCloser: io.NopCloser(bytes.NewReader(b)), Size: int64(len(b)), Origin: "direct"}
}

// download runs `go mod download -json path@version` once for every caller
// within Keep, and returns what it reported.
func (v *VCS) download(ctx context.Context, path, version string) (*download, error) {
	if err := v.init(); err != nil {
		return nil, err
	}
	if err := module.Check(path, version); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	if err := impossible(path); err != nil {
		return nil, err
	}
	key := path + "@" + version
	keep := v.Keep
	if keep <= 0 {
		keep = time.Minute
	}
	v.mu.Lock()
	if d := v.memo[key]; d != nil && time.Since(d.at) < keep {
		v.mu.Unlock()
		return d, nil
	}
	v.mu.Unlock()
	res, err, _ := v.downloads.Do(key, func() (any, error) {
		// Detached from the caller: the others share this run.
		ctx := context.WithoutCancel(ctx)
		v.removeCopy(path, version) // a stale copy would hide a moved tag
		var d download
		out, runErr := v.run(ctx, path, "mod", "download", "-json", "-modcacherw", key)
		if jerr := json.Unmarshal(out, &d); jerr != nil && runErr == nil {
			return nil, fmt.Errorf("go mod download %s: output is not JSON: %v", key, jerr)
		}
		if d.Error != "" || runErr != nil {
			msg := d.Error
			if msg == "" {
				msg = runErr.Error()
			}
			return nil, classify(path, msg)
		}
		if d.Info == "" || d.GoMod == "" || d.Zip == "" {
			return nil, fmt.Errorf("go mod download %s reported no files", key)
		}
		if d.Origin != nil {
			d.Origin.Sum, d.Origin.GoModSum = d.Sum, d.GoModSum
			d.Origin.URL = redact(d.Origin.URL)
		}
		d.at = time.Now()
		v.mu.Lock()
		v.memo[key] = &d
		v.mu.Unlock()
		return &d, nil
	})
	if err != nil {
		return nil, err
	}
	return res.(*download), nil
}

// forget drops a version's memo and the go command's copy of it.
func (v *VCS) forget(d *download) {
	key := d.Path + "@" + d.Version
	v.mu.Lock()
	if v.memo[key] == d {
		delete(v.memo, key)
	}
	v.mu.Unlock()
	v.removeCopy(d.Path, d.Version)
}

// removeCopy removes the go command's download of path@version (open files
// stay readable), so that the next download asks version control again.
// The repository clone in the module cache's cache/vcs stays: it makes the
// next fetch of the repository incremental.
func (v *VCS) removeCopy(path, version string) {
	ep, err1 := module.EscapePath(path)
	ev, err2 := module.EscapeVersion(version)
	if err1 != nil || err2 != nil {
		return
	}
	dl := v.path("modcache", "cache", "download", filepath.FromSlash(ep), "@v")
	for _, ext := range []string{".info", ".mod", ".zip", ".ziphash", ".lock", ".partial"} {
		os.Remove(filepath.Join(dl, ev+ext))
	}
	os.RemoveAll(v.path("modcache", filepath.FromSlash(ep)+"@"+ev))
}

// query runs `go list -m -e -json [-versions -retracted] path@q` once for
// all concurrent callers and decodes its output into out.
func (v *VCS) query(ctx context.Context, path, q string, versions bool, out any) error {
	if err := v.init(); err != nil {
		return err
	}
	if err := module.CheckPath(path); err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	if err := impossible(path); err != nil {
		return err
	}
	if strings.ContainsAny(q, " \t\n@") || strings.HasPrefix(q, "-") {
		return fmt.Errorf("%w: %q is not a version query", ErrNotFound, q)
	}
	args := []string{"list", "-m", "-e", "-json"}
	if versions {
		args = append(args, "-versions", "-retracted")
	}
	args = append(args, path+"@"+q)
	key := strings.Join(args, " ")
	res, err, _ := v.queries.Do(key, func() (any, error) {
		out, runErr := v.run(context.WithoutCancel(ctx), path, args...)
		var e struct {
			Error *struct{ Err string }
		}
		jerr := json.Unmarshal(out, &e)
		switch {
		case jerr == nil && e.Error != nil:
			return nil, classify(path, e.Error.Err)
		case runErr != nil:
			return nil, classify(path, runErr.Error())
		case jerr != nil:
			return nil, fmt.Errorf("go %s: output is not JSON: %v", key, jerr)
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	return json.Unmarshal(res.([]byte), out)
}

// run runs the go command for a module of host(path), within the host's
// limit, breaker and Timeout, and returns its standard output. Its error
// holds the go command's standard error, credentials redacted.
func (v *VCS) run(ctx context.Context, path string, args ...string) ([]byte, error) {
	host := hostOf(path)
	h := v.host(host)
	if ok, until := h.breaker.Allow(); !ok {
		return nil, fmt.Errorf("berth stopped running version control for %s after repeated failures; it tries again at %s", host, until.Format(time.RFC3339))
	}
	failed := true
	defer func() { h.breaker.Done(failed) }()
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.sem }()
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, v.goBin, args...)
	cmd.Dir = v.path("work")
	cmd.Env = v.env
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	stderr := &limitedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	v.runs.Add(1)
	err := cmd.Run()
	ms := time.Since(start).Milliseconds()
	// The go command reports a failed module in its JSON (-json, -e), and
	// other failures on standard error.
	var msg string
	if err != nil || bytes.Contains(stdout.Bytes(), []byte(`"Error"`)) {
		msg = jsonError(stdout.Bytes())
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if msg == "" && err != nil {
			msg = err.Error()
		}
		msg = redact(msg)
	}
	timedOut := ctx.Err() == context.DeadlineExceeded
	switch {
	case timedOut:
		err = fmt.Errorf("go %s: no answer within %v: %w", strings.Join(args, " "), timeout, context.DeadlineExceeded)
	case err != nil:
		err = errors.New(msg)
	}
	// Not found is an answer, not a failure of the host.
	failed = timedOut || (msg != "" && !errors.Is(classify(path, msg), ErrNotFound))
	v.logger().Info("version control", "host", host, "cmd", "go "+args[0]+" "+args[1], "arg", args[len(args)-1], "ok", !failed, "ms", ms)
	return stdout.Bytes(), err
}

// jsonError returns the Error of the go command's JSON output (a string
// for go mod download, {"Err": ...} for go list -e), or "".
func jsonError(out []byte) string {
	var e struct{ Error json.RawMessage }
	if json.Unmarshal(out, &e) != nil || len(e.Error) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil {
		return s
	}
	var o struct{ Err string }
	json.Unmarshal(e.Error, &o)
	return o.Err
}

func (v *VCS) host(name string) *vcsHost {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.hosts[name]
	if h == nil {
		n := v.PerHost
		if n <= 0 {
			n = 4
		}
		h = &vcsHost{sem: make(chan struct{}, n), breaker: netkit.NewBreaker(v.Breaker)}
		v.hosts[name] = h
	}
	return h
}

func hostOf(path string) string {
	host, _, _ := strings.Cut(path, "/")
	return host
}

// impossible returns a not-found error for a path that can never be a
// module on a host whose layout is known (github.com/owner/repo and the
// like): the go command asks for every prefix of a package path, and each
// must be answered at once, without running anything.
func impossible(path string) error {
	elems := strings.Split(path, "/")
	switch elems[0] {
	case "github.com", "bitbucket.org", "gitlab.com", "codeberg.org", "gitea.com":
		if len(elems) < 3 {
			return fmt.Errorf("%w: %s cannot be a module: modules on %s are at least %s/<owner>/<repository>", ErrNotFound, path, elems[0], elems[0])
		}
	}
	return nil
}

// Words of the go command and git that mean the module or version does not
// exist, and those that mean the host wants credentials berth lacks.
var (
	notFoundWords = []string{
		"unknown revision", "no matching versions", "not found", "404 Not Found", "410 Gone",
		"repository not found", "does not exist", "module declares its path as", "no such file or directory",
		"has post-v", "has non-.../v", "invalid version", "unrecognized import path", "malformed module path",
		"disallowed version string", "not a valid module", "no required module provides",
	}
	authWords = []string{
		"terminal prompts disabled", "could not read Username", "could not read Password",
		"Authentication failed", "HTTP Basic: Access denied", "returned error: 401", "returned error: 403",
		"401 Unauthorized", "403 Forbidden", "Permission denied (publickey", "Host key verification failed",
		"invalid credentials", "authentication required",
	}
	// Failures that are the network's or the host's, whatever else the
	// message says: they must never be answered as "not found".
	failureWords = []string{
		"no such host", "connection refused", "i/o timeout", "TLS handshake", "certificate",
		"connection reset", "network is unreachable", "500 Internal Server Error", "502 Bad Gateway",
		"503 Service Unavailable", "504 Gateway Timeout", "proxyconnect",
	}
	urlHost = regexp.MustCompile(`(?:https?|ssh|git)://(?:[^/@\s'"]*@)?([A-Za-z0-9.-]+)`)
	scpHost = regexp.MustCompile(`[A-Za-z0-9._-]+@([A-Za-z0-9.-]+):`)
)

// classify turns the go command's words about path into an error: an
// *AuthError, one wrapping ErrNotFound, or a plain failure.
func classify(path, msg string) error {
	msg = redact(strings.TrimSpace(msg))
	msg = strings.TrimPrefix(msg, "go: ")
	for _, w := range authWords {
		if strings.Contains(msg, w) {
			host := hostOf(path)
			if m := urlHost.FindStringSubmatch(msg); m != nil {
				host = m[1]
			} else if m := scpHost.FindStringSubmatch(msg); m != nil {
				host = m[1]
			}
			return &AuthError{Host: host, Module: path, Detail: lastLine(msg)}
		}
	}
	for _, w := range failureWords {
		if strings.Contains(msg, w) {
			return fmt.Errorf("version control for %s: %s", path, msg)
		}
	}
	for _, w := range notFoundWords {
		if strings.Contains(msg, w) {
			return fmt.Errorf("%w: %s", ErrNotFound, msg)
		}
	}
	return fmt.Errorf("version control for %s: %s", path, msg)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'"]+@`)

// redact hides the userinfo of every URL in s: an insteadOf rule or a
// remote may carry a token, and what the go command prints goes to logs and
// to clients.
func redact(s string) string { return userinfo.ReplaceAllString(s, "${1}xxxxx@") }

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }
