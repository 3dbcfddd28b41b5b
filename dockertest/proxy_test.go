//go:build docker && linux

package dockertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store"
)

const sumdbName = "sum.berth.test"

// upstreamOn serves built modules and a test checksum database (testmod) on
// ip, the gateway of a network of the test, so that containers on that
// network reach it. With allow, it closes connections from other source
// addresses at once: a container on any Docker network can reach the host's
// addresses, even on an --internal one. stop closes it; t.Cleanup does too.
func upstreamOn(t *testing.T, ip string, built []testmod.Built, allow ...netip.Prefix) (u *testmod.Upstream, url string, stop func()) {
	t.Helper()
	u, err := testmod.ServeBuilt(t.TempDir(), sumdbName, built)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		u.Close()
		t.Fatalf("listen on the bridge gateway %s: %v", ip, err)
	}
	hs := &http.Server{Handler: u.Server.Config.Handler, ReadHeaderTimeout: 10 * time.Second}
	if len(allow) > 0 {
		hs.ConnState = func(c net.Conn, st http.ConnState) {
			if st != http.StateNew {
				return
			}
			from, err := netip.ParseAddrPort(c.RemoteAddr().String())
			for _, p := range allow {
				if err == nil && p.Contains(from.Addr().Unmap()) {
					return
				}
			}
			c.Close()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	stop = sync.OnceFunc(func() {
		hs.Close()
		<-done
		u.Close()
	})
	t.Cleanup(stop)
	return u, "http://" + ln.Addr().String(), stop
}

// graph is a generated module graph: a case-escaped path, a /v2 module, two
// versions of a shared dependency, and a wide layer.
func graph() (mods []testmod.Module, root string) {
	src := func(pkg string) map[string]string {
		return map[string]string{pkg + ".go": "package " + pkg + "\n\nconst Name = \"" + pkg + "\"\n"}
	}
	leaf := "example.test/leaf"
	mods = []testmod.Module{
		{Path: leaf, Version: "v1.0.0", Files: src("leaf")},
		{Path: leaf, Version: "v1.1.0", Files: src("leaf")},
		{Path: "example.test/Upper", Version: "v1.0.0-RC1", Files: src("upper")},
		{Path: "example.test/mid", Version: "v1.0.0", Files: src("mid"),
			Require: []module.Version{{Path: leaf, Version: "v1.1.0"}, {Path: "example.test/Upper", Version: "v1.0.0-RC1"}}},
		{Path: "example.test/mid/v2", Version: "v2.0.0", Files: src("mid"), Require: []module.Version{{Path: leaf, Version: "v1.0.0"}}},
	}
	top := []module.Version{{Path: "example.test/mid", Version: "v1.0.0"}, {Path: "example.test/mid/v2", Version: "v2.0.0"}}
	for i := range 8 {
		p := fmt.Sprintf("example.test/wide/w%02d", i)
		mods = append(mods, testmod.Module{Path: p, Version: "v1.0.0", Files: src(fmt.Sprintf("w%02d", i)),
			Require: []module.Version{{Path: leaf, Version: "v1.0.0"}}})
		top = append(top, module.Version{Path: p, Version: "v1.0.0"})
	}
	mods = append(mods, testmod.Module{Path: "example.test/top", Version: "v1.2.0", Files: src("top"), Require: top})
	// The app's go.mod lists its whole build list, as go mod tidy writes it.
	var b strings.Builder
	b.WriteString("module example.test/app\n\ngo 1.21\n\nrequire example.test/top v1.2.0\n\nrequire (\n")
	for _, m := range mods {
		if m.Path != "example.test/top" && !(m.Path == leaf && m.Version == "v1.0.0") {
			fmt.Fprintf(&b, "\t%s %s // indirect\n", m.Path, m.Version)
		}
	}
	b.WriteString(")\n")
	return mods, b.String()
}

// goModDownload runs "go mod download" in a Go toolchain container on nw with
// GOPROXY and GOSUMDB through berth, in a fresh module cache, and returns the
// go.sum it wrote.
func (e *env) goModDownload(what, nw, berth, gosumdb, gomod string) string {
	e.t.Helper()
	work := e.t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(gomod), 0o644); err != nil {
		e.t.Fatal(err)
	}
	start := time.Now()
	stdout, stderr, code := e.run(what, 3*time.Minute, "--network", nw, "-v", work+":/work",
		"-e", "GOPROXY=http://"+berth+":3000", "-e", "GOSUMDB="+gosumdb,
		imgGo, "mod", "download", "-x", "all")
	if code != 0 {
		e.t.Fatalf("go mod download through %s: exit %d\n%s%s", berth, code, stdout, stderr)
	}
	e.t.Logf("%s: go mod download through %s in %s", what, berth, time.Since(start).Round(time.Millisecond))
	sum, err := os.ReadFile(filepath.Join(work, "go.sum"))
	if err != nil {
		e.t.Fatalf("go mod download wrote no go.sum: %v\n%s", err, stderr)
	}
	return string(sum)
}

// TestGoModDownloadThroughBerth runs the go command in a Go toolchain
// container that reaches berth by its container name on a user-defined
// network, with the checksum database through berth; then, with the upstream
// gone and a new berth container on the same store volume, again.
func TestGoModDownloadThroughBerth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mods, gomod := graph()
	built, err := testmod.Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	nw, gw := e.network("net")
	up, upURL, stopUpstream := upstreamOn(t, gw, built)
	store := e.volume("store")
	berthArgs := []string{"--network", nw, "-v", store + ":/store"}

	// berth verifies every .mod and .zip against the test checksum database
	// (through its own /sumdb/ proxying) before it stores them. That also
	// stores the tiles each stored lookup answer needs: without --sumdb the
	// second run failed in 2 of about 10 runs, because the test database's
	// tree grows with each first lookup, and a fresh go command can need a
	// partial tile (tile/8/0/000.p/1) no client asked berth for (reported).
	b1 := e.berthService("berth", berthArgs, "--upstream", upURL, "--sumdb", up.GOSUMDB())
	sum1 := e.goModDownload("go1", nw, b1.Name, up.GOSUMDB(), gomod)

	// go.sum holds the hashes of the generated modules, checked by the go
	// command against the test checksum database, which it reached through berth.
	for _, b := range built {
		if b.Path == "example.test/leaf" && b.Version.Version == "v1.0.0" { // only its go.mod is needed
			continue
		}
		for _, line := range []string{b.Path + " " + b.Version.Version + " " + b.Sum, b.Path + " " + b.Version.Version + "/go.mod " + b.ModSum} {
			if !strings.Contains(sum1, line+"\n") {
				t.Errorf("go.sum lacks %q\n%s", line, sum1)
			}
		}
	}
	counts := up.Counts()
	if counts["/sumdb/"+sumdbName+"/supported"] == 0 {
		t.Errorf("the go command did not ask berth for the checksum database; upstream saw %v", counts)
	}
	lookups := 0
	for p, n := range counts {
		if strings.HasPrefix(p, "/sumdb/"+sumdbName+"/lookup/") {
			lookups++
		}
		if (strings.HasSuffix(p, ".zip") || strings.HasSuffix(p, ".mod")) && n != 1 {
			t.Errorf("upstream served %s %d times, want once", p, n)
		}
	}
	if lookups == 0 {
		t.Errorf("no checksum database lookup reached the upstream through berth: %v", counts)
	}

	// The upstream is gone; a new berth container on the same volume serves
	// a fresh module cache from its store.
	if logs := b1.logs(); strings.Contains(logs, "checksum verification is off") {
		t.Errorf("berth stored files unverified:\n%s", logs)
	}
	stopUpstream()
	e.docker(time.Minute, "rm", "-f", b1.Name)
	b2 := e.berthService("berth", berthArgs, "--upstream", upURL, "--sumdb", up.GOSUMDB())
	sum2 := e.goModDownload("go2", nw, b2.Name, up.GOSUMDB(), gomod)
	if sum2 != sum1 {
		t.Errorf("go.sum from the store differs:\n%s\nwant:\n%s", sum2, sum1)
	}
	files := b2.files("/store")
	for _, b := range built {
		if b.Path == "example.test/leaf" && b.Version.Version == "v1.0.0" { // only its go.mod is needed
			continue
		}
		k := storeKey(t, b.Version, ".zip")
		if files[k] != int64(len(b.Zip)) {
			t.Errorf("store: %s has %d bytes, want %d", k, files[k], len(b.Zip))
		}
	}
	noTemp(t, files)
}

func storeKey(t *testing.T, v module.Version, ext string) string {
	t.Helper()
	p, err := module.EscapePath(v.Path)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := module.EscapeVersion(v.Version)
	if err != nil {
		t.Fatal(err)
	}
	return p + "/@v/" + ev + ext
}

func noTemp(t *testing.T, files map[string]int64) {
	t.Helper()
	var names []string
	for k := range files {
		if store.IsTemp(filepath.Base(k)) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		t.Errorf("temporary (partial) files left in the store: %v", names)
	}
}

// TestBerthContainerLifecycle checks the image's configuration, its
// HEALTHCHECK, and that docker stop with its default grace period (10 s) stops
// berth cleanly with the image's drain delay and shutdown timeout while one
// upstream fetch is slow and another never ends: the slow one completes and is
// stored, the endless one is cancelled at berth's shutdown deadline, and no
// partial file is left in the store volume.
func TestBerthContainerLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[rnd.IntN(36)]
	}
	built, err := testmod.Build([]testmod.Module{
		{Path: "example.test/slow", Version: "v1.0.0", Files: map[string]string{"slow.go": "package slow\n", "data.txt": string(big)}},
		{Path: "example.test/hang", Version: "v1.0.0", Files: map[string]string{"hang.go": "package hang\n", "data.txt": string(big)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	slow, hang := built[0], built[1]
	nw, gw := e.network("net")
	up, upURL, _ := upstreamOn(t, gw, built)
	slowStarted, hangStarted := make(chan struct{}, 1), make(chan struct{}, 1)
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		var b testmod.Built
		var started chan struct{}
		switch r.URL.Path {
		case "/example.test/slow/@v/v1.0.0.zip":
			b, started = slow, slowStarted
		case "/example.test/hang/@v/v1.0.0.zip":
			b, started = hang, hangStarted
		default:
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b.Zip)))
		w.Write(b.Zip[:len(b.Zip)/2])
		w.(http.Flusher).Flush()
		select {
		case started <- struct{}{}:
		default:
		}
		wait := 1500 * time.Millisecond
		if b.Path == "example.test/hang" {
			wait = 2 * time.Minute
		}
		select {
		case <-time.After(wait):
			w.Write(b.Zip[len(b.Zip)/2:])
		case <-r.Context().Done():
		}
		return true
	})

	// Two berth containers: one stops while a slow fetch runs, one while a
	// fetch that never ends runs.
	slowB := e.berthService("berth-slow", []string{"--network", nw}, "--upstream", upURL, "--sumdb", up.GOSUMDB())
	hangB := e.berthService("berth-hang", []string{"--network", nw}, "--upstream", upURL, "--sumdb", up.GOSUMDB())
	if out := slowB.inspect(`{{with .State.Health}}{{range .Log}}{{.ExitCode}} {{.Output}}{{end}}{{end}}`); !strings.Contains(out, "0 healthy: http://127.0.0.1:3000/readyz: 200 OK") {
		t.Errorf("HEALTHCHECK log: %q; want berth healthcheck's answer from /readyz", out)
	}
	cfg := slowB.inspect(`{{.Config.User}}|{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}|{{range $v, $_ := .Config.Volumes}}{{$v}} {{end}}|{{.Config.Healthcheck.Test}}|{{.Config.Entrypoint}}`)
	if want := `65532:65532|3000/tcp |/store |[CMD /berth healthcheck --timeout 4s http://127.0.0.1:3000/readyz]|[/berth]`; cfg != want {
		t.Errorf("image config:\n got %s\nwant %s", cfg, want)
	}

	// A client on the host fetches through each berth at its address on the network.
	type result struct {
		body []byte
		err  error
	}
	get := func(b *container, path string) chan result {
		ch := make(chan result, 1)
		go func() {
			c := &http.Client{Timeout: time.Minute}
			resp, err := c.Get("http://" + b.ip(nw) + ":3000" + path)
			if err != nil {
				ch <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("%s", resp.Status)
			}
			ch <- result{body, err}
		}()
		return ch
	}
	slowRes := get(slowB, "/example.test/slow/@v/v1.0.0.zip")
	hangRes := get(hangB, "/example.test/hang/@v/v1.0.0.zip")
	for _, ch := range []chan struct{}{slowStarted, hangStarted} {
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("berth did not start both upstream fetches; upstream saw %v", up.Counts())
		}
	}

	// docker stop, with docker's default grace period (10 s), both at once.
	type stopped struct {
		took       time.Duration
		exit, logs string
		files      map[string]int64
	}
	var wg sync.WaitGroup
	stops := map[*container]*stopped{slowB: {}, hangB: {}}
	for b, s := range stops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			quiet("stop", b.Name)
			s.took = time.Since(start)
		}()
	}
	wg.Wait()
	for b, s := range stops {
		s.exit = b.inspect("{{.State.ExitCode}} {{.State.OOMKilled}}")
		s.logs = b.logs()
		s.files = b.files("/store")
		t.Logf("%s: docker stop took %s; exit code, OOM-killed: %s", b.Name, s.took.Round(time.Millisecond), s.exit)
		// berth ended by itself (137 is SIGKILL at the end of the grace period),
		// and no partial file is left in its store.
		if s.took >= 10*time.Second || strings.HasPrefix(s.exit, "137") || strings.HasSuffix(s.exit, "true") {
			t.Errorf("%s: docker stop took %s, exit code and OOM-killed %q; want berth to exit by itself within the 10 s grace period\n%s", b.Name, s.took, s.exit, s.logs)
		}
		noTemp(t, s.files)
	}

	// The slow fetch finished inside the shutdown timeout: a clean exit, the
	// client got the whole zip, and it is in the store.
	s := stops[slowB]
	if s.exit != "0 false" || !strings.Contains(s.logs, "msg=stopped") {
		t.Errorf("%s: exit %q; want 0 and the log line msg=stopped\n%s", slowB.Name, s.exit, s.logs)
	}
	if r := <-slowRes; r.err != nil || !bytes.Equal(r.body, slow.Zip) {
		t.Errorf("the slow fetch running at docker stop: %d bytes, %v; want the whole zip (%d bytes)", len(r.body), r.err, len(slow.Zip))
	}
	if k := storeKey(t, slow.Version, ".zip"); s.files[k] != int64(len(slow.Zip)) {
		t.Errorf("store: %s has %d bytes, want %d (the fetch that finished during shutdown)\n%v", k, s.files[k], len(slow.Zip), s.files)
	}

	// The endless fetch was cancelled at berth's deadline: nothing of it is
	// stored, and berth said so. (berth exits 1 when its deadline had to cut
	// connections; it still shut down as designed.)
	s = stops[hangB]
	if !strings.Contains(s.logs, "nothing partial is kept") {
		t.Errorf("%s: no log line about the cancelled fetch\n%s", hangB.Name, s.logs)
	}
	if r := <-hangRes; r.err == nil && bytes.Equal(r.body, hang.Zip) {
		t.Errorf("the endless fetch delivered the whole zip")
	}
	if k := storeKey(t, hang.Version, ".zip"); s.files[k] > 0 {
		t.Errorf("store: %s has %d bytes; the cancelled fetch must leave nothing\n%v", k, s.files[k], s.files)
	}
}

// TestRunningContainer runs berth the way examples/kubernetes/berth.yaml
// does (read-only root file system, no capabilities, no privilege escalation,
// the non-root user, a memory limit with GOMEMLIMIT, the store on a volume),
// checks the probe endpoints, and runs the doctor in it by the two recipes of
// docs/docker.md: docker run --network container: and docker cp + docker exec.
func TestRunningContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nw, _ := e.network("net")
	store := e.volume("store")
	b := e.berthService("berth", []string{"--network", nw, "-v", store + ":/store",
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "65532:65532",
		"--memory", "512m", "-e", "GOMEMLIMIT=536870912", "-e", "BERTH_DRAIN_DELAY=5s", "-e", "BERTH_SHUTDOWN_TIMEOUT=15s"},
		"--upstream", "off")
	c := &http.Client{Timeout: 5 * time.Second}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := c.Get("http://" + b.ip(nw) + ":3000" + p)
		if err != nil {
			t.Fatalf("probe %s: %v", p, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("probe %s: %s", p, resp.Status)
		}
	}

	// docker run --network container:<name>: the doctor in berth's network namespace.
	r := e.doctor("doctor-netns", imgBerth, []string{"--network", "container:" + b.Name}, "--listen", ":3000",
		"http://"+b.Name+":3000/healthz")
	wantHealthy(t, r)

	// docker cp + docker exec into a running scratch container (no shell, no
	// tar): the image without a CA bundle, running berth as the "app".
	app := e.start("app", "--network", nw, imgNoCerts, "proxy", "--upstream", "off")
	e.docker(time.Minute, "cp", berthBin, app.Name+":/berth-doctor")
	out, err := exec.Command("docker", "exec", "-e", "GOPROXY=off", "-e", "GOSUMDB=off",
		app.Name, "/berth-doctor", "doctor", "--json", "--listen", ":3000").Output()
	var rep report
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		t.Fatalf("docker exec berth doctor: %v, %v\n%s", err, jerr, out)
	}
	t.Logf("doctor by docker cp + exec: %s", &rep)
	// It sees the app's own file system: no CA bundle there.
	if rep.Facts.CA.Loaded != 0 || len(rep.Findings) == 0 || rep.Findings[0].ID != "tls.no-roots" || rep.Findings[0].Severity != "warn" {
		t.Errorf("want the warning tls.no-roots first (no HTTPS target) from the app's file system\n%s", &rep)
	}
}
