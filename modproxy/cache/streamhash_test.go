package cache

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// TestZipHashedAsItArrives: a module zip is verified with the hash computed
// while its body streamed in, not by hashing the file once it is whole; and
// a zip whose hash does not match is still refused.
func TestZipHashedAsItArrives(t *testing.T) {
	mods := []testmod.Module{{Path: "example.test/big", Version: "v1.0.0", Files: map[string]string{
		"big.go":   "package big\n",
		"data.txt": strings.Repeat("a body large enough to arrive in many reads\n", 50000),
	}}}
	up := testmod.NewUpstream(t, mods)
	st, err := store.OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	chain, err := source.Parse(up.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Store: st, Source: &source.Fetcher{Chain: chain}, SumDBKey: up.GOSUMDB()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r, err := proto.File(proto.KindZip, "example.test/big", "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := c.Ensure(ctx, r)
	if err != nil || n == 0 {
		t.Fatalf("Ensure: %d bytes, %v", n, err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := store.Has(ctx, st, r.Key); !ok {
		t.Fatal("the verified zip was not stored")
	}
	if k := c.wholeZipHashes.Load(); k != 0 {
		t.Fatalf("%d zips were hashed whole after they arrived, want 0", k)
	}
	ct, err := c.Get(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	if b, _ := io.ReadAll(ct.Seeker()); int64(len(b)) != n {
		t.Fatalf("stored zip: %d bytes, fetched %d", len(b), n)
	}
}
