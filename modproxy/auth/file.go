package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"golang.org/x/mod/module"
)

// An auth file is text, one entry a line; blank lines and lines starting
// with "#" are ignored. Fields are separated by spaces or tabs:
//
//	token NAME sha256:HEX [read=PATTERNS] [deny=PATTERNS] [admin] [created=RFC3339]
//	anonymous [read=PATTERNS] [deny=PATTERNS]
//
// NAME is letters, digits, ".", "_" and "-", unique in the file; it is what
// logs and "berth token list" show. HEX is the SHA-256 of the secret, in 64
// lowercase hex digits. PATTERNS is a comma-separated list of module path
// globs in GOPRIVATE syntax ("*" matches every path): the token may read the
// module paths matching read and not matching deny. admin allows /metrics and
// the operations endpoints. The one optional anonymous line says what a
// client without credentials may read; without it such a client may read
// nothing.
//
// Secrets are random 256-bit values, so a plain SHA-256 is enough: nothing
// short or guessable is hashed, and a slow password hash (bcrypt, argon2)
// would only cost each request milliseconds.

// File is a parsed auth file.
type File struct {
	Tokens []Token
	// Anonymous is what a client without credentials may read; nil means
	// nothing.
	Anonymous *Scope
}

// Scope is what a token (or an anonymous client) may do.
type Scope struct {
	// Read and Deny are comma-separated GOPRIVATE-style patterns: a module
	// path is readable when it matches Read and does not match Deny.
	Read, Deny string
	// Admin allows /metrics and the operations endpoints.
	Admin bool
}

// CanRead reports whether the scope allows reading module path mod.
func (s Scope) CanRead(mod string) bool {
	return module.MatchPrefixPatterns(s.Read, mod) && !module.MatchPrefixPatterns(s.Deny, mod)
}

// Token is one token entry: its name, the SHA-256 of its secret and its scope.
type Token struct {
	Name string
	Hash [sha256.Size]byte
	Scope
	// Created is when "berth token create" made the entry (zero if unknown).
	Created time.Time
}

// SecretPrefix starts every secret berth makes, so secret scanners and people
// can tell one when they see it.
const SecretPrefix = "berth_"

// NewSecret returns a new random secret and its hash.
func NewSecret() (secret string, hash [sha256.Size]byte) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret)
}

// HashSecret returns the hash stored for secret.
func HashSecret(secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte(secret))
}

// Line returns the token's entry as one auth file line, without a newline.
func (t Token) Line() string {
	var b strings.Builder
	b.WriteString("token " + t.Name + " sha256:" + hex.EncodeToString(t.Hash[:]))
	writeScope(&b, t.Scope)
	if !t.Created.IsZero() {
		b.WriteString(" created=" + t.Created.UTC().Format(time.RFC3339Nano))
	}
	return b.String()
}

func writeScope(b *strings.Builder, s Scope) {
	if s.Read != "" {
		b.WriteString(" read=" + s.Read)
	}
	if s.Deny != "" {
		b.WriteString(" deny=" + s.Deny)
	}
	if s.Admin {
		b.WriteString(" admin")
	}
}

// Format returns the file's text: every entry, one a line.
func (f *File) Format() []byte {
	var b strings.Builder
	for _, t := range f.Tokens {
		b.WriteString(t.Line() + "\n")
	}
	if f.Anonymous != nil {
		b.WriteString("anonymous")
		writeScope(&b, *f.Anonymous)
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// MaxFileSize is the largest auth file read.
const MaxFileSize = 4 << 20

// ParseError is a line of an auth file that breaks the format.
type ParseError struct {
	Line   int
	Reason string
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Parse parses an auth file. Errors are *ParseError naming the line and the
// rule it broke; they never quote a hash.
func Parse(data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileSize)
	}
	f := &File{}
	names := map[string]int{}
	hashes := map[[sha256.Size]byte]int{}
	anonLine := 0
	for n, line := range bytes.Split(data, []byte("\n")) {
		n++
		line = bytes.TrimSuffix(line, []byte("\r"))
		fields := strings.Fields(string(line))
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return &ParseError{Line: n, Reason: fmt.Sprintf(format, args...)}
		}
		switch fields[0] {
		case "token":
			if len(fields) < 3 {
				return nil, bad("want: token NAME sha256:HEX [read=PATTERNS] [deny=PATTERNS] [admin] [created=TIME]")
			}
			t := Token{Name: fields[1]}
			if err := CheckName(t.Name); err != nil {
				return nil, bad("%v", err)
			}
			if prev, ok := names[t.Name]; ok {
				return nil, bad("token name %q already used on line %d: names must be unique", t.Name, prev)
			}
			h, ok := strings.CutPrefix(fields[2], "sha256:")
			if !ok || len(h) != 2*sha256.Size || strings.ToLower(h) != h {
				return nil, bad("token %s: the hash must be sha256: and 64 lowercase hex digits", t.Name)
			}
			if _, err := hex.Decode(t.Hash[:], []byte(h)); err != nil {
				return nil, bad("token %s: the hash must be sha256: and 64 lowercase hex digits", t.Name)
			}
			if prev, ok := hashes[t.Hash]; ok {
				return nil, bad("token %s has the same hash as the token on line %d: one secret, one entry", t.Name, prev)
			}
			seen := map[string]bool{}
			for _, a := range fields[3:] {
				key, val, hasVal := strings.Cut(a, "=")
				if seen[key] {
					return nil, bad("token %s: %s given twice", t.Name, key)
				}
				seen[key] = true
				switch {
				case key == "created" && hasVal:
					tm, err := time.Parse(time.RFC3339, val)
					if err != nil || tm.Year() < 1 || tm.Year() > 9999 {
						return nil, bad("token %s: created=%s: want an RFC 3339 time such as 2026-01-02T15:04:05Z", t.Name, quoteSafe(val))
					}
					t.Created = tm
				default:
					if err := parseScopeField(&t.Scope, key, val, hasVal, true); err != nil {
						return nil, bad("token %s: %v", t.Name, err)
					}
				}
			}
			names[t.Name], hashes[t.Hash] = n, n
			f.Tokens = append(f.Tokens, t)
		case "anonymous":
			if anonLine != 0 {
				return nil, bad("a second anonymous line (the first is line %d)", anonLine)
			}
			s := Scope{}
			seen := map[string]bool{}
			for _, a := range fields[1:] {
				key, val, hasVal := strings.Cut(a, "=")
				if seen[key] {
					return nil, bad("anonymous: %s given twice", key)
				}
				seen[key] = true
				if err := parseScopeField(&s, key, val, hasVal, false); err != nil {
					return nil, bad("anonymous: %v", err)
				}
			}
			anonLine = n
			f.Anonymous = &s
		default:
			return nil, bad("unknown entry %s: want token or anonymous (or # for a comment)", quoteSafe(fields[0]))
		}
	}
	return f, nil
}

func parseScopeField(s *Scope, key, val string, hasVal, adminOK bool) error {
	switch {
	case key == "read" && hasVal:
		if err := checkPatterns(val); err != nil {
			return fmt.Errorf("read=: %w", err)
		}
		s.Read = val
	case key == "deny" && hasVal:
		if err := checkPatterns(val); err != nil {
			return fmt.Errorf("deny=: %w", err)
		}
		s.Deny = val
	case key == "admin" && !hasVal && adminOK:
		s.Admin = true
	case key == "admin" && !hasVal:
		return errors.New("admin is for tokens only")
	default:
		return fmt.Errorf("unknown field %s: want read=PATTERNS, deny=PATTERNS%s", quoteSafe(key), map[bool]string{true: ", admin or created=TIME", false: ""}[adminOK])
	}
	return nil
}

// checkPatterns checks a GOPRIVATE-style list: comma-separated path.Match
// globs, none empty.
func checkPatterns(list string) error {
	if list == "" {
		return errors.New("no patterns: want a comma-separated list such as corp.example/*,example.test")
	}
	for _, p := range strings.Split(list, ",") {
		if strings.Trim(p, "/") == "" {
			return fmt.Errorf("empty pattern in %q", truncate(list, 80))
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: %v", truncate(p, 80), err)
		}
	}
	return nil
}

// CheckName checks a token name: 1 to 64 letters, digits, ".", "_" or "-".
func CheckName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("token name of %d bytes: want 1 to 64 letters, digits, '.', '_' or '-'", len(name))
	}
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("token name: %q at byte %d: want only letters, digits, '.', '_' or '-'", c, i)
		}
	}
	if strings.HasPrefix(name, SecretPrefix) {
		// A secret pasted as a name would be shown in every log line.
		return fmt.Errorf("a token name must not start with %q, as secrets do", SecretPrefix)
	}
	return nil
}

// quoteSafe quotes s for an error message when it is short and plainly not a
// secret (a word of at most 24 letters, digits, '-', '.' or ':'); otherwise it
// says only how long s is, so a secret pasted in the wrong place never
// reaches a log.
func quoteSafe(s string) string {
	if len(s) <= 24 && !strings.HasPrefix(s, SecretPrefix) && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:+") == "" {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("(%d bytes, not shown)", len(s))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
