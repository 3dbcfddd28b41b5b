package airgap

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// ExportConfig configures Export.
type ExportConfig struct {
	// Store is the store to export; it must be a store.Walker. When it is nil,
	// StoreDir names a disk store directory (or a module cache's
	// cache/download directory), which is read and never written.
	Store store.Store
	// StoreDir is the root of a disk store, used when Store is nil.
	StoreDir string
	// Patterns limit the module files exported to module paths matching any of
	// them, as GOPRIVATE patterns match (path.Match globs over path prefixes).
	// Empty: every module. Checksum database data is always exported whole.
	Patterns []string
	// SumDB and SumDBKey are recorded in the manifest (for information; import
	// verifies with its own key). With SumDBKey set, every exported module
	// version that NoSumDB does not exclude must have its lookup in the
	// bundle, since import verifies it with nothing else.
	SumDB, SumDBKey string
	// NoSumDB reports module paths that are not verified (private modules):
	// they need no checksum data. Nil: every module is verified.
	NoSumDB func(modulePath string) bool
	// Source, if set, gives the checksum data the store lacks (a module cache
	// filled from a complete go.sum holds almost no lookups): the lookups of
	// exported module versions that have none, and the tiles an import needs
	// to check every lookup of the bundle. They are fetched through a
	// cache.Cache over a temporary store, verified, and carried in the
	// bundle; the store exported is never written. Nil: Export fails with a
	// *MissingSumError when a lookup is missing.
	Source source.Source
	// TempDir is where that temporary store is made. Default os.TempDir().
	TempDir string
	// Logger receives the temporary cache's log lines. Default: none.
	Logger *slog.Logger
	// Progress, if set, is called as the export advances: stage
	// "checksum data" counts the lookups fetched from Source, "writing" the
	// files written to the bundle (bytes: their uncompressed size so far).
	Progress func(stage string, done, total int, bytes int64)
	// Level is the zstd encoder level. Default zstd.SpeedDefault.
	Level zstd.EncoderLevel
}

// ExportResult is what Export wrote.
type ExportResult struct {
	Manifest Manifest
	// Modules counts the module versions with a .mod or .zip in the bundle.
	Modules int
	// Bytes is the uncompressed size of the files.
	Bytes int64
	// Skipped lists store files that are not part of a bundle (module cache
	// bookkeeping such as .ziphash and .lock, unknown names). Temporary files
	// are never listed by the store, so they are neither exported nor here.
	Skipped []string
	// SumDBIncomplete is set when the store's checksum tiles cannot prove
	// all of its lookups in every order the go command may read them (a store
	// not filled by berth warm, such as a module cache): the bundle imports,
	// but the go command using it without a go.sum may ask for missing tiles.
	SumDBIncomplete error
	// SumDBFetched counts the lookups fetched from Source (with the tiles
	// that check them) because the store lacked them.
	SumDBFetched int
}

// MissingSumError is an export refused because module versions lack the
// checksum data an import verifies them with, and it could not be fetched.
type MissingSumError struct {
	// DB is the checksum database.
	DB string
	// Missing lists the module versions (path@version) without their lookup,
	// sorted; Checked counts the exported module versions that need one.
	Missing []string
	Checked int
	// Err is why Source did not give it; nil when there is no Source.
	Err error
}

func (e *MissingSumError) Error() string {
	msg := fmt.Sprintf("export: %d of %d module versions have no checksum data (%s lookup) in the store, for example %s",
		len(e.Missing), e.Checked, e.DB, e.Missing[0])
	if e.Err == nil {
		return msg + ", and no upstream was given to fetch it from"
	}
	return msg + ", and the upstream did not give it: " + firstLine(e.Err.Error())
}

func (e *MissingSumError) Unwrap() error { return e.Err }

// NotFound reports whether the upstream answered that it has no checksum
// data for them (private modules, or versions the database does not know),
// rather than failing to answer.
func (e *MissingSumError) NotFound() bool { return errors.Is(e.Err, cache.ErrNotFound) }

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 240 {
		s = s[:240] + "..."
	}
	return s
}

// Export writes the bundle of cfg to w. The caller writes w to a temporary
// file and renames it into place once Export returns without error.
func Export(ctx context.Context, cfg ExportConfig, w io.Writer) (ExportResult, error) {
	var res ExportResult
	st := cfg.Store
	if st == nil {
		d, err := openStoreDir(cfg.StoreDir)
		if err != nil {
			return res, err
		}
		st = d
	}
	keys, skipped, err := listStore(ctx, st, cfg.Patterns)
	if err != nil {
		return res, err
	}
	res.Skipped = skipped
	// from[key] is the store a key is read from: the staging store for the
	// checksum data completed there, else st.
	from := map[string]store.Store{}
	if cfg.SumDBKey != "" {
		sc, err := completeSumDB(ctx, cfg, st, keys)
		if sc.cleanup != nil {
			defer sc.cleanup()
		}
		if err != nil {
			return res, err
		}
		keys, res.SumDBIncomplete, res.SumDBFetched = sc.keys, sc.incomplete, sc.fetched
		for _, k := range sc.staged {
			from[k] = sc.store
		}
	}
	storeOf := func(key string) store.Store {
		if s := from[key]; s != nil {
			return s
		}
		return st
	}
	level := cfg.Level
	if level == 0 {
		level = zstd.SpeedDefault
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return res, err
	}
	tw := tar.NewWriter(zw)
	m := Manifest{Format: FormatVersion, Created: time.Now().UTC().Truncate(time.Second), SumDB: cfg.SumDB, SumDBKey: cfg.SumDBKey, Patterns: cfg.Patterns}
	mods := map[module.Version]bool{}
	buf := make([]byte, 256<<10)
	// A database with data but no "supported" marker (a module cache's
	// sumdb/ directory has none) gets one, so that the unpacked tree, as a
	// GOPROXY=file:// tree, proxies the database and the go command does not
	// try to reach it.
	unmarked := unmarkedDBs(keys)
	for _, db := range unmarked {
		key := "sumdb/" + db + "/supported"
		hdr := &tar.Header{Name: key, Mode: 0o644, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			zw.Close()
			return res, err
		}
		empty := sha256.Sum256(nil)
		m.Files = append(m.Files, ManifestFile{Name: key, SHA256: hex.EncodeToString(empty[:])})
	}
	for i, key := range keys {
		if err := ctx.Err(); err != nil {
			zw.Close()
			return res, err
		}
		mf, err := exportFile(ctx, tw, storeOf(key), key, m.Created, buf)
		if err != nil {
			zw.Close()
			return res, err
		}
		m.Files = append(m.Files, mf)
		res.Bytes += mf.Size
		if cfg.Progress != nil {
			cfg.Progress("writing", len(unmarked)+i+1, len(unmarked)+len(keys), res.Bytes)
		}
		if ki, _ := parseKey(key); ki.kind == kindMod || ki.kind == kindZip {
			mods[ki.mod] = true
		}
	}
	res.Modules = len(mods)
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		zw.Close()
		return res, err
	}
	hdr := &tar.Header{Name: ManifestName, Mode: 0o644, Size: int64(len(mj)), ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		zw.Close()
		return res, err
	}
	if _, err := tw.Write(mj); err != nil {
		zw.Close()
		return res, err
	}
	if err := tw.Close(); err != nil {
		zw.Close()
		return res, err
	}
	if err := zw.Close(); err != nil {
		return res, err
	}
	res.Manifest = m
	return res, nil
}

func exportFile(ctx context.Context, tw *tar.Writer, st store.Store, key string, mtime time.Time, buf []byte) (ManifestFile, error) {
	f, err := st.Open(ctx, key)
	if err != nil {
		return ManifestFile{}, fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return ManifestFile{}, fmt.Errorf("export: %w", err)
	}
	if !info.Mode().IsRegular() {
		return ManifestFile{}, fmt.Errorf("export: %s is not a regular file", key)
	}
	hdr := &tar.Header{Name: key, Mode: 0o644, Size: info.Size(), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return ManifestFile{}, fmt.Errorf("export: %s: %w", key, err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(tw, h), io.LimitReader(f, info.Size()), buf)
	if err != nil {
		return ManifestFile{}, fmt.Errorf("export: %s: %w", key, err)
	}
	if n != info.Size() {
		return ManifestFile{}, fmt.Errorf("export: %s shrank while it was read (%d of %d bytes); run the export again", key, n, info.Size())
	}
	return ManifestFile{Name: key, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// openStoreDir opens the disk store at root for reading.
func openStoreDir(root string) (*store.Disk, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("export: store %w (give the store directory with --store)", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("export: store %s is not a directory", root)
	}
	d, err := store.OpenExistingDisk(root)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return d, nil
}

// listStore returns the keys of the files a bundle of st carries, sorted with
// the checksum data first, and the files left out. A selection without a
// single .mod or .zip is an error: such a bundle would build nothing.
func listStore(ctx context.Context, st store.Store, patterns []string) (keys, skipped []string, err error) {
	pat := strings.Join(patterns, ",")
	modFiles := 0
	err = store.Walk(ctx, st, "", func(key string, _ store.Info) error {
		ki, err := parseKey(key)
		if err != nil || ki.kind == kindDataTile {
			skipped = append(skipped, key)
			return nil
		}
		switch ki.kind {
		case kindList:
			// The module path of a list is the key's directory.
			esc := strings.TrimSuffix(key, "/@v/list")
			mp, _ := module.UnescapePath(esc)
			if pat != "" && !module.MatchPrefixPatterns(pat, mp) {
				return nil
			}
		case kindInfo, kindMod, kindZip, kindLedger:
			if pat != "" && !module.MatchPrefixPatterns(pat, ki.mod.Path) {
				return nil
			}
			if ki.kind != kindInfo {
				modFiles++
			}
		}
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("export: reading the store: %w", err)
	}
	sort.Strings(skipped)
	sortKeys(keys)
	if modFiles == 0 {
		if pat != "" {
			return nil, skipped, fmt.Errorf("export: nothing to export: no module in the store matches %s (patterns match module path prefixes, as in GOPRIVATE: golang.org/x/*, example.com/team)", pat)
		}
		return nil, skipped, errors.New("export: nothing to export: the store holds no module files (fill it with berth warm or berth proxy)")
	}
	return keys, skipped, nil
}

// sortKeys puts checksum data first, then modules, each in key order:
// a stable order makes bundles reproducible.
func sortKeys(keys []string) {
	sort.Slice(keys, func(i, j int) bool {
		si, sj := strings.HasPrefix(keys[i], "sumdb/"), strings.HasPrefix(keys[j], "sumdb/")
		if si != sj {
			return si
		}
		return keys[i] < keys[j]
	})
}

// unmarkedDBs returns the checksum databases keys hold data of but no
// "supported" marker for.
func unmarkedDBs(keys []string) []string {
	data, marked := map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, "sumdb/")
		if !ok {
			continue
		}
		db, sub, _ := strings.Cut(rest, "/")
		if sub == "supported" {
			marked[db] = true
		} else {
			data[db] = true
		}
	}
	var out []string
	for db := range data {
		if !marked[db] {
			out = append(out, db)
		}
	}
	sort.Strings(out)
	return out
}

// checkClosure runs warm's tile closure over the store's own tiles only.
func checkClosure(ctx context.Context, st store.Store, key string) error {
	nv, err := note.NewVerifier(key)
	if err != nil {
		return err
	}
	refs, err := lookupsIn(ctx, st, nv.Name(), nv)
	if err != nil {
		return err
	}
	return tileClosure(ctx, refs, func(ctx context.Context, p string) ([]byte, error) {
		b, err := readKey(ctx, st, "sumdb/"+nv.Name()+"/"+p, 16<<20)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the store has no sumdb/%s/%s", nv.Name(), p)
		}
		return b, err
	})
}

// sumCompletion is what completeSumDB did: the keys to export, and which of
// them are read from the staging store.
type sumCompletion struct {
	keys       []string
	staged     []string    // keys read from store
	store      store.Store // the staging store, or nil
	cleanup    func()      // removes the staging store
	fetched    int
	incomplete error
}

// completeSumDB makes sure the bundle of keys carries the checksum data an
// import needs: the lookup of every verified module version, and tiles that
// prove every lookup against one tree. What st lacks is fetched from
// cfg.Source into a staging store, seeded with st's own data of the
// database, and checked there the way Warm's preflight checks a store; the
// database's keys are then exported from the staging store.
func completeSumDB(ctx context.Context, cfg ExportConfig, st store.Store, keys []string) (sumCompletion, error) {
	sc := sumCompletion{keys: keys}
	nv, err := note.NewVerifier(cfg.SumDBKey)
	if err != nil {
		return sc, fmt.Errorf("export: checksum database key %q: %w", cfg.SumDBKey, err)
	}
	db := nv.Name()
	prefix := "sumdb/" + db + "/"
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k] = true
	}
	var missing []module.Version
	checked := map[module.Version]bool{}
	for _, k := range keys {
		ki, _ := parseKey(k)
		if (ki.kind != kindMod && ki.kind != kindZip) || checked[ki.mod] || (cfg.NoSumDB != nil && cfg.NoSumDB(ki.mod.Path)) {
			continue
		}
		checked[ki.mod] = true
		lk, err := proto.LookupKey(db, ki.mod.Path, ki.mod.Version)
		if err != nil {
			return sc, fmt.Errorf("export: %w", err)
		}
		if !have[lk] {
			missing = append(missing, ki.mod)
		}
	}
	missingErr := func(mvs []module.Version, err error) error {
		e := &MissingSumError{DB: db, Checked: len(checked), Err: err}
		for _, mv := range mvs {
			e.Missing = append(e.Missing, mv.Path+"@"+mv.Version)
		}
		sort.Strings(e.Missing)
		return e
	}
	if len(missing) == 0 {
		if sc.incomplete = checkClosure(ctx, st, cfg.SumDBKey); sc.incomplete == nil || cfg.Source == nil {
			return sc, nil
		}
	} else if cfg.Source == nil {
		return sc, missingErr(missing, nil)
	}

	dir, err := os.MkdirTemp(cfg.TempDir, "berth-export-sumdb-")
	if err != nil {
		return sc, fmt.Errorf("export: staging the checksum data: %w", err)
	}
	sc.cleanup = func() { os.RemoveAll(dir) }
	stage, err := store.OpenDisk(dir)
	if err != nil {
		return sc, fmt.Errorf("export: staging the checksum data: %w", err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if err := copyKey(ctx, st, stage, k); err != nil {
			return sc, err
		}
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c, err := cache.New(cache.Config{Store: stage, Source: cfg.Source, SumDBKey: cfg.SumDBKey, NoSumDB: cfg.NoSumDB, Logger: lg})
	if err != nil {
		return sc, fmt.Errorf("export: %w", err)
	}
	defer c.Close()

	var (
		mu     sync.Mutex
		done   int
		failed []module.Version
		first  error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, mv := range missing {
		g.Go(func() error {
			r, err := proto.Lookup(db, mv.Path, mv.Version)
			if err == nil {
				_, err = c.Ensure(gctx, r)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, mv)
				if first == nil {
					first = fmt.Errorf("%s@%s: %w", mv.Path, mv.Version, err)
				}
			}
			done++
			if cfg.Progress != nil {
				cfg.Progress("checksum data", done, len(missing), 0)
			}
			return nil
		})
	}
	g.Wait()
	if err := c.Wait(ctx); err != nil {
		return sc, err
	}
	if len(failed) > 0 {
		return sc, missingErr(failed, first)
	}
	err = preflight(ctx, WarmConfig{Cache: c, SumDBKey: cfg.SumDBKey})
	if err == nil {
		err = storeClosure(ctx, c, stage, nv)
	}
	if err != nil {
		if len(missing) > 0 {
			return sc, missingErr(missing, fmt.Errorf("fetching the tiles that check them: %w", err))
		}
		return sc, nil // the store's own data, with the note it had
	}
	if err := c.Wait(ctx); err != nil {
		return sc, err
	}

	// The database's keys come from the staging store, a superset of st's.
	out := keys[:0:0]
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	err = store.Walk(ctx, stage, prefix, func(key string, _ store.Info) error {
		if ki, err := parseKey(key); err == nil && ki.kind != kindDataTile {
			out = append(out, key)
			sc.staged = append(sc.staged, key)
		}
		return nil
	})
	if err != nil {
		return sc, fmt.Errorf("export: reading the staged checksum data: %w", err)
	}
	sortKeys(out)
	sc.keys, sc.store, sc.fetched, sc.incomplete = out, stage, len(missing), nil
	return sc, nil
}

// storeClosure stores in stage, under its own name, every tile the proofs
// of its lookups read. The cache answers a partial tile it lacks from a wider
// copy it holds without storing it, and a module cache's tiles (copied in,
// not fetched) come without the narrower copies a fetch stores beside them;
// but the go command reading the bundle as a GOPROXY=file:// tree asks for
// each tile by name.
func storeClosure(ctx context.Context, c *cache.Cache, stage store.Store, nv note.Verifier) error {
	db := nv.Name()
	refs, err := lookupsIn(ctx, stage, db, nv)
	if err != nil {
		return err
	}
	return tileClosure(ctx, refs, func(ctx context.Context, p string) ([]byte, error) {
		r, err := proto.SumDB(db, p)
		if err != nil {
			return nil, err
		}
		b, err := c.ReadAll(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("/sumdb/%s/%s: %w", db, p, err)
		}
		key := "sumdb/" + db + "/" + p
		if ok, err := store.Has(ctx, stage, key); err == nil && !ok {
			if err := store.Put(ctx, stage, key, bytes.NewReader(b), time.Time{}); err != nil {
				return nil, fmt.Errorf("export: staging the checksum data: %w", err)
			}
		}
		return b, nil
	})
}

// copyKey copies one small file from src to dst.
func copyKey(ctx context.Context, src, dst store.Store, key string) error {
	f, err := src.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	if err := store.Put(ctx, dst, key, io.LimitReader(f, 16<<20), time.Time{}); err != nil {
		return fmt.Errorf("export: staging the checksum data: %w", err)
	}
	return nil
}
