package airgap

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/sumdb"
)

// lookupRef is a stored checksum database lookup and the size of the tree its
// signed tree head names.
type lookupRef struct {
	key  string
	mod  module.Version
	id   int64 // record number in the log
	tree tlog.Tree
}

// parseLookup returns the signed tree of a lookup answer, checked with key.
func parseLookup(data []byte, nv note.Verifier) (tlog.Tree, error) {
	_, t, err := parseLookupID(data, nv)
	return t, err
}

func parseLookupID(data []byte, nv note.Verifier) (int64, tlog.Tree, error) {
	id, _, msg, err := tlog.ParseRecord(data)
	if err != nil {
		return 0, tlog.Tree{}, err
	}
	n, err := note.Open(msg, note.VerifierList(nv))
	if err != nil {
		return 0, tlog.Tree{}, fmt.Errorf("signed tree head: %w", err)
	}
	t, err := tlog.ParseTree([]byte(n.Text))
	return id, t, err
}

// newestFirst sorts lookups by tree size, largest first. Verifying them in
// this order makes a fresh verifier prove everything against the one newest
// tree, so one set of tiles serves every proof: the set Warm makes sure the
// store holds, and the set Import finds in a bundle.
func newestFirst(refs []lookupRef) {
	sort.SliceStable(refs, func(i, j int) bool { return refs[i].tree.N > refs[j].tree.N })
}

// verifyLookup checks that a lookup is signed and its record included in the tree.
func verifyLookup(ctx context.Context, v *sumdb.Verifier, mv module.Version) error {
	return v.CheckLookup(ctx, mv.Path, mv.Version)
}

// lookupsIn lists the lookups of database db in st. A store that cannot list
// its keys has none to list.
func lookupsIn(ctx context.Context, st store.Store, db string, nv note.Verifier) ([]lookupRef, error) {
	var refs []lookupRef
	err := store.Walk(ctx, st, "sumdb/"+db+"/lookup/", func(key string, _ store.Info) error {
		ki, err := parseKey(key)
		if err != nil || ki.kind != kindLookup {
			return nil
		}
		b, err := readKey(ctx, st, key, 16<<20)
		if err != nil {
			return err
		}
		id, t, err := parseLookupID(b, nv)
		if err != nil {
			return nil // the preflight's verifier reports it
		}
		refs = append(refs, lookupRef{key: key, mod: ki.mod, id: id, tree: t})
		return nil
	})
	if errors.Is(err, errors.ErrUnsupported) {
		return nil, nil
	}
	return refs, err
}

// readKey returns the committed content of key, up to limit bytes.
func readKey(ctx context.Context, st store.Store, key string, limit int64) ([]byte, error) {
	f, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readAllLimit(f, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return b, nil
}

// preflight verifies every lookup of the store in the order Import will,
// reading the checksum database through the proxy: tiles an import of this
// store would need and the store lacks are fetched and stored now, while the
// upstream is reachable.
func preflight(ctx context.Context, cfg WarmConfig) error {
	if cfg.SumDBKey == "" {
		return nil
	}
	nv, err := note.NewVerifier(cfg.SumDBKey)
	if err != nil {
		return err
	}
	refs, err := lookupsIn(ctx, cfg.Cache.Store(), nv.Name(), nv)
	if err != nil {
		return err
	}
	newestFirst(refs)
	fetch := func(ctx context.Context, p string) ([]byte, error) {
		r, err := proto.SumDB(nv.Name(), p)
		if err != nil {
			return nil, err
		}
		b, err := cfg.Cache.ReadAll(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("/sumdb/%s/%s: %w", nv.Name(), p, err)
		}
		return b, nil
	}
	v, err := sumdb.NewVerifier(ctx, cfg.SumDBKey, fetch)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range refs {
		if err := verifyLookup(ctx, v, r.mod); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.key, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return tileClosure(ctx, refs, fetch)
}

// tileClosure stores the tiles the go command needs to check the store's
// lookups offline in whatever order it reads them: it proves every record
// and the last leaf of every tree against the newest tree, and the last leaf
// of every tree against that tree (which reads its right-edge tiles at every
// level). A tile inside a tree is full there, so it is full in the newest
// tree too; any other tile a proof against a tree reads is that tree's edge.
// The tiles are read through fetch (the proxy), which checks and stores them;
// TileHashReader checks them against the signed trees.
func tileClosure(ctx context.Context, refs []lookupRef, fetch sumdb.Fetch) error {
	if len(refs) == 0 {
		return nil
	}
	newestFirst(refs)
	tr := sumdb.NewTileReader(ctx, fetch)
	newest := refs[0].tree
	thrMax := tlog.TileHashReader(newest, tr)
	trees := map[int64]tlog.Tree{}
	for _, r := range refs {
		trees[r.tree.N] = r.tree
		if r.id >= newest.N {
			return fmt.Errorf("%s: record %d is not in tree %d", r.key, r.id, newest.N)
		}
		if _, err := tlog.ProveRecord(newest.N, r.id, thrMax); err != nil {
			return fmt.Errorf("%s: proving record %d in tree %d: %w", r.key, r.id, newest.N, err)
		}
	}
	for n, t := range trees {
		if _, err := tlog.ProveRecord(newest.N, n-1, thrMax); err != nil {
			return fmt.Errorf("proving tree %d in tree %d: %w", n, newest.N, err)
		}
		if _, err := tlog.ProveRecord(n, n-1, tlog.TileHashReader(t, tr)); err != nil {
			return fmt.Errorf("reading the edge tiles of tree %d: %w", n, err)
		}
	}
	return nil
}
