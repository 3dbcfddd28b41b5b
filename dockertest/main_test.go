//go:build docker && linux

package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Labels on everything the suite creates: the first marks it as ours, the
// second names the test process, so that a sweep removes only what a dead
// process left behind and never the resources of a run still going.
const (
	labelOurs = "dev.berth.test"
	labelPID  = "dev.berth.test.pid"
)

var (
	// skipReason is set when no Docker daemon answers; every test skips with it.
	skipReason string
	// setupErr is set when the images could not be built; every test fails with it.
	setupErr error
	// runID makes this process's resource names unique: berth-test-<runID>-...
	runID string
	// images built for this run.
	imgBerth, imgNoCerts, imgGo, imgNXDNS string
	// berthBin is the static berth binary the images hold.
	berthBin string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, err := docker(ctx, "info", "--format", "{{.ServerVersion}}")
	cancel()
	if err != nil {
		skipReason = fmt.Sprintf("no Docker daemon answers (docker info: %v); the Docker suite needs one", err)
		return m.Run()
	}
	if strings.TrimSpace(out) == "" {
		skipReason = "docker info printed no server version; the Docker suite needs a daemon"
		return m.Run()
	}
	b := make([]byte, 3)
	rand.Read(b)
	runID = hex.EncodeToString(b)

	sweep(false)
	tmp, err := os.MkdirTemp("", "berth-dockertest-")
	if err != nil {
		setupErr = err
		return m.Run()
	}
	start := time.Now()
	setupErr = buildImages(tmp)
	if setupErr == nil && testing.Verbose() {
		fmt.Printf("dockertest: images built in %s\n", time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	for _, img := range []string{imgBerth, imgNoCerts, imgGo, imgNXDNS} {
		if img != "" {
			quiet("rmi", "-f", img)
		}
	}
	sweep(true)
	os.RemoveAll(tmp)
	return code
}

// need skips or fails the test when the suite cannot run.
func need(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if setupErr != nil {
		t.Fatalf("building the test images: %v", setupErr)
	}
}

// docker runs the docker CLI and returns its standard output; the error
// carries standard error.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	// The legacy builder: FROM scratch needs no pull and no buildx plugin.
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctx.Err() != nil {
			msg += " (" + ctx.Err().Error() + ")"
		}
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(clip(args), " "), err, msg)
	}
	return stdout.String(), nil
}

func clip(args []string) []string {
	if len(args) > 8 {
		return append(append([]string(nil), args[:8]...), "...")
	}
	return args
}

// quiet runs a docker command for cleanup, ignoring failure.
func quiet(args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	docker(ctx, args...)
}

// sweep removes containers, networks, volumes and images labelled as ours
// whose test process is gone (or, with own, is this process).
func sweep(own bool) {
	me := strconv.Itoa(os.Getpid())
	stale := func(pid string) bool {
		if pid == me {
			return own
		}
		n, err := strconv.Atoi(pid)
		if err != nil || n <= 0 {
			return false
		}
		return errors.Is(syscall.Kill(n, 0), syscall.ESRCH)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list := func(args ...string) []string {
		out, err := docker(ctx, args...)
		if err != nil {
			return nil
		}
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			id, pid, ok := strings.Cut(strings.TrimSpace(line), " ")
			if ok && stale(pid) {
				ids = append(ids, id)
			}
		}
		return ids
	}
	f := "label=" + labelPID
	if ids := list("ps", "-a", "--filter", f, "--format", `{{.ID}} {{.Label "`+labelPID+`"}}`); len(ids) > 0 {
		docker(ctx, append([]string{"rm", "-f", "-v"}, ids...)...)
	}
	if ids := list("network", "ls", "--filter", f, "--format", `{{.ID}} {{.Label "`+labelPID+`"}}`); len(ids) > 0 {
		docker(ctx, append([]string{"network", "rm"}, ids...)...)
	}
	if ids := list("volume", "ls", "--filter", f, "--format", `{{.Name}} {{.Label "`+labelPID+`"}}`); len(ids) > 0 {
		docker(ctx, append([]string{"volume", "rm", "-f"}, ids...)...)
	}
	out, _ := docker(ctx, "images", "-q", "--filter", f)
	for _, id := range strings.Fields(out) {
		pid, err := docker(ctx, "image", "inspect", "-f", `{{index .Config.Labels "`+labelPID+`"}}`, id)
		if err == nil && stale(strings.TrimSpace(pid)) {
			docker(ctx, "rmi", "-f", id)
		}
	}
}

func labels() []string {
	return []string{"--label", labelOurs + "=1", "--label", labelPID + "=" + strconv.Itoa(os.Getpid())}
}

// The users' Dockerfile is at the repository root. The tests cannot build it
// (its build stage is a golang image, and nothing can be pulled here). The
// berth image is built the way the README tells users without a registry to
// build it: scripts/image.sh, which builds the static binary on this host and
// Dockerfile.scratch (the Dockerfile's final stage, copying from the build
// context) over it. The image without a CA bundle is the Dockerfile's final
// stage as written, with each "COPY --from=build SRC DST" taken from a
// context that holds what the build stage produces.
const (
	dockerfilePath = "../Dockerfile"
	scratchPath    = "../Dockerfile.scratch"
	imageScript    = "../scripts/image.sh"
)

// finalStage returns the final stage of the Dockerfile with COPY --from=build
// rewritten to copy from the build context (SRC's leading slash removed).
func finalStage(dockerfile string) (string, error) {
	lines := strings.Split(dockerfile, "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(l)), "FROM ") {
			last = i
		}
	}
	if last < 0 {
		return "", errors.New("no FROM line")
	}
	if f := strings.Fields(lines[last]); len(f) < 2 || f[1] != "scratch" {
		return "", fmt.Errorf("final stage is %q, want FROM scratch", lines[last])
	}
	var out []string
	for _, l := range lines[last:] {
		f := strings.Fields(l)
		if len(f) >= 3 && strings.EqualFold(f[0], "COPY") {
			var opts, rest []string
			for _, w := range f[1:] {
				switch {
				case strings.HasPrefix(w, "--from="):
				case strings.HasPrefix(w, "--"):
					opts = append(opts, w)
				default:
					rest = append(rest, strings.TrimPrefix(w, "/"))
				}
			}
			// DST keeps its leading slash.
			rest[len(rest)-1] = "/" + rest[len(rest)-1]
			l = strings.Join(append(append([]string{"COPY"}, opts...), rest...), " ")
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n"), nil
}

// buildImages builds the berth binary on the host and the test images: berth,
// berth without a CA bundle, the Go toolchain, and the NXDOMAIN nameserver.
func buildImages(tmp string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(tmp, "berth")
	berthBin = bin
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "github.com/berth-dev/berth/cmd/berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/berth: %v\n%s", err, out)
	}
	nxdnsBin := filepath.Join(tmp, "nxdns")
	build = exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", nxdnsBin, "github.com/berth-dev/berth/dockertest/internal/nxdns")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./dockertest/internal/nxdns: %v\n%s", err, out)
	}
	df, err := os.ReadFile(dockerfilePath)
	if err != nil {
		return err
	}
	stage, err := finalStage(string(df))
	if err != nil {
		return fmt.Errorf("%s: %v", dockerfilePath, err)
	}
	passwd := "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnonroot:x:65532:\n"

	imgBerth = "berth-test-" + runID + "-berth:test"
	imgNoCerts = "berth-test-" + runID + "-nocerts:test"
	imgGo = "berth-test-" + runID + "-go:test"
	imgNXDNS = "berth-test-" + runID + "-nxdns:test"

	// berth without a CA bundle: the Dockerfile's final stage over a context
	// laid out like the build stage's output (/rootfs, /store-skel).
	noCertsCtx := func(dir string) error {
		files := map[string][]byte{
			"rootfs/etc/passwd": []byte(passwd),
			"rootfs/etc/group":  []byte(group),
			"Dockerfile":        []byte(stage),
		}
		if err := writeFiles(dir, files); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, "store-skel"), 0o755); err != nil {
			return err
		}
		return copyFile(bin, filepath.Join(dir, "rootfs", "berth"), 0o755)
	}
	// go: the local Go installation's go command in a scratch image. go mod
	// download needs bin/go, go.env and VERSION; the standard library sources
	// and the compiler tools are left out to keep the image small.
	goCtx := func(dir string) error {
		goroot := strings.TrimSpace(runGo(ctx, "env", "GOROOT"))
		if goroot == "" {
			return errors.New("go env GOROOT is empty")
		}
		if err := writeFiles(dir, map[string][]byte{
			"etc/passwd": []byte(passwd),
			"etc/group":  []byte(group),
			"Dockerfile": []byte(goDockerfile),
		}); err != nil {
			return err
		}
		for _, d := range []string{"tmp", "work", "go/bin"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
				return err
			}
		}
		for _, f := range []string{"bin/go", "go.env", "VERSION"} {
			if err := copyFile(filepath.Join(goroot, f), filepath.Join(dir, "go", f), 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	jobs := []struct {
		img   string
		prep  func(string) error
		build func() error // instead of docker build of prep's directory
	}{
		{imgBerth, nil, func() error {
			// Exactly what the README says to run, with the suite's tag and labels.
			cmd := exec.CommandContext(ctx, imageScript, append([]string{"-q", "--rm", "--force-rm", "-t", imgBerth}, labels()...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v\n%s", imageScript, err, out)
			}
			return nil
		}},
		{imgNoCerts, noCertsCtx, nil},
		{imgGo, goCtx, nil},
		{imgNXDNS, func(d string) error {
			if err := writeFiles(d, map[string][]byte{"Dockerfile": []byte("FROM scratch\nCOPY nxdns /nxdns\nENTRYPOINT [\"/nxdns\"]\n")}); err != nil {
				return err
			}
			return copyFile(nxdnsBin, filepath.Join(d, "nxdns"), 0o755)
		}, nil},
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if j.build != nil {
				errs[i] = j.build()
				return
			}
			dir := filepath.Join(tmp, fmt.Sprintf("ctx%d", i))
			if err := j.prep(dir); err != nil {
				errs[i] = err
				return
			}
			args := append([]string{"build", "-q", "--rm", "--force-rm", "-t", j.img}, labels()...)
			if _, err := docker(ctx, append(args, dir)...); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

const goDockerfile = `FROM scratch
COPY etc /etc
COPY go /usr/local/go
COPY tmp /tmp
COPY work /work
ENV GOROOT=/usr/local/go PATH=/usr/local/go/bin HOME=/tmp GOPATH=/tmp/gopath GOCACHE=/tmp/gocache \
    GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-modcacherw
WORKDIR /work
ENTRYPOINT ["/usr/local/go/bin/go"]
`

func runGo(ctx context.Context, args ...string) string {
	out, _ := exec.CommandContext(ctx, "go", args...).Output()
	return string(out)
}

func writeFiles(dir string, files map[string][]byte) error {
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// env creates Docker resources for one test, named berth-test-<run>-<test>-<what>,
// and removes them when the test ends, whatever its outcome.
type env struct {
	t      *testing.T
	prefix string
}

var unsafeName = regexp.MustCompile(`[^a-z0-9.-]+`)

func newEnv(t *testing.T) *env {
	t.Helper()
	need(t)
	n := strings.ToLower(t.Name())
	n = strings.TrimPrefix(n, "test")
	n = strings.Trim(unsafeName.ReplaceAllString(n, "-"), "-")
	if len(n) > 32 {
		n = n[:32]
	}
	return &env{t: t, prefix: "berth-test-" + runID + "-" + n}
}

func (e *env) name(what string) string { return e.prefix + "-" + what }

func (e *env) docker(timeout time.Duration, args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := docker(ctx, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// network creates a user-defined bridge network and returns its name and gateway.
func (e *env) network(what string) (name, gateway string) {
	e.t.Helper()
	name = e.name(what)
	e.docker(time.Minute, append(append([]string{"network", "create"}, labels()...), name)...)
	e.t.Cleanup(func() { quiet("network", "rm", name) })
	gateway = e.docker(time.Minute, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", name)
	if gateway == "" {
		e.t.Fatalf("network %s has no gateway", name)
	}
	return name, gateway
}

// volume creates a named volume.
func (e *env) volume(what string) string {
	e.t.Helper()
	name := e.name(what)
	e.docker(time.Minute, append(append([]string{"volume", "create"}, labels()...), name)...)
	e.t.Cleanup(func() { quiet("volume", "rm", "-f", name) })
	return name
}

// container is one container of a test.
type container struct {
	e    *env
	Name string
}

// create registers the removal of a container before it exists, so that a
// failing docker run still leaves nothing behind; on failure its log is shown.
func (e *env) create(what string) *container {
	c := &container{e: e, Name: e.name(what)}
	e.t.Cleanup(func() {
		if e.t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			cmd := exec.CommandContext(ctx, "docker", "logs", "--tail", "60", c.Name)
			out, _ := cmd.CombinedOutput()
			cancel()
			if len(out) > 0 {
				e.t.Logf("logs of %s:\n%s", c.Name, out)
			}
		}
		quiet("rm", "-f", "-v", c.Name)
	})
	return c
}

// start runs a detached container: docker run -d --name <name> ARGS...
func (e *env) start(what string, args ...string) *container {
	e.t.Helper()
	c := e.create(what)
	e.docker(2*time.Minute, append(append([]string{"run", "-d", "--name", c.Name}, labels()...), args...)...)
	return c
}

// run runs a container to its end and returns its output and exit code.
func (e *env) run(what string, timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	c := e.create(what)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append(append([]string{"run", "--name", c.Name}, labels()...), args...)...)
	var o, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &se
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		code = ee.ExitCode()
	default:
		e.t.Fatalf("docker run %s: %v (%v)\n%s", c.Name, err, ctx.Err(), se.String())
	}
	// Exit codes 125-127 are docker's own (bad flag, cannot start, not found).
	if code >= 125 {
		e.t.Fatalf("docker run %s failed to start the container (exit %d):\n%s", c.Name, code, se.String())
	}
	return o.String(), se.String(), code
}

func (c *container) inspect(format string) string {
	c.e.t.Helper()
	return c.e.docker(time.Minute, "inspect", "-f", format, c.Name)
}

// ip returns the container's address on a network ("bridge" for the default one).
func (c *container) ip(network string) string {
	c.e.t.Helper()
	ip := c.inspect(`{{with index .NetworkSettings.Networks "` + network + `"}}{{.IPAddress}}{{end}}`)
	if ip == "" {
		c.e.t.Fatalf("%s has no address on %s", c.Name, network)
	}
	return ip
}

func (c *container) logs() string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "docker", "logs", c.Name).CombinedOutput()
	return string(out)
}

// waitHealthy waits for the image's HEALTHCHECK to report healthy and returns
// the output of the last check.
func (c *container) waitHealthy(timeout time.Duration) string {
	c.e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := c.inspect(`{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}`)
		if st == "running healthy" {
			return c.inspect(`{{with .State.Health}}{{range .Log}}{{.ExitCode}} {{.Output}}{{end}}{{end}}`)
		}
		if !strings.HasPrefix(st, "running") || strings.HasSuffix(st, " none") {
			c.e.t.Fatalf("%s: %s (want running healthy)\n%s", c.Name, st, c.logs())
		}
		if time.Now().After(deadline) {
			c.e.t.Fatalf("%s not healthy after %s: %s\n%s", c.Name, timeout, st,
				c.inspect(`{{with .State.Health}}{{range .Log}}{{.ExitCode}} {{.Output}}{{end}}{{end}}`))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// files lists the regular files below dir in the container (running or
// stopped; volumes included), with their sizes, by docker cp.
func (c *container) files(dir string) map[string]int64 {
	c.e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
	files := map[string]int64{}
	tr := tar.NewReader(out)
	base := filepath.Base(dir) + "/"
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.e.t.Fatalf("docker cp %s:%s: %v", c.Name, dir, err)
		}
		if h.Typeflag == tar.TypeReg {
			files[strings.TrimPrefix(h.Name, base)] = h.Size
		}
	}
	if err := cmd.Wait(); err != nil {
		c.e.t.Fatalf("docker cp %s:%s: %v: %s", c.Name, dir, err, se.String())
	}
	return files
}
