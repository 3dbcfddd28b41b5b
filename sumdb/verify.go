// Package sumdb verifies module files against a Go checksum database before
// berth stores them, and before an imported bundle is accepted.
//
// A Verifier is a golang.org/x/mod/sumdb client whose remote reads go through
// a function the caller provides: the proxy passes one that answers from its
// store and its upstream's /sumdb/<name>/ endpoints; an air-gap import passes
// one that reads the checksum data carried in the bundle. Signed tree heads and
// inclusion proofs are checked by the x/mod client exactly as the go command
// checks them.
package sumdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	xsumdb "golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"
)

// Fetch reads path from the checksum database, relative to /sumdb/<name>/
// (for example "lookup/example.com/m@v1.0.0" or "tile/8/0/000"). It returns an
// error for anything but a 200 answer.
type Fetch func(ctx context.Context, path string) ([]byte, error)

// Verifier checks module files against one checksum database.
type Verifier struct {
	name string
	ops  *ops

	mu      sync.Mutex
	client  *xsumdb.Client
	lookups int
}

// maxClientLookups bounds the x/mod client's memo of lookups: after that many,
// a fresh client (sharing the verified latest tree) takes over.
const maxClientLookups = 10000

// current returns the client to use. The x/mod client memoizes every lookup
// result, failures included, for its whole life; a long-running proxy must
// not keep a transient failure forever, nor grow without bound.
func (v *Verifier) current() *xsumdb.Client {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lookups++
	if v.lookups > maxClientLookups {
		v.client, v.lookups = xsumdb.NewClient(v.ops), 0
	}
	return v.client
}

// reset replaces a client that memoized a failure.
func (v *Verifier) reset(c *xsumdb.Client) {
	v.mu.Lock()
	if v.client == c {
		v.client, v.lookups = xsumdb.NewClient(v.ops), 0
	}
	v.mu.Unlock()
}

// MismatchError is a file whose hash is not the one the checksum database
// records for it: a corrupt or poisoned upstream answer.
type MismatchError struct {
	Module, Version string
	File            string // "zip" or "go.mod"
	Got, Want       string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("checksum mismatch for %s@%s %s: upstream file hashes to %s, checksum database says %s; the file was refused and not stored",
		e.Module, e.Version, e.File, e.Got, e.Want)
}

// ParseGOSUMDB returns the database name and verifier key of a GOSUMDB value
// ("name+hash+key [url]"). A bare name is accepted only when a key for it is
// known (KnownKeys).
func ParseGOSUMDB(v string) (name, key string, err error) {
	fields := strings.Fields(v)
	if len(fields) == 0 || fields[0] == "off" {
		return "", "", errors.New("checksum database is off")
	}
	key = fields[0]
	if !strings.Contains(key, "+") {
		k, ok := KnownKeys[key]
		if !ok {
			return "", "", fmt.Errorf("GOSUMDB %q has no verifier key and none is known for it: give name+hash+key", key)
		}
		key = k
	}
	verifier, err := note.NewVerifier(key)
	if err != nil {
		return "", "", fmt.Errorf("GOSUMDB key %q: %w", key, err)
	}
	return verifier.Name(), key, nil
}

// KnownKeys maps checksum database names to their public verifier keys, as the
// go command knows them (cmd/go/internal/modfetch/key.go), so that GOSUMDB may
// name a database without its key; sum.golang.google.cn is an alias.
var KnownKeys = map[string]string{
	"sum.golang.org":       "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
	"sum.golang.google.cn": "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
}

// NewVerifier returns a Verifier for the database with the given verifier key
// ("name+hash+key") that reads remote data with fetch. Each read gets a context
// derived from ctx with a 30-second limit; ctx bounds the Verifier's life.
func NewVerifier(ctx context.Context, key string, fetch Fetch) (*Verifier, error) {
	v, err := note.NewVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("checksum database key %q: %w", key, err)
	}
	o := &ops{name: v.Name(), key: []byte(key), fetch: fetch, ctx: ctx, cache: map[string][]byte{}}
	c := xsumdb.NewClient(o)
	return &Verifier{name: v.Name(), client: c, ops: o}, nil
}

// Name returns the database name.
func (v *Verifier) Name() string { return v.name }

// lookup returns the recorded hash for path@vers (vers may end in /go.mod).
func (v *Verifier) lookup(ctx context.Context, path, vers string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	c := v.current()
	lines, err := c.Lookup(path, vers)
	if err != nil {
		if sec := v.ops.securityError(); sec != "" {
			return "", fmt.Errorf("checksum database %s: SECURITY ERROR: %s", v.name, sec)
		}
		v.reset(c) // the next attempt asks again instead of repeating this failure
		return "", fmt.Errorf("checksum database %s: looking up %s@%s: %w", v.name, path, vers, err)
	}
	prefix := path + " " + vers + " "
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimPrefix(l, prefix), nil
		}
	}
	return "", fmt.Errorf("checksum database %s has no record for %s@%s", v.name, path, vers)
}

// Prefetch looks up path@version now, so that a later VerifyMod or VerifyZip
// of it needs no round trip: callers start it when a download starts.
// Errors are ignored here; the verification reports them.
func (v *Verifier) Prefetch(ctx context.Context, path, version string) {
	v.lookup(ctx, path, version)
}

// CheckLookup verifies the database's record of path@version on its own: the
// lookup is signed by the database and its record is included in the signed
// tree (and that tree is consistent with the newest one seen). It checks no
// file against the record.
func (v *Verifier) CheckLookup(ctx context.Context, path, version string) error {
	_, err := v.lookup(ctx, path, version)
	return err
}

// VerifyMod checks a go.mod file's content.
func (v *Verifier) VerifyMod(ctx context.Context, path, version string, gomod []byte) error {
	got, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		return err
	}
	want, err := v.lookup(ctx, path, version+"/go.mod")
	if err != nil {
		return err
	}
	if got != want {
		return &MismatchError{Module: path, Version: version, File: "go.mod", Got: got, Want: want}
	}
	return nil
}

// VerifyZip checks a module zip file on disk.
func (v *Verifier) VerifyZip(ctx context.Context, path, version, zipFile string) error {
	got, err := dirhash.HashZip(zipFile, dirhash.Hash1)
	if err != nil {
		return fmt.Errorf("hashing %s@%s zip: %w", path, version, err)
	}
	want, err := v.lookup(ctx, path, version)
	if err != nil {
		return err
	}
	if got != want {
		return &MismatchError{Module: path, Version: version, File: "zip", Got: got, Want: want}
	}
	return nil
}

// CheckZip runs golang.org/x/mod/zip's structural checks (names, sizes, the
// module@version prefix) on a zip file.
func CheckZip(path, version, zipFile string) error {
	_, err := modzip.CheckZip(module.Version{Path: path, Version: version}, zipFile)
	return err
}

// ops implements x/mod's ClientOps over a Fetch, with an in-memory cache of
// tiles and lookups and the latest signed tree kept in memory.
type ops struct {
	name  string
	key   []byte
	fetch Fetch

	mu     sync.Mutex
	ctx    context.Context
	latest []byte
	cache  map[string][]byte
	sec    string
}

func (o *ops) securityError() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sec
}

func (o *ops) ReadRemote(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(o.ctx, 30*time.Second)
	defer cancel()
	return o.fetch(ctx, strings.TrimPrefix(path, "/"))
}

func (o *ops) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return o.key, nil
	}
	if file == o.name+"/latest" {
		o.mu.Lock()
		defer o.mu.Unlock()
		return append([]byte(nil), o.latest...), nil
	}
	return nil, os.ErrNotExist
}

func (o *ops) WriteConfig(file string, old, new []byte) error {
	if file != o.name+"/latest" {
		return fmt.Errorf("unexpected config file %q", file)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !bytes.Equal(old, o.latest) {
		return xsumdb.ErrWriteConflict
	}
	o.latest = append([]byte(nil), new...)
	return nil
}

// The cache is bounded by clearing it when it grows large: tiles are cheap to
// fetch again from berth's own store.
const maxCacheEntries = 4096

func (o *ops) ReadCache(file string) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if b, ok := o.cache[file]; ok {
		return b, nil
	}
	return nil, os.ErrNotExist
}

func (o *ops) WriteCache(file string, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.cache) >= maxCacheEntries {
		o.cache = map[string][]byte{}
	}
	o.cache[file] = data
}

func (o *ops) Log(string) {}

func (o *ops) SecurityError(msg string) {
	o.mu.Lock()
	o.sec = msg
	o.mu.Unlock()
}
