package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// flags wraps a flag.FlagSet so that every flag may also come from a BERTH_*
// environment variable, and --help lists both from the same place.
// Precedence: command-line flag, then environment variable, then default.
type flags struct {
	fs      *flag.FlagSet
	envErrs []string
	about   string
}

// testHookNewFlags, when set, is given each flag set newFlags makes, so a test
// can walk the flags a command really defines.
var testHookNewFlags func(*flag.FlagSet)

// newFlags returns a flag set for "berth <name>"; about is printed at the top of --help
// and may span several lines (synopsis, description, examples).
func newFlags(name, about string, stderr io.Writer) *flags {
	f := &flags{fs: flag.NewFlagSet("berth "+name, flag.ContinueOnError), about: about}
	if testHookNewFlags != nil {
		testHookNewFlags(f.fs)
	}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() {
		fmt.Fprintln(stderr, strings.TrimSpace(f.about))
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Flags (each may also be set by the environment variable shown):")
		f.fs.VisitAll(func(fl *flag.Flag) {
			dash := "--"
			if len(fl.Name) == 1 {
				dash = "-"
			}
			fmt.Fprintf(stderr, "  %s%s", dash, fl.Name)
			if name, _ := flag.UnquoteUsage(fl); name != "" {
				fmt.Fprintf(stderr, " %s", name)
			}
			fmt.Fprintln(stderr)
			_, usage := flag.UnquoteUsage(fl)
			for _, line := range strings.Split(usage, "\n") {
				fmt.Fprintf(stderr, "        %s\n", line)
			}
			if fl.DefValue != "" && fl.DefValue != "0" && fl.DefValue != "false" && fl.DefValue != "[]" {
				fmt.Fprintf(stderr, "        (default %s)\n", fl.DefValue)
			}
		})
	}
	return f
}

func envName(flagName string) string {
	return "BERTH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *flags) lookupEnv(name string) (string, bool) {
	v, ok := os.LookupEnv(envName(name))
	return v, ok && v != ""
}

func envUsage(name, usage string) string {
	return usage + " [$" + envName(name) + "]"
}

// String defines a string flag with an environment fallback.
func (f *flags) String(name, def, usage string) *string {
	if v, ok := f.lookupEnv(name); ok {
		def = v
	}
	return f.fs.String(name, def, envUsage(name, usage))
}

// Bool defines a bool flag with an environment fallback.
func (f *flags) Bool(name string, def bool, usage string) *bool {
	if v, ok := f.lookupEnv(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Sprintf("%s=%q: want true or false", envName(name), v))
		} else {
			def = b
		}
	}
	return f.fs.Bool(name, def, envUsage(name, usage))
}

// Int defines an int flag with an environment fallback.
func (f *flags) Int(name string, def int, usage string) *int {
	if v, ok := f.lookupEnv(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Sprintf("%s=%q: want a whole number", envName(name), v))
		} else {
			def = n
		}
	}
	return f.fs.Int(name, def, envUsage(name, usage))
}

// Duration defines a duration flag with an environment fallback.
func (f *flags) Duration(name string, def time.Duration, usage string) *time.Duration {
	if v, ok := f.lookupEnv(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Sprintf("%s=%q: want a duration such as 30s or 5m", envName(name), v))
		} else {
			def = d
		}
	}
	return f.fs.Duration(name, def, envUsage(name, usage))
}

// Parse parses args. It returns (code, false) when the caller must exit with code:
// 0 after --help, 2 on a usage error (bad flag or bad environment value).
func (f *flags) Parse(args []string) (int, bool) {
	if err := f.fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0, false
		}
		return 2, false
	}
	if len(f.envErrs) > 0 {
		for _, e := range f.envErrs {
			fmt.Fprintf(f.fs.Output(), "%s: %s\n", f.fs.Name(), e)
		}
		return 2, false
	}
	return 0, true
}

// Args returns the non-flag arguments.
func (f *flags) Args() []string { return f.fs.Args() }
