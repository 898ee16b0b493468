package attention

// Single-token decode against a KV cache.
//
// Glossary: B batch, H query heads, HKV kv heads, Dh head dim, W window, slots the cache rows
// per batch row (Cap, or Sinks+W for a sliding window), n tokens appended so far.
//
// A windowed cache is a ring: token p goes to slot p when p < Sinks, else to
// Sinks + (p−Sinks) mod W. The newest query (position n−1) sees exactly the sinks and the last
// W positions, which are exactly the filled slots, so decode attends to every filled slot and
// memory stays O(Sinks+W) however long the sequence.

import (
	"fmt"
	"math"

	"github.com/hybridlab/hybrid/internal/par"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// CacheDims sizes a KV cache. With Window == 0 the cache holds up to Cap tokens and every token
// stays visible; with Window > 0 it is a ring of Sinks+Window slots (Cap is ignored) matching
// Forward's causal mask with the same Window and Sinks.
type CacheDims struct {
	B, Cap, HKV, Dh int
	Window, Sinks   int
}

// KVCache holds keys and values, each (B, slots, HKV, Dh).
type KVCache struct {
	d     CacheDims
	slots int
	n     int
	K, V  []float32 // (B, slots, HKV, Dh)
}

// NewKVCache allocates an empty cache.
func NewKVCache(d CacheDims) (*KVCache, error) {
	if d.B <= 0 || d.HKV <= 0 || d.Dh <= 0 || d.Window < 0 || d.Sinks < 0 || (d.Window == 0 && d.Cap <= 0) {
		return nil, fmt.Errorf("attention.NewKVCache: sizes B=%d Cap=%d HKV=%d Dh=%d Window=%d Sinks=%d, want B, HKV, Dh > 0, Window, Sinks ≥ 0 and Cap > 0 without a window",
			d.B, d.Cap, d.HKV, d.Dh, d.Window, d.Sinks)
	}
	slots := d.Cap
	if d.Window > 0 {
		slots = d.Sinks + d.Window
	}
	n := d.B * slots * d.HKV * d.Dh
	return &KVCache{d: d, slots: slots, K: make([]float32, n), V: make([]float32, n)}, nil
}

// Len is the number of tokens appended (positions 0..Len()−1).
func (c *KVCache) Len() int { return c.n }

// Bytes is the memory held by the cache's K and V.
func (c *KVCache) Bytes() int { return 4 * (len(c.K) + len(c.V)) }

// Reset empties the cache.
func (c *KVCache) Reset() { c.n = 0 }

// slot is where the token at position p lives.
func (c *KVCache) slot(p int) int {
	if c.d.Window == 0 || p < c.d.Sinks {
		return p
	}
	return c.d.Sinks + (p-c.d.Sinks)%c.d.Window
}

// filled is the number of slots holding visible tokens.
func (c *KVCache) filled() int { return min(c.n, c.slots) }

// Append adds T tokens per batch row.
//
//	k, v (B, T, HKV, Dh)
func (c *KVCache) Append(k, v []float32, t int) error {
	d := c.d
	want := d.B * t * d.HKV * d.Dh
	if t <= 0 || len(k) != want || len(v) != want {
		return fmt.Errorf("attention.KVCache.Append: T=%d, k has length %d, v has length %d, want T > 0 and B·T·HKV·Dh = %d (B=%d HKV=%d Dh=%d)",
			t, len(k), len(v), want, d.B, d.HKV, d.Dh)
	}
	if d.Window == 0 && c.n+t > d.Cap {
		return fmt.Errorf("attention.KVCache.Append: %d + T=%d tokens exceed Cap = %d", c.n, t, d.Cap)
	}
	row := d.HKV * d.Dh
	for b := range d.B {
		for i := range t {
			src := (b*t + i) * row
			dst := (b*c.slots + c.slot(c.n+i)) * row
			copy(c.K[dst:dst+row], k[src:src+row])
			copy(c.V[dst:dst+row], v[src:src+row])
		}
	}
	c.n += t
	return nil
}

// DecodeDims are the query sizes of a decode step (the cache supplies the rest).
type DecodeDims struct {
	H     int
	Scale float32 // 0 means 1/√Dh
}

// Decode attends one query per batch row, at the cache's newest position Len()−1 (append its
// key and value first), to the cache: the last row of a causal Forward over the same tokens
// with the cache's Window and Sinks.
//
//	o (B, H, Dh) out, assigned
//	q (B, H, Dh)
func Decode(o, q []float32, c *KVCache, d DecodeDims) error {
	cd := c.d
	if d.H <= 0 || d.H%cd.HKV != 0 {
		return fmt.Errorf("attention.Decode: H = %d, want a positive multiple of HKV = %d", d.H, cd.HKV)
	}
	if s := float64(d.Scale); math.IsNaN(s) || math.IsInf(s, 0) {
		return fmt.Errorf("attention.Decode: Scale = %v is not finite", d.Scale)
	}
	if c.n == 0 {
		return fmt.Errorf("attention.Decode: the cache is empty (append the token's key and value first)")
	}
	n := cd.B * d.H * cd.Dh
	if len(o) != n || len(q) != n {
		return fmt.Errorf("attention.Decode: o has length %d, q has length %d, want B·H·Dh = %d (B=%d H=%d Dh=%d)",
			len(o), len(q), n, cd.B, d.H, cd.Dh)
	}
	scale := Dims{Dh: cd.Dh, Scale: d.Scale}.scale()
	rep, dh, m := d.H/cd.HKV, cd.Dh, c.filled()
	ld := cd.HKV * dh
	impl := blas32.Implementation()
	ws := newWorkerScratch()
	defer ws.release()
	// One (batch, kv head) item: the rep query heads of the group are rows of one GEMM.
	par.Each(cd.B*cd.HKV, func(w, item int) {
		b, g := item/cd.HKV, item%cd.HKV
		sc := ws.get(w)
		sc.s = grow(sc.s, rep*m)
		s := sc.s
		qoff := (b*d.H + g*rep) * dh
		koff := (b*c.slots*cd.HKV + g) * dh
		impl.Sgemm(blas.NoTrans, blas.Trans, rep, m, dh, scale, q[qoff:], dh, c.K[koff:], ld, 0, s, m)
		for r := range rep {
			row := s[r*m : (r+1)*m]
			sum := expSub(row, rowMax(row))
			inv := 1 / sum
			for j := range row {
				row[j] *= inv
			}
		}
		impl.Sgemm(blas.NoTrans, blas.NoTrans, rep, dh, m, 1, s, m, c.V[koff:], ld, 0, o[qoff:], dh)
	})
	return nil
}
