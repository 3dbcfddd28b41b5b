package source

import (
	"strings"
	"testing"
)

func TestParseRoute(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{in: "corp.example/*=direct", want: "corp.example/*=direct"},
		{in: " corp.example/ , *.internal =https://proxy.internal,direct", want: "corp.example,*.internal=https://proxy.internal,direct"},
		{in: "corp.example=off", want: "corp.example=off"},
		{in: "corp.example", err: "want PATTERNS=SOURCE"},
		{in: "=direct", err: "no module path pattern"},
		{in: "corp[.example=direct", err: "syntax error in pattern"},
		{in: "corp.example=", err: "empty upstream list"},
		{in: "corp.example=banana", err: "invalid proxy URL missing scheme"},
	} {
		r, err := ParseRoute(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRoute(%q) = %v, %v; want an error with %q", tt.in, r, err, tt.err)
			}
			continue
		}
		if err != nil || r.String() != tt.want {
			t.Errorf("ParseRoute(%q) = %q, %v; want %q", tt.in, r, err, tt.want)
		}
	}
}

// FuzzParseRoute: never a panic; what parses prints as a route that parses
// to the same, and its patterns match what they say.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"corp.example/*=direct", "a,b=https://p|https://q,direct", "x=off", "=", "*=direct,off", "a=file:///srv"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRoute(s)
		if err != nil {
			return
		}
		r2, err := ParseRoute(r.String())
		if err != nil || r2.String() != r.String() {
			t.Fatalf("%q -> %q -> %q, %v", s, r, r2, err)
		}
		for p := range strings.SplitSeq(string(r.Patterns), ",") {
			if !strings.ContainsAny(p, "*?[\\") && !r.Patterns.Match(p) {
				t.Fatalf("%q: pattern %q does not match itself", s, p)
			}
		}
	})
}
