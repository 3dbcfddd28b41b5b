package modproxy

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/store"
)

// TestDiskFull puts the store on a small tmpfs: a zip that does not fit gets a
// 503 with the reason before any byte is sent, cached files are still served,
// the store reports itself unwritable (readiness), and everything recovers
// without a restart once space is freed. Needs root (mount).
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs; runs in .ci/run")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "berth-test-full", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })

	big := strings.Repeat("incompressible? no, but large enough to matter\n", 1)
	data := make([]byte, 3<<20)
	rand.Read(data) // incompressible: the zip stays about 3 MB, more than the disk has
	up := testmod.NewUpstream(t, []testmod.Module{
		{Path: "example.test/small", Version: "v1.0.0", Files: map[string]string{"s.go": "package small\n" + big}},
		{Path: "example.test/big", Version: "v1.0.0", Files: map[string]string{"b.go": "package big\n", "blob.bin": string(data)}},
	})
	storeDir := filepath.Join(dir, "store")
	px := startProxy(t, up.URL(), storeDir, nil)
	small := px.URL + "/example.test/small/@v/v1.0.0.zip"
	if resp, _ := get(t, "GET", small); resp.StatusCode != 200 {
		t.Fatalf("small zip: %d", resp.StatusCode)
	}
	px.Wait(t.Context())

	resp, body := get(t, "GET", px.URL+"/example.test/big/@v/v1.0.0.zip")
	if resp.StatusCode != 503 || !strings.Contains(string(body), "disk is full") {
		t.Fatalf("big zip on a full disk: %d %.200q; want 503 saying the disk is full", resp.StatusCode, body)
	}
	if resp, _ := get(t, "GET", small); resp.StatusCode != 200 {
		t.Fatalf("cached zip while the disk is full: %d", resp.StatusCode)
	}
	// Fill the disk completely: the store reports itself unwritable.
	filler := filepath.Join(dir, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").Run()
	d := px.Core().Store().(*store.Disk)
	if err := d.CheckWritable(); err == nil {
		t.Fatal("CheckWritable passed on a full disk; /readyz would lie")
	}
	// Space returns: no restart needed.
	os.Remove(filler)
	if err := d.CheckWritable(); err != nil {
		t.Fatalf("CheckWritable after freeing space: %v", err)
	}
	// A module that fits now gets stored.
	resp, body = get(t, "GET", px.URL+"/example.test/small/@v/v1.0.0.mod")
	if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("module example.test/small")) {
		t.Fatalf("after recovery: %d %.200q", resp.StatusCode, body)
	}
}
