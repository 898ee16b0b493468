package ops

import (
	"fmt"
	"math"
	"strings"

	"github.com/hybridlab/hybrid/internal/par"
)

// arg is a slice argument to validate: its name, its length and its shape kind: 'x' an activation
// (R·D, or N for elementwise ops), 'w' a per-channel parameter (D), 's' a saved per-row/group
// statistic (R·G). An upper-case kind marks an optional argument (length 0 accepted).
type arg struct {
	name string
	n    int
	kind byte
}

// size is one named size of an op, for error messages.
type size struct {
	name string
	v    int
}

// check collects the first validation error of an op call. Messages read
// "ops.RMSNorm: x has length 10, want R·D = 12 (R=1 D=12)".
type check struct {
	op  string
	sz  [4]size // a fixed array keeps the check on the stack
	n   int
	err error
}

func newCheck(op string, sz ...size) check {
	c := check{op: op}
	c.n = copy(c.sz[:], sz)
	return c
}

func (c *check) dims() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, s := range c.sz[:c.n] {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", s.name, s.v)
	}
	b.WriteByte(')')
	return b.String()
}

func (c *check) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("ops.%s: %s %s", c.op, fmt.Sprintf(format, args...), c.dims())
	}
}

// positive requires every size to be > 0.
func (c *check) positive() {
	for _, s := range c.sz[:c.n] {
		if s.v <= 0 {
			c.fail("%s = %d, want > 0", s.name, s.v)
			return
		}
	}
}

// length requires len(arg) == want, described by formula ("R·D").
func (c *check) length(name string, got int, formula string, want int) {
	if c.err == nil && got != want {
		c.fail("%s has length %d, want %s = %d", name, got, formula, want)
	}
}

// optLength is length for an optional argument: nil (length 0) is accepted.
func (c *check) optLength(name string, got int, formula string, want int) {
	if got != 0 {
		c.length(name, got, formula, want)
	}
}

// divides requires g to divide d (groups of channels).
func (c *check) divides(gName string, g int, dName string, d int) {
	if c.err == nil && g > 0 && d%g != 0 {
		c.fail("%s = %d does not divide %s = %d", gName, g, dName, d)
	}
}

// atLeast requires a hyperparameter to be a finite number ≥ lo (or > lo when strict).
func (c *check) atLeast(name string, v, lo float64, strict bool) {
	if c.err != nil {
		return
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || (strict && v == lo) {
		rel := "≥"
		if strict {
			rel = ">"
		}
		c.fail("%s = %g, want a finite value %s %g", name, v, rel, lo)
	}
}

// Grain sizes: a chunk of work for one goroutine should touch at least this many elements,
// so that the ~µs cost of starting it is paid back.
const minWork = 1 << 14

// rowGrain returns the minimum rows per chunk for rows of width w.
func rowGrain(w int) int { return max(1, minWork/max(w, 1)) }

// chunks returns how many contiguous row chunks to use for r rows of width w: at most one per
// core, each at least rowGrain(w) rows. Chunking is fixed by (r, w, cores), so results that reduce
// over rows are deterministic for a given GOMAXPROCS.
func chunks(r, w int) int {
	g := rowGrain(w)
	return max(1, min(par.Workers(), (r+g-1)/g))
}

// forChunks runs fn(c, lo, hi) for chunk c ∈ [0, k) covering rows [lo, hi) of r, in parallel.
func forChunks(r, k int, fn func(c, lo, hi int)) {
	if k <= 1 {
		fn(0, 0, r)
		return
	}
	par.For(k, 1, func(clo, chi int) {
		for c := clo; c < chi; c++ {
			fn(c, c*r/k, (c+1)*r/k)
		}
	})
}

// partials returns k accumulators for a parameter gradient: chunk 0 accumulates straight into dst,
// the others into fresh zeroed buffers that reduce adds into dst afterwards. With one chunk (or no
// dst) it allocates nothing and returns nil: use acc(p, dst, c) to pick the accumulator.
func partials(dst []float32, k int) [][]float32 {
	if len(dst) == 0 || k <= 1 {
		return nil
	}
	p := make([][]float32, k)
	p[0] = dst
	if k > 1 {
		buf := make([]float32, (k-1)*len(dst))
		for c := 1; c < k; c++ {
			p[c] = buf[(c-1)*len(dst) : c*len(dst)]
		}
	}
	return p
}

// acc returns chunk c's accumulator.
func acc(p [][]float32, dst []float32, c int) []float32 {
	if p == nil {
		return dst
	}
	return p[c]
}

// reduce adds the partial accumulators 1..k−1 into p[0].
func reduce(p [][]float32) {
	if len(p) < 2 {
		return
	}
	dst := p[0]
	for _, q := range p[1:] {
		for i, v := range q {
			dst[i] += v
		}
	}
}
