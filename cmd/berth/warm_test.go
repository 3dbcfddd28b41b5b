package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
)

func airgapModules() []testmod.Module {
	return []testmod.Module{
		{Path: "example.test/lib", Version: "v1.1.0", Files: map[string]string{"lib.go": "package lib\n"}},
		{Path: "example.test/Upper", Version: "v1.0.0", Files: map[string]string{"up.go": "package upper\n"}},
	}
}

// runBerth runs a berth command in process and returns its exit code and output.
func runBerth(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestWarmCommand(t *testing.T) {
	t.Setenv("GONOSUMDB", "")
	t.Setenv("GOPRIVATE", "")
	up := testmod.NewUpstream(t, airgapModules())
	dir := t.TempDir()
	list := filepath.Join(t.TempDir(), "modules.txt")
	os.WriteFile(list, []byte("example.test/main\nexample.test/Upper v1.0.0\n"), 0o644)
	args := []string{"warm", "--store", dir, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "example.test/lib@v1.1.0", list}

	code, out, errs := runBerth(t, args...)
	if code != 0 || !strings.Contains(out, "2 module versions") || !strings.Contains(out, "fetched 2, already present 0, failed 0") {
		t.Fatalf("warm: %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "100%") {
		t.Errorf("no progress lines on a non-terminal:\n%s", errs)
	}
	for _, k := range []string{"example.test/!upper/@v/v1.0.0.zip", "sumdb/" + up.SumDBName + "/lookup/example.test/lib@v1.1.0"} {
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			t.Errorf("store lacks %s", k)
		}
	}
	before := up.Counts()
	code, out, errs = runBerth(t, args...)
	if code != 0 || !strings.Contains(out, "fetched 0, already present 2, failed 0") {
		t.Fatalf("second warm: %d\n%s%s", code, out, errs)
	}
	for p, n := range up.Counts() {
		if before[p] != n {
			t.Errorf("second warm asked the upstream for %s", p)
		}
	}

	code, out, errs = runBerth(t, "warm", "--store", dir, "--upstream", up.URL(), "--sumdb", up.GOSUMDB(), "example.test/missing@v1.0.0")
	if code != 1 || !strings.Contains(out, "failed 1") || !strings.Contains(errs, "example.test/missing@v1.0.0") {
		t.Fatalf("warm of a missing module: %d\n%s%s", code, out, errs)
	}
	code, _, errs = runBerth(t, "warm", "--store", dir, "--upstream", up.URL(), "example.test/lib@master")
	if code != 2 || !strings.Contains(errs, "semantic version") {
		t.Fatalf("warm of a query: %d\n%s", code, errs)
	}
}

func TestWarmExportImportHelp(t *testing.T) {
	for _, c := range []struct {
		cmd   string
		flags []string
	}{
		{"warm", []string{"--store", "--upstream", "--sumdb", "--nosumdb", "--jobs", "--fetch-timeout", "--log-level", "BERTH_STORE"}},
		{"export", []string{"--store", "--output", "--o", "--sumdb"}},
		{"import", []string{"--store", "--sumdb", "--nosumdb", "--max-size-gb"}},
	} {
		code, errs, _ := runBerth(t, c.cmd, "--help")
		if code != 0 || !strings.Contains(errs, "Usage: berth "+c.cmd) || !strings.Contains(errs, "Examples:") {
			t.Errorf("berth %s --help: %d\n%s", c.cmd, code, errs)
		}
		for _, f := range c.flags {
			if !strings.Contains(errs, f) {
				t.Errorf("berth %s --help does not show %s", c.cmd, f)
			}
		}
	}
	code, errs, _ := runBerth(t, "--help")
	for _, c := range []string{"warm", "export", "import"} {
		if code != 0 || !strings.Contains(errs, "  "+c+" ") {
			t.Errorf("berth --help does not list %s", c)
		}
	}
}
