// Package storetest is the compliance suite of the store seam: a backend is
// done when its test calls Run and it passes. The suite checks what the proxy,
// eviction, warm, export and import rely on: content is visible under a key
// only when committed and whole, concurrent writers of one key leave one of
// their contents, a crash leaves nothing visible, keys are checked, missing
// keys say fs.ErrNotExist, modification times are kept, large files stream in
// bounded memory, and the optional abilities (Walker, Cleaner, Reserver,
// Checker, TempDirer) do what they promise when a backend has them.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/store"
)

// Run runs the suite. newStore returns a new, empty store for one subtest,
// which it owns (clean up with t.Cleanup); subtests run in parallel, each on
// its own store, but for the large-file test, which measures memory.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("LargeFile", func(t *testing.T) { testLargeFile(t, newStore(t)) })
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"NotFound", testNotFound},
		{"BadKeys", testBadKeys},
		{"AtomicVisibility", testAtomicVisibility},
		{"ReadAtWhileWriting", testReadAtWhileWriting},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CloseWithoutCommit", testCloseWithoutCommit},
		{"CommitThenClose", testCommitThenClose},
		{"Overwrite", testOverwrite},
		{"CrashLeftovers", testCrashLeftovers},
		{"ModTime", testModTime},
		{"Remove", testRemove},
		{"Walk", testWalk},
		{"Reserve", testReserve},
		{"Check", testCheck},
		{"TempDir", testTempDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

const key = "example.test/lib/@v/v1.0.0.zip"

// content returns n deterministic bytes that differ with seed.
func content(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1}).Read(b)
	return b
}

func put(t *testing.T, st store.Store, key string, b []byte, mod time.Time) {
	t.Helper()
	if err := store.Put(t.Context(), st, key, bytes.NewReader(b), mod); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// read returns the committed content of key through Open, checking that the
// File's Stat agrees with its length and with Store.Stat.
func read(t *testing.T, st store.Store, key string) []byte {
	t.Helper()
	f, err := st.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatalf("File.Stat(%q): %v", key, err)
	}
	if fi.Size() != int64(len(b)) {
		t.Errorf("File.Stat(%q).Size() = %d, but it reads %d bytes", key, fi.Size(), len(b))
	}
	info, err := st.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if info.Size != int64(len(b)) {
		t.Errorf("Stat(%q).Size = %d, but it reads %d bytes", key, info.Size, len(b))
	}
	return b
}

// absent checks that nothing is visible under key.
func absent(t *testing.T, st store.Store, key, when string) {
	t.Helper()
	if f, err := st.Open(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			f.Close()
		}
		t.Errorf("%s: Open(%q) = %v, want an error wrapping fs.ErrNotExist", when, key, err)
	}
	if _, err := st.Stat(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: Stat(%q) = %v, want an error wrapping fs.ErrNotExist", when, key, err)
	}
	if ok, err := store.Has(t.Context(), st, key); ok || err != nil {
		t.Errorf("%s: Has(%q) = %v, %v, want false, nil", when, key, ok, err)
	}
}

// keys returns the sorted keys a walk of prefix lists, with their sizes, or
// nil when st is not a Walker.
func keys(t *testing.T, st store.Store, prefix string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := store.Walk(t.Context(), st, prefix, func(k string, info store.Info) error {
		if _, dup := got[k]; dup {
			t.Errorf("Walk(%q) lists %q twice", prefix, k)
		}
		got[k] = info.Size
		return nil
	})
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		t.Fatalf("Walk(%q): %v", prefix, err)
	}
	return got
}

func create(t *testing.T, st store.Store, key string) store.Writer {
	t.Helper()
	w, err := st.Create(t.Context(), key)
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	return w
}

func write(t *testing.T, w io.Writer, b []byte) {
	t.Helper()
	if n, err := w.Write(b); err != nil || n != len(b) {
		t.Fatalf("Write of %d bytes: %d, %v", len(b), n, err)
	}
}

func testNotFound(t *testing.T, st store.Store) {
	ctx := t.Context()
	absent(t, st, key, "empty store")
	if err := st.Remove(ctx, key); err != nil {
		t.Errorf("Remove of a missing key: %v, want nil", err)
	}
	// A key that is a prefix of a committed key (a directory on disk) is no
	// entry either, and removing it removes nothing.
	put(t, st, key, []byte("zip"), time.Time{})
	for _, k := range []string{"example.test", "example.test/lib/@v"} {
		absent(t, st, k, "a prefix of a committed key")
		if err := st.Remove(ctx, k); err != nil {
			t.Errorf("Remove(%q), a prefix of a committed key: %v, want nil", k, err)
		}
	}
	absent(t, st, key+"x", "a key a committed key is a prefix of")
	if got := read(t, st, key); string(got) != "zip" {
		t.Errorf("after removing its prefixes, %q holds %q", key, got)
	}
}

func testBadKeys(t *testing.T, st store.Store) {
	ctx := t.Context()
	bad := []string{"", "/a", "a//b", "a/", "a/../b", "..", "a/./b", "a\\b", "a\x00b", "a/" + store.TempName("x") + "/b", store.TempName("1")}
	for _, k := range bad {
		for _, m := range []struct {
			name string
			call func() error
		}{
			{"Open", func() error { _, err := st.Open(ctx, k); return err }},
			{"Stat", func() error { _, err := st.Stat(ctx, k); return err }},
			{"Create", func() error {
				w, err := st.Create(ctx, k)
				if err == nil {
					w.Close()
				}
				return err
			}},
			{"Remove", func() error { return st.Remove(ctx, k) }},
			{"Put", func() error { return store.Put(ctx, st, k, bytes.NewReader(nil), time.Time{}) }},
		} {
			if err := m.call(); !errors.Is(err, store.ErrBadKey) {
				t.Errorf("%s(%q) = %v, want an error wrapping store.ErrBadKey", m.name, k, err)
			}
		}
	}
	for _, p := range []string{"/a", "a\\b/", "a\x00/", "a/../", "a//"} {
		err := store.Walk(ctx, st, p, func(string, store.Info) error { return nil })
		if !errors.Is(err, store.ErrBadKey) && !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("Walk(%q) = %v, want an error wrapping store.ErrBadKey", p, err)
		}
	}
	if got := keys(t, st, ""); len(got) > 0 {
		t.Errorf("bad keys left %v", got)
	}
}

func testAtomicVisibility(t *testing.T, st store.Store) {
	ctx := t.Context()
	want := content(1, 300<<10)
	w := create(t, st, key)
	defer w.Close()
	absent(t, st, key, "created, nothing written")
	write(t, w, want[:1000])
	absent(t, st, key, "partly written")
	if got := keys(t, st, ""); len(got) > 0 {
		t.Errorf("Walk during a write lists %v", got)
	}
	write(t, w, want[1000:])
	absent(t, st, key, "written, not committed")
	if err := w.Commit(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, st, key); !bytes.Equal(got, want) {
		t.Fatalf("committed %d bytes, read %d different ones", len(want), len(got))
	}
	if w := keys(t, st, ""); w != nil && (len(w) != 1 || w[key] != int64(len(want))) {
		t.Errorf("Walk after Commit lists %v, want only %s of %d bytes", w, key, len(want))
	}
}

func testReadAtWhileWriting(t *testing.T, st store.Store) {
	ctx := t.Context()
	w := create(t, st, key)
	defer w.Close()
	want := content(2, 1<<20)
	const chunk = 4 << 10
	var written atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		// A reader follows the writer as a flight's clients do, reading only
		// what has been written.
		buf := make([]byte, 64<<10)
		var off int64
		for off < int64(len(want)) {
			n := written.Load() - off
			if n == 0 {
				select {
				case <-done:
					if written.Load() == off {
						return
					}
				default:
					runtime.Gosched()
				}
				continue
			}
			n = min(n, int64(len(buf)))
			got, err := w.ReadAt(buf[:n], off)
			if err != nil && !(err == io.EOF && int64(got) == n) {
				t.Errorf("ReadAt(%d bytes at %d) during the write: %d, %v", n, off, got, err)
				return
			}
			if !bytes.Equal(buf[:got], want[off:off+int64(got)]) {
				t.Errorf("ReadAt at %d during the write reads other bytes than were written", off)
				return
			}
			off += int64(got)
		}
	})
	for off := 0; off < len(want); off += chunk {
		write(t, w, want[off:off+chunk])
		written.Store(int64(off + chunk))
	}
	close(done)
	wg.Wait()
	if err := w.Commit(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// After Commit, until Close, what was written reads back whole.
	got := make([]byte, len(want))
	if n, err := w.ReadAt(got, 0); n != len(want) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt after Commit: %d, %v", n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("ReadAt after Commit reads other bytes than were written")
	}
	tail := make([]byte, 10)
	if n, err := w.ReadAt(tail, int64(len(want)-5)); n != 5 || err != io.EOF {
		t.Errorf("ReadAt across the end after Commit: %d, %v, want 5, io.EOF", n, err)
	}
}

func testConcurrentWriters(t *testing.T, st store.Store) {
	ctx := t.Context()
	const writers, size = 8, 256 << 10
	sums := map[[32]byte]int{}
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = content(uint64(100+i), size)
		sums[sha256.Sum256(contents[i])] = i
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	// Readers opening the key meanwhile see nothing or one whole content.
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				f, err := st.Open(ctx, key)
				if errors.Is(err, fs.ErrNotExist) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					t.Errorf("Open during concurrent commits: %v", err)
					return
				}
				b, err := io.ReadAll(f)
				f.Close()
				if _, ok := sums[sha256.Sum256(b)]; err != nil || !ok {
					t.Errorf("Open during concurrent commits read %d bytes that are none of the contents (err %v)", len(b), err)
					return
				}
			}
		})
	}
	start := make(chan struct{})
	var writing sync.WaitGroup
	for i := range writers {
		writing.Go(func() {
			w, err := st.Create(ctx, key)
			if err != nil {
				t.Errorf("writer %d: Create: %v", i, err)
				return
			}
			defer w.Close()
			<-start
			for off := 0; off < size; off += 32 << 10 {
				if _, err := w.Write(contents[i][off : off+32<<10]); err != nil {
					t.Errorf("writer %d: Write: %v", i, err)
					return
				}
			}
			if err := w.Commit(ctx, time.Time{}); err != nil {
				t.Errorf("writer %d: Commit: %v", i, err)
			}
		})
	}
	close(start)
	writing.Wait()
	close(done)
	wg.Wait()
	got := read(t, st, key)
	if _, ok := sums[sha256.Sum256(got)]; !ok {
		t.Fatalf("after %d writers committed one key, it holds %d bytes that are none of their contents", writers, len(got))
	}
	if k := keys(t, st, ""); k != nil && (len(k) != 1 || k[key] != size) {
		t.Errorf("after concurrent commits Walk lists %v, want only %s", k, key)
	}
}

func testCloseWithoutCommit(t *testing.T, st store.Store) {
	ctx := t.Context()
	w := create(t, st, key)
	write(t, w, content(3, 100<<10))
	if err := w.Close(); err != nil {
		t.Fatalf("Close without Commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	absent(t, st, key, "closed without Commit")
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := w.Commit(ctx, time.Time{}); err == nil {
		t.Error("Commit after Close succeeded")
	}
	absent(t, st, key, "Commit after Close")
	if n, err := store.RemoveTemp(st, 0); n != 0 || err != nil {
		t.Errorf("a writer closed without Commit left %d temporaries (%v)", n, err)
	}
	// An abandoned overwrite leaves the committed content as it was.
	put(t, st, key, []byte("old"), time.Time{})
	w = create(t, st, key)
	write(t, w, []byte("new content"))
	w.Close()
	if got := read(t, st, key); string(got) != "old" {
		t.Errorf("an overwrite closed without Commit left %q, want %q", got, "old")
	}
	if k := keys(t, st, ""); k != nil && (len(k) != 1 || k[key] != 3) {
		t.Errorf("Walk lists %v, want only %s", k, key)
	}
}

func testCommitThenClose(t *testing.T, st store.Store) {
	ctx := t.Context()
	w := create(t, st, key)
	write(t, w, []byte("whole"))
	if err := w.Commit(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(" and more")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Commit(ctx, time.Time{}); err == nil {
		t.Error("a second Commit succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close after Commit: %v", err)
	}
	if got := read(t, st, key); string(got) != "whole" {
		t.Errorf("after Commit and Close the key holds %q, want %q", got, "whole")
	}
}

func testOverwrite(t *testing.T, st store.Store) {
	ctx := t.Context()
	a, b := bytes.Repeat([]byte("a"), 512<<10), bytes.Repeat([]byte("b"), 256<<10)
	put(t, st, key, a, time.Time{})
	f, err := st.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	put(t, st, key, b, time.Time{})
	if got := read(t, st, key); !bytes.Equal(got, b) {
		t.Fatalf("after an overwrite the key holds %d bytes, not the new content", len(got))
	}
	// A File opened before the overwrite reads the content it opened, whole,
	// or fails; never a mix (a client is being served from it).
	old, err := io.ReadAll(f)
	if err == nil && !bytes.Equal(old, a) {
		t.Errorf("a File opened before an overwrite read %d bytes that are not the old content", len(old))
	}
}

func testCrashLeftovers(t *testing.T, st store.Store) {
	ctx := t.Context()
	// Writers abandoned without Close, as by a crash or kill.
	for i, k := range []string{key, "example.test/lib/@v/list", "sumdb/sum.example/lookup/x@v1.0.0"} {
		w := create(t, st, k)
		t.Cleanup(func() { w.Close() })
		write(t, w, content(uint64(i), 10<<10))
	}
	put(t, st, "example.test/lib/@v/v1.0.0.mod", []byte("module example.test/lib\n"), time.Time{})
	for _, k := range []string{key, "example.test/lib/@v/list", "sumdb/sum.example/lookup/x@v1.0.0"} {
		absent(t, st, k, "abandoned writer")
	}
	want := map[string]int64{"example.test/lib/@v/v1.0.0.mod": 24}
	if k := keys(t, st, ""); k != nil && !equalMaps(k, want) {
		t.Errorf("with abandoned writers Walk lists %v, want %v", k, want)
	}
	if _, ok := st.(store.Cleaner); !ok {
		if n, err := store.RemoveTemp(st, 0); n != 0 || err != nil {
			t.Errorf("RemoveTemp of a store that is not a Cleaner: %d, %v", n, err)
		}
		return
	}
	// A young writer survives a cleaning with a minimum age and still commits.
	young := create(t, st, "example.test/young/@v/list")
	defer young.Close()
	write(t, young, []byte("v1.0.0\n"))
	if n, err := store.RemoveTemp(st, time.Hour); n != 0 || err != nil {
		t.Errorf("RemoveTemp(1h) with only young leftovers: removed %d, %v; want 0, nil", n, err)
	}
	write(t, young, []byte("v1.1.0\n"))
	if err := young.Commit(ctx, time.Time{}); err != nil {
		t.Fatalf("a young writer cannot commit after RemoveTemp(1h): %v", err)
	}
	if got := read(t, st, "example.test/young/@v/list"); string(got) != "v1.0.0\nv1.1.0\n" {
		t.Errorf("a young writer committed %q after RemoveTemp(1h)", got)
	}
	// minAge 0 removes every leftover, and nothing committed.
	if n, err := store.RemoveTemp(st, 0); n != 3 || err != nil {
		t.Errorf("RemoveTemp(0) with 3 abandoned writers: removed %d, %v; want 3, nil", n, err)
	}
	if n, err := store.RemoveTemp(st, 0); n != 0 || err != nil {
		t.Errorf("a second RemoveTemp(0): removed %d, %v; want 0, nil", n, err)
	}
	want["example.test/young/@v/list"] = 14
	if k := keys(t, st, ""); k != nil && !equalMaps(k, want) {
		t.Errorf("after RemoveTemp Walk lists %v, want %v", k, want)
	}
	if got := read(t, st, "example.test/lib/@v/v1.0.0.mod"); len(got) != 24 {
		t.Errorf("RemoveTemp changed a committed key: %q", got)
	}
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testModTime(t *testing.T, st store.Store) {
	ctx := t.Context()
	t0 := time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)
	check := func(key string, want time.Time, slack time.Duration) {
		t.Helper()
		info, err := st.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if d := info.ModTime.Sub(want).Abs(); d > slack {
			t.Errorf("Stat(%q).ModTime = %v, want %v", key, info.ModTime, want)
		}
		f, err := st.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if d := fi.ModTime().Sub(want).Abs(); d > slack {
			t.Errorf("Open(%q).Stat().ModTime() = %v, want %v", key, fi.ModTime(), want)
		}
	}
	w := create(t, st, key)
	defer w.Close()
	write(t, w, []byte("zip"))
	if err := w.Commit(ctx, t0); err != nil {
		t.Fatal(err)
	}
	check(key, t0, time.Second)
	if k := mods(t, st); k != nil && k[key].Sub(t0).Abs() > time.Second {
		t.Errorf("Walk reports ModTime %v for %s, want %v", k[key], key, t0)
	}
	// A recommit with a later time moves it (lists keep the time they were
	// last confirmed upstream this way).
	put(t, st, key, []byte("zip"), t0.Add(time.Hour))
	check(key, t0.Add(time.Hour), time.Second)
	// Zero means now.
	before := time.Now()
	put(t, st, "example.test/lib/@v/list", []byte("v1.0.0\n"), time.Time{})
	after := time.Now()
	check("example.test/lib/@v/list", before.Add(after.Sub(before)/2), after.Sub(before)/2+time.Second)
}

// mods returns the modification times a walk reports, or nil when st is not
// a Walker.
func mods(t *testing.T, st store.Store) map[string]time.Time {
	got := map[string]time.Time{}
	err := store.Walk(t.Context(), st, "", func(k string, info store.Info) error {
		got[k] = info.ModTime
		return nil
	})
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func testRemove(t *testing.T, st store.Store) {
	ctx := t.Context()
	put(t, st, key, []byte("zip"), time.Time{})
	put(t, st, "example.test/lib/@v/v1.0.0.mod", []byte("mod"), time.Time{})
	if err := st.Remove(ctx, key); err != nil {
		t.Fatal(err)
	}
	absent(t, st, key, "removed")
	if err := st.Remove(ctx, key); err != nil {
		t.Errorf("removing a removed key: %v", err)
	}
	if got := read(t, st, "example.test/lib/@v/v1.0.0.mod"); string(got) != "mod" {
		t.Errorf("Remove of a neighbour changed %q", got)
	}
	// The key can be written again.
	put(t, st, key, []byte("zip again"), time.Time{})
	if got := read(t, st, key); string(got) != "zip again" {
		t.Errorf("rewritten after Remove: %q", got)
	}
}

func testWalk(t *testing.T, st store.Store) {
	ctx := t.Context()
	files := map[string]int64{
		"example.test/one/two/@v/list":         7,
		"example.test/one/two/@v/v1.0.0.mod":   20,
		"example.test/one/two/@v/v1.0.0.zip":   300,
		"example.test/one/two/v2/@v/list":      7,
		"example.test/one/two-other/@v/list":   14,
		"example.test/one/two-other/@v/v1.mod": 1,
		"sumdb/sum.example/lookup/x@v1.0.0":    100,
		"sumdb/sum.example/supported":          0,
	}
	for k, n := range files {
		put(t, st, k, content(uint64(n), int(n)), time.Time{})
	}
	// An open writer and an abandoned one are never listed.
	w := create(t, st, "example.test/one/two/@v/v1.1.0.zip")
	defer w.Close()
	write(t, w, []byte("partial"))
	abandoned := create(t, st, "example.test/one/three/@v/list")
	t.Cleanup(func() { abandoned.Close() })
	write(t, abandoned, []byte("v1.0.0\n"))

	if _, ok := st.(store.Walker); !ok {
		err := store.Walk(ctx, st, "", func(string, store.Info) error { return nil })
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("Walk of a store that is not a Walker: %v, want errors.ErrUnsupported", err)
		}
		return
	}
	under := func(prefix string) map[string]int64 {
		m := map[string]int64{}
		for k, n := range files {
			if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
				m[k] = n
			}
		}
		return m
	}
	for _, tc := range []struct {
		prefix string
		n      int // how many keys, as a check on under
	}{
		{"", 8},
		{"example.test/", 6},
		{"example.test/one/two/", 4},    // two/v2 too: it is under two/
		{"example.test/one/two/@v/", 3}, // not two-other
		{"example.test/one/two", 6},     // a string prefix: two-other too
		{"example.test/one/two-other/@v/", 2},
		{"example.test/one/two/@v/list", 1},
		{"example.test/one/three/", 0},
		{"sumdb/sum.example/", 2},
		{"sumdb/sum.example/lookup/", 1},
		{"nothing/here/", 0},
		{"exa", 6},
	} {
		want := under(tc.prefix)
		if len(want) != tc.n {
			t.Fatalf("test table: %d files under %q, want %d", len(want), tc.prefix, tc.n)
		}
		if got := keys(t, st, tc.prefix); !equalMaps(got, want) {
			t.Errorf("Walk(%q) lists %v, want %v", tc.prefix, got, want)
		}
	}
	// fn's error stops the walk and is returned.
	stop := errors.New("stop")
	calls := 0
	err := store.Walk(ctx, st, "", func(string, store.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Walk with fn failing at once: %d calls, %v; want 1 call, the error", calls, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	calls = 0
	err = store.Walk(cctx, st, "", func(string, store.Info) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls == len(files) {
		t.Errorf("Walk with a canceled context: %d calls, %v; want it to stop with context.Canceled", calls, err)
	}
	// Keys listed open.
	var listed []string
	store.Walk(ctx, st, "example.test/one/two/@v/", func(k string, _ store.Info) error { listed = append(listed, k); return nil })
	sort.Strings(listed)
	if !slices.Equal(listed, []string{"example.test/one/two/@v/list", "example.test/one/two/@v/v1.0.0.mod", "example.test/one/two/@v/v1.0.0.zip"}) {
		t.Errorf("Walk lists %v", listed)
	}
	for _, k := range listed {
		if got := read(t, st, k); int64(len(got)) != files[k] {
			t.Errorf("%s: Walk says %d bytes, Open reads %d", k, files[k], len(got))
		}
	}
}

func testReserve(t *testing.T, st store.Store) {
	ctx := t.Context()
	w := create(t, st, key)
	defer w.Close()
	if err := store.Reserve(w, 4<<20); err != nil {
		t.Fatalf("Reserve(4 MiB): %v", err)
	}
	absent(t, st, key, "reserved")
	write(t, w, []byte("small"))
	if err := w.Commit(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Reserving space does not change the content's size.
	if got := read(t, st, key); string(got) != "small" {
		t.Errorf("reserved 4 MiB, wrote 5 bytes, read %d bytes", len(got))
	}
}

func testCheck(t *testing.T, st store.Store) {
	if err := store.Check(t.Context(), st); err != nil {
		t.Errorf("Check of a new store: %v", err)
	}
	if k := keys(t, st, ""); len(k) > 0 {
		t.Errorf("Check left %v", k)
	}
}

func testTempDir(t *testing.T, st store.Store) {
	dir, err := store.TempDir(st)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Fatalf("TempDir %s: %d entries, %v; want an empty directory", dir, len(ents), err)
	}
	if err := os.MkdirAll(dir+"/example.test/lib/@v", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/example.test/lib/@v/list", []byte("v1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k := keys(t, st, ""); len(k) > 0 {
		t.Errorf("Walk lists files of a TempDir: %v", k)
	}
	absent(t, st, "example.test/lib/@v/list", "staged in a TempDir")
}

func testLargeFile(t *testing.T, st store.Store) {
	ctx := t.Context()
	size := 64 << 20
	if testing.Short() {
		size = 16 << 20
	}
	const chunk = 1 << 20
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	src := rand.NewChaCha8([32]byte{'l', 'a', 'r', 'g', 'e'})
	buf := make([]byte, chunk)
	h := sha256.New()
	w := create(t, st, key)
	defer w.Close()
	if err := store.Reserve(w, int64(size)); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < size; off += chunk {
		src.Read(buf)
		h.Write(buf)
		write(t, w, buf)
		if off%(8*chunk) == 0 {
			sample()
		}
	}
	var want [32]byte
	h.Sum(want[:0])
	if err := w.Commit(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	sample()
	w.Close()

	f, err := st.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h.Reset()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil || n != int64(size) {
		t.Fatalf("reading %d bytes back: %d, %v", size, n, err)
	}
	sample()
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Fatalf("%d MiB read back with another SHA-256", size>>20)
	}
	// The end, by offset.
	last := make([]byte, 100)
	if n, err := f.ReadAt(last, int64(size-100)); n != 100 || (err != nil && err != io.EOF) {
		t.Errorf("ReadAt of the last 100 bytes: %d, %v", n, err)
	}
	if info, err := st.Stat(ctx, key); err != nil || info.Size != int64(size) {
		t.Errorf("Stat: %+v, %v; want size %d", info, err, size)
	}
	if grown := int64(peak) - int64(base); grown > int64(size)/2 {
		t.Errorf("the heap grew by %d MiB while %d MiB were streamed through the store: content is buffered in memory", grown>>20, size>>20)
	}
	t.Logf("%d MiB streamed; the heap grew by at most %d KiB", size>>20, (int64(peak)-int64(base))>>10)
}
