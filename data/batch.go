package data

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// Batch is B rows of T tokens: Targets[b*T+t] is the token after Inputs[b*T+t].
type Batch struct {
	B, T    int
	Inputs  []int32 // (B, T)
	Targets []int32 // (B, T)
}

// resize makes b hold B rows of T, reusing its buffers.
func (b *Batch) resize(B, T int) {
	b.B, b.T = B, T
	if cap(b.Inputs) < B*T {
		b.Inputs = make([]int32, B*T)
		b.Targets = make([]int32, B*T)
	}
	b.Inputs = b.Inputs[:B*T]
	b.Targets = b.Targets[:B*T]
}

// fill sets row r from the window of T+1 tokens of s starting at off.
func (b *Batch) fill(r int, s *Stream, off int, win []int32) {
	s.Copy(win, off)
	copy(b.Inputs[r*b.T:(r+1)*b.T], win[:b.T])
	copy(b.Targets[r*b.T:(r+1)*b.T], win[1:])
}

// Loader draws training batches from a stream. Each epoch cuts the stream into windows of
// T+1 tokens starting at shift + k·T (consecutive windows share one token, so every token is
// a target once), with a random shift in [0, T) so that epochs see different alignments,
// and visits the windows in a random order. Shift and order depend only on the seed and
// the epoch number, so a Loader is reproducible and State/Restore resumes it exactly.
type Loader struct {
	B, T  int // batch shape; B may be changed between batches, T may not
	s     *Stream
	seed  uint64
	epoch int
	pos   int     // windows of this epoch already served
	shift int     // offset of the first window of this epoch
	perm  []int32 // window order of this epoch
	win   []int32
}

// State is where a Loader is: enough, with the same stream, to continue it exactly.
// It is plain data, to be saved with a training checkpoint (it marshals to JSON).
type State struct {
	Seed   uint64 `json:"seed"`
	T      int    `json:"t"`
	Tokens int    `json:"tokens"` // stream length, to catch restoring onto another stream
	Epoch  int    `json:"epoch"`
	Pos    int    `json:"pos"` // windows served in this epoch
}

// NewLoader returns a Loader of (B, T) batches over s; s needs at least T+1 tokens.
func NewLoader(s *Stream, B, T int, seed uint64) (*Loader, error) {
	if B <= 0 || T <= 0 {
		return nil, fmt.Errorf("data.NewLoader: B=%d T=%d, want both > 0", B, T)
	}
	if s.Len() < T+1 {
		return nil, fmt.Errorf("data.NewLoader: stream has %d tokens, want ≥ T+1 = %d", s.Len(), T+1)
	}
	l := &Loader{s: s, B: B, T: T, seed: seed, win: make([]int32, T+1)}
	l.startEpoch(0)
	return l, nil
}

// startEpoch draws the shift and window order of epoch e.
func (l *Loader) startEpoch(e int) {
	l.epoch, l.pos = e, 0
	// PCG is a fixed algorithm, and uniform draws below are done here rather than by
	// rand.Rand methods, so the order is the same with every Go version.
	src := rand.NewPCG(l.seed, uint64(e)^0x9e3779b97f4a7c15)
	maxShift := min(l.T-1, l.s.Len()-1-l.T)
	l.shift = int(below(src, uint64(maxShift+1)))
	n := (l.s.Len() - 1 - l.shift) / l.T
	if cap(l.perm) < n {
		l.perm = make([]int32, n)
	}
	l.perm = l.perm[:n]
	for i := range l.perm {
		l.perm[i] = int32(i)
	}
	for i := n - 1; i > 0; i-- { // Fisher–Yates
		j := below(src, uint64(i+1))
		l.perm[i], l.perm[j] = l.perm[j], l.perm[i]
	}
}

// below returns a uniform draw from [0, n) (Lemire's multiply-and-reject).
func below(src rand.Source, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}

// Windows is the number of windows in the current epoch.
func (l *Loader) Windows() int { return len(l.perm) }

// Epoch is the current epoch, counting from 0.
func (l *Loader) Epoch() int { return l.epoch }

// Next fills b with the next B windows, moving into the next epoch when one runs out.
// Shape is the batch shape (B, T).
func (l *Loader) Shape() (B, T int) { return l.B, l.T }

// Its buffers are reused when large enough.
func (l *Loader) Next(b *Batch) {
	b.resize(l.B, l.T)
	for r := range l.B {
		if l.pos == len(l.perm) {
			l.startEpoch(l.epoch + 1)
		}
		b.fill(r, l.s, l.shift+int(l.perm[l.pos])*l.T, l.win)
		l.pos++
	}
}

// State returns the position after the last batch served.
func (l *Loader) State() State {
	return State{Seed: l.seed, T: l.T, Tokens: l.s.Len(), Epoch: l.epoch, Pos: l.pos}
}

// Restore moves l to st, which must come from a Loader with the same seed and T over a
// stream of the same length. B may differ: the position counts windows, not batches.
func (l *Loader) Restore(st State) error {
	if st.Seed != l.seed || st.T != l.T || st.Tokens != l.s.Len() {
		return fmt.Errorf("data.Loader.Restore: state is for seed %d, T=%d, %d tokens; loader has seed %d, T=%d, %d tokens",
			st.Seed, st.T, st.Tokens, l.seed, l.T, l.s.Len())
	}
	if st.Epoch < 0 || st.Pos < 0 {
		return fmt.Errorf("data.Loader.Restore: negative epoch %d or position %d", st.Epoch, st.Pos)
	}
	l.startEpoch(st.Epoch)
	if st.Pos > len(l.perm) {
		return fmt.Errorf("data.Loader.Restore: position %d is past the %d windows of epoch %d", st.Pos, len(l.perm), st.Epoch)
	}
	l.pos = st.Pos
	return nil
}

// Eval serves the windows of a stream in order, starting at token 0, for validation: the
// same batches every time. The last batch may have fewer than B rows; tokens after the last
// full window are not scored.
type Eval struct {
	B, T int // batch shape, read-only
	s    *Stream
	n    int // windows
	pos  int
	win  []int32
}

// NewEval returns sequential (B, T) batches over s; s needs at least T+1 tokens.
func NewEval(s *Stream, B, T int) (*Eval, error) {
	if B <= 0 || T <= 0 {
		return nil, fmt.Errorf("data.NewEval: B=%d T=%d, want both > 0", B, T)
	}
	if s.Len() < T+1 {
		return nil, fmt.Errorf("data.NewEval: stream has %d tokens, want ≥ T+1 = %d", s.Len(), T+1)
	}
	return &Eval{s: s, B: B, T: T, n: (s.Len() - 1) / T, win: make([]int32, T+1)}, nil
}

// Len is the number of batches in a pass.
func (e *Eval) Len() int { return (e.n + e.B - 1) / e.B }

// Windows is the number of windows (rows) in a pass.
func (e *Eval) Windows() int { return e.n }

// Shape is the batch shape (B, T).
func (e *Eval) Shape() (B, T int) { return e.B, e.T }

// Next fills b with the next batch and reports whether there was one.
func (e *Eval) Next(b *Batch) bool {
	if e.pos == e.n {
		return false
	}
	rows := min(e.B, e.n-e.pos)
	b.resize(rows, e.T)
	for r := range rows {
		b.fill(r, e.s, (e.pos+r)*e.T, e.win)
	}
	e.pos += rows
	return true
}

// Reset starts the pass again.
func (e *Eval) Reset() { e.pos = 0 }
