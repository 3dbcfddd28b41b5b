// Command delay is a reverse proxy that adds a fixed latency to every request
// before passing it to one upstream: it makes a near upstream look distant, so
// the proxy benchmarks can be run in the latency-bound regime too. With
// -no-reuse it also closes every client connection after its response, so
// each request pays a new connection as well (a far upstream behind a
// corporate proxy that does not keep connections), and with -rate it sends
// bodies no faster than a given speed (a slower link). It counts the requests it
// passes: GET /.delay/count answers their number, by kind.
//
//	go run ./bench/proxy/delay -listen 127.0.0.1:7000 -upstream URL -delay 40ms [-no-reuse]
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7000", "address to listen on (loopback)")
	upstream := flag.String("upstream", "", "upstream `URL` (the first entry of go env GOPROXY)")
	delay := flag.Duration("delay", 40*time.Millisecond, "latency added to every request")
	noReuse := flag.Bool("no-reuse", false, "close each client connection after its response")
	rate := flag.Int64("rate", 0, "limit each response body to this many `bytes/s` (0: no limit), as a slower link would")
	verbose := flag.Bool("v", false, "log the path of every request passed (to stderr)")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		fmt.Fprintln(os.Stderr, "delay: -upstream must be an absolute URL")
		os.Exit(2)
	}
	// Keep connections to the upstream open for every client at once: new
	// TLS handshakes would add latency of their own to parallel clients.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: tr,
	}
	var mu sync.Mutex
	counts := map[string]int{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.delay/count" {
			mu.Lock()
			defer mu.Unlock()
			for _, k := range []string{"total", "lookup", "tile", "mod", "zip", "info", "list", "other"} {
				fmt.Fprintf(w, "%s %d\n", k, counts[k])
			}
			return
		}
		mu.Lock()
		counts["total"]++
		counts[kindOf(r.URL.Path)]++
		mu.Unlock()
		if *verbose {
			log.Printf("%s", r.URL.Path)
		}
		if *noReuse {
			w.Header().Set("Connection", "close")
		}
		select {
		case <-time.After(*delay):
		case <-r.Context().Done():
			return
		}
		if *rate > 0 {
			w = &throttled{ResponseWriter: w, rate: *rate, start: time.Now()}
		}
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *noReuse {
		// A new connection costs a round trip of its own, as a handshake to
		// a distant host does.
		ln = &slowListener{Listener: ln, delay: *delay}
	}
	log.Fatal(http.Serve(ln, h))
}

// throttled writes a response body no faster than rate bytes a second.
type throttled struct {
	http.ResponseWriter
	rate  int64
	start time.Time
	n     int64
}

func (t *throttled) Write(p []byte) (int, error) {
	n, err := t.ResponseWriter.Write(p)
	t.n += int64(n)
	if ahead := time.Duration(t.n*int64(time.Second)/t.rate) - time.Since(t.start); ahead > 0 {
		time.Sleep(ahead)
	}
	return n, err
}

func (t *throttled) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// slowListener delays the first read of every accepted connection.
type slowListener struct {
	net.Listener
	delay time.Duration
}

func (l *slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowConn{Conn: c, delay: l.delay}, nil
}

type slowConn struct {
	net.Conn
	delay time.Duration
	once  sync.Once
}

func (c *slowConn) Read(p []byte) (int, error) {
	c.once.Do(func() { time.Sleep(c.delay) })
	return c.Conn.Read(p)
}

// kindOf names what a GOPROXY request path asks for.
func kindOf(p string) string {
	switch {
	case strings.Contains(p, "/sumdb/") && strings.Contains(p, "/lookup/"):
		return "lookup"
	case strings.Contains(p, "/sumdb/") && strings.Contains(p, "/tile/"):
		return "tile"
	case strings.HasSuffix(p, ".mod"):
		return "mod"
	case strings.HasSuffix(p, ".zip"):
		return "zip"
	case strings.HasSuffix(p, ".info"):
		return "info"
	case strings.HasSuffix(p, "/@v/list"):
		return "list"
	}
	return "other"
}
