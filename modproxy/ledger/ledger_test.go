package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/store"
)

const (
	modA, modB = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "h1:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB="
	zipA, zipB = "h1:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC=", "h1:DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD="
)

func TestLedger(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l := &Ledger{Store: st, Match: func(p string) bool { return strings.HasPrefix(p, "corp.example/") }}
	const p, v = "corp.example/Team/lib", "v1.0.0"
	revA := &source.Revision{VCS: "git", URL: "https://corp.example/team/lib", Hash: "aaaa1111", Ref: "refs/tags/v1.0.0", Sum: zipA, GoModSum: modA}

	if l.Covers("example.com/pub") || !l.Covers(p) {
		t.Error("Covers")
	}
	// The first fetch of the go.mod records both hashes and the origin.
	if err := l.Check(ctx, p, v, proto.KindMod, modA, revA); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := l.Lookup(ctx, p, v)
	if err != nil || !ok || rec.Mod != modA || rec.Zip != zipA || rec.Commit != "aaaa1111" || rec.Lines != 1 {
		t.Fatalf("record: %+v %v %v", rec, ok, err)
	}
	key, _ := Key(p, v)
	if key != "ledger/corp.example/!team/lib@v1.0.0" {
		t.Errorf("key %q", key)
	}
	if mv, err := ParseKey(key); err != nil || mv.Path != p || mv.Version != v {
		t.Errorf("ParseKey: %v %v", mv, err)
	}
	// The same content again changes nothing.
	if err := l.Check(ctx, p, v, proto.KindZip, zipA, revA); err != nil {
		t.Fatal(err)
	}
	// A moved tag: another zip at another commit. Refused, naming both.
	revB := &source.Revision{VCS: "git", URL: revA.URL, Hash: "bbbb2222", Ref: "refs/tags/v1.0.0", Sum: zipB, GoModSum: modA}
	err = l.Check(ctx, p, v, proto.KindZip, zipB, revB)
	var me *MismatchError
	if !errors.As(err, &me) || me.File != "zip" {
		t.Fatalf("moved tag: %v", err)
	}
	for _, want := range []string{zipA, zipB, "aaaa1111", "bbbb2222", p + "@" + v} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal does not name %s: %v", want, err)
		}
	}
	// Its go.mod is the same, but the other hash it comes with is not.
	if err := l.Check(ctx, p, v, proto.KindMod, modA, revB); !errors.As(err, &me) {
		t.Errorf("go.mod of a moved tag: %v", err)
	}
	// A file that is not what the go command hashed.
	if err := l.Check(ctx, p, v, proto.KindZip, zipB, revA); err == nil || errors.As(err, &me) {
		t.Errorf("file unlike its revision: %v", err)
	}

	// From a proxy (no revision), the hashes arrive one at a time.
	const q = "corp.example/other"
	if err := l.Check(ctx, q, v, proto.KindMod, modB, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(ctx, q, v, proto.KindZip, zipB, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(ctx, q, v, proto.KindMod, modA, nil); !errors.As(err, &me) || me.File != "go.mod" {
		t.Errorf("changed go.mod: %v", err)
	}
	// It survives a restart: a new Ledger over the same store.
	l2 := &Ledger{Store: st}
	rec, ok, err = l2.Lookup(ctx, q, v)
	if err != nil || !ok || rec.Mod != modB || rec.Zip != zipB || rec.Lines != 2 {
		t.Errorf("after restart: %+v %v %v", rec, ok, err)
	}
	if err := l2.Check(ctx, p, v, proto.KindZip, zipB, revB); !errors.As(err, &me) {
		t.Errorf("after restart, moved tag: %v", err)
	}
}

func TestMerge(t *testing.T) {
	a := []byte(`{"time":"2025-01-01T00:00:00Z","mod":"` + modA + `"}` + "\n")
	b := []byte(`{"time":"2025-01-02T00:00:00Z","mod":"` + modA + `","zip":"` + zipA + `","commit":"c1"}` + "\n")
	out, err := Merge("corp.example/x", "v1.0.0", a, b)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Parse(out)
	if err != nil || rec.Lines != 2 || rec.Zip != zipA || rec.Commit != "c1" || rec.Mod != modA {
		t.Errorf("merged: %+v %v\n%s", rec, err, out)
	}
	bad := []byte(`{"time":"2025-01-02T00:00:00Z","zip":"` + zipB + `"}` + "\n")
	if _, err := Merge("corp.example/x", "v1.0.0", out, bad); !errors.As(err, new(*MismatchError)) {
		t.Errorf("contradicting bundle: %v", err)
	}
	if _, err := Parse([]byte(`{"zip":"md5:x"}`)); err == nil {
		t.Error("a hash that is not h1: parsed")
	}
	if _, err := Parse([]byte(`{"surprise":1}`)); err == nil {
		t.Error("an unknown field parsed")
	}
}
