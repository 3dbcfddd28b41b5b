package proto

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path      string
		kind      Kind
		mod, ver  string
		key       string
		immutable bool
		status    int // expected PathError status; 0 = valid
	}{
		{"/example.test/lib/@v/list", KindList, "example.test/lib", "", "example.test/lib/@v/list", false, 0},
		{"/example.test/lib/@v/v1.0.0.info", KindInfo, "example.test/lib", "v1.0.0", "example.test/lib/@v/v1.0.0.info", true, 0},
		{"/example.test/lib/@v/v1.0.0.mod", KindMod, "example.test/lib", "v1.0.0", "example.test/lib/@v/v1.0.0.mod", true, 0},
		{"/example.test/lib/@v/v1.0.0.zip", KindZip, "example.test/lib", "v1.0.0", "example.test/lib/@v/v1.0.0.zip", true, 0},
		{"/example.test/lib/@latest", KindLatest, "example.test/lib", "", "", false, 0},
		{"/github.com/!azure/go-sdk/@v/v1.2.3-!r!c1.info", KindInfo, "github.com/Azure/go-sdk", "v1.2.3-RC1", "github.com/!azure/go-sdk/@v/v1.2.3-!r!c1.info", true, 0},
		{"/example.test/old/@v/v2.0.0+incompatible.zip", KindZip, "example.test/old", "v2.0.0+incompatible", "example.test/old/@v/v2.0.0+incompatible.zip", true, 0},
		{"/example.test/lib/v2/@v/v2.1.0.mod", KindMod, "example.test/lib/v2", "v2.1.0", "example.test/lib/v2/@v/v2.1.0.mod", true, 0},
		{"/example.test/lib/@v/v0.0.0-20240101000000-abcdefabcdef.zip", KindZip, "example.test/lib", "v0.0.0-20240101000000-abcdefabcdef", "example.test/lib/@v/v0.0.0-20240101000000-abcdefabcdef.zip", true, 0},
		// Queries: answered, never stored.
		{"/example.test/lib/@v/main.info", KindInfo, "example.test/lib", "main", "", false, 0},
		{"/example.test/lib/@v/v1.info", KindInfo, "example.test/lib", "v1", "", false, 0},
		// Bad input.
		{"/github.com/Azure/go-sdk/@v/list", 0, "", "", "", false, 400},
		{"/example.test/lib/@v/v1.0.0.exe", 0, "", "", "", false, 404},
		{"/example.test/../etc/passwd/@v/list", 0, "", "", "", false, 400},
		{"/example.test/lib/@v/../../../etc/passwd", 0, "", "", "", false, 400},
		{"/example.test/lib/@v/v1.0.0/../x.zip", 0, "", "", "", false, 400},
		{"//example.test/lib/@v/list", 0, "", "", "", false, 400},
		{"/example.test//lib/@v/list", 0, "", "", "", false, 400},
		{"/example.test/./lib/@v/list", 0, "", "", "", false, 400},
		{"/example.test/lib/@v/v1.zip", 0, "", "", "", false, 404},
		{"/example.test/lib/@v/v2.0.0.zip", 0, "", "", "", false, 404}, // major mismatch
		{"/example.test/lib/@v/.zip", 0, "", "", "", false, 400},
		{"/example.test/lib", 0, "", "", "", false, 404},
		{"/", 0, "", "", "", false, 404},
		{"/example.test/lib/@v/v1.0.0!.zip", 0, "", "", "", false, 400},
		{"/example.test/l\\ib/@v/list", 0, "", "", "", false, 400},
		{"/" + strings.Repeat("a", MaxPathLen), 0, "", "", "", false, 400},
		// Checksum database.
		{"/sumdb/sum.example.test/supported", KindSumDB, "", "", "", false, 0},
		{"/sumdb/sum.example.test/lookup/example.test/lib@v1.0.0", KindSumDB, "example.test/lib", "v1.0.0", "sumdb/sum.example.test/lookup/example.test/lib@v1.0.0", true, 0},
		{"/sumdb/sum.example.test/tile/8/0/x001/234", KindSumDB, "", "", "sumdb/sum.example.test/tile/8/0/x001/234", true, 0},
		{"/sumdb/sum.example.test/tile/8/0/001.p/12", KindSumDB, "", "", "sumdb/sum.example.test/tile/8/0/001.p/12", true, 0},
		{"/sumdb/sum.example.test/tile/8/data/000", KindSumDB, "", "", "sumdb/sum.example.test/tile/8/data/000", true, 0},
		{"/sumdb/sum.example.test/latest", KindSumDB, "", "", "", false, 0},
		{"/sumdb/sum.example.test/tile/8/0/../../x", 0, "", "", "", false, 400},
		{"/sumdb/../supported", 0, "", "", "", false, 400},
		{"/sumdb/SUM/supported", 0, "", "", "", false, 404},
		{"/sumdb/sum.example.test/lookup/example.test/lib", 0, "", "", "", false, 400},
	}
	for _, tt := range tests {
		r, err := ParsePath(tt.path)
		if tt.status != 0 {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Status != tt.status {
				t.Errorf("ParsePath(%.60q) = %+v, %v; want PathError %d", tt.path, r, err, tt.status)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.path, err)
			continue
		}
		if r.Kind != tt.kind || r.Module != tt.mod || r.Version != tt.ver || r.Key != tt.key || r.Immutable() != tt.immutable {
			t.Errorf("ParsePath(%q) = %+v (immutable %v); want kind %v mod %q ver %q key %q immutable %v",
				tt.path, r, r.Immutable(), tt.kind, tt.mod, tt.ver, tt.key, tt.immutable)
		}
	}
}

// FuzzParsePath checks that no input panics, that errors carry a 400/404, and
// that every accepted key is a clean relative path whose upstream path parses
// back to the same request.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/example.test/lib/@v/list", "/github.com/!azure/x/@v/v1.0.0-!r!c.zip",
		"/a/@latest", "/sumdb/s.test/lookup/a.b/c@v1.0.0", "/sumdb/s.test/tile/8/1/x002/003.p/7",
		"/../@v/list", "/%21/@v/v1.0.0.mod", "/x.y/z/@v/v1.2.3+incompatible.info",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := ParsePath(p)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || (pe.Status != 400 && pe.Status != 404) {
				t.Fatalf("ParsePath(%q): error %v is not a 400/404 PathError", p, err)
			}
			return
		}
		if r.Key != "" {
			for _, elem := range strings.Split(r.Key, "/") {
				if elem == "" || elem == "." || elem == ".." || strings.ContainsAny(elem, "\\\x00") {
					t.Fatalf("ParsePath(%q): unsafe key %q", p, r.Key)
				}
			}
		}
		r2, err := ParsePath("/" + r.UpstreamPath())
		if err != nil {
			t.Fatalf("ParsePath(%q) ok but its upstream path %q fails: %v", p, r.UpstreamPath(), err)
		}
		if r2.Key != r.Key || r2.Module != r.Module || r2.Version != r.Version || r2.Kind != r.Kind {
			t.Fatalf("round trip of %q: %+v != %+v", p, r2, r)
		}
	})
}
