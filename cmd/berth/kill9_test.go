package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-dev/berth/internal/redistest"
	"github.com/berth-dev/berth/internal/testmod"
)

// TestProxyKill9BehindNginx: two replicas on one MinIO bucket with a Redis
// lease behind Debian's nginx (the second a backup, so that every request
// reaches the first while it lives). The first is killed with SIGKILL while
// it streams a large zip and while it waits, before answering, on an
// upstream .mod:
//   - the request it had not answered is passed on by nginx to the other
//     replica, which takes the lease over and answers it;
//   - the client cut mid-zip succeeds when it asks again;
//   - the bucket holds only whole objects and no incomplete upload;
//   - each of the two files was fetched twice (the killed fetch and the
//     takeover), and the survivor says "lease taken over" for the .mod.
func TestProxyKill9BehindNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two berth processes, nginx, MinIO and Redis, and waits out a lease")
	}
	rs := redistest.Start(t)
	bin := buildBerth(t)
	ms := minioBucket(t, "kill9lb")
	// Incompressible, so that half the zip is past berth's 64 KiB hold-back
	// and the client has part of the body when the replica dies.
	blob := incompressible(512 << 10)
	mods := []testmod.Module{
		{Path: "example.test/big", Version: "v1.0.0", Files: map[string]string{"big.go": "package big\n", "blob.bin": blob}},
		{Path: "example.test/small", Version: "v1.0.0", Files: map[string]string{"small.go": "package small\n"}},
	}
	built, err := testmod.Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	up, err := testmod.ServeBuilt(t.TempDir(), "sum.berth.test", built)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	const (
		zip = "/example.test/big/@v/v1.0.0.zip"
		mod = "/example.test/small/@v/v1.0.0.mod"
	)
	// The first fetch of each is held by the upstream until the replica
	// asking for it dies: the zip after half its body, the .mod before any
	// byte (so the replica has not answered its client).
	var zipOnce, modOnce sync.Once
	stuck := make(chan struct{})
	defer close(stuck)
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		first := false
		switch r.URL.Path {
		case zip:
			zipOnce.Do(func() { first = true })
			if first {
				z := built[0].Zip
				w.Header().Set("Content-Length", fmt.Sprint(len(z)))
				w.Write(z[:len(z)/2])
				w.(http.Flusher).Flush()
			}
		case mod:
			modOnce.Do(func() { first = true })
		}
		if !first {
			return false
		}
		select {
		case <-r.Context().Done():
		case <-stuck:
		}
		return true
	})
	env := replicaEnv(ms)
	args := func() []string {
		return []string{"--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "--lease", rs.URL(),
			"--store", bucketStore(t, ms, "kill9lb")}
	}
	a, _, aProc := startReplica(t, bin, env, args()...)
	b, bLog, _ := startReplica(t, bin, env, args()...)
	lb := startNginx(t, []string{a, b + " backup"})

	type answer struct {
		status int
		body   []byte
		err    error
	}
	get := func(path string) answer {
		resp, err := http.Get(lb + path)
		if err != nil {
			return answer{err: err}
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return answer{resp.StatusCode, body, err}
	}
	zipDone, modDone := make(chan answer, 1), make(chan answer, 1)
	go func() { zipDone <- get(zip) }()
	waitUntil(t, "the first replica's upstream fetch of the zip", func() bool { return up.Count(zip) == 1 })
	go func() { modDone <- get(mod) }()
	waitUntil(t, "the first replica's upstream fetch of the .mod", func() bool { return up.Count(mod) == 1 })
	if c := up.Count(zip) + up.Count(mod); c != 2 {
		t.Fatalf("upstream fetches before the kill: %d, want 2", c)
	}
	killed := time.Now()
	aProc.Kill()

	wait := func(ch chan answer, what string) answer {
		select {
		case got := <-ch:
			return got
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: no answer within 60s of the kill", what)
			return answer{}
		}
	}
	if got := wait(zipDone, "the zip's client"); got.err == nil && bytes.Equal(got.body, built[0].Zip) {
		t.Errorf("the client of the killed replica's zip got the whole zip; want it cut (the replica died mid-body)")
	} else {
		t.Logf("zip client cut: status %d, %d of %d bytes (%v)", got.status, len(got.body), len(built[0].Zip), got.err)
	}
	got := wait(modDone, "the .mod's client")
	if got.err != nil || got.status != 200 || !bytes.Equal(got.body, built[1].Mod) {
		t.Fatalf("the unanswered .mod request: %d, %q (%v); want nginx to pass it to the other replica and 200 with the .mod", got.status, got.body, got.err)
	}
	t.Logf(".mod answered by the other replica %v after the kill", time.Since(killed).Round(time.Millisecond))
	again := get(zip)
	if again.err != nil || again.status != 200 || !bytes.Equal(again.body, built[0].Zip) {
		t.Fatalf("the zip asked again: %d, %d bytes (%v); want 200 and the whole %d-byte zip", again.status, len(again.body), again.err, len(built[0].Zip))
	}
	for _, p := range []string{zip, mod} {
		if n := up.Count(p); n != 2 {
			t.Errorf("upstream fetches of %s: %d, want 2 (the killed one and the takeover)", p, n)
		}
	}
	// The .mod's request waited on the dead replica's lease and took it over;
	// the zip asked again after that lease had expired takes it afresh.
	if !strings.Contains(bLog.String(), `"msg":"lease taken over: the replica that held it stopped before committing","key":"example.test/small/@v/v1.0.0.mod"`) {
		t.Errorf("no 'lease taken over' line for the .mod in the surviving replica's log")
	}

	// The bucket: each object whole, no upload left half done.
	mc, err := ms.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := map[string][]byte{
		"berth/example.test/big/@v/v1.0.0.zip":   built[0].Zip,
		"berth/example.test/small/@v/v1.0.0.mod": built[1].Mod,
	}
	for key, body := range want {
		obj, err := mc.GetObject(ctx, "kill9lb", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(b, body) {
			t.Errorf("bucket object %s: %d bytes (%v), want the whole %d", key, len(b), err, len(body))
		}
	}
	for obj := range mc.ListObjects(ctx, "kill9lb", minio.ListObjectsOptions{Prefix: "berth/example.test/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if strings.HasSuffix(obj.Key, ".zip") && obj.Key != "berth/example.test/big/@v/v1.0.0.zip" {
			t.Errorf("unexpected zip object %s (%d bytes)", obj.Key, obj.Size)
		}
	}
	for u := range mc.ListIncompleteUploads(ctx, "kill9lb", "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Errorf("incomplete upload left in the bucket: %s", u.Key)
	}
}
