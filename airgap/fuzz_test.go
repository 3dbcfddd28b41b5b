package airgap

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/mod/sumdb/note"

	"github.com/berth-dev/berth/store"
)

func tarOf(entries ...[3]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := byte(tar.TypeReg)
		if e[2] != "" {
			typ = e[2][0]
		}
		tw.WriteHeader(&tar.Header{Name: e[0], Size: int64(len(e[1])), Mode: 0o644, Typeflag: typ, Linkname: "../x"})
		if typ == tar.TypeReg {
			tw.Write([]byte(e[1]))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzImportBundle feeds arbitrary bytes to Import: it must never panic, never
// write outside the store, and never leave its staging directory behind.
func FuzzImportBundle(f *testing.F) {
	manifest := `{"format":1,"files":[{"name":"example.test/a/@v/list","size":7,"sha256":"9c1a5e8b2e2f6cbb8d3a2f3a9f0e9d4c7b6a5f4e3d2c1b0a99887766554433221"}]}`
	f.Add(tarOf([3]string{"example.test/a/@v/list", "v1.0.0\n", ""}, [3]string{ManifestName, manifest, ""}))
	f.Add(tarOf([3]string{"../evil", "x", ""}))
	f.Add(tarOf([3]string{"example.test/a/@v/list", "", string(tar.TypeSymlink)}))
	f.Add(tarOf([3]string{"sumdb/sum.test/tile/8/0/000.p/1", strings.Repeat("a", 32), ""}, [3]string{ManifestName, `{"format":1}`, ""}))
	f.Add(tarOf([3]string{"example.test/a/@v/v1.0.0.info", `{"Version":"v1.0.0"}`, ""}, [3]string{ManifestName, `{"format":1,"files":[{"name":"example.test/a/@v/v1.0.0.info","size":20,"sha256":"x"}]}`, ""}))
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z)
	zw.Write(tarOf([3]string{"example.test/a/@v/list", "v1.0.0\n", ""}))
	zw.Close()
	f.Add(z.Bytes())
	_, key, err := note.GenerateKey(rand.Reader, "sum.test")
	if err != nil {
		f.Fatal(err)
	}
	// One store for all inputs, emptied after each: opening a store syncs a
	// probe file, which is slow on a busy disk.
	parent := f.TempDir()
	st, err := store.OpenDisk(filepath.Join(parent, "store"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer func() {
			ents, _ := os.ReadDir(st.Root())
			for _, e := range ents {
				os.RemoveAll(filepath.Join(st.Root(), e.Name()))
			}
		}()
		tm := time.AfterFunc(60*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic("slow import:\n" + string(buf[:runtime.Stack(buf, true)]))
		})
		defer tm.Stop()
		Import(context.Background(), ImportConfig{Store: st, SumDBKey: key, MaxFileSize: 1 << 20, MaxTotal: 4 << 20, MaxFiles: 100}, bytes.NewReader(data))
		filepath.WalkDir(parent, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(parent, p)
			if rel != "." && rel != "store" && !strings.HasPrefix(rel, "store"+string(os.PathSeparator)) {
				t.Errorf("import wrote outside the store: %s", rel)
			}
			if store.IsTemp(e.Name()) {
				t.Errorf("import left %s", rel)
			}
			if e.Type()&fs.ModeSymlink != 0 {
				t.Errorf("import created a symlink %s", rel)
			}
			return nil
		})
	})
}
