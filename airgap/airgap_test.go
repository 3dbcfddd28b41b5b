package airgap

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store"
)

// warmed is a store filled by Warm from a real go.sum.
type warmed struct {
	up    *testmod.Upstream
	gosum string
	dir   string
	needs []Need
}

func warmFromGoSum(t *testing.T) *warmed {
	t.Helper()
	up := testmod.NewUpstream(t, testModules())
	gosum := makeGoSum(t, up)
	var needs Needs
	if err := ParseGoSum("go.sum", []byte(gosum), &needs); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	px, _ := proxyOver(t, dir, up.URL(), up.GOSUMDB(), false)
	res := Warm(context.Background(), WarmConfig{Cache: px.Core(), SumDBKey: up.GOSUMDB(), Jobs: 3}, needs.List())
	if len(res.Failed) > 0 || res.Fetched != needs.Len() || res.Present != 0 {
		t.Fatalf("warm: fetched %d present %d of %d, failed %v", res.Fetched, res.Present, needs.Len(), res.Failed)
	}
	t.Logf("warm: %d module versions, %d files, %d bytes in %v", res.Fetched, res.Files, res.Bytes, res.Duration)
	return &warmed{up: up, gosum: gosum, dir: dir, needs: needs.List()}
}

func TestParseInputs(t *testing.T) {
	var n Needs
	sum := "example.test/a v1.0.0 h1:x=\nexample.test/a v1.0.0/go.mod h1:y=\nexample.test/b v1.2.0/go.mod h1:z=\n"
	if err := ParseGoSum("go.sum", []byte(sum), &n); err != nil {
		t.Fatal(err)
	}
	list := "example.test/main\nexample.test/a v1.0.0\nexample.test/c v0.1.0 => example.test/d v0.2.0\nexample.test/e v1.0.0 => ../e\n"
	if err := ParseListOutput("list", []byte(list), &n); err != nil {
		t.Fatal(err)
	}
	if err := ParseGoMod("go.mod", []byte("module m\n\nrequire example.test/f v1.0.0 // indirect\n"), &n); err != nil {
		t.Fatal(err)
	}
	if err := ParseArg("example.test/g@v2.0.0+incompatible", &n); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range n.List() {
		s := x.String()
		if x.ModOnly {
			s += "/go.mod"
		}
		got = append(got, s)
	}
	want := "example.test/a@v1.0.0 example.test/b@v1.2.0/go.mod example.test/d@v0.2.0 example.test/f@v1.0.0 example.test/g@v2.0.0+incompatible"
	if strings.Join(got, " ") != want {
		t.Fatalf("needs:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	for _, bad := range []string{"example.test/a@master", "example.test/a", "Example.test/a@v1.0.0"} {
		if err := ParseArg(bad, &n); err == nil {
			t.Errorf("ParseArg(%q) accepted", bad)
		}
	}
}

// TestWarmOffline warms a store from a go.sum, checks a second warm makes no
// upstream request, cuts the upstream, and builds with an empty module cache
// through berth offline, with the checksum database on; then again without a
// go.sum, so the go command needs the checksum data warm stored.
func TestWarmOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	w := warmFromGoSum(t)
	before := w.up.Counts()
	px, _ := proxyOver(t, w.dir, w.up.URL(), w.up.GOSUMDB(), false)
	res := Warm(context.Background(), WarmConfig{Cache: px.Core(), SumDBKey: w.up.GOSUMDB()}, w.needs)
	if res.Fetched != 0 || res.Present != len(w.needs) || len(res.Failed) != 0 || res.Bytes != 0 {
		t.Fatalf("second warm: %+v", res)
	}
	after := w.up.Counts()
	for p, n := range after {
		if before[p] != n {
			t.Errorf("second warm asked the upstream for %s", p)
		}
	}
	// The go.mod-only module has its .mod and lookup, no zip.
	if _, err := os.Stat(filepath.Join(w.dir, "example.test/lib/@v/v1.0.0.zip")); err == nil {
		t.Error("warm fetched the zip of a go.mod-only go.sum line")
	}
	for _, k := range []string{"example.test/lib/@v/v1.0.0.mod", "example.test/!upper/@v/v1.0.0-!r!c1.zip", "sumdb/" + w.up.SumDBName + "/lookup/example.test/lib@v1.0.0", "sumdb/" + w.up.SumDBName + "/supported"} {
		if _, err := os.Stat(filepath.Join(w.dir, k)); err != nil {
			t.Errorf("store lacks %s: %v", k, err)
		}
	}

	w.up.Close()
	off, _ := proxyOver(t, w.dir, "off", w.up.GOSUMDB(), true)
	url := serve(t, off)
	buildAndVerify(t, newGoEnv(t, url, w.up.GOSUMDB(), w.gosum))

	// No go.sum: every hash comes from the checksum data in the store.
	g := newGoEnv(t, url, w.up.GOSUMDB(), "")
	g.run("mod", "tidy")
	if got := g.read("go.sum"); got != w.gosum {
		t.Fatalf("go.sum from the offline store differs:\n%s\nwant\n%s", got, w.gosum)
	}
	buildAndVerify(t, g)
}

// TestExportImport exports a warmed store, imports it into a fresh store,
// serves that offline to a build, and uses it as GOPROXY=file:// with the
// checksum database on.
func TestExportImport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	w := warmFromGoSum(t)
	w.up.Close()
	ctx := context.Background()
	var bundle bytes.Buffer
	exp, err := Export(ctx, ExportConfig{StoreDir: w.dir, SumDB: w.up.SumDBName, SumDBKey: w.up.GOSUMDB()}, &bundle)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export: %d modules, %d files, %d bytes -> %d bytes bundle", exp.Modules, len(exp.Manifest.Files), exp.Bytes, bundle.Len())
	if exp.Modules != len(w.needs) {
		t.Errorf("exported %d module versions, want %d", exp.Modules, len(w.needs))
	}

	dst := t.TempDir()
	_, st := proxyOver(t, dst, "off", "", true)
	res, err := Import(ctx, ImportConfig{Store: st, SumDBKey: w.up.GOSUMDB()}, bytes.NewReader(bundle.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != len(exp.Manifest.Files) || res.Modules != len(w.needs) || len(res.Unverified) != 0 {
		t.Fatalf("import: %+v", res)
	}
	src, got := snapshot(t, w.dir), snapshot(t, dst)
	for k, v := range src {
		if got[k] != v {
			t.Errorf("imported store: %s differs or is missing", k)
		}
	}
	for k := range got {
		if strings.Contains(k, store.TempName("")) {
			t.Errorf("import left %s", k)
		}
	}
	// Again: everything is already there.
	res, err = Import(ctx, ImportConfig{Store: st, SumDBKey: w.up.GOSUMDB()}, bytes.NewReader(bundle.Bytes()))
	if err != nil || res.Added != 0 || res.Identical != len(exp.Manifest.Files) {
		t.Fatalf("second import: %+v, %v", res, err)
	}

	off, _ := proxyOver(t, dst, "off", w.up.GOSUMDB(), true)
	buildAndVerify(t, newGoEnv(t, serve(t, off), w.up.GOSUMDB(), w.gosum))

	// The imported tree as GOPROXY=file://, checksum database on, with and
	// without a go.sum.
	buildAndVerify(t, newGoEnv(t, "file://"+dst, w.up.GOSUMDB(), w.gosum))
	g := newGoEnv(t, "file://"+dst, w.up.GOSUMDB(), "")
	g.run("mod", "tidy")
	buildAndVerify(t, g)

	// A pattern export carries only the matching modules (and all checksum data).
	bundle.Reset()
	exp, err = Export(ctx, ExportConfig{StoreDir: w.dir, Patterns: []string{"example.test/lib"}}, &bundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range exp.Manifest.Files {
		if !strings.HasPrefix(f.Name, "example.test/lib/") && !strings.HasPrefix(f.Name, "sumdb/") {
			t.Errorf("pattern export holds %s", f.Name)
		}
	}
	dst2 := t.TempDir()
	_, st2 := proxyOver(t, dst2, "off", "", true)
	if _, err := Import(ctx, ImportConfig{Store: st2, SumDBKey: w.up.GOSUMDB()}, bytes.NewReader(bundle.Bytes())); err != nil {
		t.Fatal(err)
	}
}

// TestWarmStoresLists: warm stores the version list of every module it warms,
// as the upstream gives it, so an offline berth answers lists and @latest as
// the upstream did; a module whose list the upstream fails is named in the
// result and is not a failure of the warm.
func TestWarmStoresLists(t *testing.T) {
	up := testmod.NewUpstream(t, testModules())
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/example.test/old/@v/list" {
			http.Error(w, "list service down", http.StatusInternalServerError)
			return true
		}
		return false
	})
	var needs Needs
	if err := ParseGoSum("go.sum", []byte(makeGoSum(t, up)), &needs); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	px, _ := proxyOver(t, dir, up.URL(), up.GOSUMDB(), false)
	res := Warm(context.Background(), WarmConfig{Cache: px.Core(), SumDBKey: up.GOSUMDB()}, needs.List())
	if len(res.Failed) > 0 || res.SumDBErr != nil {
		t.Fatalf("warm failed: %v, %v", res.Failed, res.SumDBErr)
	}
	if res.Lists != 3 || len(res.NoList) != 1 || res.NoList[0].Module != "example.test/old" {
		t.Errorf("warm: %d lists stored, no list for %v; want 3 and example.test/old", res.Lists, res.NoList)
	}
	for key, want := range map[string]string{
		"example.test/lib/@v/list":    "v1.0.0\nv1.1.0\n",
		"example.test/lib/v2/@v/list": "v2.0.0\n",
		"example.test/!upper/@v/list": "v1.0.0-RC1\n",
	} {
		got, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil || string(got) != want {
			t.Errorf("store's %s: %q, %v; want %q", key, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "example.test/old/@v/list")); err == nil {
		t.Error("a list the upstream failed was stored")
	}
}
