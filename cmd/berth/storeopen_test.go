package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3"
	"github.com/berth-dev/berth/store/s3/s3test"
)

// TestOpenStore: --store names a directory or an s3:// bucket.
func TestOpenStore(t *testing.T) {
	dir := t.TempDir() + "/store"
	st, where, closeFn, err := openStore(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if _, ok := st.(*store.Disk); !ok || where != dir {
		t.Errorf("openStore(%s) = %T at %s, want a disk store there", dir, st, where)
	}
	if !strings.Contains(storeUsage, "s3://BUCKET") {
		t.Errorf("--store's usage does not say it takes an s3:// URL: %q", storeUsage)
	}
	if _, _, _, err := openStore(t.Context(), "s3://b?nonsense=1", nil); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("openStore of a bad s3:// URL: %v, want it to name the bad parameter", err)
	}

	if _, err := s3test.Binary(s3test.MinIO); err != nil {
		t.Skip(err)
	}
	srv, err := s3test.Start(t.Context(), s3test.MinIO, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(t.Context(), "berth", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", srv.Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.Secret)
	url := "s3://berth/replicas?endpoint=" + srv.Endpoint + "&cache=" + t.TempDir()
	st, where, closeFn, err = openStore(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if _, ok := st.(*s3.Store); !ok || where != "s3://berth/replicas" {
		t.Errorf("openStore(%s) = %T at %s, want an S3 store at s3://berth/replicas", url, st, where)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := store.Put(ctx, st, "example.test/m/@v/list", strings.NewReader("v1.0.0\n"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StatObject(ctx, "berth", "replicas/example.test/m/@v/list", minio.StatObjectOptions{}); err != nil {
		t.Errorf("the key is not in the bucket: %v", err)
	}
}
