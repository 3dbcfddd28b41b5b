package netkit

import (
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/netkit/internal/memnet"
)

// memServer serves h at addr on n until the test (or bubble) ends.
func memServer(t *testing.T, n *memnet.Network, addr string, h http.Handler) {
	t.Helper()
	ln := n.Listen(addr)
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// counter counts requests and answers with fn.
type counter struct {
	n  atomic.Int64
	fn func(n int64, w http.ResponseWriter, r *http.Request)
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.fn(c.n.Add(1), w, r)
}

// checkNoLeaks fails the test if goroutines whose stacks mention any of the
// patterns are still running after a grace period for them to exit.
func checkNoLeaks(t *testing.T, patterns ...string) {
	t.Helper()
	if len(patterns) == 0 {
		patterns = []string{"netkit.(*Balancer)", "netkit.runCheck", "netkit.Serve", "net/http.(*persistConn)", "net/http.(*Transport).dialConnFor"}
	}
	var leaked []string
	deadline := time.Now().Add(3 * time.Second)
	for {
		leaked = leaked[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "checkNoLeaks") || strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "netkit.(*") {
				continue
			}
			for _, p := range patterns {
				if strings.Contains(g, p) {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling for goroutines to exit; not a timing assertion
	}
	for _, g := range leaked {
		t.Errorf("leaked goroutine:\n%s", g)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
