package eval

import (
	"fmt"
	"math/rand/v2"
)

// Test doubles: models whose scores are known by construction.

// copier predicts, after a context, the token that followed the longest earlier match of the
// context's suffix (an induction head). It answers NIAH, pass-key and MQAR prompts perfectly:
// each ends with words that occur once before, right ahead of the answer.
type copier struct {
	V     int
	calls int // Logits and decoder calls, to prove Run checks before running
}

func predict(ctx []int32) int32 {
	n := len(ctx)
	best, bestLen := int32(-1), 0
	for j := n - 2; j >= 0; j-- {
		l := 0
		for l < 64 && j-l >= 0 && ctx[j-l] == ctx[n-1-l] {
			l++
		}
		if l > bestLen {
			best, bestLen = ctx[j+1], l
		}
	}
	return best
}

func (c *copier) Vocab() int { return c.V }

func (c *copier) Logits(ids []int32, B, T int) ([]float32, error) {
	c.calls++
	if len(ids) != B*T {
		return nil, fmt.Errorf("copier: %d ids for %d×%d", len(ids), B, T)
	}
	out := make([]float32, B*T*c.V)
	for b := range B {
		for t := range T {
			if p := predict(ids[b*T : b*T+t+1]); p >= 0 {
				out[(b*T+t)*c.V+int(p)] = 1
			}
		}
	}
	return out, nil
}

func (c *copier) NewDecoder(B, capacity int) (Decoder, error) {
	c.calls++
	return &ctxDecoder{B: B, cap: capacity, V: c.V, next: func(ctx []int32, row []float32) {
		if p := predict(ctx); p >= 0 {
			row[p] = 1
		}
	}}, nil
}

// ctxDecoder keeps each row's tokens and asks next for the logits after them.
type ctxDecoder struct {
	B, cap, V int
	rows      [][]int32
	next      func(ctx []int32, row []float32)
	steps     int
}

func (d *ctxDecoder) logits() []float32 {
	out := make([]float32, d.B*d.V)
	for b, r := range d.rows {
		d.next(r, out[b*d.V:(b+1)*d.V])
	}
	return out
}

func (d *ctxDecoder) Prefill(ids []int32, T int) ([]float32, error) {
	if len(ids) != d.B*T || T+d.Len() > d.cap {
		return nil, fmt.Errorf("prefill: %d ids, T=%d, B=%d, cap %d", len(ids), T, d.B, d.cap)
	}
	if d.rows == nil {
		d.rows = make([][]int32, d.B)
	}
	for b := range d.B {
		d.rows[b] = append(d.rows[b], ids[b*T:(b+1)*T]...)
	}
	return d.logits(), nil
}

func (d *ctxDecoder) Step(ids []int32) ([]float32, error) {
	if len(ids) != d.B || d.Len()+1 > d.cap {
		return nil, fmt.Errorf("step: %d ids, B=%d, len %d, cap %d", len(ids), d.B, d.Len(), d.cap)
	}
	d.steps++
	for b := range d.B {
		d.rows[b] = append(d.rows[b], ids[b])
	}
	return d.logits(), nil
}

func (d *ctxDecoder) Len() int {
	if d.rows == nil {
		return 0
	}
	return len(d.rows[0])
}

// Bytes is 8 bytes a token a row, the double's "cache".
func (d *ctxDecoder) Bytes() int64 { return int64(8 * d.B * d.Len()) }

func (d *ctxDecoder) Reset() { d.rows = nil }

// noise returns seeded random logits: its argmax is a uniform guess.
type noise struct {
	V   int
	rng *rand.Rand
}

func newNoise(V int) *noise { return &noise{V: V, rng: rand.New(rand.NewPCG(1, 2))} }

func (n *noise) Vocab() int { return n.V }

func (n *noise) Logits(ids []int32, B, T int) ([]float32, error) {
	out := make([]float32, B*T*n.V)
	for i := range out {
		out[i] = n.rng.Float32()
	}
	return out, nil
}

func (n *noise) NewDecoder(B, capacity int) (Decoder, error) {
	return &ctxDecoder{B: B, cap: capacity, V: n.V, next: func(_ []int32, row []float32) {
		for i := range row {
			row[i] = n.rng.Float32()
		}
	}}, nil
}

// ramp gives logit slope·t to token 0 at position t and 0 to every other token, so the NLL of
// any other target at position t is log(e^(slope·t) + V − 1).
type ramp struct {
	V     int
	slope float32
}

func (r *ramp) Vocab() int { return r.V }

func (r *ramp) Logits(ids []int32, B, T int) ([]float32, error) {
	out := make([]float32, B*T*r.V)
	for b := range B {
		for t := range T {
			out[(b*T+t)*r.V] = r.slope * float32(t)
		}
	}
	return out, nil
}

func (r *ramp) NewDecoder(B, capacity int) (Decoder, error) {
	return nil, fmt.Errorf("ramp: no decoder")
}
