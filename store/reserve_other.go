//go:build !linux

package store

import "os"

// reserve is a no-op where fallocate is not available; a full disk shows as a
// failed write instead.
func reserve(*os.File, int64) error { return nil }
