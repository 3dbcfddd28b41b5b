package sumdb

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/berth-dev/berth/internal/testmod"
)

// zipOf builds a zip in memory; method 0 stores, 8 deflates.
func zipOf(t testing.TB, files [][3]string) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, f := range files {
		method := zip.Deflate
		if f[2] == "store" {
			method = zip.Store
		}
		fw, err := w.CreateHeader(&zip.FileHeader{Name: f[0], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte(f[1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zipSeeds(t testing.TB) [][]byte {
	built, err := testmod.Build(testmod.BaseModules())
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, b := range built {
		seeds = append(seeds, b.Zip)
	}
	big := bytes.Repeat([]byte("package big // some text that compresses\n"), 200)
	seeds = append(seeds,
		zipOf(t, nil),
		zipOf(t, [][3]string{{"m@v1.0.0/a.go", "package a\n", "store"}, {"m@v1.0.0/b.go", string(big), ""}}),
		zipOf(t, [][3]string{{"m@v1.0.0/dup.go", "first\n", ""}, {"m@v1.0.0/dup.go", "second\n", ""}}),
		zipOf(t, [][3]string{{"m@v1.0.0/new\nline.go", "x", ""}}),
		[]byte("not a zip"),
	)
	return seeds
}

// agree checks hashZip against dirhash.HashZip on one zip, written to f.
func agree(t *testing.T, f string, data []byte) {
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want, werr := dirhash.HashZip(f, dirhash.Hash1)
	got, gerr := HashZip(f)
	if (werr == nil) != (gerr == nil) || got != want {
		t.Fatalf("hashZip = %q, %v; dirhash.HashZip = %q, %v", got, gerr, want, werr)
	}
}

// TestHashZipMatchesDirhash: berth's faster zip hash is the go command's h1:.
func TestHashZipMatchesDirhash(t *testing.T) {
	f := filepath.Join(t.TempDir(), "m.zip")
	for _, z := range zipSeeds(t) {
		agree(t, f, z)
	}
	// Truncated and corrupted zips fail in both, or hash the same.
	z := zipSeeds(t)[0]
	for _, n := range []int{len(z) / 2, len(z) - 1} {
		agree(t, f, z[:n])
	}
	bad := bytes.Clone(z)
	bad[len(bad)/3] ^= 0xff
	agree(t, f, bad)
}

// FuzzHashZip: on any bytes, hashZip and dirhash.HashZip agree.
func FuzzHashZip(f *testing.F) {
	for _, z := range zipSeeds(f) {
		f.Add(z)
	}
	file := filepath.Join(f.TempDir(), "m.zip")
	f.Fuzz(func(t *testing.T, data []byte) { agree(t, file, data) })
}

// BenchmarkHashZip compares berth's zip hash with dirhash.HashZip on a zip of
// 300 source-like files (about 3 MB unpacked).
func BenchmarkHashZip(b *testing.B) {
	var files [][3]string
	for i := range 300 {
		src := bytes.Repeat([]byte(fmt.Sprintf("// line of file %d\nfunc f%d(x int) int { return x * %d }\n", i, i, i)), 200)
		files = append(files, [3]string{fmt.Sprintf("m@v1.0.0/f%03d.go", i), string(src), ""})
	}
	f := filepath.Join(b.TempDir(), "m.zip")
	if err := os.WriteFile(f, zipOf(b, files), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("dirhash", func(b *testing.B) {
		for b.Loop() {
			dirhash.HashZip(f, dirhash.Hash1)
		}
	})
	b.Run("berth", func(b *testing.B) {
		for b.Loop() {
			HashZip(f)
		}
	})
}
