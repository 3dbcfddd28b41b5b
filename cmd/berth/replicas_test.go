package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/berth-dev/berth/internal/redistest"
	"github.com/berth-dev/berth/internal/testmod"
)

// nginxConf balances the replicas round robin, passing a request on to the
// next replica when one cannot be reached.
const nginxConf = `%s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[2]s/tmp;
	proxy_temp_path %[2]s/tmp;
	fastcgi_temp_path %[2]s/tmp;
	uwsgi_temp_path %[2]s/tmp;
	scgi_temp_path %[2]s/tmp;
	upstream berth {
%[3]s	}
	server {
		listen %[4]s;
		location / {
			proxy_pass http://berth;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering off;
			proxy_next_upstream error timeout;
		}
	}
}
`

// startNginx runs Debian's nginx on loopback in front of backends and returns
// its URL, or skips the test when there is no nginx.
func startNginx(t *testing.T, backends []string) string {
	t.Helper()
	url, _ := startNginxWith(t, backends, "", "")
	return url
}

// startNginxWith is startNginx with each server line ending in params and
// the upstream block ending in extra (a rolling restart needs them, see
// TestProxyRollingRestart); it returns nginx's URL and its directory
// (error.log, at level info).
func startNginxWith(t *testing.T, backends []string, params, extra string) (string, string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Skip("no nginx: install Debian's nginx to run the load-balanced replica tests")
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o755)
	addr := freeAddr(t)
	var servers strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&servers, "\t\tserver %s %s;\n", strings.TrimPrefix(b, "http://"), params)
	}
	if extra != "" {
		fmt.Fprintf(&servers, "\t\t%s\n", extra)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers read and write this test's directories
	}
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, user, dir, servers.String(), addr)), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
	out, err := os.Create(filepath.Join(dir, "nginx.out")) // a file: the workers hold no pipe of ours
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // the master stops its workers
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr, dir
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			o, _ := os.ReadFile(out.Name())
			t.Fatalf("nginx does not listen on %s: %s\n%s", addr, o, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicasBehindNginx: three berth processes share one MinIO bucket and
// a Redis lease behind nginx; 8 go commands at once run `go mod download all`
// of a generated graph through nginx, cold and then warm: the upstream sees
// every file once in all, and `go mod verify` is clean.
func TestReplicasBehindNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three berth processes, nginx, MinIO, Redis and the go command")
	}
	rs := redistest.Start(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := buildBerth(t)
	ms := minioBucket(t, "three")

	// The graph: 6 leaves, 4 modules requiring two leaves each, one on top.
	var mods []testmod.Module
	var leaves, mids []module.Version
	for i := range 6 {
		p := fmt.Sprintf("example.test/leaf%d", i)
		mods = append(mods, testmod.Module{Path: p, Version: "v1.0.0",
			Files: map[string]string{"l.go": "package leaf\n", "data.txt": strings.Repeat(fmt.Sprintf("leaf %d ", i), 20000)}})
		leaves = append(leaves, module.Version{Path: p, Version: "v1.0.0"})
	}
	for i := range 4 {
		p := fmt.Sprintf("example.test/mid%d", i)
		mods = append(mods, testmod.Module{Path: p, Version: "v1.2.0", Files: map[string]string{"m.go": "package mid\n"},
			Require: []module.Version{leaves[i], leaves[i+2]}})
		mids = append(mids, module.Version{Path: p, Version: "v1.2.0"})
	}
	mods = append(mods, testmod.Module{Path: "example.test/top", Version: "v2.0.0+incompatible", Files: map[string]string{"t.go": "package top\n"}, Require: mids})
	built, err := testmod.Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	up, err := testmod.ServeBuilt(t.TempDir(), "sum.berth.test", built)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/@v/") {
			time.Sleep(50 * time.Millisecond) // so that misses overlap across replicas
		}
		return false
	})

	env := replicaEnv(ms)
	var backends []string
	for range 3 {
		base, _, _ := startReplica(t, bin, env, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "--lease", rs.URL(),
			"--store", bucketStore(t, ms, "three"))
		backends = append(backends, base)
	}
	lb := startNginx(t, backends)

	var gomod, gosum strings.Builder
	gomod.WriteString("module example.test/main\n\ngo 1.21\n\nrequire (\n")
	for _, b := range built {
		fmt.Fprintf(&gomod, "\t%s %s\n", b.Path, b.Version.Version)
		fmt.Fprintf(&gosum, "%s %s %s\n%s %s/go.mod %s\n", b.Path, b.Version.Version, b.Sum, b.Path, b.Version.Version, b.ModSum)
	}
	gomod.WriteString(")\n")
	gocache, _ := exec.Command(goBin, "env", "GOCACHE").Output()

	// client runs the go command in a home of its own (a cold module cache).
	client := func(args ...string) func() (string, error) {
		home := t.TempDir()
		main := filepath.Join(home, "main")
		os.MkdirAll(main, 0o755)
		os.WriteFile(filepath.Join(main, "go.mod"), []byte(gomod.String()), 0o644)
		os.WriteFile(filepath.Join(main, "go.sum"), []byte(gosum.String()), 0o644)
		return func() (string, error) {
			var out bytes.Buffer
			for _, a := range [][]string{args, {"mod", "verify"}} {
				cmd := exec.Command(goBin, a...)
				cmd.Dir = main
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOPATH=" + filepath.Join(home, "gopath"),
					"GOMODCACHE=" + filepath.Join(home, "modcache"), "GOCACHE=" + strings.TrimSpace(string(gocache)),
					"GOPROXY=" + lb, "GOSUMDB=" + up.GOSUMDB(), "GOFLAGS=-modcacherw", "GONOSUMDB=", "GOPRIVATE=",
					"GONOPROXY=", "GOINSECURE=", "GOTOOLCHAIN=local", "GOTELEMETRY=off"}
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					return out.String(), fmt.Errorf("go %s: %w", strings.Join(a, " "), err)
				}
			}
			return out.String(), nil
		}
	}
	round := func(name string) {
		var wg sync.WaitGroup
		for i := range 8 {
			run := client("mod", "download", "all")
			wg.Go(func() {
				out, err := run()
				if err != nil {
					t.Errorf("%s client %d: %v\n%s", name, i, err, out)
				} else if !strings.Contains(out, "all modules verified") {
					t.Errorf("%s client %d: go mod verify said %q", name, i, out)
				}
			})
		}
		wg.Wait()
	}
	check := func(name string) {
		for _, b := range built {
			esc, _ := module.EscapePath(b.Path)
			for _, ext := range []string{".info", ".mod", ".zip"} {
				p := "/" + esc + "/@v/" + b.Version.Version + ext
				if n := up.Count(p); n != 1 {
					t.Errorf("after the %s round: upstream fetches of %s through three replicas: %d, want 1", name, p, n)
				}
			}
		}
	}
	round("cold")
	check("cold")
	round("warm")
	check("warm")
}
