package output

import (
	"fmt"
	"io"
	"time"
)

// Progress reports the steps of long work on stderr. On a terminal each step
// shows its duration; elsewhere it prints plain lines (or nothing when quiet),
// so the command's stdout stays parseable.
type Progress struct {
	w     io.Writer
	quiet bool
	start time.Time
	step  string
	c     Colorer
}

// NewProgress writes progress to w (normally stderr); quiet silences it.
func NewProgress(w io.Writer, quiet bool) *Progress {
	return &Progress{w: w, quiet: quiet, c: NewColorer(w)}
}

// Start begins a step and ends the previous one.
func (p *Progress) Start(format string, args ...any) {
	p.Done()
	p.step = fmt.Sprintf(format, args...)
	p.start = time.Now()
	if !p.quiet {
		fmt.Fprintf(p.w, " • %s ...\n", p.step)
	}
}

// Done ends the current step, if any, with its duration.
func (p *Progress) Done() {
	if p.step == "" {
		return
	}
	if !p.quiet {
		fmt.Fprintf(p.w, " %s %s (%s)\n", p.c.Green("✓"), p.step, time.Since(p.start).Round(10*time.Millisecond))
	}
	p.step = ""
}

// Fail ends the current step as failed.
func (p *Progress) Fail() {
	if p.step == "" {
		return
	}
	if !p.quiet {
		fmt.Fprintf(p.w, " %s %s\n", p.c.Red("✗"), p.step)
	}
	p.step = ""
}
