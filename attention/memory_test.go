package attention

import (
	"testing"
)

// TestScratchLinear asserts the forward+backward's heap use grows like L, not L²: doubling L on
// full causal attention (where the score matrix would quadruple) must not double the bytes
// allocated (they are tile scratch plus Δ, B·H·L floats). Tests run gonum's BLAS, whose small products allocate nothing, so the count
// is this package's own scratch (pools emptied first).
func TestScratchLinear(t *testing.T) {
	var got [2]uint64
	for i, l := range []int{512, 1024} {
		d := Dims{B: 1, L: l, S: l, H: 2, HKV: 1, Dh: 16, Causal: true}
		x := newBenchBufs(d)
		got[i] = allocBytes(func() {
			if err := Forward(x.o, x.lse, x.q, x.k, x.v, d); err != nil {
				t.Fatal(err)
			}
			if err := Backward(x.dq, x.dk, x.dv, x.do, x.q, x.k, x.v, x.o, x.lse, d); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("L=%d: %d bytes allocated (score matrix would be %d)", l, got[i], 4*l*l*d.H)
	}
	if got[1] > 2*got[0] {
		t.Errorf("allocations grew from %d to %d bytes when L doubled: not O(L)", got[0], got[1])
	}
}
