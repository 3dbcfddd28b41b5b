//go:build docker && linux

package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/berth-dev/berth/internal/gitserver"
	"github.com/berth-dev/berth/internal/lab"
	"github.com/berth-dev/berth/internal/testmod"
)

// The private module of TestPrivateModulesInDocker, on the git server
// container's host name.
const (
	gitHost    = "git.corp.example"
	privMod    = gitHost + "/team/lib"
	privGoMod  = "module " + privMod + "\n\ngo 1.21\n"
	privSource = "package lib\n\n// Name is the module's name.\nconst Name = \"lib\"\n"
)

// TestPrivateModulesInDocker: a build container that reaches only berth
// downloads a private module and a public one. berth (the scripts/image.sh
// image plus the host's go command and git with their libraries) fetches the
// private one from a git server container (git http-backend behind HTTPS
// with a test CA and Basic auth) with a netrc mounted as a file, and the
// public one from the counting upstream, verified. The build container holds
// no credential and has no route to the upstream or the git host; the public
// upstream is never asked about a private path.
//
// Networks: "git" (internal) holds the git server and berth; "build"
// (internal) holds berth and the build container; "up" holds berth, with the
// upstream on its gateway.
func TestPrivateModulesInDocker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// The repository, made on the host with the fixture's git, then served
	// from a copy in the git server's image.
	git := gitserver.New(t, gitHost)
	repo := git.NewRepo(t, "team/lib")
	repo.Commit(t, map[string]string{"go.mod": privGoMod, "lib.go": privSource})
	repo.Tag(t, "v1.0.0")
	commit := repo.Head(t)

	ca, err := lab.NewCA("berth dockertest git CA", "berth tests")
	if err != nil {
		t.Fatal(err)
	}
	tlsDir := t.TempDir()
	certFile, keyFile, err := ca.Issue(tlsDir, "git", []string{gitHost}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	gitImg := e.gitServerImage(git.ProjectRoot(), certFile, keyFile)
	direct := e.berthDirectImage()
	t.Logf("berth image with go and git: %s bytes (berth alone: %s)", e.docker(time.Minute, "image", "inspect", "-f", "{{.Size}}", direct),
		e.docker(time.Minute, "image", "inspect", "-f", "{{.Size}}", imgBerth))

	built, err := testmod.Build([]testmod.Module{{Path: "example.test/pub", Version: "v1.0.0",
		Files: map[string]string{"pub.go": "package pub\n\nconst Name = \"pub\"\n"}}})
	if err != nil {
		t.Fatal(err)
	}
	pub := built[0]
	// The upstream runs on the host, at the gateway of "up", and answers
	// that network only: Docker lets a container on an --internal network
	// reach the host's own addresses (it filters forwarding only).
	upNet, gw := e.network("up")
	subnet, err := netip.ParsePrefix(e.docker(time.Minute, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", upNet))
	if err != nil {
		t.Fatalf("the subnet of %s: %v", upNet, err)
	}
	up, upURL, _ := upstreamOn(t, gw, built, subnet)
	gitNet := e.internalNetwork("git")
	buildNet := e.internalNetwork("build")

	// The git server, known on its network by the host name of the module paths.
	gs := e.start("git", "--network", gitNet, "--network-alias", gitHost, gitImg,
		"-host", gitHost, "-root", "/repos", "-cert", "/tls/cert.pem", "-key", "/tls/key.pem",
		"-user", git.User, "-password", git.Password)

	// berth's credentials: a netrc mounted as a file, readable by berth's
	// user only; the git host's CA by SSL_CERT_FILE (berth hands it to git).
	secrets := t.TempDir()
	netrc := filepath.Join(secrets, "netrc")
	if err := os.WriteFile(netrc, fmt.Appendf(nil, "machine %s login %s password %s\n", gitHost, git.User, git.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(secrets, "git-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	runFlags := []string{"--network", upNet, "--health-interval", "500ms", "--health-start-period", "30s",
		"-v", netrc + ":/run/secrets/netrc:ro", "-v", caFile + ":/etc/berth/git-ca.pem:ro", "-e", "SSL_CERT_FILE=/etc/berth/git-ca.pem"}
	if os.Geteuid() == 0 {
		if err := os.Chown(netrc, 65532, 65532); err != nil {
			t.Fatal(err)
		}
	} else {
		os.Chmod(netrc, 0o640)
		runFlags = append(runFlags, "--group-add", fmt.Sprint(os.Getgid()))
	}
	b := e.start("berth", append(runFlags, direct, "proxy",
		"--upstream", upURL, "--sumdb", up.GOSUMDB(), "--private", gitHost,
		"--netrc", "/run/secrets/netrc", "--vcs-dir", "/vcs")...)
	e.docker(time.Minute, "network", "connect", gitNet, b.Name)
	e.docker(time.Minute, "network", "connect", buildNet, b.Name)
	b.waitHealthy(30 * time.Second)

	// The build container: the go command only (no git, no netrc), on the
	// build network only.
	work := t.TempDir()
	gomod := "module example.test/app\n\ngo 1.21\n\nrequire (\n\t" + privMod + " v1.0.0\n\texample.test/pub v1.0.0\n)\n"
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	clientEnv := []string{"-e", "GOPROXY=http://" + b.Name + ":3000", "-e", "GOSUMDB=" + up.GOSUMDB(),
		"-e", "GONOSUMDB=" + gitHost, "-e", "GONOPROXY=none", "-e", "GOFLAGS=-mod=mod -modcacherw"}
	start := time.Now()
	stdout, stderr, code := e.run("go", 3*time.Minute, append(append([]string{"--network", buildNet, "-v", work + ":/work"}, clientEnv...),
		imgGo, "mod", "download", "-x", "all")...)
	if code != 0 {
		t.Fatalf("go mod download through berth: exit %d\n%s%s\nberth:\n%s\ngit server:\n%s", code, stdout, stderr, b.logs(), gs.logs())
	}
	t.Logf("go mod download of a private and a public module through berth in %s", time.Since(start).Round(time.Millisecond))

	// go.sum: the public module as the checksum database has it, the
	// private one as its tagged tree hashes.
	sum, err := os.ReadFile(filepath.Join(work, "go.sum"))
	if err != nil {
		t.Fatalf("no go.sum: %v\n%s", err, stderr)
	}
	privSum, privModSum := moduleHashes(t, privMod+"@v1.0.0", map[string]string{"go.mod": privGoMod, "lib.go": privSource})
	for _, line := range []string{
		"example.test/pub v1.0.0 " + pub.Sum, "example.test/pub v1.0.0/go.mod " + pub.ModSum,
		privMod + " v1.0.0 " + privSum, privMod + " v1.0.0/go.mod " + privModSum,
	} {
		if !strings.Contains(string(sum), line+"\n") {
			t.Errorf("go.sum lacks %q\n%s", line, sum)
		}
	}

	// berth asked the git server, with the credential, for the repository,
	// and recorded the version's commit in its ledger.
	if logs := gs.logs(); !strings.Contains(logs, "request upload-pack team/lib POST") || !strings.Contains(logs, "-> 200") {
		t.Errorf("the git server did not serve team/lib to berth:\n%s", logs)
	}
	var ledgerRec string
	b.walk("/store", func(name string, data []byte) {
		if strings.HasPrefix(name, "store/ledger/") && strings.Contains(name, "team/lib") {
			ledgerRec += string(data)
		}
	})
	if !strings.Contains(ledgerRec, commit) {
		t.Errorf("berth's ledger record of %s does not name commit %s: %q", privMod, commit, ledgerRec)
	}

	// The public upstream never saw a private path: no fetch, no lookup.
	counts := up.Counts()
	for p := range counts {
		if strings.Contains(p, gitHost) {
			t.Errorf("the public upstream was asked %s", p)
		}
	}
	if counts["/example.test/pub/@v/v1.0.0.zip"] != 1 {
		t.Errorf("upstream served the public zip %d times, want once; it saw %v", counts["/example.test/pub/@v/v1.0.0.zip"], counts)
	}

	// No credential in the build container: not in its environment, not in
	// its file system (module cache and work directory included).
	client := &container{e: e, Name: e.name("go")}
	env := client.inspect(`{{range .Config.Env}}{{println .}}{{end}}`)
	for _, kv := range strings.Split(env, "\n") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "NETRC" || k == "GOAUTH" || strings.Contains(v, git.Password) || strings.Contains(strings.ToLower(v), "netrc") {
			t.Errorf("the build container's environment carries a credential: %s", kv)
		}
	}
	nfiles := 0
	client.walk("/", func(name string, data []byte) {
		nfiles++
		base := strings.ToLower(filepath.Base(name))
		if strings.Contains(base, "netrc") || base == ".git-credentials" || base == ".gitconfig" {
			t.Errorf("the build container holds %s", name)
		}
		if bytes.Contains(data, []byte(git.Password)) {
			t.Errorf("the build container's %s holds the git password", name)
		}
	})
	if nfiles < 10 {
		t.Errorf("read %d files of the build container; want its whole file system", nfiles)
	}
	if out := e.docker(time.Minute, "network", "inspect", "-f", `{{range .Containers}}{{println .Name}}{{end}}`, buildNet); strings.Join(strings.Fields(out), " ") != sortedNames(b.Name) {
		t.Errorf("the build network holds %q; want berth alone (the build container has ended)", out)
	}

	// And it has no way around berth: the upstream and the git host are out
	// of its reach.
	stdout, stderr, code = e.run("go-around", 2*time.Minute, "--network", buildNet,
		"-e", "GOPROXY="+upURL+"|https://"+gitHost, "-e", "GOSUMDB=off", "-e", "GOFLAGS=-modcacherw",
		imgGo, "mod", "download", "-x", "-json", "example.test/pub@v1.0.0")
	if code == 0 {
		t.Errorf("the build container reached the upstream or the git host without berth:\n%s%s", stdout, stderr)
	}
	for _, want := range []string{gw, gitHost} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the failed download around berth does not name %s:\n%s", want, stderr)
		}
	}
	t.Logf("around berth: %s", strings.TrimSpace(stderr))
}

func sortedNames(names ...string) string {
	sort.Strings(names)
	return strings.Join(names, " ")
}

// moduleHashes returns the go.sum hashes of a module zip holding files
// (below mv, "path@version") and of its go.mod.
func moduleHashes(t *testing.T, mv string, files map[string]string) (sum, modSum string) {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, mv+"/"+n)
	}
	open := func(name string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(files[strings.TrimPrefix(name, mv+"/")])), nil
	}
	sum, err := dirhash.Hash1(names, open)
	if err != nil {
		t.Fatal(err)
	}
	modSum, err = dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(files["go.mod"])), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum, modSum
}

// internalNetwork creates a user-defined bridge network with no route out
// (docker network create --internal): its containers reach each other only.
func (e *env) internalNetwork(what string) string {
	e.t.Helper()
	name := e.name(what)
	e.docker(time.Minute, append(append([]string{"network", "create", "--internal"}, labels()...), name)...)
	e.t.Cleanup(func() { quiet("network", "rm", name) })
	return name
}

// image builds a test image from the context dir (labelled, removed when the
// test ends) and returns its tag.
func (e *env) image(what, dir string) string {
	e.t.Helper()
	tag := e.name(what) + ":test"
	e.t.Cleanup(func() { quiet("rmi", "-f", tag) })
	e.docker(5*time.Minute, append(append([]string{"build", "-q", "--rm", "--force-rm", "-t", tag}, labels()...), dir)...)
	return tag
}

// gitServerImage builds the git server's image FROM scratch: the static
// internal/gitserver/cmd/gitserver, the host's git and git-http-backend
// with the shared libraries ldd names, the bare repositories of root at
// /repos and the host's certificate at /tls.
func (e *env) gitServerImage(root, certFile, keyFile string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	gs := filepath.Join(rootfs, "gitserver")
	build := exec.Command("go", "build", "-trimpath", "-o", gs, "github.com/berth-dev/berth/internal/gitserver/cmd/gitserver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		e.t.Fatalf("go build ./internal/gitserver/cmd/gitserver: %v\n%s", err, out)
	}
	gitBin, execPath := hostGit(e.t)
	backend := filepath.Join(execPath, "git-http-backend")
	e.copyELF(rootfs, gitBin, backend)
	if err := os.CopyFS(filepath.Join(rootfs, "repos"), os.DirFS(root)); err != nil {
		e.t.Fatal(err)
	}
	for src, dst := range map[string]string{certFile: "tls/cert.pem", keyFile: "tls/key.pem"} {
		if err := copyFile(src, filepath.Join(rootfs, dst), 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
	mkTmp(e.t, rootfs)
	df := "FROM scratch\nCOPY rootfs/ /\nENV PATH=" + execPath + ":/usr/bin:/bin HOME=/tmp\nENTRYPOINT [\"/gitserver\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return e.image("gitimg", dir)
}

// berthDirectImage builds berth's image for direct (version control): the
// image scripts/image.sh builds, plus the host's go command (bin/go, go.env,
// VERSION: what go mod download needs of GOROOT) and git with
// git-remote-http(s) and the shared libraries ldd names, and /vcs for
// --vcs-dir, owned by berth's user.
func (e *env) berthDirectImage() string {
	e.t.Helper()
	dir := e.t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	goroot := strings.TrimSpace(runGo(context.Background(), "env", "GOROOT"))
	if goroot == "" {
		e.t.Fatal("go env GOROOT is empty")
	}
	for _, f := range []string{"bin/go", "go.env", "VERSION"} {
		if err := copyFile(filepath.Join(goroot, f), filepath.Join(rootfs, "usr/local/go", f), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	gitBin, execPath := hostGit(e.t)
	remote := filepath.Join(execPath, "git-remote-http")
	e.copyELF(rootfs, gitBin, remote)
	if err := os.Symlink("git-remote-http", filepath.Join(rootfs, execPath, "git-remote-https")); err != nil {
		e.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "vcs"), 0o700); err != nil {
		e.t.Fatal(err)
	}
	mkTmp(e.t, rootfs)
	df := "FROM " + imgBerth + "\nCOPY rootfs/ /\nCOPY --chown=65532:65532 vcs/ /vcs/\nENV PATH=/usr/local/go/bin:/usr/bin:/bin GOROOT=/usr/local/go\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return e.image("direct", dir)
}

// hostGit returns the host's git and its exec path (where git-http-backend
// and git-remote-http are).
func hostGit(t *testing.T) (gitBin, execPath string) {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skipf("no git on this host: %v", err)
	}
	if gitBin, err = filepath.EvalSymlinks(gitBin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gitBin, "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	return gitBin, strings.TrimSpace(string(out))
}

func mkTmp(t *testing.T, rootfs string) {
	t.Helper()
	tmp := filepath.Join(rootfs, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o1777); err != nil {
		t.Fatal(err)
	}
}

// copyELF copies dynamically linked programs to the same paths below
// rootfs, with every shared library ldd resolves for them (and the dynamic
// loader) at the path ldd names.
func (e *env) copyELF(rootfs string, programs ...string) {
	e.t.Helper()
	files := map[string]bool{}
	for _, p := range programs {
		files[p] = true
		deps, err := lddDeps(p)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range deps {
			files[d] = true
		}
	}
	for f := range files {
		if err := copyFile(f, filepath.Join(rootfs, f), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
}

// lddDeps returns the shared libraries ldd resolves for program, and its
// dynamic loader.
func lddDeps(program string) ([]string, error) {
	out, err := exec.Command("ldd", program).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v\n%s", program, err, out)
	}
	var deps []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ldd %s: %s", program, line)
		}
		if _, after, ok := strings.Cut(line, "=> "); ok {
			if f := strings.Fields(after); len(f) > 0 && strings.HasPrefix(f[0], "/") {
				deps = append(deps, f[0])
			}
		} else if strings.HasPrefix(line, "/") {
			deps = append(deps, strings.Fields(line)[0])
		}
	}
	if len(deps) == 0 {
		return nil, errors.New("ldd " + program + ": no libraries (a static program needs none; this one says it is dynamic)")
	}
	return deps, nil
}

// walk reads every regular file below dir of the container (running or
// stopped; volumes and bind mounts included) by docker cp.
func (c *container) walk(dir string, fn func(name string, data []byte)) {
	c.e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "cp", c.Name+":"+dir, "-")
	var se bytes.Buffer
	cmd.Stderr = &se
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.e.t.Fatal(err)
	}
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.e.t.Fatalf("docker cp %s:%s: %v", c.Name, dir, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			c.e.t.Fatalf("docker cp %s:%s: %s: %v", c.Name, dir, h.Name, err)
		}
		fn(h.Name, data)
	}
	if err := cmd.Wait(); err != nil {
		c.e.t.Fatalf("docker cp %s:%s: %v: %s", c.Name, dir, err, se.String())
	}
}
