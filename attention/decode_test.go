package attention

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// TestDecodeMatchesForward runs L tokens through Forward, then appends them one at a time
// (some as a prefill chunk) and decodes each: every decoded row must equal Forward's row.
func TestDecodeMatchesForward(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range []struct {
		d       Dims
		prefill int
	}{
		{Dims{B: 2, L: 40, S: 40, H: 4, HKV: 2, Dh: 16, Causal: true}, 0},
		{Dims{B: 1, L: 70, S: 70, H: 3, HKV: 1, Dh: 8, Causal: true}, 9},
		{Dims{B: 2, L: 300, S: 300, H: 2, HKV: 2, Dh: 32, Causal: true, Window: 16}, 5}, // L ≫ W: the ring wraps many times
		{Dims{B: 1, L: 200, S: 200, H: 4, HKV: 1, Dh: 12, Causal: true, Window: 7, Sinks: 3}, 0},
		{Dims{B: 1, L: 30, S: 30, H: 2, HKV: 1, Dh: 5, Causal: true, Window: 50, Sinks: 2}, 20}, // window > L
	} {
		d := c.d
		t.Run(fmt.Sprintf("%s/prefill=%d", d.name(), c.prefill), func(t *testing.T) {
			x := newCase(r, d, 1)
			want, _ := forward32(t, x)
			cache, err := NewKVCache(CacheDims{B: d.B, Cap: d.L, HKV: d.HKV, Dh: d.Dh, Window: d.Window, Sinks: d.Sinks})
			if err != nil {
				t.Fatal(err)
			}
			if d.Window > 0 && cache.Bytes() != 8*d.B*(d.Window+d.Sinks)*d.HKV*d.Dh {
				t.Errorf("ring cache holds %d bytes, want O(W)", cache.Bytes())
			}
			row, hrow := d.HKV*d.Dh, d.H*d.Dh
			take := func(src []float32, ld, t0, n int) []float32 { // (B, n, ·) slice of tokens t0..t0+n
				out := make([]float32, 0, d.B*n*ld)
				for b := range d.B {
					out = append(out, src[(b*d.L+t0)*ld:(b*d.L+t0+n)*ld]...)
				}
				return out
			}
			got := make([]float32, len(want))
			o := make([]float32, d.B*hrow)
			for tok := 0; tok < d.L; {
				n := 1
				if tok == 0 && c.prefill > 0 {
					n = c.prefill
				}
				if err := cache.Append(take(x.k32, row, tok, n), take(x.v32, row, tok, n), n); err != nil {
					t.Fatal(err)
				}
				tok += n
				if err := Decode(o, take(x.q32, hrow, tok-1, 1), cache, DecodeDims{H: d.H, Scale: d.Scale}); err != nil {
					t.Fatal(err)
				}
				for b := range d.B {
					copy(got[(b*d.L+tok-1)*hrow:], o[b*hrow:(b+1)*hrow])
				}
			}
			// Compare the decoded rows (after the prefill chunk) with Forward's rows.
			for b := range d.B {
				for tok := max(c.prefill-1, 0); tok < d.L; tok++ {
					off := (b*d.L + tok) * hrow
					numtest.Check(t, fmt.Sprintf("b=%d t=%d", b, tok), got[off:off+hrow], numtest.F64s(want[off:off+hrow]), numtest.F32.Scaled(d.Dh+d.L))
				}
			}
		})
	}
}

func TestDecodeBadInput(t *testing.T) {
	if _, err := NewKVCache(CacheDims{B: 1, HKV: 1, Dh: 4}); err == nil || !strings.Contains(err.Error(), "Cap") {
		t.Errorf("no Cap: %v", err)
	}
	c, err := NewKVCache(CacheDims{B: 1, Cap: 2, HKV: 2, Dh: 4})
	if err != nil {
		t.Fatal(err)
	}
	f := func(n int) []float32 { return make([]float32, n) }
	if err := Decode(f(8), f(8), c, DecodeDims{H: 2}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty cache: %v", err)
	}
	if err := c.Append(f(7), f(8), 1); err == nil || !strings.Contains(err.Error(), "k has length") {
		t.Errorf("short k: %v", err)
	}
	if err := c.Append(f(16), f(16), 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Append(f(8), f(8), 1); err == nil || !strings.Contains(err.Error(), "Cap") {
		t.Errorf("overflow: %v", err)
	}
	if err := Decode(f(8), f(8), c, DecodeDims{H: 3}); err == nil || !strings.Contains(err.Error(), "H") {
		t.Errorf("H: %v", err)
	}
	if err := Decode(f(8), f(7), c, DecodeDims{H: 2}); err == nil || !strings.Contains(err.Error(), "q has length") {
		t.Errorf("short q: %v", err)
	}
}
