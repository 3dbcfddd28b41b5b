package airgap

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	modzip "golang.org/x/mod/zip"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/sumdb"
)

// ImportConfig configures Import.
type ImportConfig struct {
	// Store receives the files. Required. The staging directory is created
	// on its file system when it has one (store.TempDir), so that unpacking
	// never fills another disk.
	Store store.Store
	// SumDBKey is the verifier key ("name+hash+key") of the checksum database
	// every .mod and .zip in the bundle is verified against, using only the
	// checksum data the bundle carries. It is the importer's own trust anchor:
	// a bundle naming another key is refused. Empty turns verification off
	// (every module is reported as unverified).
	SumDBKey string
	// NoSumDB reports module paths that are not verified (private modules).
	NoSumDB func(modulePath string) bool
	// MaxFileSize limits every file but module zips (which are limited to
	// golang.org/x/mod/zip.MaxZipFile). Default 16 MiB.
	MaxFileSize int64
	// MaxTotal limits the uncompressed size of the bundle. Default 64 GiB.
	MaxTotal int64
	// MaxFiles limits the number of files. Default 1,000,000.
	MaxFiles int
	// Progress, if set, is called as the import advances: stage "unpacking"
	// counts the files read (total is 0: the manifest comes last), then
	// "verifying" and "committing" count files of the total; bytes is the
	// uncompressed size unpacked so far.
	Progress func(stage string, done, total int, bytes int64)
}

// ImportResult is what Import did.
type ImportResult struct {
	Manifest Manifest
	// Modules counts module versions whose .mod or .zip was verified against
	// the checksum database; Unverified lists those that were not (NoSumDB,
	// or verification off).
	Modules    int
	Unverified []string
	// Added counts files written to the store; Identical files already there
	// with the same content; KeptExisting files already there with another
	// content that berth keeps (.info, lookups: both versions are valid);
	// Merged version lists.
	Added, Identical, KeptExisting, Merged int
	// TilesSkipped counts checksum tiles not imported because no tree head in
	// the bundle covers them, so they cannot be checked.
	TilesSkipped int
	// Bytes is the uncompressed size of the bundle's files.
	Bytes int64
}

// RefusedError is a bundle that failed a check. Nothing was written to the store.
type RefusedError struct {
	// Reasons are the first few problems found (at most maxReasons), each
	// short and naming the file; More counts the problems left out.
	Reasons []string
	More    int
	// Hint says what to do about them.
	Hint string
}

// maxReasons is how many problems a refusal lists: the first few say what
// is wrong, and a hundred lines of the same would hide the hint.
const maxReasons = 3

// hintCopy is the hint of a bundle that is not what berth export wrote.
const hintCopy = "Make a new bundle with berth export from a store you trust, and check how it was copied."

func (e *RefusedError) Error() string {
	msg := "bundle refused, nothing was imported: " + strings.Join(e.Reasons, "; ")
	if e.More > 0 {
		msg += fmt.Sprintf("; and %d more", e.More)
	}
	if e.Hint != "" {
		msg += " (" + strings.TrimSuffix(e.Hint, ".") + ")"
	}
	return msg
}

func refuse(format string, args ...any) error {
	return &RefusedError{Reasons: []string{fmt.Sprintf(format, args...)}, Hint: hintCopy}
}

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// Import reads a bundle (zstd-compressed tar as Export writes it; an
// uncompressed tar is accepted too), verifies it, and commits its files to the
// store. A bundle that fails any check returns a *RefusedError and leaves the
// store unchanged.
func Import(ctx context.Context, cfg ImportConfig, r io.Reader) (ImportResult, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	var tr io.Reader = br
	if bytes.Equal(magic, zstdMagic) {
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return ImportResult{}, err
		}
		defer zr.Close()
		tr = zr
	}
	return importTar(ctx, cfg, tr)
}

type staged struct {
	name string
	ki   keyInfo
	size int64
	sum  string
	// ledger is, for a ledger record, the store's record merged with the
	// bundle's (checkLedgers).
	ledger []byte
}

func importTar(ctx context.Context, cfg ImportConfig, r io.Reader) (res ImportResult, err error) {
	if cfg.Store == nil {
		return res, errors.New("airgap: ImportConfig.Store is required")
	}
	maxFile, maxTotal, maxFiles := cfg.MaxFileSize, cfg.MaxTotal, cfg.MaxFiles
	if maxFile <= 0 {
		maxFile = 16 << 20
	}
	if maxTotal <= 0 {
		maxTotal = 64 << 30
	}
	if maxFiles <= 0 {
		maxFiles = 1_000_000
	}
	dir, err := store.TempDir(cfg.Store)
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(dir)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return res, err
	}
	defer root.Close()

	// 1. Unpack into staging, refusing anything a berth export never writes.
	files := map[string]*staged{}
	var order []*staged
	var manifest []byte
	var total int64
	tr := tar.NewReader(r)
	buf := make([]byte, 128<<10)
	progress := func(stage string, done, total int) {
		if cfg.Progress != nil {
			cfg.Progress(stage, done, total, res.Bytes)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, refuse("not a readable bundle (zstd-compressed tar): %v", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return res, refuse("entry %q is not a regular file (type %q): links, directories and devices are never part of a bundle", trunc(hdr.Name), hdr.Typeflag)
		}
		if hdr.Size < 0 {
			return res, refuse("entry %q has a negative size", trunc(hdr.Name))
		}
		if hdr.Name == ManifestName {
			if manifest != nil {
				return res, refuse("two manifests")
			}
			if hdr.Size > 256<<20 {
				return res, refuse("manifest is %d bytes, over the limit", hdr.Size)
			}
			if manifest, err = io.ReadAll(tr); err != nil {
				return res, refuse("reading the manifest: %v", err)
			}
			continue
		}
		ki, err := parseKey(hdr.Name)
		if err != nil {
			return res, refuse("entry %v", err)
		}
		if ki.kind == kindDataTile {
			return res, refuse("entry %q is a checksum data tile, which berth never exports", trunc(hdr.Name))
		}
		if files[hdr.Name] != nil {
			return res, refuse("entry %q appears twice", trunc(hdr.Name))
		}
		limit := maxFile
		if ki.kind == kindZip {
			limit = modzip.MaxZipFile
		}
		if hdr.Size > limit {
			return res, refuse("entry %q is %d bytes, over the limit of %d", trunc(hdr.Name), hdr.Size, limit)
		}
		if total += hdr.Size; total > maxTotal {
			return res, refuse("bundle holds more than %d bytes (the import size limit; raise it if the bundle is genuine)", maxTotal)
		}
		if len(files) >= maxFiles {
			return res, refuse("bundle holds more than %d files", maxFiles)
		}
		sum, err := stageFile(root, hdr.Name, tr, hdr.Size, buf)
		if err != nil {
			return res, err
		}
		s := &staged{name: hdr.Name, ki: ki, size: hdr.Size, sum: sum}
		files[hdr.Name] = s
		order = append(order, s)
		res.Bytes = total
		progress("unpacking", len(order), 0)
	}

	// 2. The manifest lists exactly the staged files, with their hashes.
	if manifest == nil {
		return res, refuse("no %s: not a berth bundle", ManifestName)
	}
	var m Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return res, refuse("manifest does not parse: %v", err)
	}
	if m.Format != FormatVersion {
		return res, refuse("bundle format %d; this berth reads format %d (use the berth release that wrote it)", m.Format, FormatVersion)
	}
	res.Manifest = m
	listed := map[string]bool{}
	for _, f := range m.Files {
		if listed[f.Name] {
			return res, refuse("manifest lists %q twice", trunc(f.Name))
		}
		listed[f.Name] = true
		s := files[f.Name]
		if s == nil {
			return res, refuse("manifest lists %q, which the bundle does not hold", trunc(f.Name))
		}
		if s.size != f.Size || s.sum != f.SHA256 {
			return res, refuse("%s does not match the manifest (size %d, sha256 %s; manifest: size %d, sha256 %s)", f.Name, s.size, s.sum, f.Size, f.SHA256)
		}
	}
	for _, s := range order {
		if !listed[s.name] {
			return res, refuse("%s is not listed in the manifest", s.name)
		}
	}

	// 3. Checksum database: the importer's key, the bundle's data only.
	var v *sumdb.Verifier
	var nv note.Verifier
	dbName := ""
	if cfg.SumDBKey != "" {
		nv, err = note.NewVerifier(cfg.SumDBKey)
		if err != nil {
			return res, fmt.Errorf("import: checksum database key %q: %w", cfg.SumDBKey, err)
		}
		dbName = nv.Name()
		if m.SumDBKey != "" && m.SumDBKey != cfg.SumDBKey {
			return res, refuse("the bundle was verified against checksum database key %q, but this import trusts %q; if the bundle is genuine, pass its key with --sumdb after checking it out of band", m.SumDBKey, cfg.SumDBKey)
		}
		vctx, cancel := context.WithCancel(ctx)
		defer cancel()
		v, err = sumdb.NewVerifier(vctx, cfg.SumDBKey, func(_ context.Context, p string) ([]byte, error) {
			return readStaged(root, "sumdb/"+dbName+"/"+p, maxFile)
		})
		if err != nil {
			return res, err
		}
	}
	for _, s := range order {
		if s.ki.db != "" && dbName != "" && s.ki.db != dbName {
			return res, refuse("%s belongs to checksum database %s, but this import verifies against %s", s.name, s.ki.db, dbName)
		}
	}
	vp := func(done int) { progress("verifying", done, len(order)) }
	if err := verifyStaged(ctx, dir, root, order, v, nv, cfg.NoSumDB, maxFile, vp, &res); err != nil {
		return res, err
	}
	if err := checkLedgers(ctx, cfg.Store, dir, root, order, maxFile); err != nil {
		return res, err
	}
	skipTiles, err := verifyTiles(root, order, cfg.SumDBKey, dbName, maxFile)
	if err != nil {
		return res, err
	}
	res.TilesSkipped = len(skipTiles)

	// 4. Commit, file by file, atomically; a few at a time, since each waits
	// for two fsyncs.
	var mu sync.Mutex
	committed, toCommit := 0, len(order)-len(skipTiles)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, s := range order {
		if skipTiles[s.name] {
			continue
		}
		g.Go(func() error {
			var one ImportResult
			err := commitFile(gctx, cfg.Store, dir, s, &one)
			mu.Lock()
			defer mu.Unlock()
			res.Added += one.Added
			res.Identical += one.Identical
			res.KeptExisting += one.KeptExisting
			res.Merged += one.Merged
			if err == nil {
				committed++
				progress("committing", committed, toCommit)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	return res, nil
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// stageFile writes one entry below the staging root; os.Root keeps every
// write inside it whatever the name says.
func stageFile(root *os.Root, name string, r io.Reader, size int64, buf []byte) (string, error) {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return "", refuse("entry %q cannot be unpacked: %v", trunc(name), err)
		}
	}
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", refuse("entry %q cannot be unpacked: %v", trunc(name), err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, size), buf)
	if err != nil {
		if errors.As(err, new(*fs.PathError)) {
			return "", fmt.Errorf("import: writing the staging directory: %w (is the store's disk full?)", err)
		}
		return "", refuse("reading entry %q: %v", trunc(name), err)
	}
	if n != size {
		return "", refuse("entry %q is truncated (%d of %d bytes)", trunc(name), n, size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readStaged(root *os.Root, name string, limit int64) ([]byte, error) {
	if _, err := parseKey(name); err != nil {
		return nil, err
	}
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &notInBundleError{name: name}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimit(f, limit)
}

// notInBundleError is checksum data a check needs that the bundle lacks.
type notInBundleError struct{ name string }

func (e *notInBundleError) Error() string        { return e.name + " is not in the bundle" }
func (e *notInBundleError) Is(target error) bool { return target == fs.ErrNotExist }

// hintSumData is the hint of a bundle that lacks checksum data.
const hintSumData = "Run berth export again where an upstream is reachable (it fetches the missing checksum data), " +
	"list private modules in --nosumdb, or import unverified with --sumdb off."

// verifyStaged checks every module file: structure always, hashes against the
// checksum database unless the module is excluded or v is nil. Every lookup
// the bundle carries is checked too, even one no file of the bundle needs.
func verifyStaged(ctx context.Context, dir string, root *os.Root, order []*staged, v *sumdb.Verifier, nv note.Verifier, noSum func(string) bool, maxFile int64, progress func(done int), res *ImportResult) error {
	refusal := &RefusedError{Hint: hintCopy}
	lacksSumData := false
	fail := func(err error, format string, args ...any) {
		if nib := new(notInBundleError); errors.As(err, &nib) {
			lacksSumData = true
		}
		if len(refusal.Reasons) < maxReasons {
			refusal.Reasons = append(refusal.Reasons, trunc(fmt.Sprintf(format, args...)))
		} else {
			refusal.More++
		}
	}
	checked := func(p string) bool { return v != nil && (noSum == nil || !noSum(p)) }
	staged := make(map[string]bool, len(order))
	for _, s := range order {
		staged[s.name] = true
	}
	// Module versions whose lookup the bundle lacks are named once, first:
	// no later check of them can pass.
	noLookup := map[module.Version]bool{}
	if v != nil {
		var lacking []module.Version
		for _, s := range order {
			mv := s.ki.mod
			if (s.ki.kind != kindMod && s.ki.kind != kindZip) || !checked(mv.Path) || noLookup[mv] {
				continue
			}
			if key, err := proto.LookupKey(v.Name(), mv.Path, mv.Version); err == nil && !staged[key] {
				noLookup[mv] = true
				lacking = append(lacking, mv)
			}
		}
		sort.Slice(lacking, func(i, j int) bool {
			return lacking[i].Path < lacking[j].Path || lacking[i].Path == lacking[j].Path && lacking[i].Version < lacking[j].Version
		})
		for _, mv := range lacking {
			key, _ := proto.LookupKey(v.Name(), mv.Path, mv.Version)
			fail(&notInBundleError{name: key}, "%s@%s: no checksum data (%s is not in the bundle)", mv.Path, mv.Version, key)
		}
	}
	verified := map[module.Version]bool{}
	unverified := map[module.Version]bool{}
	// Every lookup first, newest tree first, so that all proofs are made
	// against one tree (the tiles warm made sure the store has), and lookups
	// no module file uses are checked too.
	if v != nil {
		var refs []lookupRef
		for _, s := range order {
			if s.ki.kind != kindLookup {
				continue
			}
			b, err := readStaged(root, s.name, maxFile)
			if err == nil {
				var t tlog.Tree
				if t, err = parseLookup(b, nv); err == nil {
					refs = append(refs, lookupRef{key: s.name, mod: s.ki.mod, tree: t})
				}
			}
			if err != nil {
				fail(err, "%s: %v", s.name, err)
			}
		}
		newestFirst(refs)
		for _, r := range refs {
			if err := verifyLookup(ctx, v, r.mod); err != nil {
				if nib := new(notInBundleError); errors.As(err, &nib) {
					fail(err, "%s@%s: lookup cannot be checked: %s is not in the bundle", r.mod.Path, r.mod.Version, nib.name)
				} else {
					fail(err, "%s: %v", r.key, err)
				}
			}
		}
	}
	for i, s := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		progress(i + 1)
		mv := s.ki.mod
		if noLookup[mv] && (s.ki.kind == kindMod || s.ki.kind == kindZip) {
			continue
		}
		switch s.ki.kind {
		case kindMod:
			b, err := readStaged(root, s.name, maxFile)
			if err != nil {
				fail(err, "%s: %v", s.name, err)
				continue
			}
			if _, err := modfile.ParseLax("go.mod", b, nil); err != nil {
				fail(nil, "%s@%s go.mod does not parse: %v", mv.Path, mv.Version, err)
				continue
			}
			if !checked(mv.Path) {
				unverified[mv] = true
				continue
			}
			if err := v.VerifyMod(ctx, mv.Path, mv.Version, b); err != nil {
				fail(err, "%s@%s go.mod: %v", mv.Path, mv.Version, err)
				continue
			}
			verified[mv] = true
		case kindZip:
			file := filepath.Join(dir, filepath.FromSlash(s.name))
			if _, err := modzip.CheckZip(mv, file); err != nil {
				fail(nil, "%s@%s zip is not a valid module zip: %v", mv.Path, mv.Version, err)
				continue
			}
			if !checked(mv.Path) {
				unverified[mv] = true
				continue
			}
			if err := v.VerifyZip(ctx, mv.Path, mv.Version, file); err != nil {
				fail(err, "%s@%s zip: %v", mv.Path, mv.Version, err)
				continue
			}
			verified[mv] = true
		case kindInfo:
			b, err := readStaged(root, s.name, maxFile)
			var info struct{ Version string }
			if err == nil {
				err = json.Unmarshal(b, &info)
			}
			if err != nil || info.Version != mv.Version {
				fail(nil, "%s: not the .info of %s (version %q, error %v)", s.name, mv.Version, info.Version, err)
			}
		case kindList:
			b, err := readStaged(root, s.name, maxFile)
			if err != nil {
				fail(err, "%s: %v", s.name, err)
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) > 0 && !semver.IsValid(f[0]) {
					fail(nil, "%s: %q is not a version", s.name, trunc(f[0]))
					break
				}
			}
		case kindSupported:
			if s.size > 64 {
				fail(nil, "%s: unexpected content", s.name)
			}
		}
	}
	if len(refusal.Reasons) > 0 {
		if lacksSumData {
			refusal.Hint = hintSumData
		}
		return refusal
	}
	res.Modules = len(verified)
	for mv := range unverified {
		if !verified[mv] {
			res.Unverified = append(res.Unverified, mv.Path+"@"+mv.Version)
		}
	}
	sort.Strings(res.Unverified)
	return nil
}

// commitFile moves one verified file into the store unless it is there already.
func commitFile(ctx context.Context, st store.Store, dir string, s *staged, res *ImportResult) error {
	src := filepath.Join(dir, filepath.FromSlash(s.name))
	if cur, err := st.Open(ctx, s.name); err == nil {
		h := sha256.New()
		_, herr := io.Copy(h, cur)
		cur.Close()
		if herr == nil && hex.EncodeToString(h.Sum(nil)) == s.sum {
			res.Identical++
			return nil
		}
		if s.ki.kind == kindLedger {
			return commitLedger(ctx, st, src, s, res)
		}
		if s.ki.kind != kindList {
			// Immutable files verified on both sides; .info and lookups may
			// legitimately differ (time, tree head). Keep what is there.
			res.KeptExisting++
			return nil
		}
		merged, err := mergeLists(ctx, st, s.name, src)
		if err != nil {
			return err
		}
		res.Merged++
		return writeKey(ctx, st, s.name, bytes.NewReader(merged))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("import: store: %w", err)
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := writeKey(ctx, st, s.name, f); err != nil {
		return err
	}
	res.Added++
	return nil
}

func writeKey(ctx context.Context, st store.Store, key string, r io.Reader) error {
	if err := store.Put(ctx, st, key, r, time.Time{}); err != nil {
		return fmt.Errorf("import: %w (is the disk full?)", err)
	}
	return nil
}

// mergeLists returns the union of the store's version list and the bundle's
// staged at src.
func mergeLists(ctx context.Context, st store.Store, key, src string) ([]byte, error) {
	cur, err := readKey(ctx, st, key, modzip.MaxZipFile)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	staged, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	seen := map[string]string{}
	for _, b := range [][]byte{cur, staged} {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 0 && semver.IsValid(f[0]) {
				if _, ok := seen[f[0]]; !ok || len(line) > len(seen[f[0]]) {
					seen[f[0]] = strings.TrimSpace(line)
				}
			}
		}
	}
	vs := make([]string, 0, len(seen))
	for v := range seen {
		vs = append(vs, v)
	}
	semver.Sort(vs)
	var out bytes.Buffer
	for _, v := range vs {
		out.WriteString(seen[v] + "\n")
	}
	return out.Bytes(), nil
}

// verifyTiles checks every hash tile of the bundle against the newest signed
// tree head its lookups carry (they were all verified before). Tiles that tree
// does not cover, or that cannot be proved from the bundle's tiles, are
// returned to be skipped; a tile that contradicts the tree refuses the bundle.
func verifyTiles(root *os.Root, order []*staged, key, dbName string, maxFile int64) (map[string]bool, error) {
	skip := map[string]bool{}
	var tiles []*staged
	for _, s := range order {
		if s.ki.kind == kindTile {
			tiles = append(tiles, s)
		}
	}
	if len(tiles) == 0 {
		return skip, nil
	}
	if key == "" {
		return skip, nil // verification off: the go command checks tiles itself
	}
	nv, err := note.NewVerifier(key)
	if err != nil {
		return nil, err
	}
	var tree tlog.Tree
	for _, s := range order {
		if s.ki.kind != kindLookup {
			continue
		}
		b, err := readStaged(root, s.name, maxFile)
		if err != nil {
			return nil, refuse("%s: %v", s.name, err)
		}
		_, _, msg, err := tlog.ParseRecord(b)
		if err != nil {
			return nil, refuse("%s: %v", s.name, err)
		}
		n, err := note.Open(msg, note.VerifierList(nv))
		if err != nil {
			return nil, refuse("%s: signed tree head: %v", s.name, err)
		}
		t, err := tlog.ParseTree([]byte(n.Text))
		if err != nil {
			return nil, refuse("%s: %v", s.name, err)
		}
		if t.N > tree.N {
			tree = t
		}
	}
	tr := &stagedTiles{root: root, db: dbName, max: maxFile, cache: map[tlog.Tile][]byte{}}
	thr := tlog.TileHashReader(tree, tr)
	for _, s := range tiles {
		t := s.ki.tile
		level := t.L * t.H
		if t.H != 8 || tree.N == 0 || level >= 63 || (t.N<<t.H)+int64(t.W) > tree.N>>level {
			skip[s.name] = true
			continue
		}
		data, err := readStaged(root, s.name, maxFile)
		if err != nil || len(data) != t.W*tlog.HashSize {
			return nil, refuse("%s: a hash tile of width %d must be %d bytes", s.name, t.W, t.W*tlog.HashSize)
		}
		idx := make([]int64, t.W)
		for i := range idx {
			idx[i] = tlog.StoredHashIndex(level, (t.N<<t.H)+int64(i))
		}
		hashes, err := thr.ReadHashes(idx)
		if err != nil {
			if errors.Is(err, errTileMissing) {
				skip[s.name] = true
				continue
			}
			return nil, refuse("%s: checksum tiles do not match the signed tree head: %v", s.name, err)
		}
		for i, h := range hashes {
			if !bytes.Equal(h[:], data[i*tlog.HashSize:(i+1)*tlog.HashSize]) {
				return nil, refuse("%s: hash %d does not match the signed tree head", s.name, i)
			}
		}
	}
	return skip, nil
}

var errTileMissing = errors.New("tile not in the bundle")

// stagedTiles is a tlog.TileReader over the staged checksum data; a partial
// tile that is missing is cut from its full tile, as the go command does.
type stagedTiles struct {
	root  *os.Root
	db    string
	max   int64
	cache map[tlog.Tile][]byte
}

func (r *stagedTiles) Height() int { return 8 }

func (r *stagedTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if b, ok := r.cache[t]; ok {
			out[i] = b
			continue
		}
		b, err := readStaged(r.root, "sumdb/"+r.db+"/"+t.Path(), r.max)
		if err != nil {
			full := t
			full.W = 1 << t.H
			fb, ferr := readStaged(r.root, "sumdb/"+r.db+"/"+full.Path(), r.max)
			if ferr != nil || len(fb) < t.W*tlog.HashSize {
				return nil, fmt.Errorf("%w: %s", errTileMissing, t.Path())
			}
			b = fb[:t.W*tlog.HashSize]
		}
		if len(r.cache) > 4096 {
			clear(r.cache)
		}
		r.cache[t] = b
		out[i] = b
	}
	return out, nil
}

func (r *stagedTiles) SaveTiles([]tlog.Tile, [][]byte) {}
