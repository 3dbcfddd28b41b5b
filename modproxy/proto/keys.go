package proto

import (
	"fmt"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// File returns the request for one file (KindInfo, KindMod or KindZip) of a
// canonical module version, with its store key. It fails on a path or version
// that module.Check refuses.
func File(kind Kind, mod, version string) (Request, error) {
	key, err := VersionKey(mod, version, kind)
	if err != nil {
		return Request{}, err
	}
	return Request{Kind: kind, Module: mod, Version: version, Canonical: true, Key: key}, nil
}

// VersionKey returns the store key of a module version's file of kind
// (KindInfo, KindMod or KindZip): "<escaped module>/@v/<escaped version>.<ext>".
func VersionKey(mod, version string, kind Kind) (string, error) {
	if kind != KindInfo && kind != KindMod && kind != KindZip {
		return "", fmt.Errorf("proto: %s is not a module version file", kind)
	}
	if err := module.Check(mod, version); err != nil {
		return "", err
	}
	em, ev, err := escape(mod, version)
	return em + "/@v/" + ev + "." + kind.String(), err
}

// escape returns the escaped forms of a module path and version.
func escape(mod, version string) (em, ev string, err error) {
	if em, err = module.EscapePath(mod); err != nil {
		return "", "", err
	}
	if ev, err = module.EscapeVersion(version); err != nil {
		return "", "", err
	}
	return em, ev, nil
}

// ListKey returns the store key of a module's version list.
func ListKey(mod string) (string, error) {
	em, err := module.EscapePath(mod)
	if err != nil {
		return "", err
	}
	return em + "/@v/list", nil
}

// LookupKey returns the store key of checksum database db's lookup of a
// module version.
func LookupKey(db, mod, version string) (string, error) {
	em, ev, err := escape(mod, version)
	return "sumdb/" + db + "/lookup/" + em + "@" + ev, err
}

// Lookup returns the request for checksum database db's lookup of a module
// version.
func Lookup(db, mod, version string) (Request, error) {
	key, err := LookupKey(db, mod, version)
	if err != nil {
		return Request{}, err
	}
	return ParsePath("/" + key)
}

// SumDB returns the request for path (what follows /sumdb/<db>/) of checksum
// database db.
func SumDB(db, path string) (Request, error) {
	return ParsePath("/sumdb/" + db + "/" + path)
}

// VersionOf splits the key of a module version's .info, .mod or .zip into
// the version's own prefix ("<escaped module>/@v/<escaped version>", the
// unit eviction removes), the list key of its module, and its unescaped
// version. ok is false for every other key (lists, checksum data).
func VersionOf(key string) (prefix, listKey, version string, ok bool) {
	if strings.HasPrefix(key, "sumdb/") {
		return "", "", "", false
	}
	i := strings.LastIndex(key, "/@v/")
	if i < 0 {
		return "", "", "", false
	}
	for _, ext := range []string{".zip", ".mod", ".info"} {
		if ev, found := strings.CutSuffix(key[i+len("/@v/"):], ext); found {
			v, err := module.UnescapeVersion(ev)
			if err != nil {
				return "", "", "", false
			}
			return key[:i+len("/@v/")] + ev, key[:i] + "/@v/list", v, true
		}
	}
	return "", "", "", false
}

// ParseList returns the versions of a version list body (one per line; the
// go command ignores anything after the first field), in their order, and
// skips lines that are not valid semantic versions.
func ParseList(body []byte) []string {
	var vs []string
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) > 0 && semver.IsValid(f[0]) {
			vs = append(vs, f[0])
		}
	}
	return vs
}

// FormatList returns a version list body of vs, deduplicated and sorted in
// semantic version order.
func FormatList(vs []string) []byte {
	seen := make(map[string]bool, len(vs))
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	semver.Sort(out)
	var b strings.Builder
	for _, v := range out {
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
