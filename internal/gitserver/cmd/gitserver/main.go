// Command gitserver serves bare git repositories the way internal/gitserver
// does in tests, as a program of its own: git http-backend over HTTPS with
// Basic auth and go-import meta tags. The Docker suite runs it, built with
// CGO_ENABLED=0, in a FROM scratch container beside the host's git and its
// libraries. It logs one line per request (kind, repository, status) to
// standard output, so a test can tell what the git host was asked.
//
//	gitserver -host git.corp.example -root /repos -cert cert.pem -key key.pem \
//	    -user berth -password s3cret
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/gitserver"
)

func main() {
	listen := flag.String("listen", ":443", "address to serve HTTPS on")
	host := flag.String("host", "git.corp.example", "host name module paths start with")
	root := flag.String("root", "/repos", "directory of the bare repositories (<root>.git)")
	backend := flag.String("backend", "", "git-http-backend binary (default: the one in git --exec-path)")
	cert := flag.String("cert", "", "PEM certificate `file` for the host")
	key := flag.String("key", "", "PEM private key `file` of -cert")
	user := flag.String("user", "berth", "the Basic auth user git requests must give")
	password := flag.String("password", "", "the Basic auth password git requests must give")
	flag.Parse()
	if *cert == "" || *key == "" || *password == "" {
		fmt.Fprintln(os.Stderr, "gitserver: -cert, -key and -password are required")
		os.Exit(2)
	}
	logger := log.New(os.Stdout, "", 0)
	h := &gitserver.Handler{Host: *host, User: *user, Password: *password, Root: *root, Backend: *backend}
	srv := &http.Server{
		Addr: *listen,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &status{ResponseWriter: w, code: 200}
			kind := ""
			hh := *h
			hh.Count = func(k, root string) { kind = k + " " + root }
			hh.ServeHTTP(rec, r)
			logger.Printf("request %s %s %q -> %d", kind, r.Method, r.URL.RequestURI(), rec.code)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	logger.Printf("serving %s on %s", *root, *listen)
	if err := srv.ListenAndServeTLS(*cert, *key); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "gitserver:", err)
		os.Exit(1)
	}
}

type status struct {
	http.ResponseWriter
	code int
}

func (s *status) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *status) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
