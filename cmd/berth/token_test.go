package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/lab"
	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/auth"
)

func runIn(t *testing.T, f func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := f(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func token(t *testing.T, args ...string) (int, string, string) {
	return runIn(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) int { return runToken(ctx, a, o, e) }, args...)
}

func TestTokenCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth")
	code, out, errs := token(t, "create", "--auth-file", file, "--read", "corp.example/*", "--deny", "corp.example/x", "ci")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	secret := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(secret, auth.SecretPrefix) {
		t.Fatalf("create printed %q, want the secret alone", out)
	}
	if strings.Contains(errs, secret) {
		t.Error("the secret is printed twice")
	}
	// Flags after the name, and the environment variable for the file.
	t.Setenv("BERTH_AUTH_FILE", file)
	if code, _, errs := token(t, "create", "ops", "--admin"); code != 0 {
		t.Fatalf("create ops: %d %s", code, errs)
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), secret) {
		t.Fatal("the auth file holds the secret")
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("auth file mode %v, want 0600", fi.Mode().Perm())
	}
	f, err := auth.Parse(data)
	if err != nil || len(f.Tokens) != 2 {
		t.Fatalf("the file does not parse: %v\n%s", err, data)
	}
	if f.Tokens[0].Hash != auth.HashSecret(secret) || f.Tokens[0].Read != "corp.example/*" || f.Tokens[0].Deny != "corp.example/x" || f.Tokens[0].Created.IsZero() || !f.Tokens[1].Admin {
		t.Errorf("entries: %+v", f.Tokens)
	}

	code, out, _ = token(t, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[1], "corp.example/*") || !strings.HasPrefix(lines[2], "ops ") {
		t.Errorf("list: %d\n%s", code, out)
	}
	if strings.Contains(out, "sha256") || strings.Contains(out, secret) {
		t.Error("list shows a hash or a secret")
	}

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"create", "--read", "*", "ci"}, 1, `already has a token named "ci"`},
		{[]string{"create", "--read", "*", "a/b"}, 2, "token name: '/' at byte 1"},
		{[]string{"create", "--read", "[", "x"}, 2, `read=: pattern "[": syntax error`},
		{[]string{"create", "x"}, 2, "give the token a scope"},
		{[]string{"create"}, 2, "create wants one NAME"},
		{[]string{}, 2, "want create NAME, list or revoke NAME"},
		{[]string{"rotate"}, 2, `unknown action "rotate"`},
		{[]string{"revoke", "nobody"}, 1, `has no token named "nobody"`},
	} {
		code, _, errs := token(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("berth token %s: %d %q, want %d and %q", strings.Join(tt.args, " "), code, errs, tt.code, tt.want)
		}
	}

	if code, _, errs := token(t, "revoke", "ci"); code != 0 {
		t.Fatalf("revoke: %d %s", code, errs)
	}
	data, _ = os.ReadFile(file)
	if f, err := auth.Parse(data); err != nil || len(f.Tokens) != 1 || f.Tokens[0].Name != "ops" || !strings.HasPrefix(string(data), "# berth auth file") {
		t.Errorf("after revoke: %v\n%s", err, data)
	}
	t.Setenv("BERTH_AUTH_FILE", "")
	if code, _, errs := token(t, "list"); code != 2 || !strings.Contains(errs, "--auth-file is required") {
		t.Errorf("list without a file: %d %s", code, errs)
	}
}

func goauth(t *testing.T, args ...string) (int, string, string) {
	return runIn(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) int { return runGoauth(ctx, a, o, e) }, args...)
}

// TestGoauthOutput: the helper's output is what "go help goauth" asks for:
// URL lines, a blank line, header lines, a blank line.
func TestGoauthOutput(t *testing.T) {
	t.Setenv("BERTH_TOKEN", "berth_secretsecretsecret")
	code, out, errs := goauth(t, "--proxy", "https://u:p@berth.example:8443/base/,http://plain.example|https://b.example,direct")
	want := "https://berth.example:8443/base\nhttps://b.example\n\nAuthorization: Bearer berth_secretsecretsecret\n\n"
	if code != 0 || out != want {
		t.Errorf("goauth: %d %q (%s), want %q", code, out, errs, want)
	}
	tf := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tf, []byte("berth_fromfilefromfile\n"), 0o600)
	t.Setenv("GOPROXY", "https://berth.example")
	if code, out, _ := goauth(t, "--token-file", tf, "https://berth.example/x/@v/list"); code != 0 || out != "https://berth.example\n\nAuthorization: Bearer berth_fromfilefromfile\n\n" {
		t.Errorf("goauth from GOPROXY with a token file, on a retry: %d %q", code, out)
	}
	if code, _, errs := goauth(t, "--proxy", "http://plain.example"); code != 1 || !strings.Contains(errs, "has no https entry") {
		t.Errorf("goauth with no https entry: %d %q", code, errs)
	}
	t.Setenv("BERTH_TOKEN", "")
	if code, _, errs := goauth(t, "--proxy", "https://b.example"); code != 1 || !strings.Contains(errs, "no token: set BERTH_TOKEN or --token-file") {
		t.Errorf("goauth without a token: %d %q", code, errs)
	}
}

// TestProxyAuthEndToEnd runs the real binary with --auth-file and TLS and the
// real go command with GOAUTH='berth goauth' as the client.
func TestProxyAuthEndToEnd(t *testing.T) {
	bin := buildBerth(t)
	dir := t.TempDir()
	up := testmod.NewUpstream(t, append(testmod.BaseModules(),
		testmod.Module{Path: "corp.example/team/m", Version: "v1.0.0", Files: map[string]string{"m.go": "package m\n"}}))
	ca, err := lab.NewCA("berth test CA", "berth")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM, 0o644)
	certFile, keyFile, err := ca.Issue(dir, "berth", []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	authFile := filepath.Join(dir, "auth")
	_, ci, _ := runBin(t, bin, []string{"BERTH_AUTH_FILE=" + authFile}, "token", "create", "--read", "example.test", "ci")
	_, ops, _ := runBin(t, bin, []string{"BERTH_AUTH_FILE=" + authFile}, "token", "create", "--read", "*", "--admin", "ops")
	ci, ops = strings.TrimSpace(ci), strings.TrimSpace(ops)
	os.Chmod(authFile, 0o644)

	_, base, logs := startBerthProc(t, bin, "--store", filepath.Join(dir, "store"), "--upstream", up.URL(), "--sumdb", up.GOSUMDB(),
		"--auth-file", authFile, "--tls-cert", certFile, "--tls-key", keyFile)
	host := strings.TrimPrefix(base, "http://")
	base = "https://" + host
	if !strings.Contains(logs.String(), "the auth file is world-readable") {
		t.Errorf("no warning for a world-readable auth file:\n%s", logs)
	}

	goEnv := func(token string) []string {
		// Telemetry off: else a child of the go command writes under home
		// after it exits, racing with the removal of the test's directories.
		home := t.TempDir()
		os.MkdirAll(filepath.Join(home, ".config", "go", "telemetry"), 0o755)
		os.WriteFile(filepath.Join(home, ".config", "go", "telemetry", "mode"), []byte("off\n"), 0o644)
		gocache, _ := exec.Command("go", "env", "GOCACHE").Output()
		return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOPATH=" + filepath.Join(home, "gopath"),
			"GOMODCACHE=" + filepath.Join(home, "modcache"), "GOCACHE=" + strings.TrimSpace(string(gocache)),
			"GOPROXY=" + base, "GOSUMDB=" + up.GOSUMDB(), "GOFLAGS=-modcacherw", "GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=",
			"GOTOOLCHAIN=local", "SSL_CERT_FILE=" + caFile, "NETRC=" + filepath.Join(home, "none"),
			"GOAUTH=" + bin + " goauth", "BERTH_TOKEN=" + token}
	}
	download := func(env []string, mod string) (string, error) {
		cmd := exec.Command("go", "mod", "download", "-x", mod)
		cmd.Env, cmd.Dir = env, t.TempDir()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := download(goEnv(ci), "example.test/lib@v1.0.0"); err != nil {
		t.Fatalf("go mod download with GOAUTH='berth goauth': %v\n%s", err, out)
	}
	if out, err := download(goEnv(ci), "corp.example/team/m@v1.0.0"); err == nil || !strings.Contains(out, "403 Forbidden") || !strings.Contains(out, `may not read corp.example/team/m`) {
		t.Errorf("a path outside the token's scope: %v\n%s", err, out)
	}
	out, err := download(goEnv(ci+"x"), "example.test/lib@v1.1.0")
	if err == nil || !strings.Contains(out, "401 Unauthorized") || !strings.Contains(out, "server response: berth: the token is not valid") {
		t.Errorf("a wrong token: %v\n%s", err, out)
	}
	if strings.Contains(out, ci) {
		t.Error("the go command's output shows the token")
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	for _, tt := range []struct {
		path, token string
		code        int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "", 401},
		{"/metrics", ci, 403},
		{"/metrics", ops, 200},
	} {
		req, _ := http.NewRequest("GET", base+tt.path, nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.code {
			t.Errorf("GET %s: %d, want %d", tt.path, res.StatusCode, tt.code)
		}
	}
	l := logs.String()
	if !strings.Contains(l, `"msg":"audit: module version fetched for the first time","module":"example.test/lib","version":"v1.0.0","file":"zip","token":"ci","remote":"127.0.0.1:`) {
		t.Errorf("no audit line:\n%s", l)
	}
	for _, s := range []string{ci, ops} {
		if strings.Contains(l, s) {
			t.Errorf("a secret reached berth's log")
		}
	}
}
