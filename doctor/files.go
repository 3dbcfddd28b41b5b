package doctor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
)

// maxFile bounds how much of one file the doctor reads.
const maxFile = 4 << 20

// Unreadable records a file the doctor could not read.
type Unreadable struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

type reader struct {
	root       string
	unreadable []Unreadable
}

// read returns the file's content (at most maxFile bytes). A missing file is
// (nil, false, nil); any other failure is recorded as unreadable.
func (r *reader) read(path string) (data []byte, truncated bool, err error) {
	full := path
	if r.root != "" {
		full = filepath.Join(r.root, path)
	}
	f, err := openNoBlock(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, err
		}
		r.note(path, err)
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		r.note(path, err)
		return nil, false, err
	}
	if !st.Mode().IsRegular() {
		err := fmt.Errorf("not a regular file (%s)", st.Mode().Type())
		r.note(path, err)
		return nil, false, err
	}
	data, err = io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		r.note(path, err)
		return nil, false, err
	}
	if len(data) > maxFile {
		return data[:maxFile], true, nil
	}
	return data, false, nil
}

func (r *reader) note(path string, err error) {
	if len(r.unreadable) < 64 {
		r.unreadable = append(r.unreadable, Unreadable{Path: path, Error: clip(err.Error(), 200)})
	}
}

func (r *reader) path(p string) string {
	if r.root == "" {
		return p
	}
	return filepath.Join(r.root, p)
}
