package sumdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"golang.org/x/mod/sumdb/dirhash"
)

// agreeStream checks that HashZipStream, when it answers, answers what the
// go command's dirhash.HashZip does, and that it answers for the zips module
// proxies serve (those x/mod/zip writes).
func agreeStream(t *testing.T, f string, data []byte) (streamed bool) {
	t.Helper()
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want, werr := dirhash.HashZip(f, dirhash.Hash1)
	got, gerr := HashZipStream(iotest.OneByteReader(bytes.NewReader(data)))
	if gerr == nil && (werr != nil || got != want) {
		t.Fatalf("HashZipStream = %q; dirhash.HashZip = %q, %v", got, want, werr)
	}
	if got2, err := HashZipStream(bytes.NewReader(data)); (err == nil) != (gerr == nil) || got2 != got {
		t.Fatalf("one byte at a time: %q, %v; all at once: %q, %v", got, gerr, got2, err)
	}
	for _, workers := range []int{1, 3} {
		pgot, perr := HashZipParallel(iotest.HalfReader(bytes.NewReader(data)), bytes.NewReader(data), workers)
		if perr == nil && (werr != nil || pgot != want) {
			t.Fatalf("HashZipParallel(%d) = %q; dirhash.HashZip = %q, %v", workers, pgot, want, werr)
		}
		if (perr == nil) != (gerr == nil) && !errors.Is(perr, ErrNotStreamable) && !errors.Is(gerr, ErrNotStreamable) {
			t.Fatalf("HashZipParallel: %v; HashZipStream: %v", perr, gerr)
		}
		if gerr == nil && perr != nil {
			t.Fatalf("HashZipStream hashed what HashZipParallel refused: %v", perr)
		}
	}
	return gerr == nil
}

func TestHashZipStreamMatchesDirhash(t *testing.T) {
	f := filepath.Join(t.TempDir(), "m.zip")
	seeds := zipSeeds(t)
	for i, z := range seeds {
		streamed := agreeStream(t, f, z)
		_, err := HashZipStream(bytes.NewReader(z))
		switch {
		case (i <= len(seeds)-5 || i == len(seeds)-3) && !streamed:
			// Module zips (x/mod/zip deflates every file), the empty zip,
			// duplicate names. A stored entry from archive/zip has its size
			// only in a data descriptor: not streamable, hashed whole.
			t.Errorf("seed %d was not streamed: %v", i, err)
		case i == len(seeds)-1 && !errors.Is(err, ErrNotStreamable):
			t.Errorf("not a zip: %v, want ErrNotStreamable", err)
		}
	}
	// Truncated, corrupted and extended zips are refused or hash the same.
	z := seeds[0]
	for _, n := range []int{len(z) / 2, len(z) - 1, 30} {
		if agreeStream(t, f, z[:n]) {
			t.Errorf("a zip cut to %d of %d bytes was hashed", n, len(z))
		}
	}
	for i := 0; i < len(z); i += 7 {
		bad := bytes.Clone(z)
		bad[i] ^= 0x55
		agreeStream(t, f, bad)
	}
	if agreeStream(t, f, append(bytes.Clone(z), "trailing"...)) {
		t.Error("bytes after the end record were accepted")
	}
}

// FuzzHashZipStream: whenever HashZipStream answers, dirhash.HashZip agrees.
func FuzzHashZipStream(f *testing.F) {
	for _, z := range zipSeeds(f) {
		f.Add(z)
	}
	file := filepath.Join(f.TempDir(), "m.zip")
	f.Fuzz(func(t *testing.T, data []byte) { agreeStream(t, file, data) })
}

// BenchmarkHashZipStream compares hashing a zip as it streams with hashing
// the file once it is whole, on 300 source-like files (about 3 MB unpacked).
func BenchmarkHashZipStream(b *testing.B) {
	var files [][3]string
	for i := range 300 {
		src := bytes.Repeat([]byte(fmt.Sprintf("// line of file %d\nfunc f%d(x int) int { return x * %d }\n", i, i, i)), 200)
		files = append(files, [3]string{fmt.Sprintf("m@v1.0.0/f%03d.go", i), string(src), ""})
	}
	data := zipOf(b, files)
	f := filepath.Join(b.TempDir(), "m.zip")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("file", func(b *testing.B) {
		for b.Loop() {
			HashZip(f)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		for b.Loop() {
			if _, err := HashZipParallel(bytes.NewReader(data), bytes.NewReader(data), 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream", func(b *testing.B) {
		for b.Loop() {
			if _, err := HashZipStream(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
