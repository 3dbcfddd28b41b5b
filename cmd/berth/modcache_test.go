package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
)

// storeWithoutLookups is a store shaped like a module cache filled from a
// complete go.sum: module files, no checksum lookups (warmed with the
// checksum database off).
func storeWithoutLookups(t *testing.T, up *testmod.Upstream) string {
	t.Helper()
	dir := t.TempDir()
	if code, out, errs := runBerth(t, "warm", "--store", dir, "--upstream", up.URL(), "--sumdb", "off", "example.test/lib@v1.1.0", "example.test/Upper@v1.0.0"); code != 0 {
		t.Fatalf("warm: %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "sumdb")); err == nil {
		t.Fatal("warm --sumdb off stored checksum data")
	}
	return dir
}

// TestExportFetchesMissingChecksumData: export of a store without lookups
// with no upstream refuses in one line that counts what is missing and
// names the command to run; with an upstream it fetches the data, and the
// bundle imports verified.
func TestExportFetchesMissingChecksumData(t *testing.T) {
	t.Setenv("GONOSUMDB", "")
	t.Setenv("GOPRIVATE", "")
	up := testmod.NewUpstream(t, airgapModules())
	src := storeWithoutLookups(t, up)
	bundle := filepath.Join(t.TempDir(), "m.tar.zst")

	code, out, errs := runBerth(t, "export", "--store", src, "-o", bundle, "--sumdb", up.GOSUMDB(), "--upstream", "off")
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if code != 1 || len(lines) != 1 || out != "" {
		t.Fatalf("export with no upstream: exit %d, want 1 and one line:\n%s%s", code, out, errs)
	}
	for _, want := range []string{"2 of 2 module versions have no checksum data", "run berth export --upstream YOUR-MODULE-PROXY-URL --store " + src + " -o " + bundle, "--sumdb off"} {
		if !strings.Contains(errs, want) {
			t.Errorf("export with no upstream does not say %q:\n%s", want, errs)
		}
	}
	if _, err := os.Stat(bundle); err == nil {
		t.Error("a refused export left a bundle")
	}

	code, _, errs = runBerth(t, "export", "--store", src, "-o", bundle, "--sumdb", up.GOSUMDB(), "--upstream", up.URL())
	if code != 0 || !strings.Contains(errs, "checksum data of 2 of them fetched") {
		t.Fatalf("export with an upstream: %d\n%s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(src, "sumdb")); err == nil {
		t.Error("export wrote checksum data into the store it exported")
	}
	up.Close()
	dst := filepath.Join(t.TempDir(), "store")
	code, out, errs = runBerth(t, "import", "--store", dst, "--sumdb", up.GOSUMDB(), bundle)
	if code != 0 || !strings.Contains(out, "2 module versions verified against "+up.SumDBName) {
		t.Fatalf("import: %d\n%s%s", code, out, errs)
	}
}

// TestImportRefusalCommand: a bundle without checksum data is refused with
// a few short lines, a count of the rest and what to run.
func TestImportRefusalCommand(t *testing.T) {
	t.Setenv("GONOSUMDB", "")
	t.Setenv("GOPRIVATE", "")
	mods := airgapModules()
	for _, v := range []string{"v1.2.0", "v1.3.0", "v1.4.0"} {
		mods = append(mods, testmod.Module{Path: "example.test/lib", Version: v, Files: map[string]string{"lib.go": "package lib\n"}})
	}
	up := testmod.NewUpstream(t, mods)
	src := t.TempDir()
	if code, out, errs := runBerth(t, "warm", "--store", src, "--upstream", up.URL(), "--sumdb", "off", "example.test/lib@v1.1.0", "example.test/lib@v1.2.0",
		"example.test/lib@v1.3.0", "example.test/lib@v1.4.0", "example.test/Upper@v1.0.0"); code != 0 {
		t.Fatalf("warm: %d\n%s%s", code, out, errs)
	}
	bundle := filepath.Join(t.TempDir(), "m.tar.zst")
	if code, _, errs := runBerth(t, "export", "--store", src, "-o", bundle, "--sumdb", "off"); code != 0 {
		t.Fatalf("export: %d\n%s", code, errs)
	}
	code, _, errs := runBerth(t, "import", "--store", t.TempDir(), "--sumdb", up.GOSUMDB(), bundle)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if code != 1 || len(lines) != 6 {
		t.Fatalf("import: exit %d, want 1 and 6 lines (header, 3 reasons, the count, the hint):\n%s", code, errs)
	}
	if lines[4] != "  and 2 more" || !strings.Contains(lines[5], "berth export") || !strings.Contains(lines[5], "--sumdb off") {
		t.Errorf("import refusal does not end with the count and what to run:\n%s", errs)
	}
	for _, l := range lines {
		if len(l) > 200 {
			t.Errorf("refusal line of %d characters: %s", len(l), l)
		}
	}
}

// TestExportSelectsNothing: patterns that match no module are an error, in
// one line, and write no bundle.
func TestExportSelectsNothing(t *testing.T) {
	t.Setenv("GONOSUMDB", "")
	t.Setenv("GOPRIVATE", "")
	up := testmod.NewUpstream(t, airgapModules())
	src := t.TempDir()
	if code, out, errs := runBerth(t, "warm", "--store", src, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "example.test/lib@v1.1.0"); code != 0 {
		t.Fatalf("warm: %d\n%s%s", code, out, errs)
	}
	bundle := filepath.Join(t.TempDir(), "m.tar.zst")
	code, _, errs := runBerth(t, "export", "--store", src, "-o", bundle, "--sumdb", up.GOSUMDB(), "example.test/nothing")
	if code != 1 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "no module in the store matches example.test/nothing") {
		t.Fatalf("export of a pattern matching nothing: exit %d, want 1 and one line:\n%s", code, errs)
	}
	if _, err := os.Stat(bundle); err == nil {
		t.Error("an export that selected nothing wrote a bundle")
	}
}
