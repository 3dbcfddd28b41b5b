// Package ledger is berth's immutability ledger for the modules the
// checksum database cannot vouch for (private modules): the first time a
// version's go.mod or zip is fetched, its hashes and its origin (VCS URL,
// commit, ref) are recorded in the store; a later fetch of the same version
// whose content differs (a moved tag, a force-push, a re-created
// repository) is refused with an error naming both hashes and both commits,
// and the stored copy keeps being served.
//
// Each module version has one record under the store key
// "ledger/<escaped path>@<escaped version>": lines of JSON, each an
// observation that added something (the go.mod hash, the zip hash, the
// origin). Lines are only ever added, never changed: for each field the
// first line that has it is the record. The records live in the store, so
// they survive restarts and travel in export bundles; no module path begins
// with "ledger", so the keys never meet module files.
//
// The core calls Check (through its Config.Ledger) before it commits a
// .mod or .zip of a path the ledger Covers.
package ledger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/module"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// Prefix starts every key of the ledger in the store.
const Prefix = "ledger/"

// maxRecord bounds one record read from the store.
const maxRecord = 1 << 20

// Ledger records and checks the hashes of module versions. Its methods are
// safe for concurrent use; one process writes a store's ledger (replicas
// sharing a bucket each keep theirs consistent per key, the last line
// written by a racing replica may be lost, never a recorded one changed).
type Ledger struct {
	// Store holds the records. Required.
	Store store.Store
	// Match reports the module paths the ledger keeps (private modules).
	// Nil means every path.
	Match func(modulePath string) bool
	// Logger receives a line for every refusal. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the ledger's metrics. Nil: no registration.
	Registerer prometheus.Registerer

	once     sync.Once
	mu       sync.Mutex
	locks    map[string]*keyLock
	recorded prometheus.Counter
	refused  *prometheus.CounterVec
}

type keyLock struct {
	sync.Mutex
	n int
}

// Entry is one line of a record: what one fetch observed.
type Entry struct {
	// Time is when the line was written.
	Time time.Time `json:"time"`
	// Mod and Zip are the h1: hashes of the go.mod and of the zip.
	Mod string `json:"mod,omitempty"`
	Zip string `json:"zip,omitempty"`
	// VCS, URL, Commit and Ref are the origin the go command reported.
	VCS    string `json:"vcs,omitempty"`
	URL    string `json:"url,omitempty"`
	Commit string `json:"commit,omitempty"`
	Ref    string `json:"ref,omitempty"`
}

// Record is the ledger's knowledge of one module version: for each field,
// the first line that had it.
type Record struct {
	Path, Version string
	Entry
	// ModTime and ZipTime are when the hashes were first recorded.
	ModTime, ZipTime time.Time
	// Lines is the number of lines of the record.
	Lines int
}

// MismatchError is a fetched file that differs from what the ledger
// recorded for its version.
type MismatchError struct {
	Path, Version string
	// File is "go.mod" or "zip".
	File string
	// Recorded and Got are the hashes; RecordedCommit and GotCommit the
	// commits (each may be unknown: "").
	Recorded, Got             string
	RecordedCommit, GotCommit string
	RecordedRef, GotRef       string
	FirstSeen                 time.Time
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s@%s changed since berth first fetched it on %s: its %s was %s (commit %s) and is now %s (commit %s); "+
		"berth refuses the new content and keeps serving the copy it stored. A published version must never change (a moved tag or a force-push did it): "+
		"publish a new version; if the change is wanted, remove the store key %s and the version's files",
		e.Path, e.Version, e.FirstSeen.UTC().Format(time.RFC3339), e.File, e.Recorded, commitOr(e.RecordedCommit, e.RecordedRef), e.Got, commitOr(e.GotCommit, e.GotRef), keyOr(e.Path, e.Version))
}

func commitOr(c, ref string) string {
	if c == "" {
		c = "unknown"
	}
	if ref != "" {
		c += " at " + ref
	}
	return c
}

func keyOr(path, version string) string {
	k, err := Key(path, version)
	if err != nil {
		return Prefix + path + "@" + version
	}
	return k
}

// Key returns the store key of a version's record.
func Key(path, version string) (string, error) {
	if err := module.Check(path, version); err != nil {
		return "", err
	}
	ep, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	return Prefix + ep + "@" + ev, nil
}

// ParseKey returns the module version of a record's key.
func ParseKey(key string) (module.Version, error) {
	rest, ok := strings.CutPrefix(key, Prefix)
	i := strings.LastIndexByte(rest, '@')
	if !ok || i < 0 {
		return module.Version{}, fmt.Errorf("%q is not a ledger key (%s<escaped path>@<escaped version>)", key, Prefix)
	}
	p, err := module.UnescapePath(rest[:i])
	if err != nil {
		return module.Version{}, fmt.Errorf("ledger key %q: %w", key, err)
	}
	v, err := module.UnescapeVersion(rest[i+1:])
	if err != nil {
		return module.Version{}, fmt.Errorf("ledger key %q: %w", key, err)
	}
	if err := module.Check(p, v); err != nil {
		return module.Version{}, fmt.Errorf("ledger key %q: %w", key, err)
	}
	return module.Version{Path: p, Version: v}, nil
}

func (l *Ledger) init() {
	l.once.Do(func() {
		l.locks = map[string]*keyLock{}
		l.recorded = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_ledger_recorded_total",
			Help: "Observations of private module versions added to the immutability ledger.",
		})
		l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_ledger_refused_total",
			Help: "Fetched private module files refused because they differ from what the ledger recorded for their version, by file (mod, zip).",
		}, []string{"file"})
		if l.Registerer != nil {
			l.Registerer.MustRegister(l.recorded, l.refused)
		}
	})
}

func (l *Ledger) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

// Covers reports whether the ledger keeps modulePath's versions.
func (l *Ledger) Covers(modulePath string) bool { return l.Match == nil || l.Match(modulePath) }

// lock serializes the checks of one record.
func (l *Ledger) lock(key string) func() {
	l.mu.Lock()
	kl := l.locks[key]
	if kl == nil {
		kl = &keyLock{}
		l.locks[key] = kl
	}
	kl.n++
	l.mu.Unlock()
	kl.Lock()
	return func() {
		kl.Unlock()
		l.mu.Lock()
		if kl.n--; kl.n == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
}

// Check checks a fetched file of path@version against the record: kind is
// proto.KindMod or proto.KindZip, sum its h1: hash, rev what version control
// reported (nil from a proxy). A first observation is recorded (with the
// other file's hash and the origin when rev has them) before Check returns
// nil; a file that differs from the record gives a *MismatchError; a ledger
// that cannot be read or written gives another error (the file cannot be
// trusted yet).
func (l *Ledger) Check(ctx context.Context, path, version string, kind proto.Kind, sum string, rev *source.Revision) error {
	l.init()
	key, err := Key(path, version)
	if err != nil {
		return err
	}
	obs := Entry{}
	switch kind {
	case proto.KindMod:
		obs.Mod = sum
	case proto.KindZip:
		obs.Zip = sum
	default:
		return fmt.Errorf("ledger: %s files are not recorded", kind)
	}
	if rev != nil {
		// The go command hashed what it fetched; the file must be that.
		if kind == proto.KindMod && rev.GoModSum != "" && rev.GoModSum != sum {
			return fmt.Errorf("%s@%s: the go command reported go.mod hash %s but the file berth got hashes to %s", path, version, rev.GoModSum, sum)
		}
		if kind == proto.KindZip && rev.Sum != "" && rev.Sum != sum {
			return fmt.Errorf("%s@%s: the go command reported zip hash %s but the file berth got hashes to %s", path, version, rev.Sum, sum)
		}
		if obs.Mod == "" {
			obs.Mod = rev.GoModSum
		}
		if obs.Zip == "" {
			obs.Zip = rev.Sum
		}
		obs.VCS, obs.URL, obs.Commit, obs.Ref = rev.VCS, rev.URL, rev.Hash, rev.Ref
	}
	unlock := l.lock(key)
	defer unlock()
	raw, rec, err := l.read(ctx, key)
	if err != nil {
		return err
	}
	rec.Path, rec.Version = path, version
	if err := compare(rec, obs, kind); err != nil {
		me := err.(*MismatchError)
		l.refused.WithLabelValues(kind.String()).Inc()
		l.logger().Warn("private module version changed since it was first fetched; the new content is refused and the stored copy kept",
			"module", path, "version", version, "file", me.File, "recorded", me.Recorded, "got", me.Got,
			"recorded_commit", me.RecordedCommit, "got_commit", me.GotCommit, "got_ref", me.GotRef)
		return err
	}
	line := newFields(rec, obs)
	if line == nil {
		return nil
	}
	line.Time = time.Now().UTC().Truncate(time.Second)
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	out := append(append(raw, b...), '\n')
	if err := store.Put(ctx, l.Store, key, bytes.NewReader(out), time.Time{}); err != nil {
		return fmt.Errorf("ledger: recording %s@%s: %w", path, version, err)
	}
	l.recorded.Inc()
	return nil
}

// compare returns a *MismatchError when obs contradicts rec.
func compare(rec Record, obs Entry, kind proto.Kind) error {
	mm := func(file, recorded, got string, first time.Time) error {
		return &MismatchError{Path: rec.Path, Version: rec.Version, File: file, Recorded: recorded, Got: got,
			RecordedCommit: rec.Commit, GotCommit: obs.Commit, RecordedRef: rec.Ref, GotRef: obs.Ref, FirstSeen: first}
	}
	zip := func() error {
		if rec.Zip != "" && obs.Zip != "" && rec.Zip != obs.Zip {
			return mm("zip", rec.Zip, obs.Zip, rec.ZipTime)
		}
		return nil
	}
	mod := func() error {
		if rec.Mod != "" && obs.Mod != "" && rec.Mod != obs.Mod {
			return mm("go.mod", rec.Mod, obs.Mod, rec.ModTime)
		}
		return nil
	}
	// The file in hand first: its hash is the one berth computed.
	if kind == proto.KindMod {
		zip, mod = mod, zip
	}
	if err := zip(); err != nil {
		return err
	}
	return mod()
}

// newFields returns the fields of obs the record lacks, or nil.
func newFields(rec Record, obs Entry) *Entry {
	var e Entry
	add := func(dst *string, have, got string) bool {
		if have == "" && got != "" {
			*dst = got
			return true
		}
		return false
	}
	n := add(&e.Mod, rec.Mod, obs.Mod)
	n = add(&e.Zip, rec.Zip, obs.Zip) || n
	if rec.Commit == "" && obs.Commit != "" {
		e.VCS, e.URL, e.Commit, e.Ref = obs.VCS, obs.URL, obs.Commit, obs.Ref
		n = true
	}
	if !n {
		return nil
	}
	return &e
}

// Lookup returns the record of path@version; ok is false when there is none.
func (l *Ledger) Lookup(ctx context.Context, path, version string) (rec Record, ok bool, err error) {
	key, err := Key(path, version)
	if err != nil {
		return Record{}, false, err
	}
	_, rec, err = l.read(ctx, key)
	rec.Path, rec.Version = path, version
	return rec, rec.Lines > 0, err
}

// read returns a record's raw lines and their merge.
func (l *Ledger) read(ctx context.Context, key string) ([]byte, Record, error) {
	f, err := l.Store.Open(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Record{}, nil
	}
	if err != nil {
		return nil, Record{}, fmt.Errorf("ledger: reading %s: %w", key, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return nil, Record{}, fmt.Errorf("ledger: reading %s: %w", key, err)
	}
	if len(raw) > maxRecord {
		return nil, Record{}, fmt.Errorf("ledger: %s is larger than %d bytes", key, maxRecord)
	}
	rec, err := Parse(raw)
	if err != nil {
		return nil, Record{}, fmt.Errorf("ledger: %s: %w", key, err)
	}
	return raw, rec, nil
}

// Parse merges the lines of a record: for each field, the first line that
// has it wins. A line that is not an Entry is an error.
func Parse(raw []byte) (Record, error) {
	var rec Record
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 4096), maxRecord)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return Record{}, fmt.Errorf("line %d: %v", rec.Lines+1, err)
		}
		for _, h := range []string{e.Mod, e.Zip} {
			if h != "" && !strings.HasPrefix(h, "h1:") {
				return Record{}, fmt.Errorf("line %d: %q is not an h1: hash", rec.Lines+1, h)
			}
		}
		rec.Lines++
		if rec.Time.IsZero() {
			rec.Time = e.Time
		}
		if rec.Mod == "" && e.Mod != "" {
			rec.Mod, rec.ModTime = e.Mod, e.Time
		}
		if rec.Zip == "" && e.Zip != "" {
			rec.Zip, rec.ZipTime = e.Zip, e.Time
		}
		if rec.Commit == "" && e.Commit != "" {
			rec.VCS, rec.URL, rec.Commit, rec.Ref = e.VCS, e.URL, e.Commit, e.Ref
		}
	}
	return rec, sc.Err()
}

// Merge returns the lines of mine followed by those of theirs that add
// something mine lacks, and a *MismatchError when the two contradict each
// other (import uses it to bring a bundle's ledger into a store's).
func Merge(path, version string, mine, theirs []byte) ([]byte, error) {
	a, err := Parse(mine)
	if err != nil {
		return nil, err
	}
	b, err := Parse(theirs)
	if err != nil {
		return nil, err
	}
	a.Path, a.Version = path, version
	if a.Lines > 0 && b.Lines > 0 {
		if err := compare(a, b.Entry, proto.KindZip); err != nil {
			return nil, err
		}
	}
	add := newFields(a, b.Entry)
	if add == nil {
		return mine, nil
	}
	add.Time = b.Time
	line, err := json.Marshal(add)
	if err != nil {
		return nil, err
	}
	out := append([]byte{}, mine...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(append(out, line...), '\n'), nil
}
