package eval

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// bar is a progress bar for an evaluation of total units: redrawn in place (at most ten times
// a second) on a terminal, one line per tenth otherwise. A nil *bar draws nothing.
type bar struct {
	w      io.Writer
	label  string
	total  int
	done   int
	tty    bool
	start  time.Time
	last   time.Time
	tenths int
}

func newBar(w io.Writer, label string, total int) *bar {
	if w == nil || total <= 0 {
		return nil
	}
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &bar{w: w, label: label, total: total, tty: tty, start: time.Now()}
}

// add records n more units done.
func (b *bar) add(n int) {
	if b == nil {
		return
	}
	b.done = min(b.done+n, b.total)
	now := time.Now()
	if b.tty {
		if b.done < b.total && now.Sub(b.last) < 100*time.Millisecond {
			return
		}
		b.last = now
		fmt.Fprintf(b.w, "\r%s\x1b[K", b.line(now))
		if b.done == b.total {
			fmt.Fprintln(b.w)
		}
		return
	}
	if t := b.done * 10 / b.total; t > b.tenths || b.done == b.total {
		b.tenths = t
		fmt.Fprintln(b.w, b.line(now))
		if b.done == b.total {
			b.tenths = 11 // printed the last line
		}
	}
}

func (b *bar) line(now time.Time) string {
	const width = 24
	frac := float64(b.done) / float64(b.total)
	fill := int(frac * width)
	el := now.Sub(b.start)
	eta := "?"
	if b.done > 0 {
		eta = (time.Duration(float64(el)/frac) - el).Round(time.Second).String()
	}
	return fmt.Sprintf("%-12s [%s%s] %d/%d %3.0f%% %s elapsed, eta %s", b.label, strings.Repeat("=", fill),
		strings.Repeat(" ", width-fill), b.done, b.total, 100*frac, el.Round(time.Second), eta)
}
