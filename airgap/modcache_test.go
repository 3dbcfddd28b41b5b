package airgap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// goModCache fills a module cache the way a developer's is filled: the real
// go command downloads every module of a complete go.sum through the fake
// upstream, so it asks the checksum database nothing. It returns the cache's
// cache/download directory.
func goModCache(t *testing.T, up *testmod.Upstream, gosum string) string {
	t.Helper()
	g := newGoEnv(t, up.URL(), up.GOSUMDB(), gosum)
	g.run("mod", "download", "all")
	var modcache string
	for _, e := range g.env {
		if v, ok := strings.CutPrefix(e, "GOMODCACHE="); ok {
			modcache = v
		}
	}
	return filepath.Join(modcache, "cache", "download")
}

// TestExportModuleCache is the air gap from a developer's module cache: it
// lacks the checksum lookups an import verifies with. Export fetches them
// (and the tiles that check them) from the upstream, never writing the
// module cache; the bundle imports into a fresh store, which builds offline
// as GOPROXY=file:// with the checksum database on, with and without a
// go.sum. With no upstream, export refuses and counts what is missing.
func TestExportModuleCache(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	up := testmod.NewUpstream(t, testModules())
	gosum := makeGoSum(t, up)
	dl := goModCache(t, up, gosum)
	if ents, _ := os.ReadDir(filepath.Join(dl, "sumdb", up.SumDBName, "lookup")); len(ents) > 0 {
		t.Logf("the module cache holds %d lookups", len(ents))
	}
	before := snapshot(t, dl)
	ctx := context.Background()

	// No upstream: refused at export, naming how many versions lack data.
	_, err := Export(ctx, ExportConfig{StoreDir: dl, SumDBKey: up.GOSUMDB()}, &bytes.Buffer{})
	var me *MissingSumError
	if !errors.As(err, &me) || me.Err != nil || len(me.Missing) == 0 || me.Checked < len(me.Missing) {
		t.Fatalf("export without an upstream: %v, want a *MissingSumError", err)
	}
	if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "no checksum data") {
		t.Errorf("refusal is not one line naming the missing checksum data: %q", err)
	}
	t.Log(err)

	chain, err := source.Parse(up.URL())
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	var bundle bytes.Buffer
	exp, err := Export(ctx, ExportConfig{
		StoreDir: dl, SumDB: up.SumDBName, SumDBKey: up.GOSUMDB(),
		Source:  &source.Fetcher{Chain: chain, Client: source.NewClient(nil)},
		TempDir: t.TempDir(),
		Progress: func(stage string, done, total int, _ int64) {
			if len(stages) == 0 || stages[len(stages)-1] != stage {
				stages = append(stages, stage)
			}
		},
	}, &bundle)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export: %d modules, %d lookups fetched, %d files, %d bytes", exp.Modules, exp.SumDBFetched, len(exp.Manifest.Files), bundle.Len())
	if exp.SumDBFetched != len(me.Missing) || exp.SumDBIncomplete != nil {
		t.Errorf("export fetched %d lookups (incomplete: %v), want the %d missing", exp.SumDBFetched, exp.SumDBIncomplete, len(me.Missing))
	}
	if strings.Join(stages, ",") != "checksum data,writing" {
		t.Errorf("export progress stages %v", stages)
	}
	if after := snapshot(t, dl); len(after) != len(before) {
		t.Errorf("export wrote into the module cache: %d files before, %d after", len(before), len(after))
	}

	up.Close()
	dst := t.TempDir()
	st, err := store.OpenDisk(dst)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(ctx, ImportConfig{Store: st, SumDBKey: up.GOSUMDB()}, bytes.NewReader(bundle.Bytes()))
	if err != nil {
		t.Fatalf("import of the module cache's bundle: %v", err)
	}
	if res.Modules != exp.Modules || len(res.Unverified) != 0 {
		t.Fatalf("import verified %d of %d module versions (unverified %v)", res.Modules, exp.Modules, res.Unverified)
	}

	for _, sum := range []string{gosum, ""} {
		g := newGoEnv(t, "file://"+dst, up.GOSUMDB(), sum)
		for i, e := range g.env {
			if strings.HasPrefix(e, "GOFLAGS=") {
				g.env[i] = "GOFLAGS=-modcacherw -mod=mod"
			}
		}
		if sum == "" {
			g.run("mod", "tidy")
			if got := g.read("go.sum"); got != gosum {
				t.Errorf("go.sum from the imported store differs:\n%s\nwant\n%s", got, gosum)
			}
		}
		buildAndVerify(t, g)
	}
}

// TestImportRefusalIsShort: a bundle lacking the lookups of many module
// versions is refused with a few short reasons, a count of the rest and
// what to run, not a line per module.
func TestImportRefusalIsShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	up := testmod.NewUpstream(t, testModules())
	dl := goModCache(t, up, makeGoSum(t, up))
	var bundle bytes.Buffer
	// Exported unverified, so nothing is fetched; imported verified.
	exp, err := Export(context.Background(), ExportConfig{StoreDir: dl}, &bundle)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Import(context.Background(), ImportConfig{Store: st, SumDBKey: up.GOSUMDB()}, bytes.NewReader(bundle.Bytes()))
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("import: %v, want a refusal", err)
	}
	t.Log(err)
	n := exp.Modules
	if len(re.Reasons) != maxReasons || re.More != n-maxReasons {
		t.Errorf("refusal lists %d reasons and %d more, want %d and %d: %q", len(re.Reasons), re.More, maxReasons, n-maxReasons, re.Reasons)
	}
	for _, r := range re.Reasons {
		if len(r) > 160 || !strings.Contains(r, "no checksum data") {
			t.Errorf("reason %q: want a short line saying the checksum data is missing", r)
		}
	}
	if !strings.Contains(re.Hint, "berth export") || !strings.Contains(re.Hint, "--sumdb off") {
		t.Errorf("hint %q does not say what to run", re.Hint)
	}
}
