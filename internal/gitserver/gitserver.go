// Package gitserver is a real git host for tests: bare repositories served by
// `git http-backend` through net/http/cgi over HTTPS (a test CA) with Basic
// auth, and the go-import meta tags a host answers for ?go-get=1, so that the
// go command and git fetch modules from it exactly as from a corporate git
// host. Everything listens on loopback; the host name (such as
// git.corp.example) is reached through a CONNECT proxy of the fixture that
// only knows this server: set HTTPS_PROXY to ProxyURL (Env does), never a
// real host.
//
// Repositories are made with NewRepo and changed with Commit, Tag, MoveTag
// and Delete; Requests counts what the server was asked.
package gitserver

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/lab"
)

// Server is a git host on loopback.
type Server struct {
	// Host is the host name module paths start with ("git.corp.example").
	Host string
	// User and Password are the only Basic credentials git requests accept.
	User, Password string
	// CAFile is the PEM file of the CA that signed the server's certificate.
	CAFile string
	// ProxyURL is the http:// URL of the CONNECT proxy that leads to Host.
	ProxyURL string

	dir     string // work trees and files
	root    string // GIT_PROJECT_ROOT
	tls     net.Listener
	prx     net.Listener
	srv     *http.Server
	wg      sync.WaitGroup
	handler *Handler

	mu     sync.Mutex
	repos  map[string]*Repo // by root path below Host ("team/lib")
	counts map[string]int
	clock  time.Time
	hook   func(w http.ResponseWriter, r *http.Request) bool
}

// New starts a git host named host (default "git.corp.example") with
// credentials berth/s3cret; t.Cleanup stops it.
func New(t testing.TB, host string) *Server {
	t.Helper()
	if host == "" {
		host = "git.corp.example"
	}
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("no git command: %v", err)
	}
	s := &Server{
		Host: host, User: "berth", Password: "s3cret",
		dir:    t.TempDir(),
		repos:  map[string]*Repo{},
		counts: map[string]int{},
		clock:  time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	s.root = filepath.Join(s.dir, "repos")
	s.handler = &Handler{
		Host: host, User: s.User, Password: s.Password, Root: s.root,
		Backend: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Repos: func() []string {
			s.mu.Lock()
			defer s.mu.Unlock()
			roots := make([]string, 0, len(s.repos))
			for r := range s.repos {
				roots = append(roots, r)
			}
			return roots
		},
		Count: s.count,
	}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := lab.NewCA("berth gitserver test CA", "berth tests")
	if err != nil {
		t.Fatal(err)
	}
	s.CAFile = filepath.Join(s.dir, "ca.pem")
	if err := os.WriteFile(s.CAFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.Issue(s.dir, "server", []string{host}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.tls = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.srv.Serve(s.tls) }()
	if s.prx, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.ProxyURL = "http://" + s.prx.Addr().String()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.proxyLoop() }()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and its proxy and waits for them.
func (s *Server) Close() {
	s.prx.Close()
	s.srv.Close()
	s.wg.Wait()
}

// ProjectRoot returns the directory of the bare repositories (git
// http-backend's GIT_PROJECT_ROOT): root "team/lib" is ProjectRoot()/team/lib.git.
// A Handler over a copy of it serves the same repositories elsewhere.
func (s *Server) ProjectRoot() string { return s.root }

// Env returns the environment that leads the go command and git to Host:
// the CONNECT proxy for https. The CA must be trusted separately
// (SSL_CERT_FILE for the go command, http.sslCAInfo for git: GitConfig).
func (s *Server) Env() []string {
	return []string{"HTTPS_PROXY=" + s.ProxyURL, "https_proxy=" + s.ProxyURL, "NO_PROXY=", "no_proxy="}
}

// CleanEnv returns os.Environ() without the variables that would lead git
// or the go command elsewhere than a test says: CA bundles (GIT_SSL_CAINFO
// overrides any git config), proxies, credentials and Go settings.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "GIT_"), strings.HasPrefix(k, "GO"), strings.HasPrefix(k, "SSL_"),
			strings.HasSuffix(strings.ToUpper(k), "_PROXY"), k == "NETRC", k == "HOME", k == "CURL_CA_BUNDLE":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// WriteNetrc writes a netrc file with Host and the given credentials to dir
// (mode 0600) and returns its path.
func (s *Server) WriteNetrc(dir, user, password string) string {
	p := filepath.Join(dir, "netrc")
	os.WriteFile(p, fmt.Appendf(nil, "machine %s login %s password %s\n", s.Host, user, password), 0o600)
	return p
}

// WriteGitConfig writes a git config file that trusts the server's CA to
// dir and returns its path; extra lines are appended as they are.
func (s *Server) WriteGitConfig(dir string, extra ...string) string {
	p := filepath.Join(dir, "gitconfig")
	body := "[http]\n\tsslCAInfo = " + s.CAFile + "\n" + strings.Join(extra, "\n")
	os.WriteFile(p, []byte(body+"\n"), 0o600)
	return p
}

// SetHook installs a function that sees every request first; it returns
// true when it answered.
func (s *Server) SetHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// Requests returns how many requests of a kind the server answered for a
// repository root: "go-get" (meta tags), "refs" (info/refs: one per git
// ls-remote or fetch) and "upload-pack" (a fetch's pack negotiation).
func (s *Server) Requests(root, kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[kind+" "+root]
}

// Counts returns a copy of every request count, keyed "kind root".
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		m[k] = v
	}
	return m
}

func (s *Server) count(kind, root string) {
	s.mu.Lock()
	s.counts[kind+" "+root]++
	s.mu.Unlock()
}

// serve answers go-get meta requests and git smart HTTP: the hook first,
// then the Handler over the repositories made with NewRepo.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	s.handler.ServeHTTP(w, r)
}

// proxyLoop is a CONNECT proxy that leads to the server for Host:443 and
// refuses every other destination: no test can reach a real host by it.
func (s *Server) proxyLoop() {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := s.prx.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() { defer conns.Done(); s.proxyConn(c) }()
	}
}

func (s *Server) proxyConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	host, port, _ := net.SplitHostPort(req.Host)
	if req.Method != http.MethodConnect || host != s.Host || port != "443" {
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.DialTimeout("tcp", s.tls.Addr().String(), 5*time.Second)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, br)
		up.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(c, up)
	c.(*net.TCPConn).CloseWrite()
	<-done
}

// Repo is one repository of the server, with a work tree to commit in.
type Repo struct {
	s    *Server
	Root string // path below Host, such as "team/lib"
	work string
	bare string
}

// NewRepo creates an empty repository at root (below Host; a GitLab-style
// subgroup path such as "group/sub/project" works) with branch main.
func (s *Server) NewRepo(t testing.TB, root string) *Repo {
	t.Helper()
	r := &Repo{s: s, Root: root, work: filepath.Join(s.dir, "work", root), bare: filepath.Join(s.root, root+".git")}
	r.git(t, s.dir, "init", "-q", "--bare", "-b", "main", r.bare)
	r.git(t, s.dir, "init", "-q", "-b", "main", r.work)
	r.git(t, r.work, "remote", "add", "origin", r.bare)
	s.mu.Lock()
	s.repos[root] = r
	s.mu.Unlock()
	return r
}

// URL returns the repository's https URL.
func (r *Repo) URL() string { return "https://" + r.s.Host + "/" + r.Root + ".git" }

// Commit writes files (slash paths; "" content deletes one) to the work
// tree, commits them one minute after the previous commit of the server,
// pushes branch main when it is the work tree's branch (a branch made with
// Checkout is pushed by Branch) and returns the commit hash.
func (r *Repo) Commit(t testing.TB, files map[string]string) string {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(r.work, filepath.FromSlash(n))
		if files[n] == "" {
			os.Remove(p)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(files[n]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.git(t, r.work, "add", "-A")
	r.git(t, r.work, "commit", "-q", "--allow-empty", "-m", "change "+strings.Join(names, " "))
	if strings.TrimSpace(r.git(t, r.work, "rev-parse", "--abbrev-ref", "HEAD")) == "main" {
		r.git(t, r.work, "push", "-q", "--force", "origin", "HEAD:refs/heads/main")
	}
	return r.Head(t)
}

// Head returns the hash of the work tree's HEAD.
func (r *Repo) Head(t testing.TB) string {
	t.Helper()
	return strings.TrimSpace(r.git(t, r.work, "rev-parse", "HEAD"))
}

// Tag tags HEAD with name (annotated) and pushes it.
func (r *Repo) Tag(t testing.TB, name string) {
	t.Helper()
	r.git(t, r.work, "tag", "-a", "-m", name, name)
	r.git(t, r.work, "push", "-q", "origin", "refs/tags/"+name)
}

// MoveTag moves an existing tag to HEAD and force-pushes it: what a
// re-tagged release does.
func (r *Repo) MoveTag(t testing.TB, name string) {
	t.Helper()
	r.git(t, r.work, "tag", "-f", "-a", "-m", name+" again", name)
	r.git(t, r.work, "push", "-q", "--force", "origin", "refs/tags/"+name)
}

// Branch creates or moves branch name to HEAD and pushes it.
func (r *Repo) Branch(t testing.TB, name string) {
	t.Helper()
	r.git(t, r.work, "push", "-q", "--force", "origin", "HEAD:refs/heads/"+name)
}

// Checkout switches the work tree to a new branch from rev (so that later
// commits are off main), or back to main when rev is "main".
func (r *Repo) Checkout(t testing.TB, rev string) {
	t.Helper()
	if rev == "main" {
		r.git(t, r.work, "checkout", "-q", "main")
		return
	}
	r.git(t, r.work, "checkout", "-q", "-B", "work-"+rev, rev)
}

// Delete removes the repository from the server: its meta tags and git
// answer 404 from now on.
func (r *Repo) Delete(t testing.TB) {
	t.Helper()
	r.s.mu.Lock()
	delete(r.s.repos, r.Root)
	r.s.mu.Unlock()
	if err := os.RemoveAll(r.bare); err != nil {
		t.Fatal(err)
	}
}

func (r *Repo) git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	r.s.mu.Lock()
	r.s.clock = r.s.clock.Add(time.Minute)
	date := r.s.clock.Format(time.RFC3339)
	r.s.mu.Unlock()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(CleanEnv(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@corp.example", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@corp.example", "GIT_COMMITTER_DATE="+date)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
