package data

// MQAR: multi-query associative recall (Zoology), the synthetic recall task that separates
// attention from fixed-state recurrences.
//
// One example of length T over a vocabulary of V with K key–value pairs:
//
//	position  0   1   2   3  …  2K−2 2K−1 | 2K …                                   T−1
//	input     k₁  v₁  k₂  v₂ …  k_K  v_K  | 0 … k_σ(1) 0 … k_σ(2) 0 …  (queries at 2K + 2·gap)
//	target    −1 everywhere except at each query position, where it is the queried key's value
//
// Keys are drawn without replacement from [1, V/2), values without replacement from [V/2, V).
// The (T − 2K)/2 query slots are numbered 0, 1, …; K of them are drawn without replacement with
// probability ∝ a·i^(a−1) for slot i−1 (a = 0.01, so near slots are favoured), and the keys, in
// their kv order, are placed at positions 2K + 2·slot. The input after a query is 0, not the
// value: the model must produce the value from memory. Targets are the next-token labels of the
// inputs (Batch's convention), so the scored target sits at the query's own position.

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// MQARPower is the power-law exponent a of the query gap distribution (Zoology's default).
const MQARPower = 0.01

// MQAR is the task: vocabulary, sequence length and number of key–value pairs.
type MQAR struct {
	Vocab int // V: keys from [1, V/2), values from [V/2, V)
	T     int // sequence length (even)
	Pairs int // K key–value pairs, 4K ≤ T
	// Power is the gap exponent a; 0 means MQARPower.
	Power float64
}

// Validate checks the task's sizes: T even, K ≥ 1, 4K ≤ T, V > T (as in Zoology) and
// K < V/2 so that keys can be distinct.
func (q MQAR) Validate() error {
	switch {
	case q.Vocab <= 0 || q.T <= 0 || q.Pairs <= 0:
		return fmt.Errorf("data.MQAR: vocab %d, T %d, pairs %d; want all > 0", q.Vocab, q.T, q.Pairs)
	case q.T%2 != 0:
		return fmt.Errorf("data.MQAR: T=%d is odd; want an even sequence length", q.T)
	case 4*q.Pairs > q.T:
		return fmt.Errorf("data.MQAR: pairs=%d need T ≥ 4·pairs = %d, T is %d", q.Pairs, 4*q.Pairs, q.T)
	case q.Vocab <= q.T:
		return fmt.Errorf("data.MQAR: vocab %d must exceed T=%d", q.Vocab, q.T)
	case q.Pairs >= q.Vocab/2:
		return fmt.Errorf("data.MQAR: pairs=%d do not fit the %d keys in [1, %d)", q.Pairs, q.Vocab/2-1, q.Vocab/2)
	case q.Power < 0 || q.Power > 1 || math.IsNaN(q.Power):
		return fmt.Errorf("data.MQAR: power %g, want in (0, 1] (0 for the default %g)", q.Power, MQARPower)
	}
	return nil
}

func (q MQAR) String() string {
	return fmt.Sprintf("mqar(V=%d, T=%d, K=%d)", q.Vocab, q.T, q.Pairs)
}

// Seed streams: training examples and held-out examples come from disjoint PCG streams.
const (
	mqarTrain uint64 = 0x6d71_6172_5f74_726e // "mqar_trn"
	mqarEval  uint64 = 0x6d71_6172_5f65_766c // "mqar_evl"
)

// Example fills inputs and targets (each of length T) with example i of the stream named by
// seed. The same (seed, i) always gives the same example, with every Go version.
func (q MQAR) Example(inputs, targets []int32, seed, i uint64) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if len(inputs) != q.T || len(targets) != q.T {
		return fmt.Errorf("data.MQAR.Example: inputs %d, targets %d, want T=%d each", len(inputs), len(targets), q.T)
	}
	q.fill(inputs, targets, rand.NewPCG(seed, i), newGapWeights(q))
	return nil
}

// gapWeights are the unnormalised slot probabilities a·i^(a−1), i = 1 … (T−2K)/2.
type gapWeights []float64

func newGapWeights(q MQAR) gapWeights {
	a := q.Power
	if a == 0 {
		a = MQARPower
	}
	w := make(gapWeights, (q.T-2*q.Pairs)/2)
	for i := range w {
		w[i] = a * math.Pow(float64(i+1), a-1)
	}
	return w
}

// fill writes one example; q is valid and the slices have length T.
func (q MQAR) fill(inputs, targets []int32, src rand.Source, w gapWeights) {
	K, half := q.Pairs, q.Vocab/2
	for i := range inputs {
		inputs[i], targets[i] = 0, -1
	}
	keys := distinct(src, 1, half, K)
	vals := distinct(src, half, q.Vocab, K)
	for j := range K {
		inputs[2*j], inputs[2*j+1] = keys[j], vals[j]
	}
	// Weighted draws without replacement, one after another with the drawn slots removed
	// (numpy's choice(replace=False, p=…)).
	left := make([]float64, len(w))
	copy(left, w)
	total := 0.0
	for _, x := range left {
		total += x
	}
	for j := range K {
		u := uniform(src) * total
		slot, acc := -1, 0.0
		for s, x := range left {
			if x == 0 {
				continue
			}
			slot = s // the last live slot absorbs rounding at the top end
			if acc += x; u < acc {
				break
			}
		}
		total -= left[slot]
		left[slot] = 0
		p := 2*K + 2*slot
		inputs[p], targets[p] = keys[j], vals[j]
	}
}

// distinct draws n distinct ids from [lo, hi) in random order (a partial Fisher–Yates).
func distinct(src rand.Source, lo, hi, n int) []int32 {
	pool := make([]int32, hi-lo)
	for i := range pool {
		pool[i] = int32(lo + i)
	}
	for i := range n {
		j := i + int(below(src, uint64(len(pool)-i)))
		pool[i], pool[j] = pool[j], pool[i]
	}
	return pool[:n]
}

// uniform is a draw from [0, 1) with 53 random bits.
func uniform(src rand.Source) float64 { return float64(src.Uint64()>>11) / (1 << 53) }

// MQARLoader serves training batches of MQAR examples with the same methods as Loader, so the
// trainer takes either. With Examples = 0 every batch holds fresh examples (example i of the
// training stream is a function of the seed and i alone); with Examples = N the loader cycles
// over a fixed training set of N examples (Zoology uses 100k), in a new seeded order each
// epoch.
type MQARLoader struct {
	B, T     int // batch shape; B may be changed between batches, T may not
	Task     MQAR
	Examples int // training set size, 0 for an endless stream; read-only

	seed  uint64
	epoch int
	pos   int     // examples served in this epoch (Examples = 0: in all)
	perm  []int32 // example order of this epoch when Examples > 0
	w     gapWeights
}

// NewMQARLoader returns a loader of (B, task.T) batches; examples is the training set size
// (0: endless).
func NewMQARLoader(task MQAR, B, examples int, seed uint64) (*MQARLoader, error) {
	if err := task.Validate(); err != nil {
		return nil, err
	}
	if B <= 0 || examples < 0 {
		return nil, fmt.Errorf("data.NewMQARLoader: B=%d examples=%d, want B > 0 and examples ≥ 0", B, examples)
	}
	l := &MQARLoader{B: B, T: task.T, Task: task, Examples: examples, seed: seed, w: newGapWeights(task)}
	l.startEpoch(0)
	return l, nil
}

func (l *MQARLoader) startEpoch(e int) {
	l.epoch, l.pos = e, 0
	if l.Examples == 0 {
		return
	}
	if cap(l.perm) < l.Examples {
		l.perm = make([]int32, l.Examples)
	}
	l.perm = l.perm[:l.Examples]
	for i := range l.perm {
		l.perm[i] = int32(i)
	}
	src := rand.NewPCG(l.seed^mqarTrain, uint64(e)^0x9e3779b97f4a7c15)
	for i := len(l.perm) - 1; i > 0; i-- {
		j := below(src, uint64(i+1))
		l.perm[i], l.perm[j] = l.perm[j], l.perm[i]
	}
}

// Shape is the batch shape (B, T).
func (l *MQARLoader) Shape() (B, T int) { return l.B, l.T }

// Next fills b with the next B examples.
func (l *MQARLoader) Next(b *Batch) {
	b.resize(l.B, l.T)
	for r := range l.B {
		idx := uint64(l.pos)
		if l.Examples > 0 {
			if l.pos == l.Examples {
				l.startEpoch(l.epoch + 1)
			}
			idx = uint64(l.perm[l.pos])
		}
		l.Task.fill(b.Inputs[r*l.T:(r+1)*l.T], b.Targets[r*l.T:(r+1)*l.T], rand.NewPCG(l.seed^mqarTrain, idx), l.w)
		l.pos++
	}
}

// State returns the position after the last batch served. Tokens holds Examples·T, so a
// state from a loader over another training set size is refused.
func (l *MQARLoader) State() State {
	return State{Seed: l.seed, T: l.T, Tokens: l.Examples * l.T, Epoch: l.epoch, Pos: l.pos}
}

// Restore moves l to st, which must come from a loader with the same seed, T and training set
// size. B may differ.
func (l *MQARLoader) Restore(st State) error {
	if st.Seed != l.seed || st.T != l.T || st.Tokens != l.Examples*l.T {
		return fmt.Errorf("data.MQARLoader.Restore: state is for seed %d, T=%d, %d tokens; loader has seed %d, T=%d, %d tokens",
			st.Seed, st.T, st.Tokens, l.seed, l.T, l.Examples*l.T)
	}
	if st.Epoch < 0 || st.Pos < 0 || (l.Examples == 0 && st.Epoch != 0) || (l.Examples > 0 && st.Pos > l.Examples) {
		return fmt.Errorf("data.MQARLoader.Restore: epoch %d, position %d out of range", st.Epoch, st.Pos)
	}
	l.startEpoch(st.Epoch)
	l.pos = st.Pos
	return nil
}

// MQAREval is a fixed held-out MQAR set, drawn from a seed stream disjoint from training's,
// served in order from its start on every pass (the same methods as Eval). The last batch may
// have fewer than B rows.
type MQAREval struct {
	B, T int // batch shape, read-only
	Task MQAR
	n    int
	pos  int
	in   []int32 // (n, T)
	tg   []int32 // (n, T)
}

// NewMQAREval draws n held-out examples of task (Zoology uses 3,000) served in batches of B.
func NewMQAREval(task MQAR, B, n int, seed uint64) (*MQAREval, error) {
	if err := task.Validate(); err != nil {
		return nil, err
	}
	if B <= 0 || n <= 0 {
		return nil, fmt.Errorf("data.NewMQAREval: B=%d n=%d, want both > 0", B, n)
	}
	e := &MQAREval{B: B, T: task.T, Task: task, n: n, in: make([]int32, n*task.T), tg: make([]int32, n*task.T)}
	w := newGapWeights(task)
	for i := range n {
		s := i * task.T
		task.fill(e.in[s:s+task.T], e.tg[s:s+task.T], rand.NewPCG(seed^mqarEval, uint64(i)), w)
	}
	return e, nil
}

// Shape is the batch shape (B, T).
func (e *MQAREval) Shape() (B, T int) { return e.B, e.T }

// Len is the number of batches in a pass.
func (e *MQAREval) Len() int { return (e.n + e.B - 1) / e.B }

// Examples is the number of held-out examples.
func (e *MQAREval) Examples() int { return e.n }

// Next fills b with the next batch and reports whether there was one.
func (e *MQAREval) Next(b *Batch) bool {
	if e.pos == e.n {
		return false
	}
	rows := min(e.B, e.n-e.pos)
	b.resize(rows, e.T)
	copy(b.Inputs, e.in[e.pos*e.T:(e.pos+rows)*e.T])
	copy(b.Targets, e.tg[e.pos*e.T:(e.pos+rows)*e.T])
	e.pos += rows
	return true
}

// Reset starts the pass again.
func (e *MQAREval) Reset() { e.pos = 0 }
