package attention

import (
	"fmt"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// TestTileShapesMatchRef runs the forward and backward at forced tile shapes, including tall
// query tiles whose diagonal tiles split into diagRows blocks and key tiles wider than the
// inputs, which the default shapes only reach at large sizes.
func TestTileShapesMatchRef(t *testing.T) {
	r, _ := numtest.Rand(t)
	fwd0, bwd0 := fwdTileSizes, bwdTileSizes
	defer func() { fwdTileSizes, bwdTileSizes = fwd0, bwd0 }()
	for _, ts := range [][2]int{{256, 512}, {128, 64}, {64, 256}, {32, 48}} {
		fwdTileSizes = func(Dims) (int, int) { return ts[0], ts[1] }
		bwdTileSizes = func(Dims) (int, int) { return ts[0] / 2, ts[1] }
		for _, d := range append(testDims(),
			Dims{B: 1, L: 300, S: 300, H: 2, HKV: 1, Dh: 16, Causal: true},
			Dims{B: 1, L: 260, S: 700, H: 2, HKV: 2, Dh: 8, Causal: true, Window: 150, Sinks: 7},
			Dims{B: 1, L: 333, S: 333, H: 1, HKV: 1, Dh: 8, Causal: true, Window: 90}) {
			t.Run(fmt.Sprintf("%dx%d/%s", ts[0], ts[1], d.name()), func(t *testing.T) {
				c := newCase(r, d, 1)
				wo, wl := forwardRef(t, c)
				o, lse := forward32(t, c)
				numtest.Check(t, "o", o, wo, numtest.F32.Scaled(d.Dh+d.S))
				numtest.Check(t, "lse", lse, wl, numtest.F32.Scaled(d.Dh+d.S))
				nq, nkv := len(c.q), len(c.k)
				dq, dk, dv := make([]float32, nq), make([]float32, nkv), make([]float32, nkv)
				if err := Backward(dq, dk, dv, c.do32, c.q32, c.k32, c.v32, o, lse, d); err != nil {
					t.Fatal(err)
				}
				wq, wk, wv := make([]float64, nq), make([]float64, nkv), make([]float64, nkv)
				if err := RefBackward(wq, wk, wv, c.do, c.q, c.k, c.v, d); err != nil {
					t.Fatal(err)
				}
				tol := numtest.F32.Scaled(d.Dh + d.S + d.L*d.rep())
				numtest.Check(t, "dq", dq, wq, tol)
				numtest.Check(t, "dk", dk, wk, tol)
				numtest.Check(t, "dv", dv, wv, tol)
			})
		}
	}
}
