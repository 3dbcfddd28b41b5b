package airgap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/berth-dev/berth/modproxy/ledger"
	"github.com/berth-dev/berth/store"
)

// parseLedgerKey classifies the key of a ledger record (ledger/<path>@<version>).
func parseLedgerKey(key string) (keyInfo, error) {
	mv, err := ledger.ParseKey(key)
	if err != nil {
		return keyInfo{}, err
	}
	if k, _ := ledger.Key(mv.Path, mv.Version); k != key {
		return keyInfo{}, fmt.Errorf("%q: not a file berth stores (the ledger key of %s@%s is %q)", key, mv.Path, mv.Version, k)
	}
	return keyInfo{kind: kindLedger, mod: mv}, nil
}

// checkLedgers checks the bundle against the immutability ledgers of private
// modules, both the bundle's and the importing store's: every .mod and .zip
// must have the hashes its version's records say, and the bundle's records
// must not contradict the store's. Import refuses the bundle otherwise.
func checkLedgers(ctx context.Context, st store.Store, dir string, root *os.Root, order []*staged, maxFile int64) error {
	var reasons []string
	fail := func(format string, args ...any) {
		if len(reasons) < 10 {
			reasons = append(reasons, fmt.Sprintf(format, args...))
		}
	}
	// The record each version is held to: the store's merged with the bundle's.
	records := map[string][]byte{}
	for _, s := range order {
		if s.ki.kind != kindLedger {
			continue
		}
		theirs, err := readStaged(root, s.name, maxFile)
		if err != nil {
			fail("%s: %v", s.name, err)
			continue
		}
		mine, err := readKey(ctx, st, s.name, maxFile)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("import: %w", err)
		}
		merged, err := ledger.Merge(s.ki.mod.Path, s.ki.mod.Version, mine, theirs)
		if err != nil {
			fail("%s: the bundle's ledger record does not match this store's: %v", s.name, err)
			continue
		}
		records[s.name] = merged
	}
	for _, s := range order {
		if s.ki.kind != kindMod && s.ki.kind != kindZip {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		key, _ := ledger.Key(s.ki.mod.Path, s.ki.mod.Version)
		raw, ok := records[key]
		if !ok {
			b, err := readKey(ctx, st, key, maxFile)
			if errors.Is(err, fs.ErrNotExist) {
				continue // no record: not a version the ledger keeps
			}
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			raw = b
		}
		rec, err := ledger.Parse(raw)
		if err != nil {
			fail("%s: %v", key, err)
			continue
		}
		want, file := rec.Zip, "zip"
		if s.ki.kind == kindMod {
			want, file = rec.Mod, "go.mod"
		}
		if want == "" {
			continue
		}
		got, err := stagedSum(dir, root, s, maxFile)
		if err != nil {
			fail("%s: %v", s.name, err)
			continue
		}
		if got != want {
			fail("%s@%s: the bundle's %s hashes to %s, but berth's ledger recorded %s (commit %s) for this version: a published version changed",
				s.ki.mod.Path, s.ki.mod.Version, file, got, want, rec.Commit)
		}
	}
	if len(reasons) > 0 {
		return &RefusedError{Reasons: reasons}
	}
	for _, s := range order {
		if s.ki.kind == kindLedger {
			s.ledger = records[s.name]
		}
	}
	return nil
}

// stagedSum returns the h1: hash of a staged .mod or .zip.
func stagedSum(dir string, root *os.Root, s *staged, maxFile int64) (string, error) {
	if s.ki.kind == kindZip {
		return dirhash.HashZip(filepath.Join(dir, filepath.FromSlash(s.name)), dirhash.Hash1)
	}
	b, err := readStaged(root, s.name, maxFile)
	if err != nil {
		return "", err
	}
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// commitLedger writes a record that merges the store's and the bundle's
// (checkLedgers made it), over the store's.
func commitLedger(ctx context.Context, st store.Store, src string, s *staged, res *ImportResult) error {
	merged := s.ledger
	if merged == nil {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		merged = b
	}
	res.Merged++
	return writeKey(ctx, st, s.name, bytes.NewReader(merged))
}
