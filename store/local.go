package store

// Localer is implemented by Writers whose content is a file on the local
// file system (the disk store's), for checks that need a file name, such as
// golang.org/x/mod/zip.CheckZip. Call it through LocalName.
type Localer interface {
	// LocalName returns the name of the local file holding what was written
	// so far. It is valid until Commit or Close.
	LocalName() string
}

// LocalName returns the local file name of w's content when w is a Localer.
func LocalName(w Writer) (string, bool) {
	if l, ok := w.(Localer); ok {
		return l.LocalName(), true
	}
	return "", false
}

// LocalName implements Localer.
func (w *diskWriter) LocalName() string { return w.f.Name() }
