package auth

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds the tokens of an auth file and reloads them when the file
// changes. A new file that does not parse is refused: the tokens in force
// stay, and one log line says why.
type Store struct {
	path string
	log  *slog.Logger

	cur atomic.Pointer[File]

	mu    sync.Mutex // serializes Reload
	stamp fileStamp
	err   error // the last refused file's error, logged once
}

// Open reads and parses the auth file at path. A world-readable file is a
// warning (it holds no secret, but names and scopes are nobody else's
// business, and a file others can read is often one others can write).
// log receives reloads and warnings; nil means slog.Default().
func Open(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{path: path, log: log}
	f, st, err := s.read()
	if err != nil {
		return nil, err
	}
	s.cur.Store(f)
	s.stamp = st
	s.warnMode(st)
	return s, nil
}

// File returns the auth file in force.
func (s *Store) File() *File { return s.cur.Load() }

// Path returns the auth file's path.
func (s *Store) Path() string { return s.path }

func (s *Store) read() (*File, fileStamp, error) {
	fh, err := os.Open(s.path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("auth file: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("auth file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("auth file %s: %w", s.path, err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("auth file %s: %w", s.path, err)
	}
	return f, stampOf(fi), nil
}

func (s *Store) warnMode(st fileStamp) {
	if st.mode&0o004 != 0 {
		s.log.Warn("the auth file is world-readable: chmod 600 it (it holds token hashes and scopes)", "file", s.path, "mode", st.mode.String())
	}
}

// Reload reads the file again if it changed (size, modification time or
// identity) and puts it in force. It reports whether it did; on an error the
// tokens in force stay.
func (s *Store) Reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		return false, s.refuse(fmt.Errorf("auth file: %w", err))
	}
	if s.stamp.same(fi) {
		return false, s.err
	}
	f, st, err := s.read()
	if err != nil {
		// Remember the stamp so a bad file is reported once, not at every poll.
		s.stamp = stampOf(fi)
		return false, s.refuse(err)
	}
	s.cur.Store(f)
	s.stamp, s.err = st, nil
	s.log.Info("auth file reloaded", "file", s.path, "tokens", len(f.Tokens), "anonymous", f.Anonymous != nil)
	s.warnMode(st)
	return true, nil
}

func (s *Store) refuse(err error) error {
	if s.err == nil || s.err.Error() != err.Error() {
		s.log.Warn("auth file not reloaded: keeping the tokens in force", "err", err)
	}
	s.err = err
	return err
}

// Watch calls Reload every interval (default 2s) until ctx is done.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	watch(ctx, interval, func() { s.Reload() })
}

// Lookup returns the token whose secret is secret. Every token's hash is
// compared, in constant time, so the time taken says nothing about which
// hash came close.
func (s *Store) Lookup(secret string) (Token, bool) {
	h := HashSecret(secret)
	var found Token
	ok := 0
	for _, t := range s.cur.Load().Tokens {
		if subtle.ConstantTimeCompare(h[:], t.Hash[:]) == 1 {
			found, ok = t, 1
		}
	}
	return found, ok == 1
}

// fileStamp is what tells that a file changed without reading it.
type fileStamp struct {
	fi   os.FileInfo
	size int64
	mod  time.Time
	mode os.FileMode
}

func stampOf(fi os.FileInfo) fileStamp {
	return fileStamp{fi: fi, size: fi.Size(), mod: fi.ModTime(), mode: fi.Mode().Perm()}
}

func (s fileStamp) same(fi os.FileInfo) bool {
	return s.fi != nil && os.SameFile(s.fi, fi) && s.size == fi.Size() && s.mod.Equal(fi.ModTime()) && s.mode == fi.Mode().Perm()
}

func watch(ctx context.Context, interval time.Duration, check func()) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}
