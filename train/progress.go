package train

import (
	"fmt"
	"github.com/hybridlab/hybrid/internal/units"
	"io"
	"os"
	"strings"
	"time"
)

// Progress draws a progress bar on an io.Writer: rewritten in place with \r on a terminal, one
// line every Every steps otherwise (a log file or CI output).
type Progress struct {
	W     io.Writer
	Total int  // steps in the run
	TTY   bool // redraw in place
	Every int  // steps between lines when not a terminal (≥ 1)
	Width int  // bar cells

	start     int // step the session started at, for the ETA
	startTime time.Time
	last      time.Time
	drawn     bool
}

// NewProgress returns a bar for total steps on w, redrawn in place when w is a terminal and
// printed every `every` steps otherwise; startStep is the step a resumed run begins at.
func NewProgress(w io.Writer, total, startStep, every int) *Progress {
	return &Progress{W: w, Total: total, TTY: isTerminal(w), Every: max(every, 1), Width: 24,
		start: startStep, startTime: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update shows step s (completed) with its loss and throughput.
func (p *Progress) Update(s StepInfo) {
	now := time.Now()
	if p.TTY {
		if s.Step != p.Total && now.Sub(p.last) < 100*time.Millisecond {
			return // a terminal needs no more than ten frames a second
		}
		p.last, p.drawn = now, true
		fmt.Fprintf(p.W, "\r%s\x1b[K", p.line(s, now))
		return
	}
	if s.Step%p.Every == 0 || s.Step == p.Total {
		fmt.Fprintln(p.W, p.line(s, now))
	}
}

// Printf prints a message on its own line (evaluations, checkpoints) without breaking the bar.
func (p *Progress) Printf(format string, a ...any) {
	if p.TTY && p.drawn {
		fmt.Fprint(p.W, "\r\x1b[K")
		p.drawn = false
	}
	fmt.Fprintf(p.W, format+"\n", a...)
}

// Done ends the bar's line.
func (p *Progress) Done() {
	if p.TTY && p.drawn {
		fmt.Fprintln(p.W)
		p.drawn = false
	}
}

func (p *Progress) line(s StepInfo, now time.Time) string {
	frac := 0.0
	if p.Total > 0 {
		frac = min(float64(s.Step)/float64(p.Total), 1)
	}
	fill := int(frac * float64(p.Width))
	bar := strings.Repeat("=", fill)
	if fill < p.Width {
		bar += ">" + strings.Repeat(" ", p.Width-fill-1)
	}
	eta := "?"
	if done := s.Step - p.start; done > 0 {
		per := now.Sub(p.startTime) / time.Duration(done)
		eta = (per * time.Duration(p.Total-s.Step)).Round(time.Second).String()
	}
	return fmt.Sprintf("step %*d/%d [%s] %3.0f%% | loss %.4f | %s tok/s | ETA %s",
		len(fmt.Sprint(p.Total)), s.Step, p.Total, bar, 100*frac, s.Loss, units.SI(s.TokensPerS), eta)
}
