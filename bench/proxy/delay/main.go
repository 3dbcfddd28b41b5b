// Command delay is a reverse proxy that adds a fixed latency to every request
// before passing it to one upstream: it makes a near upstream look distant, so
// the proxy benchmarks can be run in the latency-bound regime too.
//
//	go run ./bench/proxy/delay -listen 127.0.0.1:7000 -upstream URL -delay 40ms
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7000", "address to listen on (loopback)")
	upstream := flag.String("upstream", "", "upstream `URL` (the first entry of go env GOPROXY)")
	delay := flag.Duration("delay", 40*time.Millisecond, "latency added to every request")
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
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(*delay):
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(w, r)
	})
	log.Fatal(http.ListenAndServe(*listen, h))
}
