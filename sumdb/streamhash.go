package sumdb

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// ErrNotStreamable is returned (wrapped) by HashZipStream for a zip whose
// layout cannot be hashed in order (a stored entry whose size is only in a
// data descriptor, zip64, bytes before the first entry) or whose central
// directory does not describe exactly the entries read. The caller hashes the
// whole file with HashZip instead, which reads what the go command reads.
var ErrNotStreamable = errors.New("zip cannot be hashed as it streams")

// HashZipStream returns the h1: hash of a module zip read once, in order,
// from r: each entry is inflated and hashed as its bytes arrive (a module
// zip's local file headers come before each file's data), so the hash is
// ready when the last byte is, instead of starting then. At the end the
// central directory is checked against the entries read (names, offsets,
// sizes, CRCs): when they agree, the entries the go command reads (through
// the central directory) are the ones hashed, and the result equals HashZip's
// and dirhash.HashZip's. Any disagreement or unusual layout is an error
// wrapping ErrNotStreamable; a CRC mismatch or a corrupt deflate stream is an
// error too, as it is for the go command.
func HashZipStream(r io.Reader) (string, error) {
	raw := &countingReader{r: r}
	cr := &zipReader{br: bufio.NewReaderSize(raw, 64<<10), raw: raw}
	var entries []streamEntry
	fh := sha256.New()
	crc := crc32.NewIEEE()
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	for {
		off := cr.pos()
		sig, err := cr.uint32()
		if err != nil {
			return "", notStreamable("reading a signature at %d: %v", off, err)
		}
		if sig == centralSig || (sig == endSig && len(entries) == 0) {
			if err := checkCentral(cr, sig, off, entries); err != nil {
				return "", err
			}
			break
		}
		if sig != localSig {
			return "", notStreamable("signature %#x at %d is not a local file header", sig, off)
		}
		e, err := readEntry(cr, off, fh, crc, *buf)
		if err != nil {
			return "", err
		}
		entries = append(entries, e)
	}
	return h1Of(entries)
}

const (
	localSig      = 0x04034b50
	centralSig    = 0x02014b50
	descriptorSig = 0x08074b50
	endSig        = 0x06054b50
	flagDataDesc  = 0x8
	flagEncrypted = 0x1
)

type streamEntry struct {
	name         string
	offset       int64 // of the local header
	data         int64 // of the compressed data
	method       uint16
	crc          uint32
	csize, usize uint32
	sum          []byte
	err          error
}

func notStreamable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotStreamable, fmt.Sprintf(format, args...))
}

// readEntry reads one local file header (its signature read) and its data,
// returning the entry with the SHA-256 of its content.
func readEntry(cr *zipReader, off int64, fh hash.Hash, crc hash.Hash32, buf []byte) (streamEntry, error) {
	var h [26]byte
	if _, err := io.ReadFull(cr, h[:]); err != nil {
		return streamEntry{}, notStreamable("local header at %d: %v", off, err)
	}
	flags := binary.LittleEndian.Uint16(h[2:])
	method := binary.LittleEndian.Uint16(h[4:])
	e := streamEntry{
		offset: off,
		crc:    binary.LittleEndian.Uint32(h[10:]),
		csize:  binary.LittleEndian.Uint32(h[14:]),
		usize:  binary.LittleEndian.Uint32(h[18:]),
	}
	nameLen, extraLen := int(binary.LittleEndian.Uint16(h[22:])), int(binary.LittleEndian.Uint16(h[24:]))
	name := make([]byte, nameLen)
	if _, err := io.ReadFull(cr, name); err != nil {
		return streamEntry{}, notStreamable("name at %d: %v", off, err)
	}
	e.name = string(name)
	if _, err := io.CopyN(io.Discard, cr, int64(extraLen)); err != nil {
		return streamEntry{}, notStreamable("extra field at %d: %v", off, err)
	}
	if flags&flagEncrypted != 0 || e.csize == 0xffffffff || e.usize == 0xffffffff {
		return streamEntry{}, notStreamable("%s: encrypted or zip64 entry", e.name)
	}
	desc := flags&flagDataDesc != 0
	start := cr.pos()
	var content io.Reader
	switch method {
	case 0: // stored
		if desc {
			return streamEntry{}, notStreamable("%s: stored entry with its size in a data descriptor", e.name)
		}
		content = io.LimitReader(cr.br, int64(e.csize))
	case 8: // deflated
		// The bufio.Reader is a ByteReader: the inflater takes from it no
		// more than its stream, so the next header follows.
		fr := newFlateReader(cr.br)
		defer fr.Close()
		content = fr
	default:
		return streamEntry{}, notStreamable("%s: compression method %d", e.name, method)
	}
	fh.Reset()
	crc.Reset()
	n, err := io.CopyBuffer(io.MultiWriter(fh, crc), content, buf)
	if err != nil {
		return streamEntry{}, fmt.Errorf("zip: %s: %w", e.name, err)
	}
	e.sum = fh.Sum(nil)
	dataEnd := cr.pos()
	if desc {
		if err := readDescriptor(cr, &e); err != nil {
			return streamEntry{}, err
		}
	}
	if got := dataEnd - start; got != int64(e.csize) {
		return streamEntry{}, notStreamable("%s: %d compressed bytes, the header says %d", e.name, got, e.csize)
	}
	if n != int64(e.usize) {
		return streamEntry{}, notStreamable("%s: %d bytes, the header says %d", e.name, n, e.usize)
	}
	if crc.Sum32() != e.crc {
		return streamEntry{}, fmt.Errorf("zip: %s: checksum error", e.name)
	}
	return e, nil
}

// readDescriptor reads a data descriptor (optional signature, CRC, sizes).
func readDescriptor(cr *zipReader, e *streamEntry) error {
	v, err := cr.uint32()
	if err != nil {
		return notStreamable("%s: data descriptor: %v", e.name, err)
	}
	if v == descriptorSig {
		if v, err = cr.uint32(); err != nil {
			return notStreamable("%s: data descriptor: %v", e.name, err)
		}
	}
	e.crc = v
	var s [8]byte
	if _, err := io.ReadFull(cr, s[:]); err != nil {
		return notStreamable("%s: data descriptor: %v", e.name, err)
	}
	e.csize, e.usize = binary.LittleEndian.Uint32(s[:]), binary.LittleEndian.Uint32(s[4:])
	return nil
}

// checkCentral reads the central directory (its first signature, sig, read
// at offset start) and the end record, and checks they describe exactly the
// entries read, where the end record says they are.
func checkCentral(cr *zipReader, sig uint32, start int64, entries []streamEntry) error {
	endAt := start
	for i := 0; sig != endSig; i++ {
		if i > 0 {
			endAt = cr.pos()
			var err error
			if sig, err = cr.uint32(); err != nil {
				return notStreamable("central directory: %v", err)
			}
			if sig == endSig {
				if i != len(entries) {
					return notStreamable("central directory lists %d entries, %d were read", i, len(entries))
				}
				break
			}
			if sig != centralSig {
				return notStreamable("central directory: signature %#x", sig)
			}
		}
		var h [42]byte
		if _, err := io.ReadFull(cr, h[:]); err != nil {
			return notStreamable("central directory: %v", err)
		}
		if i >= len(entries) {
			return notStreamable("central directory lists more entries than were read")
		}
		e := entries[i]
		nameLen := int(binary.LittleEndian.Uint16(h[24:]))
		extraLen := int(binary.LittleEndian.Uint16(h[26:]))
		commentLen := int(binary.LittleEndian.Uint16(h[28:]))
		name := make([]byte, nameLen)
		if _, err := io.ReadFull(cr, name); err != nil {
			return notStreamable("central directory: %v", err)
		}
		if _, err := io.CopyN(io.Discard, cr, int64(extraLen+commentLen)); err != nil {
			return notStreamable("central directory: %v", err)
		}
		if string(name) != e.name ||
			binary.LittleEndian.Uint32(h[12:]) != e.crc ||
			binary.LittleEndian.Uint32(h[16:]) != e.csize ||
			binary.LittleEndian.Uint32(h[20:]) != e.usize ||
			int64(binary.LittleEndian.Uint32(h[38:])) != e.offset {
			return notStreamable("central directory entry %d (%q) does not match the entry read (%q)", i, name, e.name)
		}
	}
	// The end record and any comment: read to the end, so that bytes after
	// it cannot hide, and a zip64 end record is refused.
	var end [18]byte
	if _, err := io.ReadFull(cr, end[:]); err != nil {
		return notStreamable("end of central directory: %v", err)
	}
	le := binary.LittleEndian
	if le.Uint16(end[0:]) != 0 || le.Uint16(end[2:]) != 0 ||
		int(le.Uint16(end[4:])) != len(entries) || int(le.Uint16(end[6:])) != len(entries) ||
		int64(le.Uint32(end[8:])) != endAt-start || int64(le.Uint32(end[12:])) != start {
		return notStreamable("the end of central directory record does not describe the %d entries read", len(entries))
	}
	comment := int64(binary.LittleEndian.Uint16(end[16:]))
	if _, err := io.CopyN(io.Discard, cr, comment); err != nil {
		return notStreamable("zip comment: %v", err)
	}
	if n, _ := io.Copy(io.Discard, cr); n != 0 {
		return notStreamable("%d bytes after the end of the zip", n)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// zipReader reads a zip in order and knows its position: the bytes taken
// from the source, less those still buffered.
type zipReader struct {
	br  *bufio.Reader
	raw *countingReader
}

func (z *zipReader) Read(p []byte) (int, error) { return z.br.Read(p) }

func (z *zipReader) pos() int64 { return z.raw.n - int64(z.br.Buffered()) }

func (c *zipReader) uint32() (uint32, error) {
	var b [4]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// HashZipParallel is HashZipStream for a zip whose bytes can also be read at
// random once they have been read from r: ra holds the same body (a file
// being written, say). One pass over r finds each entry's compressed bytes
// (a data descriptor is found by its signature, size and the header after
// it, then checked like every entry against the central directory), and
// workers inflate and hash the entries from ra at the same time, so a large
// zip is hashed on every core as it arrives. workers <= 0 means GOMAXPROCS.
// The result and the errors are HashZipStream's.
func HashZipParallel(r io.Reader, ra io.ReaderAt, workers int) (string, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	raw := &countingReader{r: r}
	cr := &zipReader{br: bufio.NewReaderSize(raw, 256<<10), raw: raw}
	jobs := make(chan *streamEntry, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			fh, crc := sha256.New(), crc32.NewIEEE()
			buf := copyBufs.Get().(*[]byte)
			defer copyBufs.Put(buf)
			for e := range jobs {
				e.err = hashEntry(ra, e, fh, crc, *buf)
			}
		})
	}
	entries, err := scanEntries(cr, jobs)
	close(jobs)
	wg.Wait()
	if err != nil {
		return "", err
	}
	out := make([]streamEntry, len(entries))
	for i, e := range entries {
		if e.err != nil {
			return "", e.err
		}
		out[i] = *e
	}
	return h1Of(out)
}

// scanEntries reads the zip in order, sending each entry to jobs as soon as
// its compressed bytes have been read, and checks the central directory.
func scanEntries(cr *zipReader, jobs chan<- *streamEntry) ([]*streamEntry, error) {
	var entries []*streamEntry
	var meta []streamEntry // what the headers said, copied before the workers write
	for {
		off := cr.pos()
		sig, err := cr.uint32()
		if err != nil {
			return entries, notStreamable("reading a signature at %d: %v", off, err)
		}
		if sig == centralSig || (sig == endSig && len(entries) == 0) {
			return entries, checkCentral(cr, sig, off, meta)
		}
		if sig != localSig {
			return entries, notStreamable("signature %#x at %d is not a local file header", sig, off)
		}
		e, err := scanEntry(cr, off)
		if err != nil {
			return entries, err
		}
		entries = append(entries, e)
		meta = append(meta, *e)
		jobs <- e
	}
}

// scanEntry reads one local header (its signature read), skips over the
// entry's compressed bytes and reads its data descriptor, if any.
func scanEntry(cr *zipReader, off int64) (*streamEntry, error) {
	var h [26]byte
	if _, err := io.ReadFull(cr, h[:]); err != nil {
		return nil, notStreamable("local header at %d: %v", off, err)
	}
	le := binary.LittleEndian
	flags, method := le.Uint16(h[2:]), le.Uint16(h[4:])
	e := &streamEntry{offset: off, method: method, crc: le.Uint32(h[10:]), csize: le.Uint32(h[14:]), usize: le.Uint32(h[18:])}
	name := make([]byte, le.Uint16(h[22:]))
	if _, err := io.ReadFull(cr, name); err != nil {
		return nil, notStreamable("name at %d: %v", off, err)
	}
	e.name = string(name)
	if _, err := cr.br.Discard(int(le.Uint16(h[24:]))); err != nil {
		return nil, notStreamable("extra field at %d: %v", off, err)
	}
	if flags&flagEncrypted != 0 || e.csize == 0xffffffff || e.usize == 0xffffffff || (method != 0 && method != 8) {
		return nil, notStreamable("%s: encrypted, zip64 or compression method %d", e.name, method)
	}
	e.data = cr.pos()
	if flags&flagDataDesc == 0 {
		if _, err := io.CopyN(io.Discard, cr.br, int64(e.csize)); err != nil {
			return nil, notStreamable("%s: data: %v", e.name, err)
		}
		return e, nil
	}
	if method == 0 {
		return nil, notStreamable("%s: stored entry with its size in a data descriptor", e.name)
	}
	if err := cr.skipToDescriptor(e.data); err != nil {
		return nil, notStreamable("%s: %v", e.name, err)
	}
	end := cr.pos()
	if err := readDescriptor(cr, e); err != nil {
		return nil, err
	}
	if int64(e.csize) != end-e.data {
		return nil, notStreamable("%s: %d compressed bytes, the descriptor says %d", e.name, end-e.data, e.csize)
	}
	return e, nil
}

// skipToDescriptor reads up to the data descriptor of an entry whose data
// started at dataStart: the first descriptor signature followed by the
// entry's CRC and sizes, where the compressed size is the distance from
// dataStart, and then by a local or central header signature. A false match
// inside compressed data is possible only in a crafted zip; it then fails
// the comparison with the central directory, never a hash.
func (cr *zipReader) skipToDescriptor(dataStart int64) error {
	le := binary.LittleEndian
	sig := []byte{0x50, 0x4b, 0x07, 0x08}
	for {
		w, err := cr.br.Peek(cr.br.Size())
		if len(w) < 20 {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("no data descriptor: %w", err)
		}
		from := 0
		for {
			i := bytes.Index(w[from:], sig)
			if i < 0 || from+i+20 > len(w) {
				break
			}
			i += from
			at := cr.pos() + int64(i)
			if int64(le.Uint32(w[i+8:])) == at-dataStart {
				if next := le.Uint32(w[i+16:]); next == localSig || next == centralSig {
					cr.br.Discard(i)
					return nil
				}
			}
			from = i + 1
		}
		if err != nil && len(w) < cr.br.Size() {
			return fmt.Errorf("no data descriptor before the end: %w", err)
		}
		// Keep the last 19 bytes: a descriptor may start there.
		cr.br.Discard(len(w) - 19)
	}
}

// hashEntry inflates and hashes one entry's data from ra.
func hashEntry(ra io.ReaderAt, e *streamEntry, fh hash.Hash, crc hash.Hash32, buf []byte) error {
	var content io.Reader = io.NewSectionReader(ra, e.data, int64(e.csize))
	if e.method == 8 {
		// A bufio.Reader is the inflater's fast path, and makes few large
		// reads of ra.
		br := sectionBufs.Get().(*bufio.Reader)
		br.Reset(content)
		defer sectionBufs.Put(br)
		fr := newFlateReader(br)
		defer fr.Close()
		content = fr
	}
	fh.Reset()
	crc.Reset()
	n, err := io.CopyBuffer(io.MultiWriter(fh, crc), content, buf)
	if err != nil {
		return fmt.Errorf("zip: %s: %w", e.name, err)
	}
	if n != int64(e.usize) {
		return notStreamable("%s: %d bytes, the header says %d", e.name, n, e.usize)
	}
	if crc.Sum32() != e.crc {
		return fmt.Errorf("zip: %s: checksum error", e.name)
	}
	e.sum = fh.Sum(nil)
	return nil
}

var sectionBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// h1Of returns the h1: hash of hashed entries, as dirhash.HashZip: every
// name in order, the last of duplicates' content.
func h1Of(entries []streamEntry) (string, error) {
	byName := make(map[string][]byte, len(entries))
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.Contains(e.name, "\n") {
			return "", errors.New("dirhash: filenames with newlines are not supported")
		}
		names = append(names, e.name)
		byName[e.name] = e.sum
	}
	sort.Strings(names)
	sum := sha256.New()
	for _, name := range names {
		fmt.Fprintf(sum, "%x  %s\n", byName[name], name)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(sum.Sum(nil)), nil
}
