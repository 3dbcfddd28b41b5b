// Package s3test starts real S3-compatible servers on loopback for tests and
// benchmarks of the S3 store: MinIO and versitygw, built from their Go
// modules (./test.sh builds them once into a cache directory and exports
// BERTH_MINIO and BERTH_VERSITYGW).
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Kind names a server.
type Kind string

// The servers, each built by the go install command in Install.
const (
	MinIO     Kind = "minio"
	Versitygw Kind = "versitygw"
)

// Kinds lists every server.
var Kinds = []Kind{MinIO, Versitygw}

// Install is how each server is built.
var Install = map[Kind]string{
	MinIO:     "go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c",
	Versitygw: "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0",
}

// Env is the environment variable naming each server's binary.
var Env = map[Kind]string{MinIO: "BERTH_MINIO", Versitygw: "BERTH_VERSITYGW"}

// Binary returns the path of kind's server: $BERTH_MINIO or
// $BERTH_VERSITYGW, else the command on PATH. The error says how to get it.
func Binary(kind Kind) (string, error) {
	if p := os.Getenv(Env[kind]); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", Env[kind], p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath(string(kind)); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no %s server: set %s to its binary, put it on PATH, or run ./test.sh, which builds it (%s)", kind, Env[kind], Install[kind])
}

// Server is a running S3-compatible server.
type Server struct {
	Kind           Kind
	Endpoint       string // http://127.0.0.1:PORT
	Access, Secret string

	bin, dir    string
	addr        string // Endpoint's host:port, kept by Restart
	consolePort int    // MinIO's console, kept by Restart
	out         *bytes.Buffer

	pmu  sync.Mutex // guards cmd and done, replaced by Restart
	cmd  *exec.Cmd
	done chan struct{}
}

var buckets atomic.Int64

// Start starts kind's server with its data in dir (an empty directory) and
// waits until it answers.
func Start(ctx context.Context, kind Kind, dir string) (*Server, error) {
	bin, err := Binary(kind)
	if err != nil {
		return nil, err
	}
	switch kind {
	case MinIO, Versitygw:
	default:
		return nil, fmt.Errorf("unknown server %q", kind)
	}
	s := &Server{Kind: kind, Access: "berthtest", Secret: "berthtest-secret-key", out: &bytes.Buffer{}, bin: bin, dir: dir}
	var lastErr error
	for range 3 { // a port picked free may be taken before the server binds it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.addr = "127.0.0.1:" + strconv.Itoa(port)
		s.Endpoint = "http://" + s.addr
		if kind == MinIO {
			if s.consolePort, err = freePort(); err != nil {
				return nil, err
			}
		}
		mu.Lock()
		s.out.Reset()
		mu.Unlock()
		if lastErr = s.launch(ctx); lastErr == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%s did not start: %w; its output:\n%s", kind, lastErr, s.Output())
}

// Restart starts the server again after Stop, on the same address and data
// directory (what it stored is still there), and waits until it answers. It
// tries a few times while the address is still held by the last process.
func (s *Server) Restart(ctx context.Context) error {
	var lastErr error
	for range 5 {
		if lastErr = s.launch(ctx); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not start again on %s: %w; its output:\n%s", s.Kind, s.addr, lastErr, s.Output())
}

// launch starts the server process on s.addr and waits until it answers;
// on failure the process is stopped.
func (s *Server) launch(ctx context.Context) error {
	var cmd *exec.Cmd
	switch s.Kind {
	case MinIO:
		cmd = exec.Command(s.bin, "server", s.dir, "--address", s.addr, "--console-address", "127.0.0.1:"+strconv.Itoa(s.consolePort), "--quiet")
		cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.Access, "MINIO_ROOT_PASSWORD="+s.Secret,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	case Versitygw:
		cmd = exec.Command(s.bin, "--access", s.Access, "--secret", s.Secret, "--port", s.addr, "posix", s.dir)
		cmd.Env = os.Environ()
	}
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: s.out}, &lockedWriter{w: s.out}
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.pmu.Lock()
	s.cmd, s.done = cmd, done
	s.pmu.Unlock()
	if err := s.wait(ctx, s.addr, done); err != nil {
		s.Stop()
		return err
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// wait polls until the server answers HTTP, exits, or 60 seconds pass.
func (s *Server) wait(ctx context.Context, addr string, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil // any answer, 403 included: it speaks HTTP
		}
		select {
		case <-done:
			return errors.New("it exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Output returns what the server printed so far.
func (s *Server) Output() string {
	mu.Lock()
	defer mu.Unlock()
	return s.out.String()
}

// Stop stops the server (SIGINT, then SIGKILL after 5 seconds) and waits
// for it. Restart starts it again; Stop of a stopped server does nothing.
func (s *Server) Stop() {
	s.pmu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.pmu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Kill stops the server with SIGKILL, as a crash or a lost machine would,
// and waits for it. Restart starts it again.
func (s *Server) Kill() {
	s.pmu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.pmu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Client returns a minio-go client of the server with its credentials,
// addressing buckets path-style, for tests that make buckets or look into
// them.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(s.Access, s.Secret, ""), BucketLookup: minio.BucketLookupPath})
}

// BucketName returns a new bucket name, unique in this process.
func BucketName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), buckets.Add(1))
}

// DataDir returns a directory for a server's data under parent.
func DataDir(parent string, kind Kind) string { return filepath.Join(parent, string(kind)) }

var mu sync.Mutex

type lockedWriter struct{ w *bytes.Buffer }

func (l *lockedWriter) Write(b []byte) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if l.w.Len() > 1<<20 {
		return len(b), nil
	}
	return l.w.Write(b)
}
