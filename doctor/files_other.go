//go:build !unix

package doctor

import "os"

func openNoBlock(path string) (*os.File, error) { return os.Open(path) }
