package airgap

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Need is one module version a build needs from the store.
type Need struct {
	module.Version
	// ModOnly reports that only the go.mod file is needed (a go.sum line
	// ending in /go.mod with no line for the zip): the module is in the module
	// graph but none of its packages are built.
	ModOnly bool
}

// String returns "path@version".
func (n Need) String() string { return n.Path + "@" + n.Version.Version }

// Needs is a set of module versions. A version needed in full by one input and
// for its go.mod only by another is needed in full.
type Needs struct {
	m map[module.Version]bool // value: ModOnly
}

// Add records a need.
func (s *Needs) Add(n Need) {
	if s.m == nil {
		s.m = map[module.Version]bool{}
	}
	modOnly, ok := s.m[n.Version]
	s.m[n.Version] = n.ModOnly && (!ok || modOnly)
}

// Len returns how many module versions are needed.
func (s *Needs) Len() int { return len(s.m) }

// List returns the needs sorted by path and version.
func (s *Needs) List() []Need {
	out := make([]Need, 0, len(s.m))
	for v, modOnly := range s.m {
		out = append(out, Need{Version: v, ModOnly: modOnly})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return semver.Compare(out[i].Version.Version, out[j].Version.Version) < 0
	})
	return out
}

func checkNeed(where string, p, v string) (module.Version, error) {
	if err := module.Check(p, v); err != nil {
		return module.Version{}, fmt.Errorf("%s: %w (want a module path and a semantic version such as v1.2.3 or a pseudo-version; resolve branches and queries with go list -m first)", where, err)
	}
	if semver.Canonical(v) != strings.TrimSuffix(v, "+incompatible") {
		return module.Version{}, fmt.Errorf("%s: %s@%s: version is not canonical (want a tagged version or pseudo-version such as v1.2.3)", where, p, v)
	}
	return module.Version{Path: p, Version: v}, nil
}

// ParseGoSum adds the module versions of a go.sum file: a "mod ver h1:..."
// line needs the zip and go.mod, a "mod ver/go.mod h1:..." line the go.mod.
func ParseGoSum(name string, data []byte, s *Needs) error {
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, i+1)
		if len(f) != 3 {
			return fmt.Errorf("%s: not a go.sum line (want: module version hash)", where)
		}
		ver, modOnly := strings.CutSuffix(f[1], "/go.mod")
		mv, err := checkNeed(where, f[0], ver)
		if err != nil {
			return err
		}
		s.Add(Need{Version: mv, ModOnly: modOnly})
	}
	return nil
}

// ParseGoMod adds the require lines of a go.mod file. Only the listed versions
// are added, not their dependencies: warm from go.sum, or from the output of
// `go list -m all`, to get the whole module graph.
func ParseGoMod(name string, data []byte, s *Needs) error {
	f, err := modfile.ParseLax(name, data, nil)
	if err != nil {
		return err
	}
	for _, r := range f.Require {
		mv, err := checkNeed(name, r.Mod.Path, r.Mod.Version)
		if err != nil {
			return err
		}
		s.Add(Need{Version: mv})
	}
	return nil
}

// ParseListOutput adds the modules of `go list -m all` output: "path version"
// per line; lines without a version (the main module) and lines of replaced
// modules pointing at directories are skipped; "path version => path version"
// uses the replacement.
func ParseListOutput(name string, data []byte, s *Needs) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if i := indexOf(f, "=>"); i >= 0 {
			f = f[i+1:]
		}
		if len(f) < 2 || (len(f) > 0 && (strings.HasPrefix(f[0], ".") || strings.HasPrefix(f[0], "/"))) {
			continue
		}
		mv, err := checkNeed(fmt.Sprintf("%s:%d", name, n), f[0], f[1])
		if err != nil {
			return err
		}
		s.Add(Need{Version: mv})
	}
	return sc.Err()
}

func indexOf(f []string, s string) int {
	for i, x := range f {
		if x == s {
			return i
		}
	}
	return -1
}

// ParseArg parses a module@version argument.
func ParseArg(arg string, s *Needs) error {
	p, v, ok := strings.Cut(arg, "@")
	if !ok {
		return fmt.Errorf("%q: want module@version, or a go.sum, go.mod or `go list -m all` output file", arg)
	}
	mv, err := checkNeed("argument", p, v)
	if err != nil {
		return err
	}
	s.Add(Need{Version: mv})
	return nil
}

// ReadInput adds what one command-line input names: a module@version, a
// directory (its go.sum, else its go.mod), a go.sum or go.mod file, or a file
// holding `go list -m all` output ("-" reads standard input).
func ReadInput(arg string, s *Needs) error {
	if arg != "-" {
		info, err := os.Stat(arg)
		if err != nil {
			if strings.Contains(arg, "@") {
				return ParseArg(arg, s)
			}
			return fmt.Errorf("%s: %w (give a go.sum, go.mod or `go list -m all` output file, a directory, or module@version)", arg, err)
		}
		if info.IsDir() {
			for _, n := range []string{"go.sum", "go.mod"} {
				if _, err := os.Stat(filepath.Join(arg, n)); err == nil {
					return ReadInput(filepath.Join(arg, n), s)
				}
			}
			return fmt.Errorf("%s: directory has neither go.sum nor go.mod", arg)
		}
	}
	var data []byte
	var err error
	if arg == "-" {
		data, err = readAllLimit(os.Stdin, 64<<20)
	} else {
		data, err = os.ReadFile(arg)
	}
	if err != nil {
		return err
	}
	base := filepath.Base(arg)
	switch {
	case base == "go.sum" || strings.HasSuffix(base, ".sum"):
		return ParseGoSum(arg, data, s)
	case base == "go.mod" || strings.HasSuffix(base, ".mod"):
		return ParseGoMod(arg, data, s)
	case looksLikeGoSum(data):
		return ParseGoSum(arg, data, s)
	case bytes.HasPrefix(bytes.TrimSpace(data), []byte("module ")):
		return ParseGoMod(arg, data, s)
	}
	return ParseListOutput(arg, data, s)
}

func looksLikeGoSum(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		return len(f) == 3 && strings.HasPrefix(f[2], "h1:")
	}
	return false
}
