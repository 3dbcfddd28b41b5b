package cache

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/modproxy/proto"
	"github.com/berth-dev/berth/modproxy/source"
	"github.com/berth-dev/berth/sumdb"
)

// The errors of Get, ReadAll and Ensure, besides ctx errors and a source's
// own failures (wrapped, with what was asked):
//
//   - errors.Is(err, ErrNotFound): the file does not exist as far as berth
//     can tell (not in the store and the source says so, or offline). The
//     go command falls through on it.
//   - *RejectError: the source answered, and the answer was refused
//     (verification, a truncated or oversized body). Nothing was stored.
//   - *StoreError: the store cannot be written (disk full, I/O error).

// ErrNotFound is matched (errors.Is) by every "does not exist" error,
// including the source's own source.ErrNotFound.
var ErrNotFound = source.ErrNotFound

// NotFoundError is a file that does not exist, with the reason in words.
type NotFoundError struct{ Reason string }

func (e *NotFoundError) Error() string { return "not found: " + e.Reason }

// Is makes a NotFoundError match ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

func notFound(format string, args ...any) error {
	return &NotFoundError{Reason: fmt.Sprintf(format, args...)}
}

// RejectError is an answer of the source refused before it was stored.
type RejectError struct {
	// Reason is a short stable word for metrics: checksum_mismatch,
	// sumdb_unavailable, truncated, too_large, bad_info, bad_mod, bad_zip,
	// ledger_mismatch, ledger_unavailable.
	Reason string
	Err    error
}

func (e *RejectError) Error() string { return e.Err.Error() }
func (e *RejectError) Unwrap() error { return e.Err }

func reject(reason string, format string, args ...any) error {
	return &RejectError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// lasting reports whether a refusal is in the answer itself, so that asking
// again within NegativeTTL would only fetch the same refused bytes: not a
// truncated transfer, nor a checksum database that could not be read.
func (e *RejectError) lasting() bool {
	switch e.Reason {
	case "checksum_mismatch", "too_large", "bad_info", "bad_mod", "bad_zip", "ledger_mismatch":
		return true
	}
	return false
}

// rememberReject remembers a lasting refusal of r's file for NegativeTTL.
func (c *Cache) rememberReject(r proto.Request, re *RejectError) {
	if re.lasting() {
		c.rejected.put(r.UpstreamPath(), []byte(re.Reason+"\x00"+re.Error()))
	}
}

// rememberedReject returns the refusal of r's file remembered within
// NegativeTTL, or nil.
func (c *Cache) rememberedReject(r proto.Request) error {
	b, ok := c.rejected.get(r.UpstreamPath(), c.cfg.NegativeTTL)
	if !ok {
		return nil
	}
	reason, msg, _ := strings.Cut(string(b), "\x00")
	return &RejectError{Reason: reason, Err: fmt.Errorf("%s (refused within the last %v; berth asks its upstream again after that)", msg, c.cfg.NegativeTTL)}
}

// sumReject turns a verification failure into a refusal: a mismatch is a
// poisoned or corrupt answer; a database that cannot be read means the file
// cannot be trusted yet.
func sumReject(err error) error {
	var me *sumdb.MismatchError
	if errors.As(err, &me) {
		return &RejectError{Reason: "checksum_mismatch", Err: err}
	}
	return &RejectError{Reason: "sumdb_unavailable", Err: fmt.Errorf("cannot verify against the checksum database: %w", err)}
}

// StoreError is a failure to write the store (disk full, I/O error): berth
// keeps serving what it has, and recovers when writes work again.
type StoreError struct {
	Op  string
	Err error
}

func (e *StoreError) Error() string {
	msg := "store: " + e.Op + ": " + e.Err.Error()
	if errors.Is(e.Err, syscall.ENOSPC) {
		msg += " (the store's disk is full: free space or set a smaller --max-store-size; cached files are still served)"
	}
	return msg
}

func (e *StoreError) Unwrap() error { return e.Err }
