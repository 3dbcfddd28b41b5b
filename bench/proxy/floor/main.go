// Command floor is the ceiling berth's hit path can reach with net/http: a
// minimal net/http server that answers every GET or HEAD with one file's bytes
// from memory and the headers berth sends for a small immutable file
// (Content-Type, Cache-Control, ETag, Last-Modified, Accept-Ranges,
// Content-Length; net/http adds Date), the header values built once. No mux,
// no metrics, no cache lookup: what is left is net/http's own cost per request.
// serve.sh runs it beside berth and nginx; floor/nginx is the best berth/nginx
// can be without leaving net/http.
//
//	go run ./bench/proxy/floor -listen 127.0.0.1:8080 -file store/bench.test/small/@v/v1.0.0.mod
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`address` to listen on")
	file := flag.String("file", "", "the `file` to answer with")
	ctype := flag.String("type", "text/plain; charset=utf-8", "its Content-Type")
	flag.Parse()
	body, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
	fi, err := os.Stat(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
	mt := fi.ModTime()
	var (
		hType  = []string{*ctype}
		hCache = []string{"public, max-age=31536000, immutable"}
		hETag  = []string{`"` + strconv.FormatInt(int64(len(body)), 36) + "-" + strconv.FormatInt(mt.UnixNano(), 36) + `"`}
		hLast  = []string{mt.UTC().Format(http.TimeFormat)}
		hRange = []string{"bytes"}
		hLen   = []string{strconv.Itoa(len(body))}
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = hType
		hd["Cache-Control"] = hCache
		hd["Etag"] = hETag
		hd["Last-Modified"] = hLast
		hd["Accept-Ranges"] = hRange
		hd["Content-Length"] = hLen
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	// The same server settings berth proxy uses that touch a keep-alive hit.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintln(os.Stderr, "floor: listening on", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
