package airgap

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store"
)

// bundleOf warms a store with every test module through a proxy (no go
// command) and exports it.
func bundleOf(t *testing.T) (up *testmod.Upstream, bundle []byte) {
	t.Helper()
	up = testmod.NewUpstream(t, testModules())
	var needs Needs
	for _, m := range testModules() {
		if err := ParseArg(m.Path+"@"+m.Version, &needs); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	px, _ := proxyOver(t, dir, up.URL(), up.GOSUMDB(), false)
	if res := Warm(context.Background(), WarmConfig{Cache: px.Core(), SumDBKey: up.GOSUMDB()}, needs.List()); len(res.Failed) > 0 {
		t.Fatal(res.Failed)
	}
	var buf bytes.Buffer
	if _, err := Export(context.Background(), ExportConfig{StoreDir: dir, SumDB: up.SumDBName, SumDBKey: up.GOSUMDB()}, &buf); err != nil {
		t.Fatal(err)
	}
	return up, buf.Bytes()
}

func TestImportRefusesTampered(t *testing.T) {
	up, good := bundleOf(t)
	other, err := testmod.Build([]testmod.Module{{Path: "example.test/lib", Version: "v1.1.0", Files: map[string]string{"lib.go": "package lib\n\nfunc Hello() string { return \"pwned\" }\n"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := note.GenerateKey(rand.Reader, up.SumDBName)
	db := "sumdb/" + up.SumDBName + "/"

	edit := func(name string, f func([]byte) []byte) func([]entry) []entry {
		return func(es []entry) []entry {
			for i := range es {
				if es[i].hdr.Name == name {
					es[i].data = f(es[i].data)
					return es
				}
			}
			t.Fatalf("bundle has no %s", name)
			return nil
		}
	}
	add := func(h tar.Header, data string) func([]entry) []entry {
		return func(es []entry) []entry {
			if h.Typeflag == 0 {
				h.Typeflag = tar.TypeReg
			}
			h.Mode = 0o644
			return append([]entry{{hdr: h, data: []byte(data)}}, es...)
		}
	}
	firstTile := func(es []entry) string {
		for _, e := range es {
			if strings.HasPrefix(e.hdr.Name, db+"tile/") {
				return e.hdr.Name
			}
		}
		t.Fatal("bundle has no tile")
		return ""
	}

	cases := []struct {
		name        string
		tamper      func([]entry) []entry
		fixManifest bool
		key         string // importer's key; default the test database's
		want        string
	}{
		{"changed zip", edit("example.test/lib/@v/v1.1.0.zip", func([]byte) []byte { return other[0].Zip }), true, "", "checksum mismatch"},
		{"changed go.mod", edit("example.test/lib/@v/v1.1.0.mod", func(b []byte) []byte { return append(b, "// x\n"...) }), true, "", "checksum mismatch"},
		{"changed lookup", edit(db+"lookup/example.test/lib@v1.1.0", func(b []byte) []byte {
			return bytes.Replace(b, []byte(" h1:"), []byte(" h1:A"), 1)
		}), true, "", "cannot authenticate record"},
		{"changed unused lookup", func(es []entry) []entry {
			es = edit(db+"lookup/example.test/old@v1.0.0", func(b []byte) []byte { return bytes.Replace(b, []byte(" h1:"), []byte(" h1:A"), 1) })(es)
			var out []entry
			for _, e := range es {
				if !strings.HasPrefix(e.hdr.Name, "example.test/old/") {
					out = append(out, e)
				}
			}
			return out
		}, true, "", "lookup/example.test/old@v1.0.0"},
		{"lookup missing", func(es []entry) []entry {
			var out []entry
			for _, e := range es {
				if e.hdr.Name != db+"lookup/example.test/old@v1.0.0" {
					out = append(out, e)
				}
			}
			return out
		}, true, "", "list private modules in --nosumdb"},
		{"changed tile", func(es []entry) []entry {
			return edit(firstTile(es), func(b []byte) []byte { b = bytes.Clone(b); b[0] ^= 1; return b })(es)
		}, true, "", "tile"},
		{"changed file, manifest kept", edit("example.test/lib/@v/v1.1.0.mod", func(b []byte) []byte { return append(b, "// x\n"...) }), false, "", "does not match the manifest"},
		{"file not in manifest", add(tar.Header{Name: "example.test/evil/@v/v1.0.0.info"}, `{"Version":"v1.0.0"}`), false, "", "not listed in the manifest"},
		{"manifest names another key", edit(ManifestName, func(b []byte) []byte {
			return bytes.Replace(b, []byte(up.GOSUMDB()), []byte(otherKey), 1)
		}), false, "", "this import trusts"},
		{"importer trusts another key", edit(ManifestName, func(b []byte) []byte {
			return bytes.Replace(b, []byte(up.GOSUMDB()), []byte(""), 1)
		}), false, otherKey, "verif"},
		{"dot-dot name", add(tar.Header{Name: "../../evil/@v/list"}, "v1.0.0\n"), true, "", "evil"},
		{"absolute name", add(tar.Header{Name: "/tmp/evil/@v/list"}, "v1.0.0\n"), true, "", "evil"},
		{"symlink", add(tar.Header{Name: "example.test/evil/@v/list", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, ""), false, "", "not a regular file"},
		{"hard link", add(tar.Header{Name: "example.test/evil/@v/list", Typeflag: tar.TypeLink, Linkname: "example.test/lib/@v/list"}, ""), false, "", "not a regular file"},
		{"device", add(tar.Header{Name: "example.test/evil/@v/list", Typeflag: tar.TypeChar}, ""), false, "", "not a regular file"},
		{"duplicate", func(es []entry) []entry { return append(es[:1:1], es...) }, false, "", "twice"},
		{"temp name", add(tar.Header{Name: "example.test/evil/@v/" + store.TempName("1")}, "x"), true, "", "reserved"},
		{"unknown file", add(tar.Header{Name: "example.test/evil/@v/v1.0.0.ziphash"}, "x"), true, "", "evil"},
		{"too large", add(tar.Header{Name: "example.test/evil/@v/list"}, strings.Repeat("v1.0.0\n", 20000)), true, "", "over the limit"},
		{"no manifest", func(es []entry) []entry { return es[:len(es)-1] }, false, "", "not a berth bundle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := c.tamper(readBundle(t, good))
			bad := writeBundle(t, es, c.fixManifest)
			dir := t.TempDir()
			_, st := proxyOver(t, dir, "off", "", true)
			writeKey(context.Background(), st, "example.test/keep/@v/list", strings.NewReader("v1.0.0\n"))
			before := snapshot(t, dir)
			key := up.GOSUMDB()
			if c.key != "" {
				key = c.key
			}
			_, err := Import(context.Background(), ImportConfig{Store: st, SumDBKey: key, MaxFileSize: 64 << 10}, bytes.NewReader(bad))
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("import: %v, want a refusal", err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("refusal %q does not mention %q", err, c.want)
			}
			after := snapshot(t, dir)
			if len(after) != len(before) || after["example.test/keep/@v/list"] != before["example.test/keep/@v/list"] {
				t.Errorf("store changed by a refused import: %v", after)
			}
		})
	}

	// The untampered bundle still imports, and a --nosumdb module is reported.
	dir := t.TempDir()
	_, st := proxyOver(t, dir, "off", "", true)
	res, err := Import(context.Background(), ImportConfig{Store: st, SumDBKey: up.GOSUMDB(), NoSumDB: func(p string) bool { return p == "example.test/old" }}, bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Unverified, " ") != "example.test/old@v1.0.0" || res.Modules != len(testModules())-1 {
		t.Fatalf("import: %+v", res)
	}
}

// TestWarmPreflightFetchesTiles removes the store's checksum tiles (as if the
// proxy had proved its lookups against trees an import will not use): a
// second warm fetches the ones an import needs, and the export imports.
func TestWarmPreflightFetchesTiles(t *testing.T) {
	up := testmod.NewUpstream(t, testModules())
	var needs Needs
	for _, m := range testModules() {
		ParseArg(m.Path+"@"+m.Version, &needs)
	}
	ctx := context.Background()
	dir := t.TempDir()
	px, _ := proxyOver(t, dir, up.URL(), up.GOSUMDB(), false)
	if res := Warm(ctx, WarmConfig{Cache: px.Core(), SumDBKey: up.GOSUMDB()}, needs.List()); len(res.Failed) > 0 || res.SumDBErr != nil {
		t.Fatal(res.Failed, res.SumDBErr)
	}
	tiles := filepath.Join(dir, "sumdb", up.SumDBName, "tile")
	if err := os.RemoveAll(tiles); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	exp, err := Export(ctx, ExportConfig{StoreDir: dir, SumDBKey: up.GOSUMDB()}, &b)
	if err != nil {
		t.Fatal(err)
	}
	if exp.SumDBIncomplete == nil {
		t.Error("export of a store without tiles did not say its checksum data is incomplete")
	}
	_, st2 := proxyOver(t, t.TempDir(), "off", "", true)
	if _, err := Import(ctx, ImportConfig{Store: st2, SumDBKey: up.GOSUMDB()}, bytes.NewReader(b.Bytes())); err == nil || !strings.Contains(err.Error(), "not in the bundle") {
		t.Fatalf("import without tiles: %v, want a refusal naming the missing data", err)
	}

	px, _ = proxyOver(t, dir, up.URL(), up.GOSUMDB(), false)
	res := Warm(ctx, WarmConfig{Cache: px.Core(), SumDBKey: up.GOSUMDB()}, needs.List())
	if res.Fetched != 0 || res.SumDBErr != nil || len(res.Failed) > 0 {
		t.Fatalf("second warm: %+v", res)
	}
	if _, err := os.Stat(tiles); err != nil {
		t.Fatalf("second warm stored no tiles: %v", err)
	}
	b.Reset()
	if exp, err = Export(ctx, ExportConfig{StoreDir: dir, SumDBKey: up.GOSUMDB()}, &b); err != nil || exp.SumDBIncomplete != nil {
		t.Fatal(err, exp.SumDBIncomplete)
	}
	if _, err := Import(ctx, ImportConfig{Store: st2, SumDBKey: up.GOSUMDB()}, bytes.NewReader(b.Bytes())); err != nil {
		t.Fatal(err)
	}
}
