package main

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpstreamLikeGOPROXY checks that --upstream (and GOPROXY when it is not
// given) accepts what the go command accepts in GOPROXY and refuses the rest
// with the go command's words, naming where the list came from; and that
// only "direct" is reported as version control.
func TestUpstreamLikeGOPROXY(t *testing.T) {
	// No go/env file of this machine may supply a value.
	t.Setenv("GOENV", "off")
	tests := []struct {
		flag, env string
		want      string // the chain, or the error
		warn      bool   // a "version control" line is logged
	}{
		{flag: "proxy.example.test", want: "https://proxy.example.test"},
		{flag: "https://a.example.test|https://b.example.test", want: "https://a.example.test|https://b.example.test"},
		{flag: "off", want: "off"},
		{flag: "https://a.example.test,off", want: "https://a.example.test"},
		{flag: "https://a.example.test,off,direct", want: "https://a.example.test"},
		{flag: "https://a.example.test,direct", want: "https://a.example.test,direct", warn: true},
		{flag: "banana", want: "--upstream: invalid proxy URL missing scheme: banana"},
		{flag: "OFF", want: "--upstream: invalid proxy URL missing scheme: OFF"},
		{flag: "https://a.example.test,ofthe", want: "--upstream: invalid proxy URL missing scheme: ofthe"},
		{flag: "ftp://a.example.test", want: "--upstream: invalid proxy URL scheme (must be https, http, file): ftp://a.example.test"},
		{flag: ",", want: "--upstream: GOPROXY list is not the empty string, but contains no entries"},
		{flag: "direct", want: "direct", warn: true},
		{env: "banana", want: "GOPROXY from environment: invalid proxy URL missing scheme: banana"},
		{env: "https://env.example.test,direct", want: "https://env.example.test,direct", warn: true},
	}
	for _, tt := range tests {
		t.Setenv("GOPROXY", tt.env)
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		c, err := upstreamChain(context.Background(), tt.flag, false, log)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = c.String()
		}
		if got != tt.want {
			t.Errorf("--upstream %q, GOPROXY %q: got %q, want %q", tt.flag, tt.env, got, tt.want)
		}
		if warned := strings.Contains(logs.String(), "version control"); warned != tt.warn {
			t.Errorf("--upstream %q, GOPROXY %q: version control warning %v, want %v; logs:\n%s", tt.flag, tt.env, warned, tt.warn, logs.String())
		}
	}
}

// TestUpstreamErrorOneLine runs berth as a user would: a bad --upstream stops
// it at start with one line that names the flag and the go command's error
// (and the line pointing at --help that follows every usage error).
func TestUpstreamErrorOneLine(t *testing.T) {
	bin := buildBerth(t)
	for _, up := range []string{"banana", "OFF"} {
		cmd := exec.Command(bin, "proxy", "--store", filepath.Join(t.TempDir(), "s"), "--upstream", up)
		out, err := cmd.CombinedOutput()
		want := "berth proxy: --upstream: invalid proxy URL missing scheme: " + up + "\nRun 'berth proxy --help' for the flags.\n"
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || string(out) != want {
			t.Errorf("berth proxy --upstream %s: %v, output %q; want exit 2 and %q", up, err, out, want)
		}
	}
}

// TestSumDBConfigLikeGoCommand checks GOSUMDB, GONOSUMDB and GOPRIVATE as
// the go command reads them when --sumdb and --nosumdb are not given.
func TestSumDBConfigLikeGoCommand(t *testing.T) {
	t.Setenv("GOENV", "off")
	t.Setenv("PATH", t.TempDir()) // no go command: the environment alone decides
	t.Setenv("GOSUMDB", "")
	t.Setenv("GOPRIVATE", "*.corp.example.test")
	t.Setenv("GONOSUMDB", "")
	key, noSum, err := sumdbConfig(context.Background(), "", "")
	if err != nil || key != "" {
		t.Fatalf("no GOSUMDB and no go command: key %q, %v; want off", key, err)
	}
	if noSum == nil || !noSum("git.corp.example.test/team/m") || noSum("example.test/m") {
		t.Error("GONOSUMDB does not default to GOPRIVATE")
	}
	t.Setenv("GONOSUMDB", "nosum.example.test")
	if _, noSum, _ = sumdbConfig(context.Background(), "", ""); noSum("git.corp.example.test/m") || !noSum("nosum.example.test/m") {
		t.Error("GONOSUMDB set: GOPRIVATE still used")
	}
	if _, noSum, _ = sumdbConfig(context.Background(), "", "flag.example.test"); noSum("nosum.example.test/m") || !noSum("flag.example.test/m") {
		t.Error("--nosumdb does not win over GONOSUMDB")
	}

	t.Setenv("GOSUMDB", "sum.golang.org")
	if key, _, err := sumdbConfig(context.Background(), "", ""); err != nil || !strings.HasPrefix(key, "sum.golang.org+") {
		t.Errorf("GOSUMDB=sum.golang.org: key %q, %v", key, err)
	}
	t.Setenv("GOSUMDB", "sum.example.test")
	if _, _, err := sumdbConfig(context.Background(), "", ""); err == nil || !strings.HasPrefix(err.Error(), "GOSUMDB from environment: invalid GOSUMDB: malformed verifier id") {
		t.Errorf("GOSUMDB=sum.example.test: %v", err)
	}
	if _, _, err := sumdbConfig(context.Background(), "a b c", ""); err == nil || err.Error() != "--sumdb: invalid GOSUMDB: too many fields" {
		t.Errorf("--sumdb 'a b c': %v", err)
	}
	if key, _, err := sumdbConfig(context.Background(), "off", ""); err != nil || key != "" {
		t.Errorf("--sumdb off: key %q, %v", key, err)
	}
}
