package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/modproxy/auth"
)

const tokenAbout = `
Usage: berth token create [--read PATTERNS] [--deny PATTERNS] [--admin] NAME
       berth token list
       berth token revoke NAME
       (each with --auth-file FILE, or BERTH_AUTH_FILE)

Manage the tokens of berth proxy's auth file (--auth-file). create makes a
random secret, prints it once on stdout and appends its SHA-256 to the file
with the scope: the module path patterns the token may read (GOPRIVATE syntax,
comma-separated; "*" is every path), those it may not, and admin for /metrics.
list shows names and scopes, never secrets (berth does not keep them). revoke
removes a token. A running berth proxy picks changes up within seconds.

The auth file, one entry a line ("#" starts a comment):

    token NAME sha256:HEX [read=PATTERNS] [deny=PATTERNS] [admin] [created=TIME]
    anonymous [read=PATTERNS] [deny=PATTERNS]

Without an anonymous line, a client without a token may read nothing.

Examples:
    berth token create --auth-file /etc/berth/auth --read 'corp.example/*' ci
    berth token create --auth-file /etc/berth/auth --read '*' --admin ops
    berth token list --auth-file /etc/berth/auth
`

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("token", tokenAbout, stdout, stderr)
	file := f.String("auth-file", "", "the auth `file` (created by the first create, mode 0600)")
	read := f.String("read", "", "create: module path `patterns` the token may read, GOPRIVATE syntax ('*': every path)")
	deny := f.String("deny", "", "create: module path `patterns` the token may not read, even where --read matches")
	admin := f.Bool("admin", false, "create: the token may read /metrics and use the operations endpoints")
	// Flags may come before, between or after the words.
	var words []string
	for {
		if code, ok := f.Parse(args); !ok {
			return code
		}
		if len(f.Args()) == 0 {
			break
		}
		words = append(words, f.Args()[0])
		args = f.Args()[1:]
	}
	if len(words) == 0 {
		return f.Usagef("want create NAME, list or revoke NAME")
	}
	if *file == "" {
		return f.Usagef("--auth-file is required: the file berth proxy --auth-file reads")
	}
	switch words[0] {
	case "create":
		if len(words) != 2 {
			return f.Usagef("create wants one NAME, such as ci or team-build")
		}
		if *read == "" && !*admin {
			return f.Usagef("create: give the token a scope: --read PATTERNS, --admin, or both")
		}
		return tokenCreate(*file, words[1], auth.Scope{Read: *read, Deny: *deny, Admin: *admin}, f, stdout, stderr)
	case "list":
		if len(words) != 1 {
			return f.Usagef("list takes no argument")
		}
		return tokenList(*file, stdout, stderr)
	case "revoke":
		if len(words) != 2 {
			return f.Usagef("revoke wants one NAME")
		}
		return tokenRevoke(*file, words[1], stderr)
	}
	return f.Usagef("unknown action %q: want create, list or revoke", words[0])
}

// readAuthFile reads and parses the auth file; a missing file is empty.
func readAuthFile(path string) ([]byte, *auth.File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &auth.File{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	f, err := auth.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w (fix the file first)", path, err)
	}
	return data, f, nil
}

func tokenCreate(path, name string, scope auth.Scope, f *flags, stdout, stderr io.Writer) int {
	if err := auth.CheckName(name); err != nil {
		return f.Usagef("%v", err)
	}
	secret, hash := auth.NewSecret()
	tok := auth.Token{Name: name, Hash: hash, Scope: scope, Created: time.Now().UTC().Truncate(time.Second)}
	// The line must parse on its own: that checks the name and the patterns.
	if _, err := auth.Parse([]byte(tok.Line())); err != nil {
		var pe *auth.ParseError
		if errors.As(err, &pe) {
			return f.Usagef("%s", pe.Reason)
		}
		return f.Usagef("%v", err)
	}
	data, file, err := readAuthFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "berth token: %v\n", err)
		return 1
	}
	for _, t := range file.Tokens {
		if t.Name == name {
			fmt.Fprintf(stderr, "berth token: %s already has a token named %q: choose another name, or revoke it first\n", path, name)
			return 1
		}
	}
	line := tok.Line() + "\n"
	if len(data) > 0 && data[len(data)-1] != '\n' {
		line = "\n" + line
	}
	if data == nil {
		line = "# berth auth file: berth token create adds entries; see berth token --help\n" + line
	}
	// One write to a file opened for appending: a proxy reading it meanwhile
	// sees the line whole or not at all.
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		_, err = fh.WriteString(line)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "berth token: cannot add the token to %s: %v\n", path, err)
		return 1
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "berth token: added %q to %s. The secret above is shown only this once: keep it in your CI's secret store.\n", name, path)
	fmt.Fprintln(stderr, "Clients send it over https as a netrc password (machine <host>:<port> login <any> password <secret>),")
	fmt.Fprintln(stderr, "as https://<any>:<secret>@<host>:<port> in GOPROXY, or with GOAUTH='berth goauth' and BERTH_TOKEN.")
	return 0
}

func tokenList(path string, stdout, stderr io.Writer) int {
	_, file, err := readAuthFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "berth token: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tREAD\tDENY\tADMIN\tCREATED")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, t := range file.Tokens {
		created := "-"
		if !t.Created.IsZero() {
			created = t.Created.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", t.Name, dash(t.Read), dash(t.Deny), t.Admin, created)
	}
	if a := file.Anonymous; a != nil {
		fmt.Fprintf(tw, "(anonymous)\t%s\t%s\t%v\t-\n", dash(a.Read), dash(a.Deny), false)
	}
	tw.Flush()
	return 0
}

func tokenRevoke(path, name string, stderr io.Writer) int {
	data, file, err := readAuthFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "berth token: %v\n", err)
		return 1
	}
	found := false
	for _, t := range file.Tokens {
		found = found || t.Name == name
	}
	if !found {
		fmt.Fprintf(stderr, "berth token: %s has no token named %q (berth token list shows them)\n", path, name)
		return 1
	}
	var kept []string
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "token" && fields[1] == name {
			continue
		}
		kept = append(kept, line)
	}
	// Written in place, not renamed over: a file bind-mounted into a
	// container keeps its inode, so the proxy there sees the change. A proxy
	// that reads the file half-written refuses it and reads it again at its
	// next poll.
	err = os.WriteFile(path, []byte(strings.Join(kept, "")), 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "berth token: cannot rewrite %s: %v\n", path, err)
		return 1
	}
	fmt.Fprintf(stderr, "berth token: revoked %q in %s\n", name, path)
	return 0
}
