package airgap

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"

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
	// verifies with its own key).
	SumDB, SumDBKey string
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
	if cfg.SumDBKey != "" {
		res.SumDBIncomplete = checkClosure(ctx, st, cfg.SumDBKey)
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
	for _, db := range unmarkedDBs(keys) {
		key := "sumdb/" + db + "/supported"
		hdr := &tar.Header{Name: key, Mode: 0o644, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			zw.Close()
			return res, err
		}
		empty := sha256.Sum256(nil)
		m.Files = append(m.Files, ManifestFile{Name: key, SHA256: hex.EncodeToString(empty[:])})
	}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			zw.Close()
			return res, err
		}
		mf, err := exportFile(ctx, tw, st, key, m.Created, buf)
		if err != nil {
			zw.Close()
			return res, err
		}
		m.Files = append(m.Files, mf)
		res.Bytes += mf.Size
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
// the checksum data first, and the files left out.
func listStore(ctx context.Context, st store.Store, patterns []string) (keys, skipped []string, err error) {
	pat := strings.Join(patterns, ",")
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
		case kindInfo, kindMod, kindZip:
			if pat != "" && !module.MatchPrefixPatterns(pat, ki.mod.Path) {
				return nil
			}
		}
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("export: reading the store: %w", err)
	}
	sort.Strings(skipped)
	// Checksum data first, then modules; stable order for reproducible bundles.
	sort.Slice(keys, func(i, j int) bool {
		si, sj := strings.HasPrefix(keys[i], "sumdb/"), strings.HasPrefix(keys[j], "sumdb/")
		if si != sj {
			return si
		}
		return keys[i] < keys[j]
	})
	if len(keys) == 0 {
		return nil, skipped, errors.New("export: nothing to export: the store holds no module files matching the patterns (fill it with berth warm or berth proxy)")
	}
	return keys, skipped, nil
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
