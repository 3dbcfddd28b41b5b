// Package airgap moves Go modules across an air gap with berth.
//
// Warm fills a store through the proxy's core (cache.Cache) from go.sum, go.mod, `go list -m
// all` output or module@version lists, so every file is fetched, verified and
// stored exactly as when the go command asks berth for it, together with the
// checksum database lookups it was verified with.
//
// Export writes a store, or the modules of it that match path patterns, with
// the whole checksum database data it holds, as a bundle: a tar stream
// compressed with zstd, ending with a manifest (berth-bundle.json) listing
// every file with its size and SHA-256.
//
// Import unpacks a bundle into a staging directory inside the target store,
// refuses hostile or inconsistent archives, checks every file against the
// manifest and every .mod and .zip against the checksum database using only
// the checksum data carried in the bundle (with the verifier key the importer
// trusts, never the one the bundle names), and only then commits the files
// into the store one by one, atomically. The unpacked tree is both a berth
// store and a GOPROXY=file:// tree.
package airgap

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/berth-dev/berth/modproxy/ledger"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
)

// ManifestName is the name of the manifest entry in a bundle.
const ManifestName = "berth-bundle.json"

// FormatVersion is the bundle format this package writes and reads.
const FormatVersion = 1

// Manifest describes a bundle's content.
type Manifest struct {
	// Format is FormatVersion.
	Format int `json:"format"`
	// Created is when the bundle was written.
	Created time.Time `json:"created"`
	// SumDB and SumDBKey name the checksum database the exporting store
	// verified against. Import never trusts this key; it refuses a bundle
	// whose key differs from the one the importer gives.
	SumDB    string `json:"sumdb,omitempty"`
	SumDBKey string `json:"sumdbKey,omitempty"`
	// Patterns are the module path patterns the export was limited to.
	Patterns []string `json:"patterns,omitempty"`
	// Files lists every file in the bundle but the manifest, in bundle order.
	Files []ManifestFile `json:"files"`
}

// ManifestFile is one file of a bundle: its store key, size and SHA-256 (hex).
type ManifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// fileKind classifies a store key that may travel in a bundle.
type fileKind int

const (
	kindOther fileKind = iota
	kindList
	kindInfo
	kindMod
	kindZip
	kindSupported
	kindLookup
	kindTile     // hash tile
	kindDataTile // record data tile
	kindLedger   // a private module version's ledger record (modproxy/ledger)
)

// keyInfo is a parsed bundle file name.
type keyInfo struct {
	kind       fileKind
	mod        module.Version // module files and lookups
	db, dbPath string         // checksum database files
	tile       tlog.Tile
}

// parseKey validates a store key the way berth validates request paths and
// classifies it. Keys that berth would never store are refused.
func parseKey(key string) (keyInfo, error) {
	if err := store.CheckKey(key); err != nil {
		return keyInfo{}, err
	}
	if strings.HasPrefix(key, ledger.Prefix) {
		return parseLedgerKey(key)
	}
	req, err := proto.ParsePath("/" + key)
	if err != nil {
		return keyInfo{}, fmt.Errorf("%q: %w", key, err)
	}
	ki := keyInfo{mod: module.Version{Path: req.Module, Version: req.Version}}
	switch req.Kind {
	case proto.KindList:
		ki.kind = kindList
	case proto.KindInfo:
		ki.kind = kindInfo
	case proto.KindMod:
		ki.kind = kindMod
	case proto.KindZip:
		ki.kind = kindZip
	case proto.KindSumDB:
		ki.db, ki.dbPath = req.SumDB, req.SumDBPath
		switch {
		case req.SumDBPath == "supported":
			ki.kind = kindSupported
			return ki, nil
		case strings.HasPrefix(req.SumDBPath, "lookup/"):
			ki.kind = kindLookup
			ki.mod.Version = strings.TrimSuffix(ki.mod.Version, "/go.mod")
		case strings.HasPrefix(req.SumDBPath, "tile/"):
			t, err := tlog.ParseTilePath(req.SumDBPath)
			if err != nil {
				return keyInfo{}, fmt.Errorf("%q: %w", key, err)
			}
			ki.tile = t
			ki.kind = kindTile
			if t.L < 0 {
				ki.kind = kindDataTile
			}
		}
	}
	if ki.kind == kindOther || (req.Key != key && ki.kind != kindSupported) {
		return keyInfo{}, fmt.Errorf("%q: not a file berth stores", key)
	}
	return ki, nil
}
