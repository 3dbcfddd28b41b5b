package goenv

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// SumDB is a parsed GOSUMDB value.
type SumDB struct {
	// Name is the database name (host[/path]) from its verifier key.
	Name string
	// Key is the database's verifier key, "name+hash+key".
	Key string
	// URL is the database's explicit address from the value's second field,
	// as written, or "" when the go command reaches it through the GOPROXY
	// list's proxies, then directly at https://Name (see Direct).
	URL string
	// Off reports GOSUMDB=off: no checksum database is consulted.
	Off bool
}

// knownKeys maps the checksum database names the go command knows
// (cmd/go/internal/modfetch/key.go) to their verifier keys, so that GOSUMDB
// may name a database without its key.
var knownKeys = map[string]string{
	"sum.golang.org": "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
}

// alias is a GOSUMDB value the go command reads as another database reached
// at another address (cmd/go/internal/modfetch/sumdb.go).
var alias = map[string]string{
	"sum.golang.google.cn": "sum.golang.org https://sum.golang.google.cn",
}

// ParseSumDB parses a GOSUMDB value as the go command does: "off"; a known
// database name; "name+hash+key"; or either of the last two followed by the
// database's URL. The one alias name the go command knows stands for the
// default database at the alias's own address. Errors are the go command's
// ("invalid GOSUMDB: too many fields", "missing GOSUMDB"); a bare name
// without a known key also says what to give instead.
func ParseSumDB(v string) (SumDB, error) {
	if a, ok := alias[v]; ok {
		v = a
	}
	if v == "off" {
		return SumDB{Off: true}, nil
	}
	f := strings.Fields(v)
	switch {
	case len(f) == 0:
		return SumDB{}, errors.New("missing GOSUMDB")
	case len(f) > 2:
		return SumDB{}, errors.New("invalid GOSUMDB: too many fields")
	}
	key := f[0]
	if k, ok := knownKeys[key]; ok {
		key = k
	}
	nv, err := note.NewVerifier(key)
	if err != nil {
		if !strings.Contains(key, "+") {
			return SumDB{}, fmt.Errorf("invalid GOSUMDB: %v: %q is no checksum database the go command knows the key of; give name+hash+key", err, key)
		}
		return SumDB{}, fmt.Errorf("invalid GOSUMDB: %v", err)
	}
	db := SumDB{Name: nv.Name(), Key: key}
	// The name becomes part of URLs: it must be a plain host[/path].
	u, err := url.Parse("https://" + db.Name)
	if err != nil || u.Host == "" || u.RawPath != "" || strings.HasSuffix(db.Name, "/") ||
		*u != (url.URL{Scheme: "https", Host: u.Host, Path: u.Path}) {
		return SumDB{}, fmt.Errorf("invalid sumdb name (must be host[/path]): %s", db.Name)
	}
	if len(f) == 2 {
		if _, err := url.Parse(f[1]); err != nil {
			return SumDB{}, fmt.Errorf("invalid GOSUMDB URL: %v", err)
		}
		db.URL = f[1]
	}
	return db, nil
}

// Direct returns the address the go command reaches the database at when no
// proxy serves it: URL if set, else https://Name. It is "" when Off.
func (s SumDB) Direct() string {
	switch {
	case s.Off:
		return ""
	case s.URL != "":
		return s.URL
	}
	return "https://" + s.Name
}

// String returns s as a GOSUMDB value: "off", the key, or the key and URL.
// ParseSumDB of it gives s back.
func (s SumDB) String() string {
	switch {
	case s.Off:
		return "off"
	case s.URL != "":
		return s.Key + " " + s.URL
	}
	return s.Key
}
