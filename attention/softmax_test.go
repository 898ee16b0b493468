package attention

import (
	"math"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// TestExpSub checks both row-exp paths (AVX2 when present, and Go) against math.Exp, including
// the mask (−Inf), underflow to exactly 0 and ragged lengths.
func TestExpSub(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, n := range []int{1, 7, 8, 9, 64, 67} {
		x := numtest.F32s(numtest.Uniform(r, n, -100, 3))
		x[0] = float32(math.Inf(-1))
		if n > 2 {
			x[1] = -87.4
		}
		const m = 2.5
		want := make([]float64, n)
		sum := 0.0
		for i, v := range x {
			if e := float64(v) - m; e >= -87.33 {
				want[i] = math.Exp(float64(float32(v - m)))
			}
			sum += want[i]
		}
		for _, path := range []string{"dispatch", "go"} {
			got := append([]float32(nil), x...)
			var s float32
			if path == "go" {
				s = expSubGo(got, m)
			} else {
				s = expSub(got, m)
			}
			// fmath.Exp-class accuracy (3e-7 relative) on the same rounded argument.
			tol := numtest.Tol{Atol: 1e-30, Rtol: 5e-7}
			numtest.Check(t, path, got, want, tol)
			numtest.Check(t, path+" sum", []float32{s}, []float64{sum}, tol.Scaled(n))
			if got[0] != 0 || (n > 2 && got[1] != 0) {
				t.Errorf("%s n=%d: masked or underflowing entries %v %v, want 0", path, n, got[0], got[1])
			}
		}
		if mx, want := rowMax(x), rowMaxGo(x); mx != want {
			t.Errorf("rowMax n=%d: %v, want %v", n, mx, want)
		}
	}
	t.Logf("AVX2 path: %v", useAVX2)
}
