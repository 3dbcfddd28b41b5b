package goenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goWithEnvFile returns a go command whose user go/env file sets GOPROXY and
// GOPRIVATE, as `go env -w` would.
func goWithEnvFile(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	f := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(f, []byte("GOPROXY=https://file.example.test\nGOPRIVATE=*.corp.example.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOENV", f)
	return goBin
}

func TestReadFakeGetenv(t *testing.T) {
	goBin := goWithEnvFile(t)
	// The process environment says otherwise: the fake getenv's view wins.
	t.Setenv("GOPROXY", "https://process.example.test")
	t.Setenv("GONOSUMDB", "process.example.test")
	env := map[string]string{"GOSUMDB": "off", "GOFLAGS": "", "GONOSUMDB": ""}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	vals, origins, err := Read(context.Background(), getenv, goBin, "GOSUMDB", "GOPROXY", "GOFLAGS", "GONOSUMDB", "GOPROXY")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"GOSUMDB":   "off",                       // from getenv
		"GOPROXY":   "https://file.example.test", // from the go/env file, not this process
		"GOFLAGS":   "",                          // set but empty: go env's value
		"GONOSUMDB": "*.corp.example.test",       // go env's default: GOPRIVATE
	}
	wantOrigin := map[string]Origin{"GOSUMDB": Environment, "GOPROXY": GoEnv, "GOFLAGS": GoEnv, "GONOSUMDB": GoEnv}
	for k := range want {
		if vals[k] != want[k] || origins[k] != wantOrigin[k] {
			t.Errorf("%s = %q from %v, want %q from %v", k, vals[k], origins[k], want[k], wantOrigin[k])
		}
	}
	if len(vals) != 4 || len(origins) != 4 {
		t.Errorf("Read returned %v %v, want 4 names", vals, origins)
	}
	if NoSumDB(vals) != "*.corp.example.test" || !NoSumDB(vals).Match("git.corp.example.test/x/y") {
		t.Errorf("NoSumDB = %q", NoSumDB(vals))
	}
}

func TestReadAllFromGetenvRunsNoGo(t *testing.T) {
	getenv := func(k string) (string, bool) { return "v-" + k, true }
	vals, origins, err := Read(context.Background(), getenv, "/nonexistent/go", "GOPROXY", "GOSUMDB")
	if err != nil || vals["GOPROXY"] != "v-GOPROXY" || origins["GOSUMDB"] != Environment {
		t.Errorf("Read = %v %v %v", vals, origins, err)
	}
}

func TestReadNoGoCommand(t *testing.T) {
	getenv := func(k string) (string, bool) {
		if k == "GOPROXY" {
			return "https://env.example.test", true
		}
		return "", false
	}
	t.Setenv("PATH", t.TempDir())
	vals, origins, err := Read(context.Background(), getenv, "", "GOPROXY", "GOSUMDB")
	if !errors.Is(err, ErrNoGoCommand) {
		t.Errorf("err = %v, want ErrNoGoCommand", err)
	}
	if vals["GOPROXY"] != "https://env.example.test" || origins["GOPROXY"] != Environment || origins["GOSUMDB"] != Unset {
		t.Errorf("Read = %v %v", vals, origins)
	}
	if _, err := Lookup(context.Background(), "GOSUMDB"); !errors.Is(err, ErrNoGoCommand) {
		t.Errorf("Lookup: %v, want ErrNoGoCommand", err)
	}
}

func TestReadGoEnvFails(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho 'go: broken toolchain' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, origins, err := Read(context.Background(), func(string) (string, bool) { return "", false }, bad, "GOPROXY")
	if err == nil || origins["GOPROXY"] != Unset {
		t.Fatalf("Read with a failing go: %v %v", origins, err)
	}
	if got := err.Error(); !strings.Contains(got, "GOPROXY") || !strings.Contains(got, "go: broken toolchain") {
		t.Errorf("error %q does not name the variable and the go command's complaint", got)
	}
}

func TestLookup(t *testing.T) {
	goWithEnvFile(t)
	t.Setenv("GOPROXY", "")
	if v, err := Lookup(context.Background(), "GOPROXY"); err != nil || v != "https://file.example.test" {
		t.Errorf("Lookup(GOPROXY) with GOPROXY=\"\" = %q, %v; want the go/env file's value", v, err)
	}
	t.Setenv("GOPROXY", "https://env.example.test|off")
	if v, err := Lookup(context.Background(), "GOPROXY"); err != nil || v != "https://env.example.test|off" {
		t.Errorf("Lookup(GOPROXY) = %q, %v; want the environment's value", v, err)
	}
}

func TestPatterns(t *testing.T) {
	for _, tt := range []struct {
		p    Patterns
		path string
		want bool
	}{
		{"", "example.test/m", false},
		{"example.test", "example.test/m", true},
		{"example.test/m", "example.test/m/v2", true},
		{"example.test/m", "example.test/mm", false},
		{"*.corp.example.test", "git.corp.example.test/team/m", true},
		{"*.corp.example.test", "corp.example.test/m", false},
		{",example.test/*/private/,", "example.test/team/private/m", true},
		{" example.test", "example.test/m", false}, // the go command trims no spaces
		{"example.test/*/private", "example.test/team/public", false},
		{"[", "example.test", false},
	} {
		if got := tt.p.Match(tt.path); got != tt.want {
			t.Errorf("Patterns(%q).Match(%q) = %v, want %v", tt.p, tt.path, got, tt.want)
		}
	}
	vars := map[string]string{"GOPRIVATE": "private.example.test"}
	if NoProxy(vars) != "private.example.test" || NoSumDB(vars) != "private.example.test" {
		t.Errorf("GONOPROXY/GONOSUMDB do not default to GOPRIVATE: %q %q", NoProxy(vars), NoSumDB(vars))
	}
	vars["GONOSUMDB"], vars["GONOPROXY"] = "nosum.example.test", "noproxy.example.test"
	if NoProxy(vars) != "noproxy.example.test" || NoSumDB(vars) != "nosum.example.test" {
		t.Errorf("GONOPROXY/GONOSUMDB set: %q %q", NoProxy(vars), NoSumDB(vars))
	}
}
