package sumdb

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testmod"
)

func TestParseGOSUMDB(t *testing.T) {
	for name := range KnownKeys {
		n, key, err := ParseGOSUMDB(name)
		if err != nil || key == "" || n == "" {
			t.Errorf("ParseGOSUMDB(%q) = %q, %q, %v", name, n, key, err)
		}
	}
	for _, bad := range []string{"", "off", "unknown.example.test", "x+y+z"} {
		if _, _, err := ParseGOSUMDB(bad); err == nil {
			t.Errorf("ParseGOSUMDB(%q) succeeded", bad)
		}
	}
}

// TestVerifier checks real module files against a real test checksum database
// served over HTTP, and a tampered file against it.
func TestVerifier(t *testing.T) {
	up := testmod.NewUpstream(t, []testmod.Module{{Path: "example.test/m", Version: "v1.0.0", Files: map[string]string{"m.go": "package m\n"}}})
	name, key, err := ParseGOSUMDB(up.GOSUMDB())
	if err != nil || name != up.SumDBName {
		t.Fatalf("ParseGOSUMDB: %q %v", name, err)
	}
	fetch := func(ctx context.Context, p string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", up.URL()+"/sumdb/"+name+"/"+p, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, errors.New(resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	v, err := NewVerifier(context.Background(), key, fetch)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mod, _ := os.ReadFile(filepath.Join(up.Dir, "example.test/m/@v/v1.0.0.mod"))
	zip := filepath.Join(up.Dir, "example.test/m/@v/v1.0.0.zip")
	if err := v.CheckLookup(ctx, "example.test/m", "v1.0.0"); err != nil {
		t.Fatalf("CheckLookup: %v", err)
	}
	if err := v.VerifyMod(ctx, "example.test/m", "v1.0.0", mod); err != nil {
		t.Fatalf("VerifyMod: %v", err)
	}
	if err := v.VerifyZip(ctx, "example.test/m", "v1.0.0", zip); err != nil {
		t.Fatalf("VerifyZip: %v", err)
	}
	var me *MismatchError
	if err := v.VerifyMod(ctx, "example.test/m", "v1.0.0", append(mod, '\n')); !errors.As(err, &me) {
		t.Fatalf("tampered go.mod: %v, want a MismatchError", err)
	}
	if err := v.VerifyMod(ctx, "example.test/none", "v1.0.0", mod); err == nil || errors.As(err, &me) {
		t.Fatalf("unknown module: %v, want a lookup error", err)
	}
}

// TestVerifierRecoversFromTransientFailure: a lookup that failed because the
// database could not be read is asked again next time, not remembered.
func TestVerifierRecoversFromTransientFailure(t *testing.T) {
	up := testmod.NewUpstream(t, []testmod.Module{{Path: "example.test/m", Version: "v1.0.0", Files: map[string]string{"m.go": "package m\n"}}})
	_, key, _ := ParseGOSUMDB(up.GOSUMDB())
	down := true
	fetch := func(ctx context.Context, p string) ([]byte, error) {
		if down {
			return nil, errors.New("connection refused")
		}
		resp, err := http.Get(up.URL() + "/sumdb/" + up.SumDBName + "/" + p)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	v, _ := NewVerifier(context.Background(), key, fetch)
	mod, _ := os.ReadFile(filepath.Join(up.Dir, "example.test/m/@v/v1.0.0.mod"))
	if err := v.VerifyMod(context.Background(), "example.test/m", "v1.0.0", mod); err == nil {
		t.Fatal("verification passed with the database down")
	}
	down = false
	if err := v.VerifyMod(context.Background(), "example.test/m", "v1.0.0", mod); err != nil {
		t.Fatalf("verification after the database came back: %v", err)
	}
}
