package demo

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Printer narrates a demo, one line per event, with the time since the
// demo started and who speaks. It is safe for concurrent use.
type Printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

// NewPrinter returns a Printer writing to w.
func NewPrinter(w io.Writer) *Printer {
	return &Printer{w: w, start: time.Now()}
}

// Say prints one line: who, then the formatted text.
func (p *Printer) Say(who, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%6.1fs  %-10s %s\n", time.Since(p.start).Seconds(), who, fmt.Sprintf(format, args...))
}

// Elapsed returns the time since the Printer was made.
func (p *Printer) Elapsed() time.Duration { return time.Since(p.start) }
