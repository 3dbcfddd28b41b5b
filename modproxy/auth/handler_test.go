package auth

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/proto"
)

// syncBuffer collects a logger's output across goroutines.
type syncBuffer = testmod.SyncBuffer

// testFile writes an auth file with tokens ci (reads corp.example/team/*
// and example.test), ops (admin, reads everything) and the given extra lines,
// and returns its path and the secrets by name.
func testFile(t *testing.T, extra string) (string, map[string]string) {
	t.Helper()
	secrets := map[string]string{}
	var b strings.Builder
	for _, tok := range []Token{
		{Name: "ci", Scope: Scope{Read: "corp.example/team/*,example.test", Deny: "corp.example/team/secret"}},
		{Name: "ops", Scope: Scope{Read: "*", Admin: true}},
	} {
		s, h := NewSecret()
		tok.Hash = h
		secrets[tok.Name] = s
		b.WriteString(tok.Line() + "\n")
	}
	b.WriteString(extra)
	p := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, secrets
}

func TestHandler(t *testing.T) {
	for _, anon := range []bool{false, true} {
		extra := ""
		if anon {
			extra = "anonymous read=* deny=corp.example\n"
		}
		p, secrets := testFile(t, extra)
		logs := &syncBuffer{}
		st, err := Open(p, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err != nil {
			t.Fatal(err)
		}
		var seen Identity
		h := &Handler{Store: st, Logger: st.log, Next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen, _ = FromContext(r.Context())
			w.Write([]byte("ok"))
		})}
		bearer := func(name string) string { return "Bearer " + secrets[name] }
		basic := func(name string) string {
			r, _ := http.NewRequest("GET", "/", nil)
			r.SetBasicAuth("anyone", secrets[name])
			return r.Header.Get("Authorization")
		}
		userOnly := func(name string) string {
			r, _ := http.NewRequest("GET", "/", nil)
			r.SetBasicAuth(secrets[name], "")
			return r.Header.Get("Authorization")
		}
		anonCode := func(open int) int {
			if anon {
				return open
			}
			return 401
		}
		for _, tt := range []struct {
			path, authz string
			code        int
			who         string
			body        string
		}{
			{"/healthz", "", 200, "", ""},
			{"/readyz", "Bearer wrong", 200, "", ""},
			{"/example.test/lib/@v/list", bearer("ci"), 200, "ci", ""},
			{"/example.test/lib/@v/list", basic("ci"), 200, "ci", ""},
			{"/example.test/lib/@v/list", userOnly("ci"), 200, "ci", ""},
			{"/example.test/lib/@v/list", "bearer " + secrets["ci"], 200, "ci", ""},
			{"/corp.example/team/m/@v/v1.0.0.zip", bearer("ci"), 200, "ci", ""},
			{"/corp.example/team/m/@latest", bearer("ci"), 200, "ci", ""},
			{"/corp.example/team/secret/@v/v1.0.0.info", bearer("ci"), 403, "", `token "ci" may not read corp.example/team/secret (its scope: read=corp.example/team/*,example.test deny=corp.example/team/secret)`},
			{"/corp.example/other/@v/v1.0.0.mod", bearer("ci"), 403, "", "may not read corp.example/other"},
			{"/golang.org/x/mod/@v/list", bearer("ci"), 403, "", "may not read golang.org/x/mod"},
			{"/sumdb/sum.golang.org/lookup/golang.org/x/mod@v0.1.0", bearer("ci"), 403, "", "may not look up golang.org/x/mod in the checksum database"},
			{"/sumdb/sum.golang.org/lookup/example.test/lib@v1.0.0", bearer("ci"), 200, "ci", ""},
			{"/sumdb/sum.golang.org/supported", bearer("ci"), 200, "ci", ""},
			{"/sumdb/sum.golang.org/tile/8/0/000", bearer("ci"), 200, "ci", ""},
			{"/not/a/goproxy/path", bearer("ci"), 200, "ci", ""}, // the proxy answers its 404
			{"/metrics", bearer("ci"), 403, "", `token "ci" needs a token with the admin scope`},
			{"/metrics", bearer("ops"), 200, "ops", ""},
			{"/debug/pprof/", bearer("ops"), 200, "ops", ""},
			{"/golang.org/x/mod/@v/list", bearer("ops"), 200, "ops", ""},
			{"/example.test/lib/@v/list", "Bearer " + SecretPrefix + "wrong", 401, "", "the token is not valid"},
			{"/example.test/lib/@v/list", "Token abc", 401, "", `unsupported Authorization scheme "Token"`},
			{"/example.test/lib/@v/list", "", anonCode(200), "anonymous", "authentication required"},
			{"/corp.example/team/m/@v/list", "", 401, "", ""},
			{"/sumdb/sum.golang.org/supported", "", anonCode(200), "anonymous", ""},
			{"/metrics", "", 401, "", ""},
		} {
			seen = Identity{}
			r := httptest.NewRequest("GET", tt.path, nil)
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != tt.code {
				t.Errorf("anonymous=%v GET %s (%.12s): %d %q, want %d", anon, tt.path, tt.authz, w.Code, body, tt.code)
				continue
			}
			if w.Code == 200 {
				if seen.Name != tt.who {
					t.Errorf("GET %s: identity %q, want %q", tt.path, seen.Name, tt.who)
				}
				continue
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("GET %s: Content-Type %q", tt.path, ct)
			}
			if tt.body != "" && !strings.Contains(body, tt.body) {
				t.Errorf("GET %s: body %q, want %q", tt.path, body, tt.body)
			}
			if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
				t.Errorf("GET %s: body is not one line: %q", tt.path, body)
			}
			if w.Code == 401 {
				ch := w.Header().Values("WWW-Authenticate")
				if len(ch) != 2 || !strings.HasPrefix(ch[0], `Basic realm="berth"`) || !strings.HasPrefix(ch[1], `Bearer realm="berth"`) {
					t.Errorf("GET %s: WWW-Authenticate %q", tt.path, ch)
				}
			}
		}
		for _, s := range secrets {
			if strings.Contains(logs.String(), s) {
				t.Fatalf("a secret reached the log:\n%s", logs)
			}
		}
	}
}

func TestStoreReload(t *testing.T) {
	p, secrets := testFile(t, "")
	logs := &syncBuffer{}
	st, err := Open(p, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Lookup(secrets["ci"]); !ok {
		t.Fatal("ci not found")
	}
	if _, ok := st.Lookup(secrets["ci"] + "x"); ok {
		t.Fatal("a wrong secret found a token")
	}
	if changed, err := st.Reload(); changed || err != nil {
		t.Fatalf("Reload of an unchanged file = %v, %v", changed, err)
	}

	// A bad file keeps the tokens in force and says why, once.
	os.WriteFile(p, []byte("token ci sha256:zz\n"), 0o600)
	for range 3 {
		if changed, err := st.Reload(); changed || err == nil || !strings.Contains(err.Error(), "line 1: token ci: the hash must be") {
			t.Fatalf("Reload of a bad file = %v, %v", changed, err)
		}
	}
	if _, ok := st.Lookup(secrets["ci"]); !ok {
		t.Fatal("a bad file removed the tokens in force")
	}
	if n := strings.Count(logs.String(), "auth file not reloaded"); n != 1 {
		t.Errorf("%d lines about the bad file, want 1:\n%s", n, logs)
	}

	// A good file replaces the tokens; the same size and a rename count as changes.
	s, h := NewSecret()
	tmp := p + ".new"
	os.WriteFile(tmp, []byte(Token{Name: "new", Hash: h}.Line()+"\n"), 0o644)
	os.Rename(tmp, p)
	if changed, err := st.Reload(); !changed || err != nil {
		t.Fatalf("Reload of a new file = %v, %v", changed, err)
	}
	if _, ok := st.Lookup(secrets["ci"]); ok {
		t.Error("a removed token still works")
	}
	if tok, ok := st.Lookup(s); !ok || tok.Name != "new" {
		t.Error("the new token does not work")
	}
	if !strings.Contains(logs.String(), "auth file reloaded") || !strings.Contains(logs.String(), "world-readable") {
		t.Errorf("log:\n%s", logs)
	}

	// A deleted file keeps the tokens in force too.
	os.Remove(p)
	if _, err := st.Reload(); err == nil {
		t.Error("Reload of a deleted file: no error")
	}
	if _, ok := st.Lookup(s); !ok {
		t.Error("deleting the file removed the tokens in force")
	}
}

func TestStoreWatch(t *testing.T) {
	p, _ := testFile(t, "")
	st, err := Open(p, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	done := make(chan struct{})
	go func() { defer close(done); st.Watch(ctx, 10*time.Millisecond) }()
	s, h := NewSecret()
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(Token{Name: "late", Hash: h}.Line() + "\n")
	f.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := st.Lookup(s); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the appended token was not picked up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWorldReadableWarning(t *testing.T) {
	p, _ := testFile(t, "")
	os.Chmod(p, 0o644)
	logs := &syncBuffer{}
	if _, err := Open(p, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "world-readable") {
		t.Errorf("no warning for a world-readable file:\n%s", logs)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), nil); err == nil || !strings.Contains(err.Error(), "auth file") {
		t.Errorf("Open of a missing file: %v", err)
	}
}

func TestAudit(t *testing.T) {
	logs := &syncBuffer{}
	audit := Audit(slog.New(slog.NewTextHandler(logs, nil)))
	r := httptest.NewRequest("GET", "/example.test/lib/@v/v1.0.0.zip", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r = r.WithContext(t.Context())
	req, _ := proto.ParsePath(r.URL.Path)
	audit(r, req)
	list, _ := proto.ParsePath("/example.test/lib/@v/list")
	audit(r, list)
	s := logs.String()
	if strings.Count(s, "\n") != 1 || !strings.Contains(s, "level=INFO") || !strings.Contains(s, "module=example.test/lib version=v1.0.0 file=zip token=- remote=192.0.2.7:5555") {
		t.Errorf("audit log:\n%s", s)
	}
}
