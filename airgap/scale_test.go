package airgap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store"
)

// TestScale warms, re-warms, exports and imports a few hundred generated
// module versions and logs the figures.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a few hundred modules")
	}
	var mods []testmod.Module
	for i := range 300 {
		mods = append(mods, testmod.Module{Path: fmt.Sprintf("example.test/m%03d", i), Version: "v1.0.0",
			Files: map[string]string{"m.go": "package m\n\n// " + strings.Repeat("filler text ", 200) + "\n"}})
	}
	up := testmod.NewUpstream(t, mods)
	var needs Needs
	for _, m := range mods {
		ParseArg(m.Path+"@"+m.Version, &needs)
	}
	ctx := context.Background()
	dir := t.TempDir()
	px, _ := proxyOver(t, dir, up.URL(), up.GOSUMDB(), false)
	res := Warm(ctx, WarmConfig{Cache: px.Core(), SumDBKey: up.GOSUMDB()}, needs.List())
	if len(res.Failed) > 0 || res.Fetched != len(mods) {
		t.Fatalf("warm: %+v", res)
	}
	t.Logf("warm: %d module versions, %d files, %d bytes in %v", res.Fetched, res.Files, res.Bytes, res.Duration)
	res = Warm(ctx, WarmConfig{Cache: px.Core(), SumDBKey: up.GOSUMDB()}, needs.List())
	if res.Present != len(mods) {
		t.Fatalf("re-warm: %+v", res)
	}
	t.Logf("re-warm: %d present in %v", res.Present, res.Duration)

	// The go command may read the lookups in any order: every proof against
	// any tree a lookup names must work from the store's tiles alone.
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	nv, _ := note.NewVerifier(up.GOSUMDB())
	dst, err := store.OpenExistingDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := lookupsIn(ctx, dst, up.SumDBName, nv)
	if err != nil || len(refs) != len(mods) {
		t.Fatalf("lookups: %d, %v", len(refs), err)
	}
	offline := &stagedTiles{root: root, db: up.SumDBName, max: 1 << 20, cache: map[tlog.Tile][]byte{}}
	proofs := 0
	for i, big := range refs {
		if i%7 != 0 {
			continue
		}
		thr := tlog.TileHashReader(big.tree, offline)
		for _, r := range refs {
			if r.tree.N > big.tree.N {
				continue
			}
			if _, err := tlog.ProveRecord(big.tree.N, r.id, thr); err != nil {
				t.Fatalf("record %d in tree %d from the store alone: %v", r.id, big.tree.N, err)
			}
			if _, err := tlog.ProveTree(big.tree.N, r.tree.N, thr); err != nil {
				t.Fatalf("tree %d in tree %d from the store alone: %v", r.tree.N, big.tree.N, err)
			}
			proofs += 2
		}
	}
	t.Logf("%d proofs from the store's tiles alone", proofs)

	var b bytes.Buffer
	start := time.Now()
	exp, err := Export(ctx, ExportConfig{StoreDir: dir}, &b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export: %d files, %d bytes -> %d bytes bundle in %v", len(exp.Manifest.Files), exp.Bytes, b.Len(), time.Since(start))
	_, st2 := proxyOver(t, t.TempDir(), "off", "", true)
	start = time.Now()
	ir, err := Import(ctx, ImportConfig{Store: st2, SumDBKey: up.GOSUMDB()}, bytes.NewReader(b.Bytes()))
	if err != nil || ir.Modules != len(mods) || ir.TilesSkipped != 0 {
		t.Fatalf("import: %+v %v", ir, err)
	}
	t.Logf("import: %d files, %d module versions verified in %v", ir.Added, ir.Modules, time.Since(start))
}
