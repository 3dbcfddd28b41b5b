package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress shows how far a long command (warm, export, import) is. On a
// terminal it redraws one line: the stage, a bar when the total is known,
// the count, the bytes and the time so far. Elsewhere it is silent, since
// the command's summary line says what was done, unless tenths is set (warm:
// a line per 10%, for CI logs of long fills).
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	name   string // the command, for the lines: "berth warm"
	unit   string // what the count counts: "modules", "files"
	tty    bool
	tenths bool
	last   int    // last tenth printed (non-terminal)
	stage  string // stage of the last line drawn
	drawn  bool
	shown  time.Time // when the line was last drawn
	start  time.Time
}

// newProgress returns the progress of command name counting unit, drawn on
// w when it is a terminal.
func newProgress(w io.Writer, name, unit string) *progress {
	p := &progress{w: w, name: name, unit: unit, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// update reports done of total (0: not known yet) at stage ("" for none),
// with bytes processed so far.
func (p *progress) update(stage string, done, total int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		// A redraw per file would make a large import wait on the terminal.
		now := time.Now()
		if stage == p.stage && done != total && now.Sub(p.shown) < 100*time.Millisecond {
			return
		}
		p.stage, p.shown = stage, now
		var b strings.Builder
		b.WriteString("\r")
		if stage != "" {
			b.WriteString(stage + " ")
		}
		if total > 0 {
			const width = 30
			n := min(done, total) * width / total
			fmt.Fprintf(&b, "[%s%s] %d/%d %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total, p.unit)
		} else {
			fmt.Fprintf(&b, "%d %s", done, p.unit)
		}
		fmt.Fprintf(&b, "  %s  %s\x1b[K", humanBytes(bytes), time.Since(p.start).Round(time.Second))
		io.WriteString(p.w, b.String())
		p.drawn = true
		return
	}
	if !p.tenths || total <= 0 {
		return
	}
	if tenth := done * 10 / total; tenth > p.last {
		p.last = tenth
		fmt.Fprintf(p.w, "%s: %d%% (%d/%d %s, %s)\n", p.name, tenth*10, done, total, p.unit, humanBytes(bytes))
	}
}

// finish ends the drawn line, so that what follows starts on its own.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
