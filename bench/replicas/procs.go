package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs owns every process the benchmark starts; stopAll ends them all, on
// the way out and on SIGINT/SIGTERM.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// proc is one started process. done is closed when it has exited.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// start runs argv with its output in dir/name.log. Pinned to cpus when cpus
// is not empty (taskset, which execs the command: the pid is the command's).
func (ps *procs) start(dir, name, cpus string, env []string, argv ...string) (*proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	logPath := filepath.Join(dir, name+".log")
	out, err := os.Create(logPath) // a file: nginx's workers hold no pipe of ours
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	// If the benchmark dies without cleaning up, its servers go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits for the exit, killing after 10 seconds.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// output returns the end of the process's log, for error messages.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stopAll stops every process still running, the last started first.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		select {
		case <-list[i].done:
		default:
			list[i].stop()
		}
	}
}

// stopOne stops p and forgets it.
func (ps *procs) stopOne(p *proc) {
	p.stop()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i, q := range ps.list {
		if q == p {
			ps.list = append(ps.list[:i], ps.list[i+1:]...)
			break
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(p *proc, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.name, p.output())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on %s: %s", p.name, addr, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startRedis runs Debian's redis-server on loopback without persistence.
func (ps *procs) startRedis(dir string) (string, *proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	p, err := ps.start(dir, "redis", "", nil, "redis-server", "--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no")
	if err != nil {
		return "", nil, err
	}
	return addr, p, waitTCP(p, addr)
}

// flushRedis empties Redis between rounds, so that no lease outlives its round.
func flushRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$8\r\nFLUSHALL\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+OK") {
		return fmt.Errorf("redis FLUSHALL: %q", line)
	}
	return nil
}

// nginxConf balances round robin with kept-alive upstream connections (as a
// production balancer would: a new connection per request would bill every
// replica a TCP handshake per request).
const nginxConf = `%s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[2]s/tmp;
	proxy_temp_path %[2]s/tmp;
	fastcgi_temp_path %[2]s/tmp;
	uwsgi_temp_path %[2]s/tmp;
	scgi_temp_path %[2]s/tmp;
	upstream berth {
%[3]s		keepalive 1024;
	}
	server {
		listen %[4]s;
		keepalive_requests 1000000;
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

// startNginx runs Debian's nginx (one worker) in front of backends, pinned
// to cpus when not empty, and returns its address.
func (ps *procs) startNginx(dir, name, cpus string, backends []string) (string, *proc, error) {
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Join(d, "tmp"), 0o755); err != nil {
		return "", nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	var servers strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&servers, "\t\tserver %s;\n", b)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, user, d, servers.String(), addr), 0o644); err != nil {
		return "", nil, err
	}
	bin := "nginx"
	if _, err := exec.LookPath(bin); err != nil {
		bin = "/usr/sbin/nginx"
	}
	p, err := ps.start(dir, name, cpus, nil, bin, "-p", d, "-e", filepath.Join(d, "error.log"), "-c", conf)
	if err != nil {
		return "", nil, err
	}
	return addr, p, waitTCP(p, addr)
}

// replica is a running berth proxy.
type replica struct {
	*proc
	addr string
}

// startReplica runs berth proxy on a free loopback port with args.
func (ps *procs) startReplica(dir, name, cpus, bin string, env []string, args ...string) (*replica, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	argv := append([]string{bin, "proxy", "--listen", addr, "--drain-delay", "0", "--log-level", "warn"}, args...)
	p, err := ps.start(dir, name, cpus, env, argv...)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return &replica{p, addr}, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited: %s", name, p.output())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not healthy on %s: %s", name, addr, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// modRequests returns the replica's count of .mod requests answered 200.
func (r *replica) modRequests() (float64, error) {
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "berth_proxy_requests_total{") && strings.Contains(l, `endpoint="mod"`) && strings.Contains(l, `code="200"`) {
			f := strings.Fields(l)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return 0, fmt.Errorf("metrics line %q: %w", l, err)
			}
			n += v
		}
	}
	return n, sc.Err()
}

// clkTck is USER_HZ, the unit of /proc/PID/stat's times (100 on Linux).
const clkTck = 100

// cpuSeconds returns utime+stime of pid from /proc/PID/stat: every thread's
// CPU time, user and kernel.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the command come state (field 3) ... utime (14), stime (15).
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return (u + s) / clkTck, nil
}

// treeCPU returns the CPU seconds of pid and its children (nginx's master
// and workers).
func treeCPU(pid int) (float64, error) {
	total, err := cpuSeconds(pid)
	if err != nil {
		return 0, err
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			c, err := cpuSeconds(child)
			if err == nil {
				total += c
			}
		}
	}
	return total, nil
}

// childNamed returns the pid of a child of this process whose command name
// is comm (MinIO, which s3test starts), or 0.
func childNamed(comm string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		if string(b[i+1:j]) == comm && len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			return pid
		}
	}
	return 0
}

// run runs a command to completion with ctx, returning its combined output.
func run(ctx context.Context, dir string, env []string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
