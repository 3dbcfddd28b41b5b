package airgap

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/mod/module"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy"
	"github.com/berth-dev/berth/modproxy/cache"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

// testModules is a small graph: a library in two versions (only one of them
// built), a v2 major version, a path with uppercase letters, and a module
// that requires the library (so go.sum has go.mod-only lines).
func testModules() []testmod.Module {
	return append(testmod.BaseModules(),
		testmod.Module{Path: "example.test/old", Version: "v1.0.0", Require: []module.Version{{Path: "example.test/lib", Version: "v1.0.0"}},
			Files: map[string]string{"old.go": "package old\n\nconst Y = 2\n",
				// go 1.16: an unpruned graph, so the main module's go.sum holds
				// a go.mod-only line for example.test/lib v1.0.0.
				"go.mod": "module example.test/old\n\ngo 1.16\n\nrequire example.test/lib v1.0.0\n"}},
	)
}

const mainGo = "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.test/lib\"\n\tv2 \"example.test/lib/v2\"\n\tupper \"example.test/Upper\"\n\t\"example.test/old\"\n)\n\nfunc main() { fmt.Println(lib.Hello(), v2.Hello(), upper.X, old.Y) }\n"

const mainMod = "module example.test/main\n\ngo 1.21\n\nrequire (\n\texample.test/Upper v1.0.0-RC1\n\texample.test/lib v1.1.0\n\texample.test/lib/v2 v2.0.0\n\texample.test/old v1.0.0\n)\n"

// proxyOver returns a modproxy over the disk store in dir with upstream (a
// GOPROXY list) and the checksum database key; offline serves the store only.
func proxyOver(t *testing.T, dir, upstream, sumKey string, offline bool) (*modproxy.Proxy, *store.Disk) {
	t.Helper()
	st, err := store.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := source.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	px, err := modproxy.New(modproxy.Config{Config: cache.Config{
		Store:    st,
		Source:   &source.Fetcher{Chain: chain, Client: source.NewClient(nil)},
		SumDBKey: sumKey,
		Offline:  offline || chain.Off,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	return px, st
}

// serve runs h on a loopback server for the test.
func serve(t *testing.T, h *modproxy.Proxy) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// goEnv is a hermetic environment for the real go command: its own module
// cache and GOPATH, one proxy, the test checksum database, a main module.
type goEnv struct {
	t   *testing.T
	env []string
	dir string
	bin string
}

func newGoEnv(t *testing.T, proxy, gosumdb, gosum string) *goEnv {
	t.Helper()
	bin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is required for this test: %v", err)
	}
	gocache, _ := exec.Command(bin, "env", "GOCACHE").Output()
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"GOPATH=" + filepath.Join(home, "gopath"),
		"GOMODCACHE=" + filepath.Join(home, "modcache"),
		"GOCACHE=" + strings.TrimSpace(string(gocache)),
		"GOPROXY=" + proxy,
		"GOSUMDB=" + gosumdb,
		"GOFLAGS=-modcacherw",
		"GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOTOOLCHAIN=local",
		"GOTELEMETRY=off", // its child writes under HOME after go exits: TempDir cleanup would race it
		"CGO_ENABLED=0",
	}
	dir := filepath.Join(home, "main")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mainMod), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte(mainGo), 0o644)
	if gosum != "" {
		os.WriteFile(filepath.Join(dir, "go.sum"), []byte(gosum), 0o644)
	}
	return &goEnv{t: t, env: env, dir: dir, bin: bin}
}

func (g *goEnv) run(args ...string) string {
	g.t.Helper()
	out, err := g.try(args...)
	if err != nil {
		g.t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (g *goEnv) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Dir = g.dir
	cmd.Env = g.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (g *goEnv) read(name string) string {
	b, err := os.ReadFile(filepath.Join(g.dir, name))
	if err != nil {
		g.t.Fatal(err)
	}
	return string(b)
}

// makeGoSum resolves the main module's go.sum with the go command directly
// against the fake upstream, as a developer's go.sum would be.
func makeGoSum(t *testing.T, up *testmod.Upstream) string {
	t.Helper()
	g := newGoEnv(t, up.URL(), up.GOSUMDB(), "")
	g.run("mod", "tidy")
	return g.read("go.sum")
}

// buildAndVerify builds and runs the main module and verifies the module cache.
func buildAndVerify(t *testing.T, g *goEnv) {
	t.Helper()
	g.run("mod", "download", "all")
	out := g.run("run", ".")
	if strings.TrimSpace(out) != "hello v1.1.0 hello v2 1 2" {
		t.Fatalf("go run printed %q", out)
	}
	g.run("mod", "verify")
}

// snapshot returns every file below dir with its SHA-256.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		s := sha256.Sum256(b)
		m[filepath.ToSlash(rel)] = hex.EncodeToString(s[:])
		return nil
	})
	return m
}

// entry is one tar entry of a bundle, for tampering.
type entry struct {
	hdr  tar.Header
	data []byte
}

func readBundle(t testing.TB, b []byte) []entry {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{hdr: *h, data: data})
	}
}

// writeBundle writes entries as a zstd tar; with fixManifest the manifest
// is rewritten to list the entries as they are (what a careful attacker does).
func writeBundle(t testing.TB, es []entry, fixManifest bool) []byte {
	t.Helper()
	if fixManifest {
		var m Manifest
		mi := -1
		for i, e := range es {
			if e.hdr.Name == ManifestName {
				mi = i
				if err := json.Unmarshal(e.data, &m); err != nil {
					t.Fatal(err)
				}
			}
		}
		m.Files = nil
		for _, e := range es {
			if e.hdr.Name != ManifestName && e.hdr.Typeflag == tar.TypeReg {
				s := sha256.Sum256(e.data)
				m.Files = append(m.Files, ManifestFile{Name: e.hdr.Name, Size: int64(len(e.data)), SHA256: hex.EncodeToString(s[:])})
			}
		}
		mj, _ := json.Marshal(m)
		es[mi].data = mj
	}
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range es {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(e.data)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
