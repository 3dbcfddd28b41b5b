package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/berth-dev/berth/internal/testmod"
)

func TestExportImportCommands(t *testing.T) {
	t.Setenv("GONOSUMDB", "")
	t.Setenv("GOPRIVATE", "")
	up := testmod.NewUpstream(t, airgapModules())
	src := t.TempDir()
	if code, out, errs := runBerth(t, "warm", "--store", src, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "example.test/lib@v1.1.0", "example.test/Upper@v1.0.0"); code != 0 {
		t.Fatalf("warm: %d\n%s%s", code, out, errs)
	}
	outDir := t.TempDir()
	bundle := filepath.Join(outDir, "deps.tar.zst")
	code, _, errs := runBerth(t, "export", "--store", src, "-o", bundle, "--sumdb", up.GOSUMDB())
	if code != 0 || !strings.Contains(errs, "2 module versions (all modules)") {
		t.Fatalf("export: %d\n%s", code, errs)
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 1 {
		t.Errorf("export left files beside the bundle: %v", ents)
	}
	if code, _, errs := runBerth(t, "export", "--store", src); code != 2 || !strings.Contains(errs, "-o FILE") {
		t.Errorf("export without -o: %d %s", code, errs)
	}

	dst := filepath.Join(t.TempDir(), "store")
	code, out, errs := runBerth(t, "import", "--store", dst, "--sumdb", up.GOSUMDB(), bundle)
	if code != 0 || !strings.Contains(out, "2 module versions verified against "+up.SumDBName) || strings.Contains(out, "added 0") {
		t.Fatalf("import: %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dst, "example.test/lib/@v/v1.1.0.zip")); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runBerth(t, "import", "--store", dst, "--sumdb", up.GOSUMDB(), bundle)
	if code != 0 || !strings.Contains(out, "added 0") {
		t.Fatalf("second import: %d\n%s", code, out)
	}

	// Refusals: another trusted key, a corrupt file. The store is untouched.
	fresh := filepath.Join(t.TempDir(), "store")
	_, otherKey, _ := note.GenerateKey(rand.Reader, up.SumDBName)
	code, _, errs = runBerth(t, "import", "--store", fresh, "--sumdb", otherKey, bundle)
	if code != 1 || !strings.Contains(errs, "bundle refused, the store is unchanged") {
		t.Fatalf("import with another key: %d\n%s", code, errs)
	}
	b, _ := os.ReadFile(bundle)
	b[len(b)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.tar.zst")
	os.WriteFile(bad, b, 0o644)
	code, _, errs = runBerth(t, "import", "--store", fresh, "--sumdb", up.GOSUMDB(), bad)
	if code != 1 || !strings.Contains(errs, "refused") {
		t.Fatalf("import of a corrupt bundle: %d\n%s", code, errs)
	}
	if ents, _ := os.ReadDir(fresh); len(ents) != 0 {
		t.Errorf("refused imports left %v in the store", ents)
	}
}
