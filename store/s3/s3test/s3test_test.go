package s3test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"
)

// TestRestart: a stopped or killed server no longer answers; Restart brings
// it back on the same endpoint with what it stored.
func TestRestart(t *testing.T) {
	if _, err := Binary(MinIO); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	s, err := Start(ctx, MinIO, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	mc, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(ctx, "kept", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []byte("still here")
	if _, err := mc.PutObject(ctx, "kept", "obj", bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, stop := range []struct {
		name string
		fn   func()
	}{{"Stop", s.Stop}, {"Kill", s.Kill}} {
		endpoint := s.Endpoint
		stop.fn()
		if resp, err := http.Get(endpoint + "/"); err == nil {
			resp.Body.Close()
			t.Fatalf("after %s the server still answers (%s)", stop.name, resp.Status)
		}
		stop.fn() // a second stop does nothing
		if err := s.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if s.Endpoint != endpoint {
			t.Errorf("after %s and Restart the endpoint is %s, want %s", stop.name, s.Endpoint, endpoint)
		}
		o, err := mc.GetObject(ctx, "kept", "obj", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o)
		o.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("after %s and Restart the object reads %q, %v; want %q", stop.name, got, err, want)
		}
	}
}
