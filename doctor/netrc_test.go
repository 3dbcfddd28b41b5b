package doctor

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetrcHostPort: credentials are matched as the go command matches
// them (cmd/go/internal/auth): the URL without https://, trimmed one path
// element at a time, so a URL with a port needs a machine with that port.
func TestNetrcHostPort(t *testing.T) {
	dir := t.TempDir()
	netrc := "machine proxy.example.test login a password b\nmachine proxy.example.test:8443 login c password d\n" +
		"machine repo.example.test/api/go login e password f\ndefault login x password y\nmachine after.example.test login g password h\n"
	if err := os.WriteFile(filepath.Join(dir, ".netrc"), []byte(netrc), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir}
	o := &Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	c := loadCredentials(o, &reader{})
	for _, tc := range []struct{ url, machine, user string }{
		{"https://proxy.example.test/golang.org/x/text/@v/list", "proxy.example.test", "a"},
		{"https://proxy.example.test:8443/golang.org/x/text/@v/list", "proxy.example.test:8443", "c"},
		{"https://proxy.example.test:9443/x/@v/list", "", ""},
		{"https://repo.example.test/api/go/golang.org/x/text/@v/list", "repo.example.test/api/go", "e"},
		{"http://proxy.example.test/x/@v/list", "", ""}, // never over plain HTTP
		{"https://after.example.test/x", "", ""},        // after "default": not read
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		m := c.add(req)
		u, _, _ := req.BasicAuth()
		if m != tc.machine || u != tc.user {
			t.Errorf("%s: machine %q user %q, want %q %q", tc.url, m, u, tc.machine, tc.user)
		}
	}
	env["GOAUTH"] = "off"
	if c := loadCredentials(o, &reader{}); c.Source != "GOAUTH=off" || len(c.machines) != 0 {
		t.Errorf("GOAUTH=off: %+v", c)
	}
}

func TestBodyShape(t *testing.T) {
	for _, tc := range []struct{ ct, body, want string }{
		{"text/plain", "v0.1.0\nv0.2.0\n", "versions"},
		{"text/plain", "", "empty"},
		{"text/html", "v0.1.0", "html"},
		{"", "<!DOCTYPE html><html>", "html"},
		{"application/json", `{"errors":[]}`, "json"},
		{"text/plain", "not found", "text"},
	} {
		if got := bodyShape(tc.ct, []byte(tc.body)); got != tc.want {
			t.Errorf("bodyShape(%q, %q) = %s, want %s", tc.ct, tc.body, got, tc.want)
		}
	}
	if v := newestVersion([]byte("v0.9.0\nv0.10.0 2024-01-01\nv0.2.0\n")); v != "v0.10.0" {
		t.Errorf("newestVersion: %q, want v0.10.0", v)
	}
	// A list cut at 4096 bytes: its last, partial line is not a version.
	long := strings.Repeat("v0.1.0\n", 584) + "v0.123456789.0\n" // cut to "v0.12345", itself valid
	if v := newestVersion([]byte(long[:4096])); v != "v0.1.0" {
		t.Errorf("newestVersion of a cut list: %q, want v0.1.0", v)
	}
	for _, tc := range []struct {
		body, want string
		ok         bool
	}{
		{`{"Version":"v0.2.0","Time":"2024-01-01T00:00:00Z"}`, "v0.2.0", true},
		{`{"Version":"v0.1.0"}`, "v0.2.0", false},
		{`{"version":"v0.0.0-20240101000000-0123456789ab"}`, "", true},
		{`{"Version":"latest"}`, "", false},
		{`<html>`, "", false},
	} {
		if got := infoVersionOK([]byte(tc.body), tc.want); got != tc.ok {
			t.Errorf("infoVersionOK(%s, %q) = %v", tc.body, tc.want, got)
		}
	}
	if m := jsonMessage([]byte(`{"errors":[{"status":404,"message":"Repository not found"}]}`)); m != "Repository not found" {
		t.Errorf("jsonMessage: %q", m)
	}
}
