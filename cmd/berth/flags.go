package main

import (
	"errors"
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
//
// A usage error is one line naming the flag and the form it wants, then one
// line pointing at --help; the help itself goes to stdout, so that
// "berth proxy --help | less" shows it.
type flags struct {
	fs      *flag.FlagSet
	envErrs []string
	about   string
	stdout  io.Writer
	stderr  io.Writer
}

// testHookNewFlags, when set, is given each flag set newFlags makes, so a test
// can walk the flags a command really defines.
var testHookNewFlags func(*flag.FlagSet)

// newFlags returns a flag set for "berth <name>"; about is printed at the top of --help
// and may span several lines (synopsis, description, examples).
func newFlags(name, about string, stdout, stderr io.Writer) *flags {
	f := &flags{fs: flag.NewFlagSet("berth "+name, flag.ContinueOnError), about: about, stdout: stdout, stderr: stderr}
	if testHookNewFlags != nil {
		testHookNewFlags(f.fs)
	}
	// The flag package's own messages (usage after every error, single-dash
	// names, "parse error") are replaced by Parse's.
	f.fs.SetOutput(io.Discard)
	f.fs.Usage = func() {}
	return f
}

// help writes the command's help: about, then every flag with its usage,
// environment variable and default.
func (f *flags) help(w io.Writer) {
	fmt.Fprintln(w, strings.TrimSpace(f.about))
	n := 0
	f.fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags (each may also be set by the environment variable shown):")
	f.fs.VisitAll(func(fl *flag.Flag) {
		fmt.Fprintf(w, "  %s", dashed(fl.Name))
		if name, _ := flag.UnquoteUsage(fl); name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintln(w)
		_, usage := flag.UnquoteUsage(fl)
		for _, line := range strings.Split(usage, "\n") {
			fmt.Fprintf(w, "        %s\n", line)
		}
		if fl.DefValue != "" && fl.DefValue != "0" && fl.DefValue != "false" && fl.DefValue != "[]" {
			fmt.Fprintf(w, "        (default %s)\n", fl.DefValue)
		}
	})
}

// dashed is a flag's name as the user types it: --name, or -o for a one-letter shorthand.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
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
			f.envErrs = append(f.envErrs, fmt.Sprintf("%s=%q: %s", envName(name), v, wantBool))
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
			f.envErrs = append(f.envErrs, fmt.Sprintf("%s=%q: %s", envName(name), v, wantInt))
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
			f.envErrs = append(f.envErrs, fmt.Sprintf("%s=%q: %s", envName(name), v, wantDuration))
		} else {
			def = d
		}
	}
	return f.fs.Duration(name, def, envUsage(name, usage))
}

// The accepted forms of the typed flags, in flag and environment errors alike.
const (
	wantBool     = "want true or false"
	wantInt      = "want a whole number"
	wantDuration = "want a duration such as 30s or 5m"
)

// Parse parses args. It returns (code, false) when the caller must exit with code:
// 0 after --help (printed on stdout), 2 on a usage error (bad flag or bad
// environment value, said in one line on stderr).
func (f *flags) Parse(args []string) (int, bool) {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.help(f.stdout)
			return 0, false
		}
		return f.Usagef("%s", f.diagnose(args)), false
	}
	if len(f.envErrs) > 0 {
		for _, e := range f.envErrs {
			fmt.Fprintf(f.stderr, "%s: %s\n", f.fs.Name(), e)
		}
		fmt.Fprintf(f.stderr, "Run '%s --help' for the flags.\n", f.fs.Name())
		return 2, false
	}
	return 0, true
}

// Usagef reports a usage error: "berth CMD: " and the message on one line, then
// the line pointing at --help. It returns 2, the exit code of a usage error.
func (f *flags) Usagef(format string, args ...any) int {
	fmt.Fprintf(f.stderr, "%s: %s\n", f.fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(f.stderr, "Run '%s --help' for the flags.\n", f.fs.Name())
	return 2
}

// diagnose finds the argument fs.Parse failed on, walking args by the flag
// package's rules, and says what is wrong with it in berth's words. Values are
// set again on the way (fs is discarded after a failed parse), so a value's
// own Set decides whether it is bad, exactly as in the parse.
func (f *flags) diagnose(args []string) string {
	for len(args) > 0 {
		s := args[0]
		args = args[1:]
		if len(s) < 2 || s[0] != '-' || s == "--" {
			break
		}
		name := s[1:]
		if name[0] == '-' {
			name = name[1:]
		}
		if name == "" || name[0] == '-' || name[0] == '=' {
			return fmt.Sprintf("%s: not a flag: want --name or --name=value", s)
		}
		value, hasValue := "", false
		if i := strings.IndexByte(name, '='); i >= 0 {
			name, value, hasValue = name[:i], name[i+1:], true
		}
		fl := f.fs.Lookup(name)
		if fl == nil {
			msg := fmt.Sprintf("%s: no such flag", dashed(name))
			if near := f.nearest(name); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", dashed(near))
			}
			return msg
		}
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			if hasValue && fl.Value.Set(value) != nil {
				return fmt.Sprintf("%s=%s: %s", dashed(name), quoteArg(value), wantBool)
			}
			continue
		}
		if !hasValue {
			if len(args) == 0 {
				arg, _ := flag.UnquoteUsage(fl)
				return fmt.Sprintf("%s needs a value: want %s %s", dashed(name), dashed(name), arg)
			}
			value, args = args[0], args[1:]
		}
		if err := fl.Value.Set(value); err != nil {
			return fmt.Sprintf("%s=%s: %s", dashed(name), quoteArg(value), wantOf(fl, err))
		}
	}
	return "bad flags: want --name value or --name=value"
}

// wantOf says what form fl's value must have.
func wantOf(fl *flag.Flag, err error) string {
	if g, ok := fl.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool:
			return wantBool
		case int, int64, uint, uint64:
			return wantInt
		case time.Duration:
			return wantDuration
		}
	}
	return err.Error()
}

// nearest returns the defined flag name closest to name, if one is close
// enough to be a typo of it.
func (f *flags) nearest(name string) string {
	best, bestD := "", 3
	f.fs.VisitAll(func(fl *flag.Flag) {
		if d := editDistance(name, fl.Name); d < bestD && d < len(fl.Name) {
			best, bestD = fl.Name, d
		}
	})
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// quoteArg quotes a value only when the shell would need it to be.
func quoteArg(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"'\\$`") || strconv.Quote(s) != `"`+s+`"` {
		return strconv.Quote(s)
	}
	return s
}

// Args returns the non-flag arguments.
func (f *flags) Args() []string { return f.fs.Args() }
