package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/goenv"
	"github.com/berth-dev/berth/modproxy/auth"
)

const goauthAbout = `
Usage: GOAUTH='berth goauth [--token-file FILE] [--proxy URLS]' go ...

A GOAUTH command (go help goauth, Go 1.24+) that hands the go command a berth
token for berth's https URLs, so a CI job needs no netrc file and no secret in
GOPROXY. The token is read from --token-file, else from $BERTH_TOKEN (never
from the command line, which other processes can see). The go command runs
the helper before its first https request, and again with the URL (and the
response on stdin) after a 4xx; berth gives the same credentials each time.

It prints the https entries of --proxy (default: the go command's GOPROXY)
with the header "Authorization: Bearer <token>":

    https://berth.corp.example:8443

    Authorization: Bearer berth_...

Example (GitLab CI, GitHub Actions: BERTH_TOKEN from the CI's secret store):
    export GOPROXY=https://berth.corp.example:8443 GONOSUMDB=corp.example
    export GOAUTH='berth goauth'
    go mod download
`

func runGoauth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("goauth", goauthAbout, stdout, stderr)
	tokenFile := f.String("token-file", "", "read the token from this `file` (default: $BERTH_TOKEN)")
	proxy := f.String("proxy", "", "the berth `URLs` to give the token to, as a GOPROXY list (default: the go command's GOPROXY);\nonly https entries get it")
	if code, ok := f.Parse(args); !ok {
		return code
	}
	if len(f.Args()) > 1 {
		return f.Usagef("want at most one argument, the URL the go command retries")
	}
	if len(f.Args()) == 1 {
		// A retry after a 4xx: the response is on stdin. The credentials are
		// the same; reading it lets the go command finish writing.
		io.Copy(io.Discard, io.LimitReader(os.Stdin, 1<<20))
	}
	secret, err := readToken(*tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "berth goauth: %v\n", err)
		return 1
	}
	list, from := *proxy, "--proxy"
	if list == "" {
		vals, _, err := goenv.Read(ctx, nil, "", "GOPROXY")
		if err != nil {
			fmt.Fprintf(stderr, "berth goauth: cannot read GOPROXY: %v; set --proxy\n", err)
			return 1
		}
		list, from = vals["GOPROXY"], "GOPROXY"
	}
	var urls []string
	seen := map[string]bool{}
	for _, e := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == '|' }) {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			continue
		}
		u.User, u.RawQuery, u.Fragment = nil, "", ""
		s := strings.TrimSuffix(u.String(), "/")
		if !seen[s] {
			seen[s] = true
			urls = append(urls, s)
		}
	}
	if len(urls) == 0 {
		fmt.Fprintf(stderr, "berth goauth: %s=%q has no https entry: the go command sends credentials only over https; set --proxy\n", from, list)
		return 1
	}
	var b strings.Builder
	for _, u := range urls {
		b.WriteString(u + "\n")
	}
	b.WriteString("\nAuthorization: Bearer " + secret + "\n\n")
	io.WriteString(stdout, b.String())
	return 0
}

// readToken returns the token from file, else from $BERTH_TOKEN. Errors
// never hold the token.
func readToken(file string) (string, error) {
	var secret string
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		secret = strings.TrimSpace(string(data))
		if secret == "" {
			return "", fmt.Errorf("token file %s is empty", file)
		}
	} else if secret = strings.TrimSpace(os.Getenv("BERTH_TOKEN")); secret == "" {
		return "", fmt.Errorf("no token: set BERTH_TOKEN or --token-file (berth token create makes one)")
	}
	if strings.ContainsAny(secret, " \t\r\n") || !strings.HasPrefix(secret, auth.SecretPrefix) && len(secret) < 16 {
		return "", fmt.Errorf("the token is not one berth made (want one line starting %q)", auth.SecretPrefix)
	}
	return secret, nil
}
