//go:build unix

package doctor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunBadFiles: garbage, huge, unreadable and blocking files must not
// crash or hang the doctor, and it must say what it could not read.
func TestRunBadFiles(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "proc/self", "proc/net", "etc/nsswitch.conf"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	huge := make([]byte, 6<<20)
	for i := range huge {
		huge[i] = byte(i*7) | 1
	}
	must(os.WriteFile(filepath.Join(root, "etc/resolv.conf"), huge, 0o644))
	must(syscall.Mkfifo(filepath.Join(root, "etc/hosts"), 0o644))
	must(os.WriteFile(filepath.Join(root, "proc/net/tcp"), []byte("\x00\xff\n 0: zz:zz zz 0A\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "proc/self/cgroup"), []byte("::::\n0::/../../x\n"), 0o644))
	done := make(chan *Report, 1)
	go func() {
		rep, err := Run(context.Background(), Options{Root: root, LookupEnv: env("HTTPS_PROXY", "\x00bad", "GOPROXY", ",,|,"), Timeout: time.Second})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	select {
	case rep := <-done:
		if rep == nil {
			return
		}
		var paths []string
		for _, u := range rep.Facts.Unreadable {
			paths = append(paths, u.Path)
		}
		s := strings.Join(paths, " ")
		if !strings.Contains(s, "/etc/hosts") || !strings.Contains(s, "/etc/nsswitch.conf") {
			t.Errorf("unreadable %v, want /etc/hosts (a FIFO) and /etc/nsswitch.conf (a directory)", paths)
		}
		if !rep.Facts.ResolvConf.Truncated {
			t.Errorf("huge resolv.conf not marked truncated")
		}
		if _, err := json.Marshal(rep); err != nil {
			t.Errorf("report does not marshal: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run hung on bad files")
	}
}
