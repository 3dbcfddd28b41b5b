//go:build docker && linux

package dockertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store/s3/s3test"
)

// replicasCompose is the compose file the README's "More than one machine"
// section tells users to run; the test runs it as it is.
const replicasCompose = "../examples/replicas/compose.yaml"

// composeCommand returns the compose command of this host: docker-compose,
// else the docker CLI's compose plugin.
func composeCommand() ([]string, error) {
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}, nil
	}
	if err := exec.Command("docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}, nil
	}
	return nil, errors.New("neither docker-compose nor the docker compose plugin is installed")
}

// project is one compose project of a test, torn down with down -v when the
// test ends.
type project struct {
	t   *testing.T
	cmd []string // the compose command and its -p and -f flags
	env []string
}

func (p *project) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.cmd[0], append(append([]string(nil), p.cmd[1:]...), args...)...)
	cmd.Env = p.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("compose %s: %v (%v)\n%s%s", strings.Join(clip(args), " "), err, ctx.Err(), stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (p *project) must(timeout time.Duration, args ...string) string {
	p.t.Helper()
	out, err := p.run(timeout, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// id returns the container of a service.
func (p *project) id(service string) string {
	p.t.Helper()
	id := strings.TrimSpace(p.must(time.Minute, "ps", "-q", service))
	if id == "" || strings.Contains(id, "\n") {
		p.t.Fatalf("compose ps -q %s: %q, want one container", service, id)
	}
	return id
}

// waitHealthy waits until a service's container reports healthy.
func (p *project) waitHealthy(service string, timeout time.Duration) {
	p.t.Helper()
	id := p.id(service)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := docker(ctx, "inspect", "-f", `{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}`, id)
		cancel()
		st = strings.TrimSpace(st)
		if err == nil && st == "running healthy" {
			return
		}
		if err == nil && strings.HasSuffix(st, " none") {
			p.t.Fatalf("%s has no health check", service)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not healthy after %s: %s %v", service, timeout, st, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// cachedImage builds a FROM scratch image of files (path in the image ->
// path on this host, copied with their modes; "" makes a directory, mode
// 1777) and a
// Dockerfile, tagged berth-dockertest-<name>:<hash of the content>. The image
// is kept between runs and reused while the content is the same, so that a
// rerun builds nothing; when the content changes, the image built before it
// is removed.
func cachedImage(name string, files map[string]string, dockerfile string) (string, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha256.New()
	io.WriteString(h, dockerfile)
	for _, p := range paths {
		fmt.Fprintf(h, "\x00%s\x00", p)
		if files[p] == "" {
			continue
		}
		f, err := os.Open(files[p])
		if err != nil {
			return "", err
		}
		fi, err := f.Stat()
		if err == nil {
			fmt.Fprintf(h, "%o\x00", fi.Mode().Perm())
			_, err = io.Copy(h, f)
		}
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", files[p], err)
		}
	}
	repo := "berth-dockertest-" + name
	tag := repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := docker(ctx, "image", "inspect", "-f", "{{.Id}}", tag); err == nil {
		return tag, nil
	}
	dir, err := os.MkdirTemp("", "berth-image-"+name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "rootfs")
	for _, p := range paths {
		dst := filepath.Join(rootfs, filepath.FromSlash(p))
		if files[p] == "" {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return "", err
			}
			if err := os.Chmod(dst, 0o1777); err != nil {
				return "", err
			}
			continue
		}
		fi, err := os.Stat(files[p])
		if err != nil {
			return "", err
		}
		if err := copyFile(files[p], dst, fi.Mode().Perm()); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	// Labelled as the suite's, but with no test process: the sweep keeps it.
	if _, err := docker(ctx, "build", "-q", "--rm", "--force-rm", "-t", tag, "--label", labelOurs+"=1", "--label", labelOurs+".cache="+name, dir); err != nil {
		return "", err
	}
	out, _ := docker(ctx, "images", "--format", "{{.Repository}}:{{.Tag}}", repo)
	for _, old := range strings.Fields(out) {
		if old != tag {
			docker(ctx, "rmi", old)
		}
	}
	return tag, nil
}

// withLibs adds programs (image path -> path on this host) and the shared
// libraries ldd names for them to files, at the paths ldd names. A static
// program has none.
func withLibs(files map[string]string, programs map[string]string) error {
	for dst, p := range programs {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return err
		}
		files[strings.TrimPrefix(dst, "/")] = real
		if out, err := exec.Command("ldd", real).CombinedOutput(); err != nil && strings.Contains(string(out), "not a dynamic executable") {
			continue
		}
		deps, err := lddDeps(real)
		if err != nil {
			return err
		}
		for _, d := range deps {
			files[strings.TrimPrefix(d, "/")] = d
		}
	}
	return nil
}

// same maps each program to its own path, for withLibs.
func same(programs ...string) map[string]string {
	m := map[string]string{}
	for _, p := range programs {
		m[p] = p
	}
	return m
}

const (
	scratchPasswd = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
	scratchGroup  = "root:x:0:\nnogroup:x:65534:\n"
)

// hostFile writes content to a file of the test (for images' /etc files).
func hostFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// minioBinary returns the MinIO server: s3test's ($BERTH_MINIO, PATH), else
// the one ./test.sh builds into the CI cache, built there now if missing.
func minioBinary(t *testing.T) string {
	t.Helper()
	if p, err := s3test.Binary(s3test.MinIO); err == nil {
		return p
	}
	cache := os.Getenv("BERTH_CI_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("no MinIO server, and no home for the CI cache: %v", err)
		}
		cache = filepath.Join(home, ".cache", "berth-ci")
	}
	bin := filepath.Join(cache, "bin", "minio")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	pkg := strings.TrimPrefix(s3test.Install[s3test.MinIO], "go install ")
	t.Logf("no MinIO server: building %s into %s, once (a few minutes)", pkg, filepath.Dir(bin))
	cmd := exec.Command("go", "install", pkg)
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(bin))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// replicaImages builds the images the compose file names, FROM scratch from
// this host's programs: MinIO with the mc stand-in (dockertest/internal/mc),
// Debian's redis-server and redis-cli, Debian's nginx, and the suite's Go
// toolchain image without its entrypoint, as the golang image has none.
func replicaImages(t *testing.T) (minioImg, redisImg, nginxImg, goImg string) {
	t.Helper()
	etc := map[string]string{
		"etc/passwd": hostFile(t, "passwd", scratchPasswd),
		"etc/group":  hostFile(t, "group", scratchGroup),
		"tmp":        "",
	}
	build := func(name, dockerfile string, extra, programs map[string]string) string {
		files := map[string]string{}
		for k, v := range etc {
			files[k] = v
		}
		for k, v := range extra {
			files[k] = v
		}
		if err := withLibs(files, programs); err != nil {
			t.Fatalf("%s image: %v", name, err)
		}
		img, err := cachedImage(name, files, dockerfile)
		if err != nil {
			t.Fatalf("%s image: %v", name, err)
		}
		return img
	}
	const lib = "ENV PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu\n"

	mc := filepath.Join(t.TempDir(), "mc")
	cmd := exec.Command("go", "build", "-trimpath", "-o", mc, "github.com/berth-dev/berth/dockertest/internal/mc")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./dockertest/internal/mc: %v\n%s", err, out)
	}
	minioBin := minioBinary(t)
	minioImg = build("minio", "FROM scratch\nCOPY rootfs/ /\n"+lib+"ENV HOME=/root\nEXPOSE 9000\nENTRYPOINT [\"/usr/bin/minio\"]\n",
		map[string]string{"usr/bin/mc": mc, "root": "", "data": ""}, map[string]string{"/usr/bin/minio": minioBin})

	for _, p := range []string{"/usr/bin/redis-server", "/usr/bin/redis-cli", "/usr/sbin/nginx"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: the replica test builds its Redis and nginx images from Debian's redis-server, redis-tools and nginx (./test.sh installs them)", err)
		}
	}
	redisImg = build("redis", "FROM scratch\nCOPY rootfs/ /\n"+lib+"WORKDIR /tmp\nEXPOSE 6379\nCMD [\"redis-server\"]\n",
		nil, same("/usr/bin/redis-server", "/usr/bin/redis-cli"))
	nginxImg = build("nginx", "FROM scratch\nCOPY rootfs/ /\n"+lib+"EXPOSE 80\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
		map[string]string{"etc/nginx": ""}, same("/usr/sbin/nginx"))

	// The suite's go image, with the golang image's shape: no entrypoint.
	goImg = "berth-test-" + runID + "-replicas-go:test"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+imgGo+"\nENTRYPOINT []\nCMD [\"go\", \"version\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := docker(ctx, append(append([]string{"build", "-q", "--rm", "--force-rm", "-t", goImg}, labels()...), dir)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { quiet("rmi", "-f", goImg) })
	return minioImg, redisImg, nginxImg, goImg
}

// metric returns the sum of a metric's samples in base's /metrics, and
// whether there is any.
func metric(t *testing.T, base, name string) (float64, bool) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Errorf("GET %s/metrics: %v", base, err)
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("GET %s/metrics: %v", base, err)
		return 0, false
	}
	sum, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// labelOverride is a second compose file that labels everything of the
// project as the suite's and this process's, so that the suite's sweep
// removes what a killed test left behind.
func labelOverride(t *testing.T, services ...string) string {
	var b strings.Builder
	l := fmt.Sprintf("      %s: \"1\"\n      %s: \"%d\"\n", labelOurs, labelPID, os.Getpid())
	b.WriteString("services:\n")
	for _, s := range services {
		fmt.Fprintf(&b, "  %s:\n    labels:\n%s", s, l)
	}
	fmt.Fprintf(&b, "networks:\n  default:\n    labels:\n%svolumes:\n  minio-data:\n    labels:\n%s", l, l)
	return hostFile(t, "labels.yaml", b.String())
}

// TestReplicasCompose runs examples/replicas/compose.yaml for real: three
// berth replicas on one MinIO bucket with a Redis lease behind nginx, with
// the fixture upstream on this host as their upstream. Three build
// containers at once download a generated module graph through nginx: every
// file is fetched from the upstream once in all. Then each replica in turn is
// restarted and waited for, while two clients on this host download through
// nginx's published port, cold and warm files: no download fails, and every
// file is still fetched once in all.
func TestReplicasCompose(t *testing.T) {
	t.Parallel()
	need(t)
	compose, err := composeCommand()
	if err != nil {
		t.Skipf("%v: the replica test runs examples/replicas/compose.yaml", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	e := newEnv(t)
	start := time.Now()
	minioImg, redisImg, nginxImg, goImg := replicaImages(t)
	t.Logf("images ready in %s: %s %s %s %s", time.Since(start).Round(time.Millisecond), minioImg, redisImg, nginxImg, goImg)

	// The graph of the Docker suite's other download test, and modules the
	// clients download cold during the rolling restart.
	mods, gomod := graph()
	for i := range 80 {
		p := fmt.Sprintf("example.test/roll/m%02d", i)
		mods = append(mods, testmod.Module{Path: p, Version: "v1.0.0",
			Files: map[string]string{"m.go": "package m\n", "data.txt": strings.Repeat(p+" ", 4000)}})
	}
	built, err := testmod.Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	// The upstream listens on the gateway of a network of the test: an
	// address of this host, which the project's containers reach through
	// their own network's gateway.
	_, gw := e.network("upstream")
	up, upURL, _ := upstreamOn(t, gw, built)
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/@v/") {
			time.Sleep(50 * time.Millisecond) // so that misses overlap across replicas
		}
		return false
	})

	src := t.TempDir()
	var gosum strings.Builder
	for _, b := range built {
		fmt.Fprintf(&gosum, "%s %s %s\n%s %s/go.mod %s\n", b.Path, b.Version.Version, b.Sum, b.Path, b.Version.Version, b.ModSum)
	}
	for name, data := range map[string]string{"go.mod": gomod, "go.sum": gosum.String()} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	services := []string{"minio", "bucket", "redis", "berth1", "berth2", "berth3", "lb", "build"}
	name := e.prefix // berth-test-<run>-replicascompose
	p := &project{t: t,
		cmd: append(compose, "-p", name, "-f", replicasCompose, "-f", labelOverride(t, services...)),
		env: append(os.Environ(),
			"BERTH_IMAGE="+imgBerth, "BERTH_MINIO_IMAGE="+minioImg, "BERTH_REDIS_IMAGE="+redisImg,
			"BERTH_NGINX_IMAGE="+nginxImg, "BERTH_GO_IMAGE="+goImg,
			"BERTH_UPSTREAM="+upURL, "BERTH_SUMDB="+up.GOSUMDB(),
			"AWS_ACCESS_KEY_ID=berth-test", "AWS_SECRET_ACCESS_KEY=berth-test-secret-"+runID,
			"BERTH_PORT=127.0.0.1:"+strconv.Itoa(port), "BERTH_SRC="+src,
			"COMPOSE_PROFILES=", "COMPOSE_FILE=", "COMPOSE_PROJECT_NAME=")}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := p.run(time.Minute, "logs", "--no-color", "--tail=40")
			t.Logf("compose logs:\n%s", out)
		}
		if _, err := p.run(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "15"); err != nil {
			t.Errorf("tearing the project down: %v", err)
		}
	})

	start = time.Now()
	p.must(4*time.Minute, "up", "-d")
	replicas := []string{"berth1", "berth2", "berth3"}
	for _, r := range replicas {
		p.waitHealthy(r, time.Minute)
	}
	t.Logf("compose up: healthy in %s", time.Since(start).Round(time.Millisecond))

	// Three builds at once, each in a container of its own with a cold
	// module cache, through nginx by its service name.
	start = time.Now()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if _, err := p.run(3*time.Minute, "run", "--rm", "-T", "-e", "GOSUMDB="+up.GOSUMDB(), "build", "go", "mod", "download", "-x", "all"); err != nil {
				t.Errorf("build %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	t.Logf("three builds through nginx in %s", time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}
	onceInAll := func(when string) {
		t.Helper()
		counts := up.Counts()
		for path, n := range counts {
			if (strings.HasSuffix(path, ".info") || strings.HasSuffix(path, ".mod") || strings.HasSuffix(path, ".zip")) && n != 1 {
				t.Errorf("%s: upstream served %s %d times through three replicas, want once", when, path, n)
			}
		}
	}
	for _, b := range built {
		// Not the roll modules, nor leaf v1.0.0, which the build list
		// does not select (go.sum holds it; the go command needs nothing of it).
		if strings.HasPrefix(b.Path, "example.test/roll/") || (b.Path == "example.test/leaf" && b.Version.Version == "v1.0.0") {
			continue
		}
		for _, ext := range []string{".mod", ".zip"} {
			if n := up.Count("/" + storeKey(t, b.Version, ext)); n != 1 {
				t.Errorf("upstream fetches of %s@%s%s: %d, want 1", b.Path, b.Version.Version, ext, n)
			}
		}
	}
	onceInAll("after three builds")
	// Every replica took part, and each one's lease was on.
	fetchers := 0
	for _, r := range replicas {
		logs := (&container{e: e, Name: p.id(r)}).logs()
		if !strings.Contains(logs, "fetches are leased across the replicas") {
			t.Errorf("%s did not log its lease:\n%s", r, logs)
		}
		if strings.Contains(logs, `"msg":"upstream fetch"`) {
			fetchers++
		}
	}
	if fetchers < 2 {
		t.Errorf("only %d of the 3 replicas fetched from the upstream; want nginx to spread the builds", fetchers)
	}
	// Every replica's lease backend is up; how often a replica waited for
	// another's fetch depends on how the builds overlapped, so it is shown.
	waits := 0.0
	for _, r := range replicas {
		ip := e.docker(time.Minute, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", p.id(r))
		if up, ok := metric(t, "http://"+ip+":3000", "berth_proxy_lease_backend_up"); !ok || up != 1 {
			t.Errorf("%s: berth_proxy_lease_backend_up %v (found %v), want 1", r, up, ok)
		}
		n, _ := metric(t, "http://"+ip+":3000", "berth_proxy_lease_waits_total")
		waits += n
	}
	t.Logf("the replicas waited %v times for a file another replica was fetching", waits)

	// The rolling restart: two clients download through the published port
	// until every replica has been restarted and is healthy again.
	var (
		next      atomic.Int64 // the next cold module
		stop      = make(chan struct{})
		mu        sync.Mutex
		finished  []time.Time // when each download ended
		failures  []string
		downloads int
	)
	lb := "http://127.0.0.1:" + strconv.Itoa(port)
	client := func(id int) {
		for iter := 0; ; iter++ {
			select {
			case <-stop:
				return
			default:
			}
			home := t.TempDir()
			args := []string{"mod", "download", "-x"}
			if i := next.Add(1) - 1; i < 80 {
				args = append(args, fmt.Sprintf("example.test/roll/m%02d@v1.0.0", i)) // cold: fetched from the upstream
			}
			args = append(args, fmt.Sprintf("example.test/wide/w%02d@v1.0.0", (id*3+iter)%8)) // warm: in the bucket
			cmd := exec.Command(goBin, args...)
			cmd.Dir = home
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOPATH=" + filepath.Join(home, "gopath"),
				"GOMODCACHE=" + filepath.Join(home, "modcache"), "GOCACHE=" + filepath.Join(home, "gocache"),
				"GOPROXY=" + lb, "GOSUMDB=" + up.GOSUMDB(), "GOFLAGS=-modcacherw", "GONOSUMDB=", "GOPRIVATE=",
				"GONOPROXY=", "GOINSECURE=", "GOTOOLCHAIN=local", "GOTELEMETRY=off", "GO111MODULE=on"}
			out, err := cmd.CombinedOutput()
			mu.Lock()
			downloads++
			finished = append(finished, time.Now())
			if err != nil {
				failures = append(failures, fmt.Sprintf("client %d: go %s: %v\n%s", id, strings.Join(args, " "), err, out))
			}
			mu.Unlock()
		}
	}
	var clients sync.WaitGroup
	for id := range 2 {
		clients.Go(func() { client(id) })
	}
	type window struct {
		replica    string
		start, end time.Time
	}
	var windows []window
	// Waits, for at most two minutes, until n more downloads have ended
	// (failed or not) than had when it was called.
	awaitDownloads := func(n int, when string) {
		mu.Lock()
		want := downloads + n
		mu.Unlock()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			mu.Lock()
			got := downloads
			mu.Unlock()
			if got >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d downloads ended in two minutes, want %d", when, got-want+n, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	awaitDownloads(2, "before the restarts")
	for _, r := range replicas {
		w := window{replica: r, start: time.Now()}
		p.must(time.Minute, "restart", "-t", "15", r)
		p.waitHealthy(r, time.Minute)
		w.end = time.Now()
		windows = append(windows, w)
		t.Logf("%s restarted and healthy again in %s", r, w.end.Sub(w.start).Round(time.Millisecond))
	}
	awaitDownloads(2, "after the last restart")
	close(stop)
	clients.Wait()

	t.Logf("%d downloads through nginx during the rolling restart, %d failed", downloads, len(failures))
	for _, f := range failures {
		t.Errorf("a download failed during the rolling restart: %s", f)
	}
	for _, w := range windows {
		n := 0
		for _, f := range finished {
			if f.After(w.start) && f.Before(w.end) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no download ended while %s restarted (%s to %s); the test did not test the restart", w.replica, w.start.Format(time.StampMilli), w.end.Format(time.StampMilli))
		}
	}
	if next.Load() < 3 {
		t.Errorf("only %d cold downloads ran during the rolling restart", next.Load())
	}
	onceInAll("after the rolling restart")
}
