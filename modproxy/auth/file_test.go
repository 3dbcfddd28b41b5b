package auth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const hashA = "sha256:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
const hashB = "sha256:0000000000000000000000000000000000000000000000000000000000000001"

func TestParse(t *testing.T) {
	f, err := Parse([]byte("# comment\n\n  token ci " + hashA + " read=corp.example/*,example.test deny=corp.example/secret created=2026-01-02T15:04:05Z\r\n" +
		"token\tops\t" + hashB + " admin\nanonymous read=* deny=corp.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tokens) != 2 || f.Anonymous == nil {
		t.Fatalf("got %+v", f)
	}
	ci := f.Tokens[0]
	if ci.Name != "ci" || hex.EncodeToString(ci.Hash[:]) != strings.TrimPrefix(hashA, "sha256:") ||
		ci.Read != "corp.example/*,example.test" || ci.Deny != "corp.example/secret" || ci.Admin ||
		!ci.Created.Equal(time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)) {
		t.Errorf("ci = %+v", ci)
	}
	if !f.Tokens[1].Admin || f.Tokens[1].Read != "" {
		t.Errorf("ops = %+v", f.Tokens[1])
	}
	for _, tt := range []struct {
		s    Scope
		mod  string
		want bool
	}{
		{ci.Scope, "corp.example/team/m", true},
		{ci.Scope, "corp.example/secret/v2", false},
		{ci.Scope, "corp.example", false}, // corp.example/* needs a second element
		{ci.Scope, "example.test/lib", true},
		{ci.Scope, "golang.org/x/mod", false},
		{f.Tokens[1].Scope, "example.test/lib", false}, // admin alone reads nothing
		{*f.Anonymous, "golang.org/x/mod", true},
		{*f.Anonymous, "corp.example/team/m", false},
	} {
		if got := tt.s.CanRead(tt.mod); got != tt.want {
			t.Errorf("%+v.CanRead(%q) = %v, want %v", tt.s, tt.mod, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	secret, _ := NewSecret()
	for _, tt := range []struct {
		in, want string
	}{
		{"token ci", "line 1: want: token NAME sha256:HEX"},
		{"\ntoken ci sha256:abc", "line 2: token ci: the hash must be sha256: and 64 lowercase hex digits"},
		{"token ci " + strings.ToUpper(hashA), "the hash must be"},
		{"token ci " + secret, "the hash must be"},
		{"token ci " + hashA + "\ntoken ci " + hashB, `line 2: token name "ci" already used on line 1`},
		{"token a " + hashA + "\ntoken b " + hashA, "line 2: token b has the same hash as the token on line 1"},
		{"token a/b " + hashA, `token name: '/' at byte 1`},
		{"token " + secret + " " + hashA, "must not start with"},
		{"token a " + hashA + " read=", "read=: no patterns"},
		{"token a " + hashA + " read=a,,b", `empty pattern in "a,,b"`},
		{"token a " + hashA + " read=[", `pattern "[": syntax error`},
		{"token a " + hashA + " read=a read=b", "read given twice"},
		{"token a " + hashA + " write=a", `unknown field "write": want read=PATTERNS, deny=PATTERNS, admin or created=TIME`},
		{"token a " + hashA + " admin=yes", `unknown field "admin"`},
		{"token a " + hashA + " created=yesterday", `created="yesterday": want an RFC 3339 time`},
		{"anonymous admin", "anonymous: admin is for tokens only"},
		{"anonymous\nanonymous read=*", "line 2: a second anonymous line (the first is line 1)"},
		{"user a " + hashA, `unknown entry "user"`},
		{secret, "unknown entry (49 bytes, not shown)"},
		{"token a " + hashA + " " + secret, "unknown field (49 bytes, not shown)"},
	} {
		_, err := Parse([]byte(tt.in))
		var pe *ParseError
		if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tt.in, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), SecretPrefix+secret[len(SecretPrefix):len(SecretPrefix)+8]) {
			t.Errorf("Parse(%q): the error shows the secret: %v", tt.in, err)
		}
		if strings.Contains(err.Error(), strings.TrimPrefix(hashA, "sha256:")[:16]) {
			t.Errorf("Parse(%q): the error shows a hash: %v", tt.in, err)
		}
	}
}

func TestLineRoundTrip(t *testing.T) {
	secret, h := NewSecret()
	if !strings.HasPrefix(secret, SecretPrefix) || len(secret) != len(SecretPrefix)+43 || HashSecret(secret) != h {
		t.Fatalf("NewSecret = %q", secret)
	}
	if s2, _ := NewSecret(); s2 == secret {
		t.Fatal("NewSecret repeats itself")
	}
	tok := Token{Name: "ci-1", Hash: h, Scope: Scope{Read: "corp.example/*", Deny: "corp.example/x", Admin: true}, Created: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
	if strings.Contains(tok.Line(), secret) {
		t.Fatal("the line holds the secret")
	}
	f, err := Parse([]byte(tok.Line()))
	if err != nil || len(f.Tokens) != 1 || !reflect.DeepEqual(f.Tokens[0], tok) {
		t.Fatalf("Parse(%q) = %+v, %v", tok.Line(), f, err)
	}
}

// FuzzParse: Parse never panics, and what it accepts formats to a file that
// parses to the same entries.
func FuzzParse(f *testing.F) {
	f.Add([]byte("token ci " + hashA + " read=corp.example/*,example.test deny=corp.example/secret created=2026-01-02T15:04:05Z\nanonymous read=*\n"))
	f.Add([]byte("# c\ntoken ops " + hashB + " admin created=2026-01-02T15:04:05.5+01:00\n"))
	f.Add([]byte("anonymous\n\ttoken x " + hashA + " read=[a-z]*\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
			return
		}
		text := got.Format()
		again, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(Format(Parse(%q))) = %v\n%s", data, err, text)
		}
		if !equalFiles(got, again) {
			t.Fatalf("round trip changed the file:\n%+v\n%+v", got, again)
		}
		if !bytes.Equal(again.Format(), text) {
			t.Fatalf("Format is not stable:\n%s\n%s", text, again.Format())
		}
		for _, tok := range got.Tokens {
			tok.CanRead("example.test/m") // must not panic
		}
	})
}

func equalFiles(a, b *File) bool {
	if len(a.Tokens) != len(b.Tokens) || (a.Anonymous == nil) != (b.Anonymous == nil) {
		return false
	}
	for i := range a.Tokens {
		x, y := a.Tokens[i], b.Tokens[i]
		if x.Name != y.Name || x.Hash != y.Hash || x.Scope != y.Scope || !x.Created.Equal(y.Created) {
			return false
		}
	}
	return a.Anonymous == nil || *a.Anonymous == *b.Anonymous
}
