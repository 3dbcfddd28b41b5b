package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
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

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store"
)

// startBerthProc runs the berth binary as a proxy and returns its base URL.
func startBerthProc(t *testing.T, bin string, args ...string) (*exec.Cmd, string, *syncWriter) {
	t.Helper()
	logs := &syncWriter{}
	cmd := exec.Command(bin, append([]string{"proxy", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s := logs.String()
		if i := strings.Index(s, `"addr":"`); i >= 0 {
			return cmd, "http://" + strings.SplitN(s[i+len(`"addr":"`):], `"`, 2)[0], logs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("berth did not start:\n%s", logs.String())
	return nil, "", nil
}

// syncWriter is a log buffer written by the child's stderr copier and read by the test.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKill9DuringFetch kills berth with SIGKILL in the middle of a large
// upstream fetch: the store keeps no partial file under the key, the restart
// needs no repair (it removes the stray temporary file), and go mod download
// and go mod verify through the restarted berth succeed.
func TestKill9DuringFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the berth binary and the go command")
	}
	bin := buildBerth(t)
	blob := make([]byte, 512<<10) // larger than what berth writes before the hook stops the body halfway
	rand.Read(blob)
	mods := []testmod.Module{{Path: "example.test/big", Version: "v1.0.0", Files: map[string]string{"big.go": "package big\n", "blob.bin": string(blob)}}}
	built, err := testmod.Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	up, err := testmod.ServeBuilt(t.TempDir(), "sum.berth.test", built)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	const zipPath = "/example.test/big/@v/v1.0.0.zip"
	halfway := make(chan struct{})
	release := make(chan struct{})
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != zipPath {
			return false
		}
		z := built[0].Zip
		w.Header().Set("Content-Length", fmt.Sprint(len(z)))
		w.Write(z[:len(z)/2])
		w.(http.Flusher).Flush()
		close(halfway)
		<-release // berth dies while the body is half sent
		return true
	})
	storeDir := t.TempDir()
	cmd, url, logs := startBerthProc(t, bin, "--store", storeDir, "--upstream", up.URL(), "--sumdb", up.GOSUMDB())
	go http.Get(url + zipPath) // a client whose request starts the fetch
	select {
	case <-halfway:
	case <-time.After(20 * time.Second):
		t.Fatalf("the fetch did not start:\n%s", logs.String())
	}
	// Kill once berth has written part of the body to its temporary file.
	final := filepath.Join(storeDir, strings.TrimPrefix(zipPath, "/"))
	for deadline := time.Now().Add(20 * time.Second); ; {
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(final), store.TempName("*")))
		if len(m) > 0 {
			if info, err := os.Stat(m[0]); err == nil && info.Size() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth wrote nothing of the body:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	close(release)
	up.SetHook(nil)

	if _, err := os.Stat(final); err == nil {
		t.Fatal("a partial zip is visible under its key after kill -9")
	}
	strays, _ := filepath.Glob(filepath.Join(filepath.Dir(final), store.TempName("*")))
	if len(strays) == 0 {
		t.Fatal("expected the killed fetch's temporary file (test setup)")
	}
	old := time.Now().Add(-2 * time.Minute)
	for _, s := range strays {
		os.Chtimes(s, old, old) // as if the crash was a while ago
	}

	_, url2, logs2 := startBerthProc(t, bin, "--store", storeDir, "--upstream", up.URL(), "--sumdb", up.GOSUMDB())
	home := t.TempDir()
	main := filepath.Join(home, "main")
	os.MkdirAll(main, 0o755)
	mv := module.Version{Path: "example.test/big", Version: "v1.0.0"}
	os.WriteFile(filepath.Join(main, "go.mod"), []byte("module example.test/main\n\ngo 1.21\n\nrequire example.test/big v1.0.0\n"), 0o644)
	os.WriteFile(filepath.Join(main, "go.sum"), []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", mv.Path, mv.Version, built[0].Sum, mv.Path, mv.Version, built[0].ModSum)), 0o644)
	env := append(os.Environ(), "GOPROXY="+url2, "GOSUMDB="+up.GOSUMDB(), "GOMODCACHE="+filepath.Join(home, "mc"),
		"GOFLAGS=-modcacherw", "GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=", "GOTOOLCHAIN=local")
	for _, args := range [][]string{{"mod", "download"}, {"mod", "verify"}} {
		c := exec.Command("go", args...)
		c.Dir, c.Env = main, env
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("go %v after the restart: %v\n%s\nberth:\n%s", args, err, out, logs2.String())
		}
	}
	for _, s := range strays {
		if _, err := os.Stat(s); err == nil {
			t.Errorf("stray temporary file %s was not removed at start", s)
		}
	}
}
