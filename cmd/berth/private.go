package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/internal/goenv"
	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/ledger"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3"
)

// privateFlags are berth proxy's flags for private modules: where they come
// from (version control, or a route's own proxies) and with which
// credentials.
type privateFlags struct {
	private, netrc, gitConfig, sshKey, knownHosts, vcsDir *string
	routes                                                *routeList
	parsed                                                []source.RouteSpec
}

// parseRoutes parses the --route values; runProxy calls it before it starts
// anything, so that a bad route is a usage error.
func (p *privateFlags) parseRoutes() error {
	p.parsed = nil
	for _, v := range *p.routes {
		rt, err := source.ParseRoute(v)
		if err != nil {
			return fmt.Errorf("--route: %w", err)
		}
		p.parsed = append(p.parsed, rt)
	}
	return nil
}

// routeList is the repeatable --route flag: the values as given, parsed by
// setup (so that a bad one is a usage error naming it).
type routeList []string

func (r *routeList) String() string { return strings.Join(*r, ";") }

func (r *routeList) Set(v string) error {
	*r = append(*r, v)
	return nil
}

// Get implements flag.Getter.
func (r *routeList) Get() any { return []string(*r) }

func addPrivateFlags(f *flags) *privateFlags {
	p := &privateFlags{routes: &routeList{}}
	p.private = f.String("private", "", "comma-separated module path `patterns` (GOPRIVATE syntax) fetched from version control\nwith berth's credentials, never from a public upstream nor looked up in a checksum database\n(default: $GONOPROXY, else $GOPRIVATE, else their `go env` values)")
	if v, ok := f.lookupEnv("route"); ok {
		for _, rt := range strings.Split(v, ";") {
			if rt = strings.TrimSpace(rt); rt != "" {
				p.routes.Set(rt)
			}
		}
	}
	f.fs.Var(p.routes, "route", envUsage("route", "send module paths to their own `source`: 'PATTERNS=SOURCE', where SOURCE is direct (version\ncontrol) or a GOPROXY-style list; repeatable, the first that matches wins, before --private\n(in the environment: separated by ;)"))
	p.netrc = f.String("netrc", "", "netrc `file` with the git hosts' credentials for version control\n(machine git.corp.example login USER password TOKEN)")
	p.gitConfig = f.String("git-config", "", "git config `file` for version control: url.<base>.insteadOf, credential.helper,\nhttp.sslCAInfo (GOAUTH, GOINSECURE, GOVCS and SSL_CERT_FILE are passed from berth's environment)")
	p.sshKey = f.String("ssh-key", "", "private key `file` for ssh:// git remotes (an agent works through SSH_AUTH_SOCK)")
	p.knownHosts = f.String("ssh-known-hosts", "", "known_hosts `file` that authenticates ssh:// git hosts")
	p.vcsDir = f.String("vcs-dir", "", "`directory` for the go command's caches and HOME when berth fetches from version control\n(default: beside a disk store, <store>-vcs; with an s3:// store, vcs in its local cache's\ndirectory: DIR/vcs of cache=DIR, else a temporary directory removed when berth stops)")
	return p
}

// defaultVCSDir is --vcs-dir's default: beside a disk store, <store>-vcs. An
// S3 store has no directory of its own (its --store is a URL), and its
// local cache's directory is one replica's alone, as version control's
// caches must be (each go command's copy of a version is removed once its
// zip is stored): vcs in it, which the store leaves alone when it opens, or
// in the temporary directory the store removes when berth stops.
func defaultVCSDir(st store.Store, storeDir string) (string, error) {
	if s, ok := st.(*s3.Store); ok {
		return filepath.Abs(filepath.Join(s.CacheDir(), "vcs"))
	}
	abs, err := filepath.Abs(storeDir)
	if err != nil {
		return "", err
	}
	return abs + "-vcs", nil
}

// privateSetup is what the private-module flags add to a proxy's core.
type privateSetup struct {
	Source  source.Source
	NoSumDB func(string) bool
	Ledger  cache.Ledger
}

// setup wires routes, version control and the ledger around the upstream
// fetcher. noSum is what --nosumdb (or GONOSUMDB) already excludes.
func (p *privateFlags) setup(ctx context.Context, up *source.Fetcher, st store.Store, storeDir string, noSum func(string) bool, reg prometheus.Registerer, log *slog.Logger) (privateSetup, error) {
	patterns := goenv.Patterns(*p.private)
	from := "--private"
	if patterns == "" {
		vals, _, _ := goenv.Read(ctx, nil, "", "GONOPROXY", "GOPRIVATE")
		patterns, from = goenv.NoProxy(vals), "GONOPROXY/GOPRIVATE"
	}
	if p.parsed == nil {
		if err := p.parseRoutes(); err != nil {
			return privateSetup{}, err
		}
	}
	routes := p.parsed
	needVCS := patterns != "" || up.Chain.Direct()
	for _, rt := range routes {
		needVCS = needVCS || rt.Chain.Direct()
	}
	creds := map[string]string{"--netrc": *p.netrc, "--git-config": *p.gitConfig, "--ssh-key": *p.sshKey}
	for name, file := range creds {
		if file == "" {
			continue
		}
		fi, err := os.Stat(file)
		if err != nil {
			return privateSetup{}, fmt.Errorf("%s: %w", name, err)
		}
		if fi.Mode().Perm()&0o004 != 0 {
			log.Warn("a credentials file is readable by every user of this machine: chmod 600 it", "flag", name, "file", file)
		}
		if patterns == "" && len(routes) == 0 {
			log.Warn("credentials are given but no module is private: set --private (GOPRIVATE syntax) so that private paths are fetched with them and never reach a public upstream or checksum database", "flag", name)
		}
	}
	out := privateSetup{Source: up, NoSumDB: noSum}
	if !needVCS {
		return out, nil
	}
	dir := *p.vcsDir
	if dir == "" {
		var err error
		if dir, err = defaultVCSDir(st, storeDir); err != nil {
			return privateSetup{}, err
		}
	}
	vcs := &source.VCS{Dir: dir, Netrc: *p.netrc, GitConfig: *p.gitConfig, SSHKey: *p.sshKey, SSHKnownHosts: *p.knownHosts, Logger: log}
	up.Direct = vcs
	router := &source.Router{Default: up}
	for _, rt := range routes {
		var src source.Source = &source.Fetcher{Chain: rt.Chain, Client: up.Client, UserAgent: up.UserAgent, Logger: log, Direct: vcs}
		if len(rt.Chain.Upstreams) == 1 && rt.Chain.Direct() {
			src = vcs
		}
		router.Routes = append(router.Routes, source.Route{Patterns: rt.Patterns, Source: src})
	}
	if patterns != "" {
		router.Routes = append(router.Routes, source.Route{Patterns: patterns, Source: vcs})
	}
	out.Source = router
	if patterns != "" {
		// Private paths are never looked up, whatever --nosumdb says.
		prev := noSum
		out.NoSumDB = func(p string) bool { return patterns.Match(p) || (prev != nil && prev(p)) }
	}
	if out.NoSumDB != nil {
		out.Ledger = &ledger.Ledger{Store: st, Match: out.NoSumDB, Logger: log, Registerer: reg}
	}
	log.Info("private modules", "private", string(patterns), "from", from, "routes", p.routes.String(), "vcs_dir", dir)
	return out, nil
}
