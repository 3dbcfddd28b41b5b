package sumdb

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	kflate "github.com/klauspost/compress/flate"
)

// HashZip returns the h1: hash of a module zip: the same value as
// dirhash.HashZip(zipFile, dirhash.Hash1), computed the same way (the SHA-256
// of the sorted lines "<sha256 of a file's content>  <name>"), but inflating
// with klauspost/compress's decoder, which takes less CPU than the standard
// library's. A proxy hashes every zip it fetches before releasing its last
// bytes, so this is CPU on the path of every cold download.
func HashZip(zipFile string) (string, error) {
	z, err := zip.OpenReader(zipFile)
	if err != nil {
		return "", err
	}
	defer z.Close()
	z.RegisterDecompressor(zip.Deflate, newFlateReader)
	names := make([]string, 0, len(z.File))
	byName := make(map[string]*zip.File, len(z.File))
	for _, f := range z.File {
		names = append(names, f.Name)
		byName[f.Name] = f // as dirhash.HashZip: the last of duplicate names wins
	}
	sort.Strings(names)
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	sum := sha256.New()
	fh := sha256.New()
	for _, name := range names {
		if strings.Contains(name, "\n") {
			return "", errors.New("dirhash: filenames with newlines are not supported")
		}
		r, err := byName[name].Open()
		if err != nil {
			return "", err
		}
		fh.Reset()
		_, err = io.CopyBuffer(fh, r, *buf)
		r.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(sum, "%x  %s\n", fh.Sum(nil), name)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(sum.Sum(nil)), nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Inflaters are pooled: a module zip can hold thousands of small files.
var flateReaders sync.Pool

type pooledFlate struct{ io.ReadCloser }

func newFlateReader(r io.Reader) io.ReadCloser {
	if fr, ok := flateReaders.Get().(io.ReadCloser); ok {
		if err := fr.(kflate.Resetter).Reset(r, nil); err == nil {
			return &pooledFlate{fr}
		}
	}
	return &pooledFlate{kflate.NewReader(r)}
}

func (p *pooledFlate) Close() error {
	if p.ReadCloser == nil {
		return nil
	}
	err := p.ReadCloser.Close()
	flateReaders.Put(p.ReadCloser)
	p.ReadCloser = nil
	return err
}
