package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runBin runs the berth binary with no BERTH_* variables set and returns its
// exit code and output.
func runBin(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BERTH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("berth %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// flagSets returns the flag sets each subcommand defines, by command name.
func flagSets(t *testing.T) map[string][]*flag.FlagSet {
	t.Helper()
	sets := map[string][]*flag.FlagSet{}
	for _, c := range commands() {
		var mine []*flag.FlagSet
		testHookNewFlags = func(fs *flag.FlagSet) { mine = append(mine, fs) }
		c.run(context.Background(), []string{"--help"}, &bytes.Buffer{}, &bytes.Buffer{})
		testHookNewFlags = nil
		sets[c.name] = mine
	}
	return sets
}

// TestFlagErrorsAreOneLine walks every subcommand's flags and runs the real
// binary with an unknown flag, each typed flag with a bad value, and each
// flag that takes a value with none: the error is one line on stderr naming
// the flag in double-dash style and the accepted form, then one line pointing
// at --help, exit 2, nothing on stdout.
func TestFlagErrorsAreOneLine(t *testing.T) {
	bin := buildBerth(t)
	type tc struct {
		args []string
		env  []string
		want string // the first line, whole
	}
	var cases []tc
	for name, sets := range flagSets(t) {
		if len(sets) == 0 {
			t.Errorf("berth %s defines no flag set: its --help and flag errors bypass newFlags", name)
			continue
		}
		cases = append(cases, tc{args: []string{name, "-no-such-flag"}, want: "berth " + name + ": --no-such-flag: no such flag"})
		sets[0].VisitAll(func(fl *flag.Flag) {
			n := dashed(fl.Name)
			var want string
			var v any
			if g, ok := fl.Value.(flag.Getter); ok {
				v = g.Get()
			}
			switch v.(type) {
			case bool:
				cases = append(cases, tc{args: []string{name, n + "=maybe"}, want: "berth " + name + ": " + n + "=maybe: want true or false"})
				return
			case int:
				want = "want a whole number"
			case time.Duration:
				want = "want a duration such as 30s or 5m"
			}
			if want != "" {
				cases = append(cases,
					tc{args: []string{name, n + "=banana"}, want: "berth " + name + ": " + n + "=banana: " + want},
					tc{args: []string{name, n, "banana"}, want: "berth " + name + ": " + n + "=banana: " + want})
			}
			arg, _ := flag.UnquoteUsage(fl)
			cases = append(cases, tc{args: []string{name, n}, want: "berth " + name + ": " + n + " needs a value: want " + n + " " + arg})
		})
	}
	// Values a flag's type accepts but the command does not.
	cases = append(cases,
		tc{args: []string{"proxy", "--log-level", "loud"}, want: "berth proxy: --log-level=loud: want debug, info, warn or error"},
		tc{args: []string{"proxy", "--log-format=xml"}, want: "berth proxy: --log-format=xml: want text or json"},
		tc{args: []string{"proxy", "--upstream", "off", "--max-store-size", "lots"}, want: "berth proxy: --max-store-size=lots: want a size: a number with an optional unit such as 500MB or 20GiB"},
		tc{args: []string{"proxy", "--upstream", "off", "extra"}, want: `berth proxy: unexpected argument "extra": berth proxy takes flags only`},
		tc{args: []string{"proxy", "--lisen", ":3000"}, want: "berth proxy: --lisen: no such flag (did you mean --listen?)"},
		tc{args: []string{"proxy"}, env: []string{"BERTH_LIST_TTL=banana"}, want: `berth proxy: BERTH_LIST_TTL="banana": want a duration such as 30s or 5m`},
		tc{args: []string{"warm", "--jobs", "0"}, want: "berth warm: --jobs=0: want a whole number of at least 1"},
		tc{args: []string{"doctor", "--timeout=-1s"}, want: "berth doctor: --timeout=-1s: want a positive duration such as 5s"},
		tc{args: []string{"doctor", "https://example.test/", "--json=maybe"}, want: "berth doctor: --json=maybe: want true or false"},
		tc{args: []string{"healthcheck"}, want: "berth healthcheck: want exactly one URL, such as http://127.0.0.1:3000/readyz"},
	)
	for _, c := range cases {
		code, out, errs := runBin(t, bin, c.env, c.args...)
		cmd := "berth " + c.args[0]
		want := c.want + "\nRun '" + cmd + " --help' for the flags.\n"
		if code != 2 || out != "" || errs != want {
			t.Errorf("berth %s %s: exit %d, stdout %q, stderr:\n%s\nwant exit 2, no stdout, stderr:\n%s", strings.Join(c.args, " "), strings.Join(c.env, " "), code, out, errs, want)
		}
	}
}
