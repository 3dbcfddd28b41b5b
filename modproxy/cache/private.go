package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/berth-dev/berth/modproxy/ledger"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
)

// Ledger keeps the first-seen hashes of the module versions the checksum
// database cannot vouch for (private modules) and refuses a version whose
// content changed; package ledger implements it. The core calls Check
// before it commits a .mod or .zip of a path the ledger Covers.
type Ledger interface {
	// Covers reports whether the ledger keeps modulePath's versions.
	Covers(modulePath string) bool
	// Check checks (and on first sight records) the h1: hash of a file;
	// rev is what version control reported, nil from a proxy. A
	// *ledger.MismatchError refuses the file for good.
	Check(ctx context.Context, path, version string, kind proto.Kind, sum string, rev *source.Revision) error
}

// checkLedger checks a verified .mod (body) or .zip (zipFile) against the
// ledger when it covers the module.
func (c *Cache) checkLedger(ctx context.Context, r proto.Request, body []byte, zipFile string, rev *source.Revision) error {
	l := c.cfg.Ledger
	if l == nil || (r.Kind != proto.KindMod && r.Kind != proto.KindZip) || !l.Covers(r.Module) {
		return nil
	}
	var sum string
	var err error
	if r.Kind == proto.KindMod {
		sum, err = dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		})
	} else {
		sum, err = dirhash.HashZip(zipFile, dirhash.Hash1)
	}
	if err != nil {
		return reject("bad_zip", "%s: hashing for berth's ledger: %v", r.UpstreamPath(), err)
	}
	err = l.Check(ctx, r.Module, r.Version, r.Kind, sum, rev)
	var me *ledger.MismatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &me):
		return &RejectError{Reason: "ledger_mismatch", Err: err}
	}
	return &RejectError{Reason: "ledger_unavailable", Err: fmt.Errorf("cannot check %s@%s against berth's ledger: %w", r.Module, r.Version, err)}
}

// PrivateError is a request berth refuses because it would tell a public
// service about a private module: a checksum-database lookup of a path the
// checksum database is not asked about (Config.NoSumDB).
type PrivateError struct {
	Module, SumDB string
}

func (e *PrivateError) Error() string {
	return fmt.Sprintf("berth does not ask checksum database %s about %s: it is a private module for berth (its --private or --nosumdb patterns). "+
		"Tell the go command too: set GONOSUMDB (or GOPRIVATE together with GONOPROXY=none) to a pattern matching it, such as GONOSUMDB=%s",
		e.SumDB, e.Module, patternFor(e.Module))
}

func patternFor(path string) string {
	host, _, _ := bytes.Cut([]byte(path), []byte("/"))
	return string(host)
}

// privateLookup refuses a checksum-database lookup of a module the checksum
// database must not hear of. The go command's toolchains are always looked
// up: it cannot skip their checks.
func (c *Cache) privateLookup(r proto.Request) error {
	if r.Kind != proto.KindSumDB || r.Module == "" || c.cfg.NoSumDB == nil || r.Module == "golang.org/toolchain" {
		return nil
	}
	if c.cfg.NoSumDB(r.Module) {
		return &PrivateError{Module: r.Module, SumDB: r.SumDB}
	}
	return nil
}

// passesThrough reports whether a mutable request's failure must reach the
// client as it is, not as "not found": a git host refusing credentials is
// something the user must act on, and a 404 would send the go command
// elsewhere to fail obscurely.
func passesThrough(err error) bool {
	var ae *source.AuthError
	return errors.As(err, &ae)
}
