package testmod

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestStall: the first answer for a stalled path stops after n bytes until
// released, then is whole; the next answer does not stall.
func TestStall(t *testing.T) {
	up := NewUpstream(t, BaseModules())
	const p = "/example.test/lib/@v/v1.0.0.zip"
	resp, err := http.Get(up.URL() + p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	reached, release := up.Stall(p, 10)
	resp, err = http.Get(up.URL() + p)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the stall was not reached")
	}
	head := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, head); err != nil || !bytes.Equal(head, want[:10]) {
		t.Fatalf("the first 10 bytes: %q, %v", head, err)
	}
	if resp.ContentLength != int64(len(want)) {
		t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(want))
	}
	release()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(append(head, rest...), want) {
		t.Errorf("after release: %d more bytes, %v; want the rest of the %d", len(rest), err, len(want))
	}
	release() // twice is fine

	start := time.Now()
	resp2, err := http.Get(up.URL() + p)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if !bytes.Equal(again, want) || time.Since(start) > 5*time.Second {
		t.Errorf("the next answer: %d bytes in %v; want the whole file at once", len(again), time.Since(start))
	}
	if n := up.Count(p); n != 3 {
		t.Errorf("Count %d, want 3", n)
	}
}
