package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/berth-dev/berth/internal/testmod"
)

// graph is a generated module graph and the main module that requires it.
type graph struct {
	built        []testmod.Built
	gomod, gosum string
	zipBytes     int
}

// makeGraph generates nLeaves leaf modules (every fourth in two versions, so
// that the graph has superseded versions whose go.mod alone is needed, two of
// them with a 1 MB file), mids requiring four leaves each at the older
// version, and tops requiring the mids and the newer leaves; the main module
// requires the tops and lists the rest as indirect, as go mod tidy would.
func makeGraph(nLeaves int) (*graph, error) {
	var mods []testmod.Module
	var oldLeaves, newLeaves []module.Version
	for i := range nLeaves {
		p := fmt.Sprintf("example.test/leaf%d", i)
		data := make([]byte, 16<<10)
		if i < 2 {
			data = make([]byte, 512<<10)
		}
		rand.Read(data)
		files := map[string]string{"l.go": "package leaf\n", "data.txt": hex.EncodeToString(data)}
		mods = append(mods, testmod.Module{Path: p, Version: "v1.0.0", Files: files})
		oldLeaves = append(oldLeaves, module.Version{Path: p, Version: "v1.0.0"})
		if i%4 == 0 {
			mods = append(mods, testmod.Module{Path: p, Version: "v1.1.0", Files: files})
			newLeaves = append(newLeaves, module.Version{Path: p, Version: "v1.1.0"})
		}
	}
	nMids := max(nLeaves/4, 1)
	var mids []module.Version
	for i := range nMids {
		p := fmt.Sprintf("example.test/mid%d", i)
		var req []module.Version
		for j := range 4 {
			req = append(req, oldLeaves[(i*4+j*3)%nLeaves])
		}
		mods = append(mods, testmod.Module{Path: p, Version: "v1.2.0", Files: map[string]string{"m.go": "package mid\n"}, Require: dedup(req)})
		mids = append(mids, module.Version{Path: p, Version: "v1.2.0"})
	}
	nTops := 4
	var tops []module.Version
	for i := range nTops {
		p := fmt.Sprintf("example.test/top%d", i)
		var req []module.Version
		for j, m := range mids {
			if j%nTops == i || j%nTops == (i+1)%nTops {
				req = append(req, m)
			}
		}
		for j, l := range newLeaves {
			if j%nTops == i {
				req = append(req, l)
			}
		}
		mods = append(mods, testmod.Module{Path: p, Version: "v1.0.0", Files: map[string]string{"t.go": "package top\n"}, Require: req})
		tops = append(tops, module.Version{Path: p, Version: "v1.0.0"})
	}
	built, err := testmod.Build(mods)
	if err != nil {
		return nil, err
	}
	g := &graph{built: built}
	// The selected version of each path: the highest (every one is required).
	selected := map[string]string{}
	for _, b := range built {
		if v, ok := selected[b.Path]; !ok || semver.Compare(b.Version.Version, v) > 0 {
			selected[b.Path] = b.Version.Version
		}
	}
	isTop := map[string]bool{}
	for _, t := range tops {
		isTop[t.Path] = true
	}
	var gomod, gosum strings.Builder
	gomod.WriteString("module example.test/main\n\ngo 1.21\n\nrequire (\n")
	for _, b := range built {
		g.zipBytes += len(b.Zip)
		fmt.Fprintf(&gosum, "%s %s %s\n%s %s/go.mod %s\n", b.Path, b.Version.Version, b.Sum, b.Path, b.Version.Version, b.ModSum)
		if selected[b.Path] != b.Version.Version {
			continue
		}
		if isTop[b.Path] {
			fmt.Fprintf(&gomod, "\t%s %s\n", b.Path, b.Version.Version)
		} else {
			fmt.Fprintf(&gomod, "\t%s %s // indirect\n", b.Path, b.Version.Version)
		}
	}
	gomod.WriteString(")\n")
	g.gomod, g.gosum = gomod.String(), gosum.String()
	return g, nil
}

func dedup(vs []module.Version) []module.Version {
	seen := map[module.Version]bool{}
	var out []module.Version
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
