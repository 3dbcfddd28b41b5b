package netkit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/netkit"
)

func ExampleClassify() {
	// A dial to a port nothing listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := net.Dial("tcp", addr)

	c := netkit.Classify(err)
	fmt.Println(c.Kind, c.Temporary(), c.Addr == addr)
	fmt.Println(c.Kind.Describe())

	// Wrapped errors keep their cause; no message text is looked at.
	c = netkit.Classify(fmt.Errorf("fetch index: %w", &netkit.StatusError{Status: 503}))
	fmt.Println(c.Kind, c.Status, c.Temporary())
	fmt.Println(netkit.Classify(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}).Kind)
	fmt.Println(netkit.Classify(context.Canceled).Kind)
	// Output:
	// refused true true
	// the connection was refused: nothing listens there, or a firewall rejects it
	// http-status 503 true
	// reset
	// canceled
}

func ExampleNewClient() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer srv.Close()

	client := netkit.NewClient(netkit.ClientOptions{
		ResponseHeaderTimeout: 5 * time.Second,
		Retry:                 &netkit.RetryPolicy{MaxAttempts: 4},
		Breaker:               &netkit.BreakerPolicy{ConsecutiveFailures: 10},
		// Tracing: any RoundTripper wrapper, e.g. otelhttp.NewTransport.
		Wrap: func(rt http.RoundTripper) http.RoundTripper { return rt },
	})
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL)
	if err == nil {
		err = netkit.CheckStatus(resp)
	}
	if err != nil {
		fmt.Println("failed:", netkit.Classify(err))
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello
}

func ExampleNewBalancer() {
	var addrs []string
	for i := range 2 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "backend %d for %s", i, r.Host)
		}))
		defer srv.Close()
		addrs = append(addrs, srv.Listener.Addr().String())
	}
	// In a cluster: "dns:///web.shop.svc.cluster.local:8080" (a headless Service)
	// or "srv:///_http._tcp.web.service.consul".
	b, err := netkit.NewBalancer("static:///"+strings.Join(addrs, ","), netkit.BalancerOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	client := netkit.NewClient(netkit.ClientOptions{Base: b})

	resp, err := client.Get("http://web/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(strings.HasSuffix(string(body), "for web"), len(b.Endpoints()))
	// Output: true 2
}

func ExampleHealth() {
	var h netkit.Health
	h.AddLiveness("event-loop", time.Second, func(ctx context.Context) error { return nil })
	h.AddReadiness("database", 2*time.Second, func(ctx context.Context) error {
		return errors.New("pool exhausted")
	})
	mux := http.NewServeMux()
	mux.Handle("/healthz", h.LiveHandler())
	mux.Handle("/readyz", h.ReadyHandler())

	for _, path := range []string{"/healthz", "/readyz"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rec.Code)
	}
	// Output:
	// /healthz 200
	// /readyz 503
}

func ExampleServe() {
	var h netkit.Health
	mux := http.NewServeMux()
	mux.Handle("/readyz", h.ReadyHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Here cancel ends the server; in a service, main's
	// signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt) does.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- netkit.Serve(ctx, srv, ln, netkit.ServeOptions{
			Health:     &h,
			DrainDelay: -1, // a service keeps the default 5s for load balancers to notice
			Logger:     slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelError})),
		})
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body))
	}
	cancel()
	fmt.Println("Serve:", <-done)
	// Output:
	// hi
	// Serve: <nil>
}
