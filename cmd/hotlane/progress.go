package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// Modes of --progress.
const (
	progressAuto   = "auto"   // on when standard error is a terminal
	progressAlways = "always" // on whatever standard error is
	progressNever  = "never"
)

// progressEvery is the least time between two redraws of a count.
const progressEvery = 100 * time.Millisecond

// progressLine is the status line of a long command (import, eval, tune,
// simulate) on standard error: one line, redrawn in place with \r as the
// work advances and cleared when it ends. Off (the default when standard
// error is not a terminal), it writes nothing, so scripts and pipes see
// only the command's own output.
//
// It is also the command's standard error: what else goes there (logs,
// simulate's lines) is written through it, which clears the status line
// first and draws it again below.
type progressLine struct {
	out  io.Writer
	mode progressMode

	mu    sync.Mutex
	on    bool
	cols  int              // the terminal's width, 0 when unknown
	every time.Duration    // least time between two redraws of a count
	now   func() time.Time // the clock, for tests
	last  time.Time        // when the line was last drawn
	line  string           // the line shown, "" when none
	width int              // of the line shown, in runes
	mid   bool             // a write through it ended mid-line
}

// newProgress makes the status line of a command writing to stderr. It is
// off until start.
func newProgress(stderr io.Writer) *progressLine {
	return &progressLine{out: stderr, mode: progressAuto, every: progressEvery, now: time.Now}
}

// register adds --progress to a command's flags.
func (p *progressLine) register(fs *flag.FlagSet) {
	fs.Var(&p.mode, "progress", "show how far the command is, on one line of standard error redrawn in place and cleared at the end; `mode` is auto (when standard error is a terminal), always or never")
}

// start turns the line on as --progress says; call it once the flags are
// parsed.
func (p *progressLine) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, isFile := p.out.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	p.on = p.mode == progressAlways || (p.mode == progressAuto && tty)
	if p.on && tty {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			p.cols = w
		}
	}
}

// step shows that a new part of the work begins, at once: steps are few
// (folds, weeks, the tuning job's steps).
func (p *progressLine) step(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on {
		p.draw(fmt.Sprintf(format, args...))
	}
}

// update shows how far the current step is, unless the line was drawn less
// than p.every ago: it may be called often, and then costs a clock reading.
func (p *progressLine) update(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on && p.now().Sub(p.last) >= p.every {
		p.draw(fmt.Sprintf(format, args...))
	}
}

// done clears the line; the command's output follows on a clean line. It
// may be called more than once.
func (p *progressLine) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.line = ""
}

// Write writes b to standard error below the status line: the line is
// cleared, b written, and the line drawn again after b's last newline.
func (p *progressLine) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		return p.out.Write(b)
	}
	p.clear()
	n, err := p.out.Write(b)
	if len(b) > 0 {
		p.mid = b[len(b)-1] != '\n'
	}
	if p.line != "" {
		p.draw(p.line)
	}
	return n, err
}

// draw shows s in place of the line shown, cut to the terminal's width so
// that it never wraps (a wrapped line cannot be redrawn with \r). While
// something written through p ends mid-line, s waits for its newline.
func (p *progressLine) draw(s string) {
	s = strings.ReplaceAll(s, "\n", " ")
	if p.cols > 1 && utf8.RuneCountInString(s) >= p.cols {
		s = string([]rune(s)[:p.cols-1])
	}
	p.line = s
	if p.mid {
		return
	}
	w := utf8.RuneCountInString(s)
	io.WriteString(p.out, "\r"+s+strings.Repeat(" ", max(p.width-w, 0)))
	p.width, p.last = w, p.now()
}

// clear blanks the line shown and returns to its start.
func (p *progressLine) clear() {
	if p.width == 0 {
		return
	}
	io.WriteString(p.out, "\r"+strings.Repeat(" ", p.width)+"\r")
	p.width = 0
}

// progressMode is the value of --progress: auto, always or never.
type progressMode string

func (m *progressMode) String() string { return string(*m) }

func (m *progressMode) Set(s string) error {
	switch s {
	case progressAuto, progressAlways, progressNever:
		*m = progressMode(s)
		return nil
	}
	return fmt.Errorf("%q is not auto, always or never", s)
}
