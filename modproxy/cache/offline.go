package cache

import (
	"context"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
)

// Offline, a module's list and @latest are answered from the versions whose
// files the store holds, found by walking the module's @v/ keys: a store
// filled by warm, an import or a module cache often has no list at all, and
// one it has may predate versions stored since.

// storedVersion records which files of one version the store holds.
type storedVersion struct{ info, mod, zip bool }

// storedVersions returns the versions of module whose .info, .mod or .zip the
// store holds. The error is the store's: it cannot list its keys
// (errors.ErrUnsupported) or the walk failed.
func (c *Cache) storedVersions(ctx context.Context, mod string) (map[string]*storedVersion, error) {
	key, err := proto.ListKey(mod)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(key, "list") // "<escaped module>/@v/"
	vs := map[string]*storedVersion{}
	err = store.Walk(ctx, c.st, prefix, func(k string, _ store.Info) error {
		_, _, v, ok := proto.VersionOf(k)
		if !ok || strings.Contains(k[len(prefix):], "/") {
			return nil
		}
		sv := vs[v]
		if sv == nil {
			sv = &storedVersion{}
			vs[v] = sv
		}
		switch {
		case strings.HasSuffix(k, ".info"):
			sv.info = true
		case strings.HasSuffix(k, ".mod"):
			sv.mod = true
		case strings.HasSuffix(k, ".zip"):
			sv.zip = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return vs, nil
}

// offlineList answers a list offline: the lines of the stored list (if any)
// whose version has its .mod in the store, then every other stored version
// with a .mod, so that the go command never picks a version it cannot
// download here. Pseudo-versions are left out, as the protocol asks; @latest
// falls back to them. A module with no version in the store is not found.
func (c *Cache) offlineList(ctx context.Context, r proto.Request, stored []byte) (*Content, error) {
	answer := func(body []byte) *Content {
		return &Content{body: body, Size: int64(len(body)), Hit: true, Mutable: true}
	}
	vs, err := c.storedVersions(ctx, r.Module)
	if err != nil {
		c.log.Debug("cannot list a module's stored versions; answering from its stored list only", "module", r.Module, "err", err)
		if stored == nil {
			return nil, notFound("no version list of %s in berth's store and berth is offline", r.Module)
		}
		return answer(c.presentVersions(ctx, r, stored)), nil
	}
	body := []byte{}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(stored), "\n") {
		if f := strings.Fields(line); len(f) > 0 && vs[f[0]] != nil && vs[f[0]].mod {
			body = append(body, line+"\n"...)
			listed[f[0]] = true
		}
	}
	var more []string
	for v, sv := range vs {
		if sv.mod && !listed[v] && !module.IsPseudoVersion(v) {
			more = append(more, v)
		}
	}
	body = append(body, proto.FormatList(more)...)
	if stored == nil && len(vs) == 0 {
		return nil, notFound("no version of %s in berth's store and berth is offline", r.Module)
	}
	return answer(body), nil
}

// offlineLatest answers @latest offline with the stored .info of the version
// the go command would choose among those the store can serve (.info and
// .mod): the highest release, else the highest pre-release, else the newest
// pseudo-version.
func (c *Cache) offlineLatest(ctx context.Context, r proto.Request) (*Content, error) {
	vs, err := c.storedVersions(ctx, r.Module)
	if err != nil {
		return nil, notFound("%s is not cached and berth is offline (the store cannot list its versions: %v)", r.UpstreamPath(), err)
	}
	var cands []string
	for v, sv := range vs {
		if sv.info && sv.mod {
			cands = append(cands, v)
		}
	}
	best := latestOf(cands)
	if best == "" {
		return nil, notFound("no version of %s in berth's store and berth is offline", r.Module)
	}
	key, err := proto.VersionKey(r.Module, best, proto.KindInfo)
	if err != nil {
		return nil, err
	}
	body, _, err := c.readStored(ctx, key, maxMutable)
	if err != nil {
		return nil, err
	}
	if body == nil { // removed since the walk
		return nil, notFound("no version of %s in berth's store and berth is offline", r.Module)
	}
	return &Content{body: body, Size: int64(len(body)), Hit: true, Mutable: true}, nil
}

// latestOf returns the version the go command takes as latest among vs: the
// highest release, else the highest pre-release, else the newest
// pseudo-version (by its timestamp); "" for none.
func latestOf(vs []string) string {
	var release, pre, pseudo string
	for _, v := range vs {
		switch {
		case module.IsPseudoVersion(v):
			if pseudo == "" || newerPseudo(v, pseudo) {
				pseudo = v
			}
		case semver.Prerelease(v) != "":
			if pre == "" || semver.Compare(v, pre) > 0 {
				pre = v
			}
		default:
			if release == "" || semver.Compare(v, release) > 0 {
				release = v
			}
		}
	}
	switch {
	case release != "":
		return release
	case pre != "":
		return pre
	}
	return pseudo
}

func newerPseudo(a, b string) bool {
	ta, errA := module.PseudoVersionTime(a)
	tb, errB := module.PseudoVersionTime(b)
	if errA != nil || errB != nil || ta.Equal(tb) {
		return semver.Compare(a, b) > 0
	}
	return ta.After(tb)
}
