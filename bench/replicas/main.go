// Command replicas benchmarks berth as a replicated service (issue 14): three
// berth proxies on one MinIO bucket with a Redis lease behind Debian's nginx,
// all on loopback, upstream a counting fixture proxy (internal/testmod, with a
// test checksum database) serving a generated graph. It prints the figures it
// is judged by:
//
//   - cold: N go commands at once (default 8, each with a cold module cache)
//     run `go mod download all` and `go mod verify` through nginx; upstream
//     fetches per file (fetches / distinct files fetched, .info, .mod and
//     .zip) must be at most 1.05. Then one round without --lease, the
//     control, where each replica fetches on its own: what the lease saves,
//     and proof that the count sees duplicate fetches.
//   - warm .mod: wrk against nginx with one replica behind it (A) and with
//     three, sent the same connections (B) or three times as many (C, as
//     many per replica as A). On two cores wrk and the balancer, not the
//     replicas, set the req/s, so the scaling figure comes from the replicas'
//     CPU per request (utime+stime from /proc/PID/stat before and after each
//     run, divided by the requests each answered, from its /metrics): three
//     replicas, each on a core of its own, serve 3 x cpu(A)/cpu(B or C) times
//     what one does (target >= 2.5), if the balancer keeps up and nothing
//     they share is loaded (the warm path reaches neither MinIO nor Redis:
//     their CPU is printed). The three share cpu 1 here, which costs them
//     some CPU per request (switching between them, a third of the load
//     each): the figure is low rather than high. The raw req/s are printed
//     too, with wrk and nginx pinned to cpu 0 and every replica to cpu 1
//     (taskset): not a scaling figure, since the replicas share one core.
//
// bench/replicas/run.sh builds berth, waits for MinIO, runs this and then
// go run ./bench/s3 (the S3-vs-disk warm-file figures).
//
//	go run ./bench/replicas -berth /tmp/berth [-rounds 5] [-wrk-rounds 8] [-dur 5s]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store/s3/s3test"
)

type bench struct {
	ps       procs
	out      string
	berth    string
	goBin    string
	gocache  string
	mcBase   string
	g        *graph
	up       *testmod.Upstream
	minio    *s3test.Server
	redis    string
	redisP   *proc
	minioPID int
	bucket   string
	replicas int
	prefix   string // the last cold round's bucket prefix: it holds every file
	lastCold string // what the last cold round printed
}

func main() {
	berthBin := flag.String("berth", "", "berth binary (default: build ./cmd/berth)")
	outDir := flag.String("out", "", "working directory (default: a new one under /tmp, removed at the end)")
	leaves := flag.Int("leaves", 40, "leaf modules in the generated graph (about 1.7 module versions each in all)")
	clients := flag.Int("clients", 8, "cold go commands at once")
	rounds := flag.Int("rounds", 5, "cold rounds (each on a new bucket prefix, with fresh replicas)")
	wrkRounds := flag.Int("wrk-rounds", 8, "warm .mod rounds (configurations A, B, C in rotated order)")
	dur := flag.Duration("dur", 5*time.Second, "duration of each wrk run")
	conns := flag.Int("conns", 64, "wrk connections")
	delay := flag.Duration("delay", 20*time.Millisecond, "latency the fixture upstream adds to each module file (a distant upstream: cold misses overlap)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench/replicas: ")

	b := &bench{berth: *berthBin, replicas: 3}
	var err error
	if *outDir == "" {
		if b.out, err = os.MkdirTemp("", "berth-bench-replicas-"); err != nil {
			log.Fatal(err)
		}
	} else {
		b.out = *outDir
		os.MkdirAll(b.out, 0o755)
	}
	// Module caches in memory (tmpfs) where there is one: extracting every zip
	// 8 times is the same disk work for every variant and only adds noise.
	if b.mcBase, err = os.MkdirTemp("/dev/shm", "berth-bench-replicas-mc-"); err != nil {
		b.mcBase = filepath.Join(b.out, "mc")
	}
	code := 0
	func() {
		defer func() {
			b.ps.stopAll()
			if b.minio != nil {
				b.minio.Stop()
			}
			if b.up != nil {
				b.up.Close()
			}
			removeAll(b.mcBase)
			if *outDir == "" {
				removeAll(b.out)
			}
		}()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			if _, ok := <-sig; ok {
				log.Print("signal: stopping")
				cancel()
			}
		}()
		defer signal.Stop(sig)
		if err := b.setup(ctx, *leaves, *delay); err != nil {
			log.Print(err)
			code = 1
			return
		}
		if err := b.cold(ctx, *clients, *rounds); err != nil {
			log.Print(err)
			code = 1
			return
		}
		if err := b.warm(ctx, *wrkRounds, *dur, *conns); err != nil {
			log.Print(err)
			code = 1
		}
	}()
	os.Exit(code)
}

func (b *bench) setup(ctx context.Context, leaves int, delay time.Duration) error {
	for _, c := range []string{"redis-server", "wrk", "taskset"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s is required (Debian: apt-get install redis-server wrk util-linux)", c)
		}
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			return errors.New("nginx is required (Debian: apt-get install nginx-light)")
		}
	}
	var err error
	if b.goBin, err = exec.LookPath("go"); err != nil {
		return errors.New("the go command is required")
	}
	gc, err := exec.Command(b.goBin, "env", "GOCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env GOCACHE: %w", err)
	}
	b.gocache = strings.TrimSpace(string(gc))
	if b.berth == "" {
		b.berth = filepath.Join(b.out, "berth")
		cmd := exec.Command(b.goBin, "build", "-o", b.berth, "github.com/berth-dev/berth/cmd/berth")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building berth: %v\n%s", err, out)
		}
	}
	if os.Getenv(s3test.Env[s3test.MinIO]) == "" {
		if home, err := os.UserHomeDir(); err == nil {
			os.Setenv(s3test.Env[s3test.MinIO], filepath.Join(home, ".cache/berth-ci/bin/minio"))
		}
	}

	if b.g, err = makeGraph(leaves); err != nil {
		return fmt.Errorf("generating the graph: %w", err)
	}
	if b.up, err = testmod.ServeBuilt(filepath.Join(b.out, "upstream"), "sum.berth.test", b.g.built); err != nil {
		return fmt.Errorf("fixture upstream: %w", err)
	}
	b.up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/@v/") {
			time.Sleep(delay)
		}
		return false
	})

	dir := s3test.DataDir(b.out, s3test.MinIO)
	os.MkdirAll(dir, 0o755)
	if b.minio, err = s3test.Start(ctx, s3test.MinIO, dir); err != nil {
		return err
	}
	mc, err := minio.New(strings.TrimPrefix(b.minio.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(b.minio.Access, b.minio.Secret, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return err
	}
	b.bucket = "bench"
	if err := mc.MakeBucket(ctx, b.bucket, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("making bucket %s: %w", b.bucket, err)
	}
	if b.minioPID = childNamed("minio"); b.minioPID == 0 {
		return errors.New("cannot find MinIO's process")
	}
	if b.redis, b.redisP, err = b.ps.startRedis(b.out); err != nil {
		return err
	}
	fmt.Printf("graph: %d module versions, %.1f MB of zips; fixture upstream adds %s per module file; %d cores\n",
		len(b.g.built), float64(b.g.zipBytes)/(1<<20), delay, runtime.NumCPU())
	return nil
}

// startReplicas starts the replicas on the bucket's prefix, each with a new
// local cache, pinned to cpus if not empty, sharing the Redis lease if lease.
func (b *bench) startReplicas(tag, prefix, cpus string, lease bool) ([]*replica, error) {
	env := []string{"AWS_ACCESS_KEY_ID=" + b.minio.Access, "AWS_SECRET_ACCESS_KEY=" + b.minio.Secret,
		"BERTH_PRIVATE=", "GOPRIVATE=", "GONOSUMDB=", "GONOPROXY=", "GOFLAGS="}
	var rs []*replica
	for i := range b.replicas {
		name := fmt.Sprintf("%s-replica%d", tag, i)
		cache := filepath.Join(b.out, name+"-cache")
		args := []string{"--upstream", b.up.URL(), "--sumdb", b.up.GOSUMDB(),
			"--store", fmt.Sprintf("s3://%s/%s?endpoint=%s&cache=%s", b.bucket, prefix, b.minio.Endpoint, cache)}
		if lease {
			args = append(args, "--lease", "redis://"+b.redis)
		}
		r, err := b.ps.startReplica(b.out, name, cpus, b.berth, env, args...)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// client runs `go mod download all` and `go mod verify` in a home of its own
// (a cold module cache) through proxy.
func (b *bench) client(ctx context.Context, proxy, home string) error {
	main := filepath.Join(home, "main")
	if err := os.MkdirAll(main, 0o755); err != nil {
		return err
	}
	os.WriteFile(filepath.Join(main, "go.mod"), []byte(b.g.gomod), 0o644)
	os.WriteFile(filepath.Join(main, "go.sum"), []byte(b.g.gosum), 0o644)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOPATH=" + filepath.Join(home, "gopath"),
		"GOMODCACHE=" + filepath.Join(home, "modcache"), "GOCACHE=" + b.gocache, "GOENV=off",
		"GOPROXY=" + proxy, "GOSUMDB=" + b.up.GOSUMDB(), "GOFLAGS=-modcacherw", "GONOSUMDB=", "GOPRIVATE=",
		"GONOPROXY=", "GOINSECURE=", "GOTOOLCHAIN=local", "GOTELEMETRY=off"}
	if out, err := run(ctx, main, env, b.goBin, "mod", "download", "all"); err != nil {
		return fmt.Errorf("go mod download all: %v\n%s", err, out)
	}
	out, err := run(ctx, main, env, b.goBin, "mod", "verify")
	if err != nil || !strings.Contains(out, "all modules verified") {
		return fmt.Errorf("go mod verify: %v: %s", err, out)
	}
	return nil
}

// fetchCounts sums the upstream's module-file requests between two
// snapshots, by extension.
type fetchCounts struct {
	fetches, files map[string]int
	most           int
}

func countFetches(before, after map[string]int) fetchCounts {
	fc := fetchCounts{fetches: map[string]int{}, files: map[string]int{}}
	for p, n := range after {
		ext := path.Ext(p)
		if !strings.Contains(p, "/@v/") || (ext != ".info" && ext != ".mod" && ext != ".zip") {
			continue
		}
		d := n - before[p]
		if d <= 0 {
			continue
		}
		fc.fetches[ext] += d
		fc.files[ext]++
		fc.most = max(fc.most, d)
	}
	return fc
}

func (fc fetchCounts) total() (fetches, files int) {
	for ext, n := range fc.fetches {
		fetches += n
		files += fc.files[ext]
	}
	return
}

// cold runs the cold rounds, then one without --lease, the control: it shows
// what the lease saves and that the count would see duplicate fetches.
func (b *bench) cold(ctx context.Context, clients, rounds int) error {
	fmt.Printf("\n== %d cold clients at once through nginx and %d replicas (S3 store on MinIO, Redis lease), %d rounds\n", clients, b.replicas, rounds)
	var perFile []float64
	for round := 1; round <= rounds; round++ {
		r, err := b.coldRound(ctx, fmt.Sprintf("cold%d", round), fmt.Sprintf("r%d", round), clients, true)
		if err != nil {
			return fmt.Errorf("cold round %d: %w", round, err)
		}
		b.prefix = fmt.Sprintf("r%d", round)
		perFile = append(perFile, r)
		fmt.Printf("round %d: %s\n", round, b.lastCold)
	}
	fmt.Printf("upstream fetches per file, median of %d rounds: %.3f (target <= 1.05)\n", rounds, median(perFile))
	if _, err := b.coldRound(ctx, "control", "control", clients, false); err != nil {
		return fmt.Errorf("control round: %w", err)
	}
	fmt.Printf("control, the same without --lease (each replica fetches on its own): %s\n", b.lastCold)
	return nil
}

// coldRound starts fresh replicas on a new prefix with nginx in front, runs
// the clients at once, stops them all and returns the upstream fetches per
// file; b.lastCold describes the round.
func (b *bench) coldRound(ctx context.Context, tag, prefix string, clients int, lease bool) (float64, error) {
	if err := flushRedis(b.redis); err != nil {
		return 0, err
	}
	rs, err := b.startReplicas(tag, prefix, "", lease)
	if err != nil {
		return 0, err
	}
	var backends []string
	for _, r := range rs {
		backends = append(backends, r.addr)
	}
	lb, ngx, err := b.ps.startNginx(b.out, tag+"-nginx", "", backends)
	if err != nil {
		return 0, err
	}
	before := b.up.Counts()
	start := time.Now()
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		home := filepath.Join(b.mcBase, fmt.Sprintf("%s-client%d", tag, i))
		wg.Go(func() { errs[i] = b.client(ctx, "http://"+lb, home) })
	}
	wg.Wait()
	wall := time.Since(start)
	fc := countFetches(before, b.up.Counts())
	b.ps.stopOne(ngx)
	for _, r := range rs {
		b.ps.stopOne(r.proc)
	}
	entries, _ := os.ReadDir(b.mcBase)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(b.mcBase, e.Name()))
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	f, n := fc.total()
	perFile := float64(f) / float64(n)
	b.lastCold = fmt.Sprintf("%.1fs; upstream fetches/files: .info %d/%d, .mod %d/%d, .zip %d/%d; all %d/%d = %.3f per file (most for one file: %d); go mod verify clean in all %d",
		wall.Seconds(), fc.fetches[".info"], fc.files[".info"], fc.fetches[".mod"], fc.files[".mod"],
		fc.fetches[".zip"], fc.files[".zip"], f, n, perFile, fc.most, clients)
	return perFile, nil
}

// wrkRun is one measured wrk run through one balancer.
type wrkRun struct {
	rps, requests  float64
	replicaReq     []float64 // .mod requests each replica answered 200
	replicaCPU     []float64 // CPU seconds each replica used
	nginxCPU, wrkC float64
	sharedCPU      float64 // MinIO and Redis
	secs           float64
}

func (w wrkRun) replicaCPUPerReq() float64 {
	var c, n float64
	for i := range w.replicaCPU {
		c += w.replicaCPU[i]
		n += w.replicaReq[i]
	}
	return c / n
}

var (
	reqsRE = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(m?s)`)
	rpsRE  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	badRE  = regexp.MustCompile(`(Non-2xx or 3xx responses|Socket errors): .*`)
)

// measure runs wrk on url (pinned to cpus) and reads the replicas' and the
// balancer's CPU and the replicas' request counts around it. Counters are
// read outside the CPU window: /metrics costs CPU too.
func (b *bench) measure(ctx context.Context, rs []*replica, ngx *proc, url, cpus string, dur time.Duration, conns int) (wrkRun, error) {
	var w wrkRun
	n := len(rs)
	req0, cpu0 := make([]float64, n), make([]float64, n)
	w.replicaReq, w.replicaCPU = make([]float64, n), make([]float64, n)
	var err error
	for i, r := range rs {
		if req0[i], err = r.modRequests(); err != nil {
			return w, err
		}
	}
	for i, r := range rs {
		if cpu0[i], err = cpuSeconds(r.pid()); err != nil {
			return w, err
		}
	}
	ngx0, err := treeCPU(ngx.pid())
	if err != nil {
		return w, err
	}
	sh0, err := b.sharedCPU()
	if err != nil {
		return w, err
	}
	argv := []string{"wrk", "-t1", "-c" + strconv.Itoa(conns), "-d" + dur.String(), url}
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return w, fmt.Errorf("wrk: %v\n%s", err, out.String())
	}
	for i, r := range rs {
		c, err := cpuSeconds(r.pid())
		if err != nil {
			return w, err
		}
		w.replicaCPU[i] = c - cpu0[i]
	}
	ngx1, err := treeCPU(ngx.pid())
	if err != nil {
		return w, err
	}
	w.nginxCPU = ngx1 - ngx0
	sh1, err := b.sharedCPU()
	if err != nil {
		return w, err
	}
	w.sharedCPU = sh1 - sh0
	for i, r := range rs {
		c, err := r.modRequests()
		if err != nil {
			return w, err
		}
		w.replicaReq[i] = c - req0[i]
	}
	w.wrkC = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	s := out.String()
	if m := badRE.FindString(s); m != "" {
		return w, fmt.Errorf("wrk on %s: %s\n%s", url, m, s)
	}
	m := reqsRE.FindStringSubmatch(s)
	r := rpsRE.FindStringSubmatch(s)
	if m == nil || r == nil {
		return w, fmt.Errorf("wrk output not understood:\n%s", s)
	}
	w.requests, _ = strconv.ParseFloat(m[1], 64)
	w.secs, _ = strconv.ParseFloat(m[2], 64)
	if m[3] == "ms" {
		w.secs /= 1000
	}
	w.rps, _ = strconv.ParseFloat(r[1], 64)
	return w, nil
}

// sharedCPU is the CPU seconds of MinIO and Redis, which every replica uses.
func (b *bench) sharedCPU() (float64, error) {
	m, err := cpuSeconds(b.minioPID)
	if err != nil {
		return 0, err
	}
	r, err := cpuSeconds(b.redisP.pid())
	return m + r, err
}

// warm compares one replica and three behind the same kind of balancer on
// the warm .mod path.
func (b *bench) warm(ctx context.Context, rounds int, dur time.Duration, conns int) error {
	lbCPU, replicaCPU := "0", "1"
	if runtime.NumCPU() < 2 {
		lbCPU, replicaCPU = "", ""
	}
	// The last cold round's prefix holds every file; new replicas, pinned,
	// with cold local caches that the warm-up fills.
	rs, err := b.startReplicas("warm", b.prefix, replicaCPU, true)
	if err != nil {
		return err
	}
	lb1, ngx1, err := b.ps.startNginx(b.out, "warm-nginx1", lbCPU, []string{rs[0].addr})
	if err != nil {
		return err
	}
	var all []string
	for _, r := range rs {
		all = append(all, r.addr)
	}
	lb3, ngx3, err := b.ps.startNginx(b.out, "warm-nginx3", lbCPU, all)
	if err != nil {
		return err
	}
	var want []byte
	var modPath string
	for _, bt := range b.g.built {
		if bt.Path == "example.test/mid0" {
			want, modPath = bt.Mod, "/"+bt.Path+"/@v/"+bt.Version.Version+".mod"
		}
	}
	for _, lb := range []string{lb1, lb3} {
		for range 6 {
			got, err := get("http://" + lb + modPath)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("%s%s: got %q, want the generated go.mod", lb, modPath, got)
			}
		}
	}
	before := b.up.Counts()
	// Warm-up runs, not measured.
	if _, err := b.measure(ctx, rs[:1], ngx1, "http://"+lb1+modPath, lbCPU, time.Second, conns); err != nil {
		return err
	}
	if _, err := b.measure(ctx, rs, ngx3, "http://"+lb3+modPath, lbCPU, time.Second, conns); err != nil {
		return err
	}
	// What MinIO and Redis use with no load, to compare with their CPU
	// during the runs.
	idle0, err := b.sharedCPU()
	if err != nil {
		return err
	}
	const idleSecs = 5
	time.Sleep(idleSecs * time.Second)
	idle1, err := b.sharedCPU()
	if err != nil {
		return err
	}
	idleShared := idle1 - idle0
	pin := "unpinned (fewer than 2 cores)"
	if lbCPU != "" {
		pin = "wrk and nginx pinned to cpu 0, every replica to cpu 1"
	}
	fmt.Printf("\n== warm .mod (%d bytes) through nginx: 1 replica vs %d, wrk -t1 -d%s, %s; %d rounds, the order rotated\n",
		len(want), b.replicas, dur, pin, rounds)
	fmt.Printf("   configs: A = 1 replica, -c%d; B = 3 replicas, -c%d (the same clients); C = 3 replicas, -c%d (as many connections per replica as A)\n",
		conns, conns, 3*conns)
	type config struct {
		name  string
		rs    []*replica
		ngx   *proc
		url   string
		conns int
		runs  []wrkRun
	}
	cfgs := []*config{
		{name: "A", rs: rs[:1], ngx: ngx1, url: "http://" + lb1 + modPath, conns: conns},
		{name: "B", rs: rs, ngx: ngx3, url: "http://" + lb3 + modPath, conns: conns},
		{name: "C", rs: rs, ngx: ngx3, url: "http://" + lb3 + modPath, conns: 3 * conns},
	}
	var impliedB, impliedC, rawB, rawC []float64
	for round := 1; round <= rounds; round++ {
		for k := range cfgs {
			c := cfgs[(k+round-1)%len(cfgs)]
			w, err := b.measure(ctx, c.rs, c.ngx, c.url, lbCPU, dur, c.conns)
			if err != nil {
				return err
			}
			c.runs = append(c.runs, w)
		}
		a, bb, cc := cfgs[0].runs[round-1], cfgs[1].runs[round-1], cfgs[2].runs[round-1]
		impliedB = append(impliedB, 3*a.replicaCPUPerReq()/bb.replicaCPUPerReq())
		impliedC = append(impliedC, 3*a.replicaCPUPerReq()/cc.replicaCPUPerReq())
		rawB, rawC = append(rawB, bb.rps/a.rps), append(rawC, cc.rps/a.rps)
		fmt.Printf("round %d:", round)
		for i, c := range cfgs {
			w := c.runs[round-1]
			var share []string
			for _, n := range w.replicaReq {
				share = append(share, fmt.Sprintf("%.0f%%", 100*n/sum(w.replicaReq)))
			}
			sep := ";"
			if i == len(cfgs)-1 {
				sep = ""
			}
			fmt.Printf(" %s %.0f req/s, replica %.1f µs CPU/req (cpu 1 %.0f%% busy, requests %s), nginx %.1f + wrk %.1f µs/req%s",
				c.name, w.rps, 1e6*w.replicaCPUPerReq(), 100*sum(w.replicaCPU)/w.secs, strings.Join(share, "/"),
				1e6*w.nginxCPU/w.requests, 1e6*w.wrkC/w.requests, sep)
		}
		fmt.Printf("\n         implied scaling B %.2fx, C %.2fx; raw req/s B/A %.2f, C/A %.2f\n",
			impliedB[round-1], impliedC[round-1], rawB[round-1], rawC[round-1])
	}
	fc := countFetches(before, b.up.Counts())
	if f, _ := fc.total(); f != 0 {
		return fmt.Errorf("warm runs fetched %d files from the upstream; want none", f)
	}
	med := func(c *config, f func(wrkRun) float64) float64 { return median(mapf(c.runs, f)) }
	rps := func(w wrkRun) float64 { return w.rps }
	cpr := func(w wrkRun) float64 { return w.replicaCPUPerReq() * 1e6 }
	lbc := func(w wrkRun) float64 { return 1e6 * (w.nginxCPU + w.wrkC) / w.requests }
	ca, cb, cc := med(cfgs[0], cpr), med(cfgs[1], cpr), med(cfgs[2], cpr)
	fmt.Printf("replica CPU per warm .mod request, median of %d: A (1 replica) %.1f µs, B (each of 3, same clients) %.1f µs (%.3f x A), C (each of 3, 3x the clients) %.1f µs (%.3f x A)\n",
		rounds, ca, cb, cb/ca, cc, cc/ca)
	fmt.Printf("implied scaling, 3 replicas on a core each vs 1 on one core, = 3 x CPU/req(A) / CPU/req(3 replicas), per-round pairs, median (target >= 2.5):\n")
	fmt.Printf("  with 3x the clients (C): %.2fx; with the same clients (B): %.2fx\n", median(impliedC), median(impliedB))
	fmt.Printf("  one replica's capacity on one core: %.0f req/s (1 / its CPU per request)\n", 1e6/ca)
	var runs []wrkRun
	for _, c := range cfgs {
		runs = append(runs, c.runs...)
	}
	shared := sum(mapf(runs, func(w wrkRun) float64 { return w.sharedCPU }))
	secs := sum(mapf(runs, func(w wrkRun) float64 { return w.secs }))
	replicasCPU := sum(mapf(runs, func(w wrkRun) float64 { return sum(w.replicaCPU) }))
	idle := idleShared * secs / idleSecs
	fmt.Printf("  MinIO and Redis, shared by the replicas: %.2f CPU seconds in the %d measured runs (%.0f s, %.0f requests), %.2f s in as long idle before them;\n"+
		"  above idle, %.1f%% of the replicas' %.1f s: nothing they share is loaded (a warm hit reads the local cache, not the bucket)\n",
		shared, len(runs), secs, sum(mapf(runs, func(w wrkRun) float64 { return w.requests })), idle,
		100*max(shared-idle, 0)/replicasCPU, replicasCPU)
	fmt.Printf("raw req/s through nginx, pinned, median: A %.0f, B %.0f (B/A %.2f), C %.0f (C/A %.2f): all three replicas share cpu 1 here, so this is not a scaling figure\n",
		med(cfgs[0], rps), med(cfgs[1], rps), median(rawB), med(cfgs[2], rps), median(rawC))
	fmt.Printf("  cpu 0, balancer + load generator: nginx + wrk %.1f µs CPU per request (A), %.1f (B), %.1f (C): one core of them carries about %.0f req/s, one replica's core %.0f: on 2 cores the balancer and wrk are the limit\n",
		med(cfgs[0], lbc), med(cfgs[1], lbc), med(cfgs[2], lbc), 1e6/med(cfgs[1], lbc), 1e6/ca)
	return nil
}

// removeAll removes dir, trying again a little later if a server that has
// just stopped was still writing in it (seen once with MinIO).
func removeAll(dir string) {
	for range 3 {
		if err := os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	log.Printf("could not remove %s", dir)
}

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, err
}

func mapf[T any](v []T, f func(T) float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = f(x)
	}
	return out
}

func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
