package sweep

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// display is the local executor's screen: an overall progress bar, one progress line per
// running trial and a live table of the finished trials ranked by the metric. On a terminal
// it redraws in place; otherwise it prints events and a status line every refresh.
type display struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	p       *Plan
	run     map[string]*running
	done    []*Outcome // finished (or finished before) trials
	failed  int
	total   int
	prior   int
	jobs    int
	start   time.Time
	drawn   int // lines of the last in-place block
	nfinish int
}

func (d *display) begin(r *running) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.run[r.t.Hash] = r
	d.event(fmt.Sprintf("start  #%d %s {%s}", r.t.Index, r.t.ID(), r.t.Label(len(d.p.Spec.Recipes) > 1)))
}

func (d *display) stop(t *Trial) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.run, t.Hash)
}

func (d *display) progress(t *Trial, line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.run[t.Hash]; r != nil {
		r.last = line
	}
}

func (d *display) finish(o *Outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nfinish++
	var msg string
	switch o.State {
	case Done:
		d.done = append(d.done, o)
		m := "no " + d.p.Spec.Metric.Name
		if o.HasM {
			m = fmt.Sprintf("%s %.4g", d.p.Spec.Metric.Name, o.Metric)
		}
		msg = fmt.Sprintf("done   #%d %s %s in %s", o.Trial.Index, o.Trial.ID(), m, o.Wall.Round(time.Second))
	case Failed, Interrupted:
		d.failed++
		first, _, _ := strings.Cut(strings.TrimSpace(o.Err), "\n")
		msg = fmt.Sprintf("%-6s #%d %s: %s", o.State, o.Trial.Index, o.Trial.ID(), first)
	case "busy":
		msg = fmt.Sprintf("busy   #%d %s: running in another process, left to it", o.Trial.Index, o.Trial.ID())
	default:
		return
	}
	d.event(msg)
}

// event prints one line (above the in-place block on a terminal).
func (d *display) event(s string) {
	if d.tty {
		d.clear()
	}
	fmt.Fprintln(d.w, s)
	if d.tty {
		d.redraw()
	}
}

func (d *display) clear() {
	if d.drawn > 0 {
		fmt.Fprintf(d.w, "\x1b[%dA\x1b[J", d.drawn)
		d.drawn = 0
	}
}

func (d *display) draw() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tty {
		d.clear()
		d.redraw()
		return
	}
	fmt.Fprintln(d.w, d.bar())
}

func (d *display) end() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tty {
		d.drawn = 0 // leave the last block on screen
		return
	}
	if len(d.done) > 0 {
		fmt.Fprint(d.w, d.table(len(d.done)))
	}
}

// bar is the overall progress line.
func (d *display) bar() string {
	finished := len(d.done) + d.failed
	const width = 30
	n := 0
	if d.total > 0 {
		n = width * finished / d.total
	}
	el := time.Since(d.start).Round(time.Second)
	eta := ""
	if now := len(d.done) - d.prior + d.failed; now > 0 && finished < d.total {
		per := time.Since(d.start) / time.Duration(now)
		eta = fmt.Sprintf(", ~%s left", (per * time.Duration((d.total-finished+d.jobs-1)/d.jobs)).Round(time.Second))
	}
	return fmt.Sprintf("[%s%s] %d/%d done, %d failed, %d running, %s%s",
		strings.Repeat("#", n), strings.Repeat(".", width-n), len(d.done), d.total, d.failed, len(d.run), el, eta)
}

// table is the finished trials ranked by the metric (at most limit rows).
func (d *display) table(limit int) string {
	rows := append([]*Outcome{}, d.done...)
	max := d.p.Spec.Metric.Goal == "maximize"
	sort.SliceStable(rows, func(i, j int) bool { return better(rows[i], rows[j], max) })
	var b strings.Builder
	fmt.Fprintf(&b, "  rank  trial         #    %-12s params\n", d.p.Spec.Metric.Name)
	for i, o := range rows {
		if i == limit {
			fmt.Fprintf(&b, "  … %d more\n", len(rows)-limit)
			break
		}
		m := "-"
		if o.HasM {
			m = fmt.Sprintf("%.5g", o.Metric)
		}
		fmt.Fprintf(&b, "  %4d  %s  %-4d %-12s %s\n", i+1, o.Trial.ID(), o.Trial.Index, m, o.Trial.Label(len(d.p.Spec.Recipes) > 1))
	}
	return b.String()
}

func better(a, b *Outcome, maximize bool) bool {
	if a.HasM != b.HasM {
		return a.HasM
	}
	if !a.HasM || a.Metric == b.Metric || math.IsNaN(a.Metric) || math.IsNaN(b.Metric) {
		return a.Trial.Index < b.Trial.Index
	}
	if maximize {
		return a.Metric > b.Metric
	}
	return a.Metric < b.Metric
}

// redraw prints the in-place block: the top of the table, running trials, the bar.
func (d *display) redraw() {
	var lines []string
	if len(d.done) > 0 {
		lines = append(lines, strings.Split(strings.TrimRight(d.table(8), "\n"), "\n")...)
	}
	var rs []*running
	for _, r := range d.run {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].t.Index < rs[j].t.Index })
	for _, r := range rs {
		last := r.last
		if len(last) > 100 {
			last = last[len(last)-100:]
		}
		lines = append(lines, fmt.Sprintf("  #%d %s %s: %s", r.t.Index, r.t.ID(), time.Since(r.start).Round(time.Second), last))
	}
	lines = append(lines, d.bar())
	for _, l := range lines {
		fmt.Fprintf(d.w, "\x1b[2K%s\n", l)
	}
	d.drawn = len(lines)
}
