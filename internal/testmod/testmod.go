// Package testmod builds Go modules for tests and serves them from a fake
// upstream module proxy with a real (test) checksum database, so that tests
// drive the real go command through berth and speak the real protocol instead
// of mocking it.
package testmod

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"
)

// Module describes one module version to generate.
type Module struct {
	Path, Version string
	// Files maps slash paths inside the module to contents. A go.mod is
	// generated from Path and Require unless Files has one.
	Files map[string]string
	// Require lists dependencies; they must be generated earlier in the same
	// call so that their hashes can go into this module's go.sum.
	Require []module.Version
	// Time is the version's commit time; zero means a fixed time derived from the order.
	Time time.Time
}

// Built is a generated module version.
type Built struct {
	module.Version
	Info, Mod, Zip []byte
	// Sum and ModSum are the go.sum hashes of the zip and of the go.mod.
	Sum, ModSum string
}

// Build generates the modules in order and returns them.
func Build(mods []Module) ([]Built, error) {
	var out []Built
	sums := map[module.Version]Built{}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, m := range mods {
		mv := module.Version{Path: m.Path, Version: m.Version}
		if err := module.Check(m.Path, m.Version); err != nil {
			return nil, err
		}
		files := map[string]string{}
		for k, v := range m.Files {
			files[k] = v
		}
		if _, ok := files["go.mod"]; !ok {
			var b strings.Builder
			fmt.Fprintf(&b, "module %s\n\ngo 1.21\n", m.Path)
			if len(m.Require) > 0 {
				b.WriteString("\nrequire (\n")
				for _, r := range m.Require {
					fmt.Fprintf(&b, "\t%s %s\n", r.Path, r.Version)
				}
				b.WriteString(")\n")
			}
			files["go.mod"] = b.String()
		}
		if _, ok := files["go.sum"]; !ok && len(m.Require) > 0 {
			var b strings.Builder
			for _, r := range m.Require {
				dep, ok := sums[r]
				if !ok {
					return nil, fmt.Errorf("%s requires %s, which is not built before it", mv, r)
				}
				fmt.Fprintf(&b, "%s %s %s\n%s %s/go.mod %s\n", r.Path, r.Version, dep.Sum, r.Path, r.Version, dep.ModSum)
			}
			files["go.sum"] = b.String()
		}
		var zf []modzip.File
		names := make([]string, 0, len(files))
		for name := range files {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			zf = append(zf, memFile{name, []byte(files[name])})
		}
		var zbuf bytes.Buffer
		if err := modzip.Create(&zbuf, mv, zf); err != nil {
			return nil, fmt.Errorf("zip %s: %w", mv, err)
		}
		t := m.Time
		if t.IsZero() {
			t = base.Add(time.Duration(i) * time.Hour)
		}
		info, _ := json.Marshal(struct {
			Version string
			Time    time.Time
		}{m.Version, t})
		b := Built{Version: mv, Info: info, Mod: []byte(files["go.mod"]), Zip: zbuf.Bytes()}
		var err error
		if b.Sum, err = HashZip(b.Zip); err != nil {
			return nil, err
		}
		if b.ModSum, err = HashMod(b.Mod); err != nil {
			return nil, err
		}
		sums[mv] = b
		out = append(out, b)
	}
	return out, nil
}

// HashZip returns the h1: hash of a module zip, as go.sum records it.
func HashZip(z []byte) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		return "", err
	}
	var names []string
	byName := map[string]*zip.File{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		byName[f.Name] = f
	}
	return dirhash.Hash1(names, func(name string) (io.ReadCloser, error) { return byName[name].Open() })
}

// HashMod returns the h1: hash of a go.mod file, as go.sum records it.
func HashMod(mod []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(mod)), nil
	})
}

type memFile struct {
	name string
	data []byte
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (os.FileInfo, error)  { return memInfo{f}, nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

type memInfo struct{ f memFile }

func (i memInfo) Name() string       { return path.Base(i.f.name) }
func (i memInfo) Size() int64        { return int64(len(i.f.data)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// WriteTree writes built modules into dir in the module cache layout
// (<escaped path>/@v/list, .info, .mod, .zip): a GOPROXY=file:// tree.
func WriteTree(dir string, built []Built) error {
	lists := map[string][]string{}
	for _, b := range built {
		ep, err := module.EscapePath(b.Path)
		if err != nil {
			return err
		}
		ev, err := module.EscapeVersion(b.Version.Version)
		if err != nil {
			return err
		}
		d := filepath.Join(dir, filepath.FromSlash(ep), "@v")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for ext, data := range map[string][]byte{".info": b.Info, ".mod": b.Mod, ".zip": b.Zip} {
			if err := os.WriteFile(filepath.Join(d, ev+ext), data, 0o644); err != nil {
				return err
			}
		}
		lists[d] = append(lists[d], b.Version.Version)
	}
	for d, vs := range lists {
		semver.Sort(vs)
		if err := os.WriteFile(filepath.Join(d, "list"), []byte(strings.Join(vs, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Upstream is a fake upstream module proxy serving a module tree and a test
// checksum database under /sumdb/<SumDBName>/, counting requests per path.
type Upstream struct {
	Dir       string
	SumDBName string
	// VerifierKey is the checksum database's public key; GOSUMDB is
	// SumDBName+"+"+... — use GOSUMDB() for the full value.
	VerifierKey string
	Server      *httptest.Server

	mu     sync.Mutex
	counts map[string]int
	sums   map[module.Version]Built
	// Hook, if set, runs first for every request; returning true means it answered.
	hook func(w http.ResponseWriter, r *http.Request) bool
	// stalls holds the Stall of each path not yet asked for.
	stalls    map[string]*stall
	closing   chan struct{} // closed by Close: stalled answers go on
	closeOnce sync.Once
}

// NewUpstream builds mods, writes them to a temporary tree and serves them.
// The server is closed by t.Cleanup.
func NewUpstream(t testing.TB, mods []Module) *Upstream {
	t.Helper()
	built, err := Build(mods)
	if err != nil {
		t.Fatal(err)
	}
	u, err := ServeBuilt(t.TempDir(), "sum.berth.test", built)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}

// ServeBuilt writes built into dir and starts a fake upstream on loopback with a
// checksum database named dbName.
func ServeBuilt(dir, dbName string, built []Built) (*Upstream, error) {
	if err := WriteTree(dir, built); err != nil {
		return nil, err
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, dbName)
	if err != nil {
		return nil, err
	}
	u := &Upstream{Dir: dir, SumDBName: dbName, VerifierKey: vkey, counts: map[string]int{}, sums: map[module.Version]Built{},
		stalls: map[string]*stall{}, closing: make(chan struct{})}
	for _, b := range built {
		u.sums[b.Version] = b
	}
	db := sumdb.NewServer(sumdb.NewTestServer(skey, u.gosum))
	prefix := "/sumdb/" + dbName
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+"/supported", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle(prefix+"/", http.StripPrefix(prefix, db))
	mux.HandleFunc("/", u.serveFile)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.counts[r.URL.Path]++
		hook := u.hook
		st := u.stalls[r.URL.Path]
		if st != nil {
			delete(u.stalls, r.URL.Path)
		}
		u.mu.Unlock()
		if hook != nil && hook(w, r) {
			if st != nil { // not served: the stall waits for the next request
				u.mu.Lock()
				u.stalls[r.URL.Path] = st
				u.mu.Unlock()
			}
			return
		}
		if st != nil && u.serveStalled(w, r, st) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return u, nil
}

func (u *Upstream) gosum(p, v string) ([]byte, error) {
	b, ok := u.sums[module.Version{Path: p, Version: v}]
	if !ok {
		return nil, fmt.Errorf("module %s@%s not found", p, v)
	}
	return []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", p, v, b.Sum, p, v, b.ModSum)), nil
}

func (u *Upstream) serveFile(w http.ResponseWriter, r *http.Request) {
	p := path.Clean(r.URL.Path)
	if strings.Contains(p, "..") {
		http.Error(w, "bad path", 400)
		return
	}
	f, err := os.Open(filepath.Join(u.Dir, filepath.FromSlash(p)))
	if err != nil {
		http.Error(w, "not found: "+p, http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.Error(w, "not found: "+p, http.StatusNotFound)
		return
	}
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// URL returns the base URL of the fake upstream.
func (u *Upstream) URL() string { return u.Server.URL }

// GOSUMDB returns the GOSUMDB value naming the test checksum database with its key.
func (u *Upstream) GOSUMDB() string { return u.VerifierKey }

// Count returns how many requests the upstream got for the URL path p.
func (u *Upstream) Count(p string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[p]
}

// Counts returns a copy of all request counts by path.
func (u *Upstream) Counts() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := make(map[string]int, len(u.counts))
	for k, v := range u.counts {
		m[k] = v
	}
	return m
}

// SetHook installs a function that sees every request first (for fault
// injection); it returns true when it wrote the answer itself.
func (u *Upstream) SetHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	u.mu.Lock()
	u.hook = h
	u.mu.Unlock()
}

// Stall makes the upstream's next answer for the URL path p (a file of the
// module tree) stop after its first n bytes, flushed, until release is
// called, the client goes away or the upstream is closed; then the rest
// follows. reached is closed when the n bytes are out: a test holds a fetch
// in flight at a known point and does its damage meanwhile. Later requests
// for p are answered at once. A hook that answers a request itself leaves
// the stall for the next one.
func (u *Upstream) Stall(p string, n int) (reached <-chan struct{}, release func()) {
	st := &stall{n: n, reached: make(chan struct{}), released: make(chan struct{})}
	u.mu.Lock()
	u.stalls[p] = st
	u.mu.Unlock()
	return st.reached, func() { st.once.Do(func() { close(st.released) }) }
}

type stall struct {
	n        int
	reached  chan struct{}
	released chan struct{}
	once     sync.Once
}

// serveStalled answers r with the file of its path, stalling after st.n
// bytes; false when there is no such file (the mux answers then).
func (u *Upstream) serveStalled(w http.ResponseWriter, r *http.Request, st *stall) bool {
	p := path.Clean(r.URL.Path)
	if strings.Contains(p, "..") {
		return false
	}
	data, err := os.ReadFile(filepath.Join(u.Dir, filepath.FromSlash(p)))
	if err != nil {
		return false
	}
	n := min(max(st.n, 0), len(data))
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(data[:n])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	close(st.reached)
	select {
	case <-st.released:
	case <-r.Context().Done():
		return true
	case <-u.closing:
	}
	w.Write(data[n:])
	return true
}

// Close stops the server; stalled answers are let go first.
func (u *Upstream) Close() {
	u.closeOnce.Do(func() { close(u.closing) })
	u.Server.Close()
}

// BaseModules is the small graph most tests start from: example.test/lib in
// two versions, its v2 major version, and example.test/Upper, whose path
// needs case-escaping (and a pre-release version that does too). Tests append
// the modules of their own.
func BaseModules() []Module {
	return []Module{
		{Path: "example.test/lib", Version: "v1.0.0", Files: map[string]string{"lib.go": "package lib\n\nfunc Hello() string { return \"hello v1.0.0\" }\n"}},
		{Path: "example.test/lib", Version: "v1.1.0", Files: map[string]string{"lib.go": "package lib\n\nfunc Hello() string { return \"hello v1.1.0\" }\n"}},
		{Path: "example.test/lib/v2", Version: "v2.0.0", Files: map[string]string{"lib.go": "package lib\n\nfunc Hello() string { return \"hello v2\" }\n"}},
		{Path: "example.test/Upper", Version: "v1.0.0-RC1", Files: map[string]string{"up.go": "package upper\n\nconst X = 1\n"}},
	}
}
