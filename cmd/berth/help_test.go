package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
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
	if code := run([]string{"proxy", "--help"}, &out, &bytes.Buffer{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"GOPROXY=file://", "/readyz", "A second SIGTERM or SIGINT ends berth at once"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("berth proxy --help does not mention %q", s)
		}
	}
}

// TestHelpGoesToStdout: every way of asking for help prints it on stdout and
// exits 0, so "berth proxy --help | less" shows it; "berth help CMD" is CMD's
// help, "berth help" and "berth --help" the top level.
func TestHelpGoesToStdout(t *testing.T) {
	bin := buildBerth(t)
	top := "Usage: berth <command> [flags] [args]"
	for _, c := range commands() {
		_, own, _ := runBin(t, bin, nil, c.name, "--help")
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			code, out, errs := runBin(t, bin, nil, args...)
			if code != 0 || errs != "" || !strings.Contains(out, "berth "+c.name) || strings.Contains(out, top) || out != own {
				t.Errorf("berth %s: exit %d, stderr %q, stdout:\n%s\nwant exit 0, nothing on stderr, %s's own help on stdout", strings.Join(args, " "), code, errs, out, c.name)
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, errs := runBin(t, bin, nil, args...)
		if code != 0 || errs != "" || !strings.Contains(out, top) {
			t.Errorf("berth %s: exit %d, stderr %q, stdout:\n%s\nwant the top-level help on stdout", strings.Join(args, " "), code, errs, out)
		}
	}
	for _, args := range [][]string{{"help", "nope"}, {"nope"}} {
		code, out, errs := runBin(t, bin, nil, args...)
		if want := "berth: unknown command \"nope\"\nRun 'berth help' for the commands.\n"; code != 2 || out != "" || errs != want {
			t.Errorf("berth %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(args, " "), code, out, errs, want)
		}
	}
}

// TestProxyHelpDockerExampleStarts runs the docker example of berth proxy
// --help as the image would: no go command on PATH, the image's BERTH_*
// defaults, the example's -e variables (with $(go env ...) standing for a
// loopback upstream and its checksum database) and its arguments. berth must
// start serving, not stop with "no upstream configured".
func TestProxyHelpDockerExampleStarts(t *testing.T) {
	bin := buildBerth(t)
	i := strings.Index(proxyAbout, "docker run ")
	if i < 0 {
		t.Fatal("berth proxy --help has no docker run example")
	}
	line := proxyAbout[i:]
	line = strings.ReplaceAll(line[:strings.Index(line, "\n\n")], "\\\n", " ")
	m := regexp.MustCompile(` berth (proxy( --?[a-z-]+( [^-][^ ]*)?)*)\s*$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("cannot find the berth command line in the example %q", line)
	}
	up := testmod.NewUpstream(t, airgapModules())
	goEnv := map[string]string{"GOPROXY": up.URL(), "GOSUMDB": up.GOSUMDB()}
	env := []string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir(), "BERTH_LISTEN=127.0.0.1:0", "BERTH_DRAIN_DELAY=1s", "BERTH_SHUTDOWN_TIMEOUT=3s"}
	for _, e := range regexp.MustCompile(`-e (\w+)="\$\(go env (\w+)\)"`).FindAllStringSubmatch(line, -1) {
		env = append(env, e[1]+"="+goEnv[e[2]])
	}
	store := t.TempDir()
	args := strings.Fields(strings.ReplaceAll(m[1], "/store", store))
	logs := &syncWriter{}
	cmd := exec.Command(bin, append(args, "--log-format", "json")...)
	cmd.Env, cmd.Stderr = env, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { cmd.Process.Kill(); <-done }()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"berth proxy listening"`) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the example %q (env %q) exited at once: %v\n%s", line, env, err, logs.String())
		case <-deadline:
			t.Fatalf("the example did not start in 10s:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
