package goenv

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/berth-dev/berth/internal/testmod"
)

func verifierKey(t testing.TB, name string) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

func TestParseSumDB(t *testing.T) {
	key := verifierKey(t, "sum.example.test")
	pathKey := verifierKey(t, "sum.example.test/db")
	known := knownKeys["sum.golang.org"]
	tests := []struct {
		in   string
		want SumDB
		err  string
	}{
		{in: "off", want: SumDB{Off: true}},
		{in: "sum.golang.org", want: SumDB{Name: "sum.golang.org", Key: known}},
		{in: "sum.golang.org https://sum.example.test/mirror", want: SumDB{Name: "sum.golang.org", Key: known, URL: "https://sum.example.test/mirror"}},
		{in: "sum.golang.google.cn", want: SumDB{Name: "sum.golang.org", Key: known, URL: "https://sum.golang.google.cn"}},
		{in: key, want: SumDB{Name: "sum.example.test", Key: key}},
		{in: "  " + key + "\t", want: SumDB{Name: "sum.example.test", Key: key}},
		{in: key + " http://127.0.0.1:9/db", want: SumDB{Name: "sum.example.test", Key: key, URL: "http://127.0.0.1:9/db"}},
		{in: pathKey, want: SumDB{Name: "sum.example.test/db", Key: pathKey}},

		{in: "", err: "missing GOSUMDB"},
		{in: " ", err: "missing GOSUMDB"},
		{in: "OFF", err: `invalid GOSUMDB: malformed verifier id: "OFF" is no checksum database the go command knows the key of; give name+hash+key`},
		{in: " off", err: `invalid GOSUMDB: malformed verifier id: "off" is no checksum database the go command knows the key of; give name+hash+key`},
		{in: "sum.example.test", err: `invalid GOSUMDB: malformed verifier id: "sum.example.test" is no checksum database the go command knows the key of; give name+hash+key`},
		{in: "sum.golang.google.cn https://sum.example.test", err: `invalid GOSUMDB: malformed verifier id: "sum.golang.google.cn" is no checksum database the go command knows the key of; give name+hash+key`},
		{in: "sum.example.test+00000000+AAAA", err: "invalid GOSUMDB: invalid verifier hash"},
		{in: key + " https://a.example.test extra", err: "invalid GOSUMDB: too many fields"},
		{in: key + " %zz", err: `invalid GOSUMDB URL: parse "%zz": invalid URL escape "%zz"`},
		{in: verifierKey(t, "sum.example.test/"), err: "invalid sumdb name (must be host[/path]): sum.example.test/"},
		{in: verifierKey(t, "u@sum.example.test"), err: "invalid sumdb name (must be host[/path]): u@sum.example.test"},
		{in: verifierKey(t, "sum.example.test?x"), err: "invalid sumdb name (must be host[/path]): sum.example.test?x"},
		{in: verifierKey(t, "/db"), err: "invalid sumdb name (must be host[/path]): /db"},
	}
	for _, tt := range tests {
		got, err := ParseSumDB(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseSumDB(%q) = %+v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSumDB(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestSumDBDirect(t *testing.T) {
	key := verifierKey(t, "sum.example.test")
	for in, want := range map[string]string{
		"off":                       "",
		key:                         "https://sum.example.test",
		key + " http://127.0.0.1:9": "http://127.0.0.1:9",
		"sum.golang.google.cn":      "https://sum.golang.google.cn",
	} {
		db, err := ParseSumDB(in)
		if err != nil {
			t.Fatal(err)
		}
		if db.Direct() != want {
			t.Errorf("ParseSumDB(%q).Direct() = %q, want %q", in, db.Direct(), want)
		}
	}
}

// TestSumDBLikeGoCommand has the go command download a module through a
// loopback upstream that serves a test checksum database, with GOSUMDB values
// ParseSumDB refuses (the go command must refuse them with the same words)
// and accepts (it must verify the module).
func TestSumDBLikeGoCommand(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	up := testmod.NewUpstream(t, testmod.BaseModules())
	cases := []struct{ gosumdb, err string }{
		{gosumdb: up.GOSUMDB()},
		{gosumdb: up.GOSUMDB() + " " + up.URL() + "/sumdb/" + up.SumDBName},
		{gosumdb: "off"},
		{gosumdb: "sum.example.test"},
		{gosumdb: "OFF"},
		{gosumdb: up.GOSUMDB() + " a b"},
		{gosumdb: up.GOSUMDB() + " %zz"},
		{gosumdb: verifierKey(t, "sum.example.test/")},
	}
	for _, c := range cases {
		want := ""
		if _, err := ParseSumDB(c.gosumdb); err != nil {
			want = err.Error()
			// The go command's text ends where berth adds what to do.
			if i := strings.Index(want, `: "`); i >= 0 {
				want = want[:i]
			}
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/m\n\ngo 1.21\n"), 0o644)
		cmd := exec.Command(goBin, "mod", "download", "-json", "example.test/lib@v1.1.0")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOPROXY="+up.URL(), "GOSUMDB="+c.gosumdb, "GOFLAGS=-mod=mod -modcacherw", "GONOPROXY=",
			"GONOSUMDB=", "GOPRIVATE=", "GONOSUMCHECK=", "GOTOOLCHAIN=local", "GOWORK=off", "GOPATH="+filepath.Join(dir, "gopath"), "GOMODCACHE="+filepath.Join(dir, "modcache"))
		out, _ := cmd.Output()
		if want == "" {
			if strings.Contains(string(out), `"Error"`) || !strings.Contains(string(out), `"Zip"`) {
				t.Errorf("GOSUMDB=%q: ParseSumDB accepts it but the go command says\n%s", c.gosumdb, out)
			}
			continue
		}
		if !strings.Contains(string(out), jsonQuote(want)) {
			t.Errorf("GOSUMDB=%q: the go command says\n%s\nwant %q", c.gosumdb, out, want)
		}
	}
}

func FuzzParseSumDB(f *testing.F) {
	key := verifierKey(f, "sum.example.test")
	for _, s := range []string{"off", "", "sum.golang.org", "sum.golang.google.cn", key, key + " https://sum.example.test/x", "a+b+c", "x y z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		db, err := ParseSumDB(s)
		if err != nil {
			return
		}
		if db.Off != (db.Key == "") || db.Off && (db.Name != "" || db.URL != "") {
			t.Fatalf("ParseSumDB(%q) = %+v", s, db)
		}
		if !db.Off {
			if _, err := note.NewVerifier(db.Key); err != nil || !strings.HasPrefix(db.Key, db.Name+"+") {
				t.Fatalf("ParseSumDB(%q) = %+v: key %v", s, db, err)
			}
		}
		again, err := ParseSumDB(db.String())
		if err != nil || again != db {
			t.Fatalf("ParseSumDB(%q) = %+v; String %q parses to %+v, %v", s, db, db.String(), again, err)
		}
	})
}
