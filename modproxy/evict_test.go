package modproxy

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
)

// TestEviction: with a size limit, the least recently used module versions go
// first, whole (.info, .mod, .zip together), and the stored list drops them.
func TestEviction(t *testing.T) {
	blob := func() string {
		b := make([]byte, 100<<10)
		rand.Read(b)
		return string(b)
	}
	var mods []testmod.Module
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"} {
		mods = append(mods, testmod.Module{Path: "example.test/big", Version: v, Files: map[string]string{"b.go": "package big\n", "blob": blob()}})
	}
	up := testmod.NewUpstream(t, mods)
	storeDir := t.TempDir()
	px := startProxy(t, up.URL(), storeDir, func(c *Config) { c.MaxStoreSize = 350 << 10 })
	px.Wait(t.Context()) // the initial index
	fetch := func(v string) {
		t.Helper()
		for _, ext := range []string{"info", "mod", "zip"} {
			if resp, _ := get(t, "GET", px.URL+"/example.test/big/@v/"+v+"."+ext); resp.StatusCode != 200 {
				t.Fatalf("%s.%s: %d", v, ext, resp.StatusCode)
			}
		}
		px.Wait(t.Context())
	}
	if resp, _ := get(t, "GET", px.URL+"/example.test/big/@v/list"); resp.StatusCode != 200 {
		t.Fatal("list")
	}
	fetch("v1.0.0")
	fetch("v1.1.0")
	fetch("v1.2.0")
	fetch("v1.0.0") // a hit: v1.0.0 is now more recent than v1.1.0
	fetch("v1.3.0") // over the limit: v1.1.0 goes, then v1.2.0
	has := func(v string) bool {
		_, err := os.Stat(filepath.Join(storeDir, "example.test/big/@v/"+v+".zip"))
		return err == nil
	}
	if !has("v1.0.0") || !has("v1.3.0") {
		t.Errorf("recently used versions were evicted: v1.0.0 %v, v1.3.0 %v", has("v1.0.0"), has("v1.3.0"))
	}
	if has("v1.1.0") {
		t.Error("the least recently used version v1.1.0 was kept")
	}
	for _, ext := range []string{"info", "mod"} {
		if _, err := os.Stat(filepath.Join(storeDir, "example.test/big/@v/v1.1.0."+ext)); err == nil {
			t.Errorf("v1.1.0.%s left behind: eviction must remove whole versions", ext)
		}
	}
	list, _ := os.ReadFile(filepath.Join(storeDir, "example.test/big/@v/list"))
	if strings.Contains(string(list), "v1.1.0") || !strings.Contains(string(list), "v1.0.0") {
		t.Errorf("stored list after eviction: %q", list)
	}
	var total int64
	filepath.Walk(storeDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.Contains(p, "sumdb") && !strings.HasSuffix(p, "list") {
			total += info.Size()
		}
		return nil
	})
	if total > 350<<10 {
		t.Errorf("store holds %d bytes of module files, over the 350 KiB limit", total)
	}
	// An evicted version is fetched again on demand.
	fetch("v1.1.0")
}

// TestOfflineListShowsOnlyStoredVersions: offline, a module's list names only
// versions whose files the store has, so the go command never picks one it
// cannot download.
func TestOfflineListShowsOnlyStoredVersions(t *testing.T) {
	up := testmod.NewUpstream(t, testModules())
	storeDir := t.TempDir()
	px := startProxy(t, up.URL(), storeDir, nil)
	get(t, "GET", px.URL+"/example.test/lib/@v/list")
	get(t, "GET", px.URL+"/example.test/lib/@v/v1.0.0.mod")
	px.Wait(t.Context())
	off := startProxy(t, "off", storeDir, func(c *Config) { c.Offline = true })
	resp, body := get(t, "GET", off.URL+"/example.test/lib/@v/list")
	if resp.StatusCode != 200 || string(body) != "v1.0.0\n" {
		t.Fatalf("offline list: %d %q; want only the stored v1.0.0", resp.StatusCode, body)
	}
}
