package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

// helpOf runs "berth <cmd> --help" in process and returns the help text and the
// flag sets the command made (none for a command without flags).
func helpOf(t *testing.T, c command) (string, []*flag.FlagSet) {
	t.Helper()
	var sets []*flag.FlagSet
	testHookNewFlags = func(fs *flag.FlagSet) { sets = append(sets, fs) }
	defer func() { testHookNewFlags = nil }()
	var out, errb bytes.Buffer
	code := c.run(context.Background(), []string{"--help"}, &out, &errb)
	if len(sets) > 0 && code != 0 {
		t.Errorf("berth %s --help: exit %d, want 0\n%s", c.name, code, errb.String())
	}
	return out.String() + errb.String(), sets
}

// noEnv are the flags that take no BERTH_* environment variable, and why.
var noEnv = map[string]string{
	"doctor --listen": "repeatable",
	"export -o":       "shorthand of --output, which has one",
}

// TestHelpDocumentsEveryFlag walks the flag set of every subcommand that has
// flags: its --help shows each flag with its usage and default, and the
// BERTH_* variable --help names for a flag really sets it.
func TestHelpDocumentsEveryFlag(t *testing.T) {
	withHelp := 0
	for _, c := range commands() {
		help, sets := helpOf(t, c)
		if len(sets) == 0 {
			continue
		}
		withHelp++
		envs := map[string]string{} // variable -> value to set
		want := map[string]string{} // flag -> the value the variable must give it
		for _, fs := range sets {
			fs.VisitAll(func(fl *flag.Flag) {
				name := "--" + fl.Name
				if len(fl.Name) == 1 {
					name = "-" + fl.Name
				}
				arg, usage := flag.UnquoteUsage(fl)
				line := "  " + strings.TrimSpace(name+" "+arg) + "\n"
				if !strings.Contains(help, line) {
					t.Errorf("berth %s --help has no line %q for flag %s", c.name, line, name)
				}
				for _, u := range strings.Split(usage, "\n") {
					if !strings.Contains(help, "        "+u+"\n") {
						t.Errorf("berth %s --help lacks the usage of %s: %q", c.name, name, u)
					}
				}
				if d := fl.DefValue; d != "" && d != "0" && d != "false" && !strings.Contains(help, "(default "+d+")") {
					t.Errorf("berth %s --help does not show the default of %s (%s)", c.name, name, d)
				}
				env := envName(fl.Name)
				if why, ok := noEnv[c.name+" "+name]; ok {
					if strings.Contains(usage, env) {
						t.Errorf("berth %s %s is listed as taking no environment variable (%s) but --help names %s", c.name, name, why, env)
					}
					return
				}
				if !strings.Contains(usage, "[$"+env+"]") {
					t.Errorf("berth %s --help does not name %s for %s", c.name, env, name)
					return
				}
				v := envValue(fl)
				envs[env], want[fl.Name] = v, v
			})
		}
		// The variables --help names set the flags (here seen as their new defaults).
		for k, v := range envs {
			t.Setenv(k, v)
		}
		_, sets = helpOf(t, c)
		for _, fs := range sets {
			fs.VisitAll(func(fl *flag.Flag) {
				if w, ok := want[fl.Name]; ok && fl.Value.String() != w {
					t.Errorf("berth %s: %s=%s left --%s at %q", c.name, envName(fl.Name), w, fl.Name, fl.Value.String())
				}
			})
		}
		for k := range envs {
			t.Setenv(k, "") // empty is unset for berth
		}
	}
	if withHelp < 6 {
		t.Errorf("%d subcommands have flags, want at least proxy, doctor, warm, export, import, healthcheck", withHelp)
	}
}

// envValue is a valid value for fl other than its default.
func envValue(fl *flag.Flag) string {
	switch v := fl.Value.(flag.Getter).Get().(type) {
	case bool:
		return fmt.Sprint(!v)
	case int:
		return fmt.Sprint(v + 7)
	case time.Duration:
		return (v + 7*time.Second).String()
	}
	return "from-env"
}

func TestProxyHelpExplainsTheStore(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"proxy", "--help"}, &bytes.Buffer{}, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"GOPROXY=file://", "/readyz", "A second SIGTERM or SIGINT ends berth at once"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("berth proxy --help does not mention %q", s)
		}
	}
}
