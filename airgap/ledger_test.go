package airgap

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testmod"
	"github.com/berth-dev/berth/modproxy/ledger"
	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/store"
)

// TestLedgerTravels: a private module's ledger record goes into the bundle
// and into the importing store; a bundle whose file contradicts the
// importing store's ledger is refused and nothing is imported.
func TestLedgerTravels(t *testing.T) {
	ctx := context.Background()
	private := func(p string) bool { return strings.HasPrefix(p, "corp.example/") }
	fill := func(content string) (*store.Disk, []testmod.Built) {
		st, err := store.OpenDisk(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		built, err := testmod.Build([]testmod.Module{{Path: "corp.example/lib", Version: "v1.0.0", Files: map[string]string{"l.go": content}}})
		if err != nil {
			t.Fatal(err)
		}
		l := &ledger.Ledger{Store: st, Match: private}
		for _, b := range built {
			for kind, body := range map[proto.Kind][]byte{proto.KindInfo: b.Info, proto.KindMod: b.Mod, proto.KindZip: b.Zip} {
				key, _ := proto.VersionKey(b.Version.Path, b.Version.Version, kind)
				if err := store.Put(ctx, st, key, bytes.NewReader(body), time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Check(ctx, b.Version.Path, b.Version.Version, proto.KindZip, b.Sum, nil); err != nil {
				t.Fatal(err)
			}
			if err := l.Check(ctx, b.Version.Path, b.Version.Version, proto.KindMod, b.ModSum, nil); err != nil {
				t.Fatal(err)
			}
		}
		return st, built
	}
	bundle := func(st store.Store) []byte {
		var buf bytes.Buffer
		if _, err := Export(ctx, ExportConfig{Store: st, NoSumDB: private}, &buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	src, built := fill("package lib\n")
	b := bundle(src)

	dst, _ := store.OpenDisk(t.TempDir())
	if _, err := Import(ctx, ImportConfig{Store: dst, NoSumDB: private}, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := (&ledger.Ledger{Store: dst}).Lookup(ctx, "corp.example/lib", "v1.0.0")
	if err != nil || !ok || rec.Zip != built[0].Sum || rec.Mod != built[0].ModSum {
		t.Fatalf("imported record: %+v %v %v", rec, ok, err)
	}
	// Importing it again changes nothing.
	if _, err := Import(ctx, ImportConfig{Store: dst, NoSumDB: private}, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}

	// The same version with other content, into a store that recorded the first.
	other, _ := fill("package lib // changed\n")
	_, err = Import(ctx, ImportConfig{Store: dst, NoSumDB: private}, bytes.NewReader(bundle(other)))
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "corp.example/lib") || !strings.Contains(err.Error(), built[0].Sum) {
		t.Fatalf("contradicting bundle: %v", err)
	}
	zipKey, _ := proto.VersionKey("corp.example/lib", "v1.0.0", proto.KindZip)
	got, _ := readKey(ctx, dst, zipKey, 1<<20)
	if !bytes.Equal(got, built[0].Zip) {
		t.Error("the refused bundle changed the store")
	}
}
