// Package attention has multi-head softmax attention kernels for the attention layers of hybrid
// Mamba–attention models: a FlashAttention-2 style tiled forward and backward (causal, sliding
// window, attention sinks, grouped-query heads), rotary position embeddings, and single-token
// decode against a KV cache (a ring buffer for sliding windows), each beside a float64 reference.
//
// Glossary (letters used in shapes):
//
//	B    batch
//	L    query length (tokens in this call)
//	S    key/value length; queries are aligned to the end, query i sits at position S−L+i
//	H    query heads
//	HKV  key/value heads (H % HKV == 0; query head h reads kv head h/(H/HKV); HKV=1 is MQA)
//	Dh   head dimension
//	W    sliding window (0 = none)
//	Bq   query tile rows, Bk key tile rows (see tileSizes)
//
// Tensors are token-major: Q and O are (B, L, H, Dh), K and V are (B, S, HKV, Dh), the saved
// log-sum-exp LSE is (B, H, L).
//
// Mask: query at position p sees key j when (!Causal || j ≤ p) and (W == 0 || |p−j| < W || j < Sinks).
// With Causal and W > 0 that is p−W < j ≤ p plus the first Sinks keys.
package attention

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// Dims describes one attention call. S must be at least L when Causal or Window > 0 (queries are
// the last L positions of the S keys, as in chunked prefill against a cache; S == L is ordinary
// self-attention). Scale 0 means 1/√Dh.
type Dims struct {
	B, L, S, H, HKV, Dh int
	Causal              bool
	Window, Sinks       int
	Scale               float32
}

func (d Dims) String() string {
	return fmt.Sprintf("B=%d L=%d S=%d H=%d HKV=%d Dh=%d", d.B, d.L, d.S, d.H, d.HKV, d.Dh)
}

// scale returns the softmax scale (Scale, or 1/√Dh when it is 0).
func (d Dims) scale() float32 {
	if d.Scale != 0 {
		return d.Scale
	}
	return float32(1 / math.Sqrt(float64(d.Dh)))
}

// rep is the number of query heads per kv head.
func (d Dims) rep() int { return d.H / d.HKV }

// validate checks sizes and options (not slice lengths).
func (d Dims) validate(op string) error {
	for _, s := range []struct {
		n string
		v int
	}{{"B", d.B}, {"L", d.L}, {"S", d.S}, {"H", d.H}, {"HKV", d.HKV}, {"Dh", d.Dh}} {
		if s.v <= 0 {
			return fmt.Errorf("attention.%s: %s = %d, want > 0 (%v)", op, s.n, s.v, d)
		}
	}
	if d.H%d.HKV != 0 {
		return fmt.Errorf("attention.%s: H = %d is not a multiple of HKV = %d (%v)", op, d.H, d.HKV, d)
	}
	if d.Window < 0 || d.Sinks < 0 {
		return fmt.Errorf("attention.%s: Window = %d and Sinks = %d, want ≥ 0 (%v)", op, d.Window, d.Sinks, d)
	}
	if (d.Causal || d.Window > 0) && d.S < d.L {
		return fmt.Errorf("attention.%s: S = %d < L = %d with a causal or windowed mask (queries are the last L of S positions) (%v)", op, d.S, d.L, d)
	}
	if s := float64(d.Scale); math.IsNaN(s) || math.IsInf(s, 0) {
		return fmt.Errorf("attention.%s: Scale = %v is not finite (%v)", op, d.Scale, d)
	}
	return nil
}

// checkLen reports a slice whose length is not want.
func checkLen[T float32 | float64](op, name string, x []T, want int, formula string, d Dims) error {
	if len(x) != want {
		return fmt.Errorf("attention.%s: %s has length %d, want %s = %d (%v)", op, name, len(x), formula, want, d)
	}
	return nil
}

// checkAll validates d and the lengths of the named (B,L,H,Dh), (B,S,HKV,Dh) and (B,H,L) slices.
func checkAll[T float32 | float64](op string, d Dims, qs, kvs, lses map[string][]T) error {
	if err := d.validate(op); err != nil {
		return err
	}
	nq, nkv, nl := d.B*d.L*d.H*d.Dh, d.B*d.S*d.HKV*d.Dh, d.B*d.H*d.L
	for _, g := range []struct {
		m map[string][]T
		n int
		f string
	}{{qs, nq, "B·L·H·Dh"}, {kvs, nkv, "B·S·HKV·Dh"}, {lses, nl, "B·H·L"}} {
		for _, name := range slices.Sorted(maps.Keys(g.m)) {
			if err := checkLen(op, name, g.m[name], g.n, g.f, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// visible reports whether the query at position p sees key j.
func (d Dims) visible(p, j int) bool {
	if d.Causal && j > p {
		return false
	}
	if d.Window == 0 || j < d.Sinks {
		return true
	}
	return p-j < d.Window && j-p < d.Window
}

// Tile classes for a (query tile, key tile) pair.
const (
	tileNone    = iota // no query in the tile sees any key in the tile: skip it
	tilePartial        // some pairs masked: apply the mask element-wise
	tileFull           // every pair visible
)

// tileClass classifies queries at positions [p0, p1] against keys [j0, j1).
func (d Dims) tileClass(p0, p1, j0, j1 int) int {
	last := j1 - 1
	if d.Causal && j0 > p1 {
		return tileNone
	}
	if d.Window > 0 && j0 >= d.Sinks {
		// Nearest pair distance must be below W (keys are at most p1 when causal).
		if j0-p1 >= d.Window || p0-last >= d.Window {
			return tileNone
		}
	}
	full := !d.Causal || last <= p0
	if d.Window > 0 && last >= d.Sinks {
		// Farthest pair distances must be below W.
		full = full && p1-j0 < d.Window && last-p0 < d.Window
	}
	if full {
		return tileFull
	}
	return tilePartial
}
