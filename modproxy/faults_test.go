package modproxy

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store"
)

// TestUpstreamFaults runs the go command through berth against an upstream
// that misbehaves one way at a time on one zip. For each fault it checks what
// the go command sees, that nothing wrong is stored, and that the next good
// request succeeds.
func TestUpstreamFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	const zipPath = "/example.test/lib/@v/v1.1.0.zip"
	type fault struct {
		name string
		// serve misbehaves for the zip; it returns true when it answered.
		serve func(w http.ResponseWriter, r *http.Request, good []byte) bool
		// goSees is a fragment of the go command's error output. The zip is
		// smaller than the held-back tail, so no byte went out before the
		// fault and berth can still answer with a status and a reason.
		goSees string
		// retried: the fault is transient and berth's retries hide it.
		retried bool
	}
	hijack := func(w http.ResponseWriter) net.Conn {
		c, _, _ := w.(http.Hijacker).Hijack()
		return c
	}
	attempts := 0
	faults := []fault{
		{name: "500", goSees: "502 Bad Gateway", serve: func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		}},
		{name: "503 then ok (Retry-After honoured)", retried: true, serve: func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
			attempts++
			if attempts > 1 {
				return false
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}},
		{name: "reset mid-body", goSees: "connection reset by peer", serve: func(w http.ResponseWriter, r *http.Request, good []byte) bool {
			c := hijack(w)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(good))
			c.Write(good[:len(good)/2])
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			return true
		}},
		{name: "truncated body with a correct Content-Length", goSees: "unexpected EOF", serve: func(w http.ResponseWriter, r *http.Request, good []byte) bool {
			c := hijack(w)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(good))
			c.Write(good[:len(good)-100])
			c.Close()
			return true
		}},
		{name: "wrong hash", goSees: "checksum mismatch", serve: func(w http.ResponseWriter, r *http.Request, good []byte) bool {
			evil, _ := testmod.Build([]testmod.Module{{Path: "example.test/lib", Version: "v1.1.0", Files: map[string]string{"lib.go": "package lib // evil\n"}}})
			w.Write(evil[0].Zip)
			return true
		}},
		{name: "slow headers past the fetch timeout", goSees: "504 Gateway Timeout", serve: func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
			return true
		}},
		{name: "slow drip (completes)", retried: true, serve: func(w http.ResponseWriter, r *http.Request, good []byte) bool {
			w.Header().Set("Content-Length", fmt.Sprint(len(good)))
			for i := 0; i < len(good); i += 64 {
				w.Write(good[i:min(i+64, len(good))])
				w.(http.Flusher).Flush()
				time.Sleep(time.Millisecond)
			}
			return true
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			up := testmod.NewUpstream(t, testModules())
			good, _ := os.ReadFile(filepath.Join(up.Dir, strings.TrimPrefix(zipPath, "/")))
			up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == zipPath {
					return f.serve(w, r, good)
				}
				return false
			})
			storeDir := t.TempDir()
			px := startProxy(t, up.URL(), storeDir, func(c *Config) {
				c.SumDBKey = up.GOSUMDB()
				c.FetchTimeout = 1500 * time.Millisecond
				c.NegativeTTL = time.Nanosecond
			})
			g := newGoEnv(t, px.URL, up.GOSUMDB())
			out, err := g.try("mod", "download", "example.test/lib@v1.1.0")
			px.Wait(t.Context())
			stored, _ := os.ReadFile(filepath.Join(storeDir, strings.TrimPrefix(zipPath, "/")))
			if f.retried {
				if err != nil {
					t.Fatalf("go mod download failed on a transient fault: %v\n%s", err, out)
				}
				if string(stored) != string(good) {
					t.Fatal("the stored zip is not the good one")
				}
				return
			}
			if err == nil || !strings.Contains(out, f.goSees) {
				t.Fatalf("go mod download: err %v, output %q; want it to fail mentioning %q", err, out, f.goSees)
			}
			if stored != nil {
				t.Fatalf("a bad zip was stored (%d bytes)", len(stored))
			}
			matches, _ := filepath.Glob(filepath.Join(storeDir, "example.test/lib/@v/"+store.TempName("*")))
			if len(matches) > 0 {
				t.Fatalf("temporary files left behind: %v", matches)
			}
			// The upstream heals; the next request succeeds.
			up.SetHook(nil)
			g2 := newGoEnv(t, px.URL, up.GOSUMDB())
			g2.run("mod", "download", "example.test/lib@v1.1.0")
			px.Wait(t.Context())
			if b, _ := os.ReadFile(filepath.Join(storeDir, strings.TrimPrefix(zipPath, "/"))); string(b) != string(good) {
				t.Fatal("after healing, the stored zip is not the good one")
			}
		})
	}
}
