// Package redistest starts a real redis-server (Debian's) on loopback for the
// lease tests; ./test.sh installs it when it is missing and it can.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running redis-server with no persistence.
type Server struct {
	Addr string // 127.0.0.1:PORT

	t    testing.TB
	bin  string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// Start starts a redis-server on a free loopback port, stopped by t.Cleanup,
// or skips the test, saying why, when there is no redis-server.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server on PATH: install Debian's redis-server (./test.sh does, as root) to run the lease tests")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{Addr: addr, t: t, bin: bin, dir: t.TempDir()}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// URL is the --lease value of the server.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Restart starts the server again on its address (after Stop) and waits
// until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	var lastErr error
	for range 3 {
		cmd := exec.Command(s.bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
			"--dir", s.dir, "--protected-mode", "no")
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			s.t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		s.mu.Lock()
		s.cmd, s.out, s.done = cmd, out, done
		s.mu.Unlock()
		if lastErr = s.wait(done); lastErr == nil {
			return
		}
		s.Stop()
		time.Sleep(200 * time.Millisecond) // the port may still be held by the last one
	}
	s.t.Fatalf("redis-server on %s: %v\n%s", s.Addr, lastErr, s.out.String())
}

// wait pings the server until it answers PONG.
func (s *Server) wait(done chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("exited")
		default:
		}
		if err := Ping(s.Addr); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not answering after 10s")
}

// Ping sends PING to addr and wants +PONG.
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING: %q", line)
	}
	return nil
}

// Stop stops the server (SIGKILL: no shutdown work to wait for) and waits.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}
