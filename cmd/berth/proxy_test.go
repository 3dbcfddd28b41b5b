package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// built is the berth binary of this test process, built at the first
// buildBerth; TestMain removes its directory.
var built struct {
	once     sync.Once
	dir, bin string
	out      []byte
	err      error
}

// buildBerth builds the berth binary once per test process (not once per
// test: under -count=30 that was 180 links) and returns its path.
func buildBerth(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "berth-test-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "berth")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// TestProxyCommandLifecycle runs the real binary: it starts, answers health
// endpoints and metrics, and on SIGTERM fails readiness, drains and exits 0.
func TestProxyCommandLifecycle(t *testing.T) {
	bin := buildBerth(t)
	store := filepath.Join(t.TempDir(), "missing", "store")
	cmd := exec.Command(bin, "proxy", "--listen", "127.0.0.1:0", "--store", store, "--drain-delay", "200ms", "--log-format", "json")
	cmd.Env = append(os.Environ(), "BERTH_UPSTREAM=off")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	var addr string
	var logs bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		logs.WriteString(line + "\n")
		if i := strings.Index(line, `"addr":"`); i >= 0 {
			addr = strings.SplitN(line[i+len(`"addr":"`):], `"`, 2)[0]
			break
		}
	}
	if addr == "" {
		t.Fatalf("no listening line in the log:\n%s", logs.String())
	}
	go io.Copy(&logs, stderr)
	base := "http://" + addr
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
	if _, err := os.Stat(store); err != nil {
		t.Fatalf("the missing store directory was not created: %v", err)
	}
	resp, _ := http.Get(base + "/example.test/x/@v/v1.0.0.zip")
	if resp == nil || resp.StatusCode != 404 {
		t.Fatalf("offline miss: %v", resp)
	}
	resp.Body.Close()

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10s after SIGTERM\n%s", logs.String())
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("exited after %v, before the drain delay", d)
	}
}

func TestProxyCommandBadInput(t *testing.T) {
	bin := buildBerth(t)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	cases := []struct {
		args []string
		env  string
		code int
		want string
	}{
		{[]string{"proxy", "--no-such-flag"}, "", 2, "--no-such-flag: no such flag"},
		{[]string{"proxy", "--upstream", "ftp://x"}, "", 2, "invalid proxy URL scheme (must be https, http, file): ftp://x"},
		{[]string{"proxy", "--upstream", "direct", "--route", "corp.example"}, "", 2, "PATTERNS=SOURCE"},
		{[]string{"proxy", "--upstream", "off", "extra"}, "", 2, "unexpected argument"},
		{[]string{"proxy", "--upstream", "off"}, "BERTH_LIST_TTL=soon", 2, "BERTH_LIST_TTL"},
		{[]string{"proxy", "--upstream", "off", "--store", filepath.Join(file, "store")}, "", 1, "cannot create directory"},
		{[]string{"proxy", "--upstream", "off", "--log-level", "loud"}, "", 2, "--log-level"},
		{[]string{"nope"}, "", 2, "unknown command"},
		{[]string{"proxy", "--upstream", "off", "--max-store-size", "lots"}, "", 2, "want a size"},
	}
	for _, c := range cases {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = append(os.Environ(), c.env)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != c.code || !strings.Contains(string(out), c.want) {
			t.Errorf("berth %v (%s): exit %d, output %q; want exit %d mentioning %q", c.args, c.env, code, out, c.code, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "1048576": 1 << 20, "500MB": 500e6, "20GiB": 20 << 30, "1.5G": 3 << 29, "64k": 64 << 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"lots", "-1GB", "GB", "1e30TB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) succeeded", bad)
		}
	}
}
