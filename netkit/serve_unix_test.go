//go:build unix

package netkit

import (
	"context"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
)

func TestServeSignal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var h Health
	srv := &http.Server{Handler: h.ReadyHandler()}
	served := make(chan error, 1)
	go func() {
		served <- Serve(context.Background(), srv, ln, ServeOptions{Health: &h, DrainDelay: -1, Logger: discardLogger(), Signals: []os.Signal{syscall.SIGUSR1}})
	}()
	client := NewClient(ClientOptions{})
	// Wait until serving (real network: poll the listener with requests).
	for {
		resp, err := client.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	client.CloseIdleConnections()
	checkNoLeaks(t)
}
