package ops

import (
	"fmt"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

func TestLinearMatchesReference(t *testing.T) {
	for _, sz := range [][3]int{{1, 1, 1}, {1, 5, 3}, {3, 5, 7}, {17, 33, 9}, {130, 64, 129}} {
		for _, withBias := range []bool{true, false} {
			r, in, out := sz[0], sz[1], sz[2]
			t.Run(fmt.Sprintf("R=%d/In=%d/Out=%d/bias=%v", r, in, out, withBias), func(t *testing.T) {
				rng, _ := numtest.Rand(t)
				x, w, dy := randn(rng, r*in, 1), randn(rng, out*in, 1), randn(rng, r*out, 1)
				dw0 := randn(rng, out*in, 1)
				var bias, db0 []float64
				if withBias {
					bias, db0 = randn(rng, out, 1), randn(rng, out, 1)
				}
				y := make([]float64, r*out)
				must(t, LinearRef(y, x, w, bias, r, in, out))
				dx, dw, db := make([]float64, r*in), clone64(dw0), clone64(db0)
				must(t, LinearBackwardRef(dx, dw, db, dy, x, w, r, in, out))

				y32 := make([]float32, r*out)
				must(t, Linear(y32, f32s(x), f32s(w), f32s(bias), r, in, out))
				numtest.Check(t, "y", y32, y, numtest.F32.Scaled(in))
				dx32, dw32, db32 := make([]float32, r*in), f32s(dw0), f32s(db0)
				must(t, LinearBackward(dx32, dw32, db32, f32s(dy), f32s(x), f32s(w), r, in, out))
				numtest.Check(t, "dx", dx32, dx, numtest.F32.Scaled(out))
				numtest.Check(t, "dw", dw32, dw, numtest.F32.Scaled(r))
				if withBias {
					numtest.Check(t, "dbias", db32, db, numtest.F32.Scaled(r))
				}
				// dx = nil skips the input gradient and leaves the rest unchanged.
				dw32b, db32b := f32s(dw0), f32s(db0)
				must(t, LinearBackward(nil, dw32b, db32b, f32s(dy), f32s(x), f32s(w), r, in, out))
				numtest.Check(t, "dw (dx nil)", dw32b, dw32, numtest.Tol{})
			})
		}
	}
}

func TestLinearFiniteDifferences(t *testing.T) {
	rng, _ := numtest.Rand(t)
	const r, in, out = 2, 3, 4
	x, w, b, cot := randn(rng, r*in, 1), randn(rng, out*in, 1), randn(rng, out, 1), randn(rng, r*out, 1)
	dx, dw, db := make([]float64, r*in), make([]float64, out*in), make([]float64, out)
	must(t, LinearBackwardRef(dx, dw, db, cot, x, w, r, in, out))
	y := make([]float64, r*out)
	loss := func() float64 {
		must(t, LinearRef(y, x, w, b, r, in, out))
		return numtest.Dot(y, cot)
	}
	fdCheck(t, "Linear", loss, grad{"x", x, dx}, grad{"w", w, dw}, grad{"bias", b, db})
}

func TestMatMulMatchesReference(t *testing.T) {
	rng, _ := numtest.Rand(t)
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 7}, {17, 1, 9}, {33, 65, 31}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, acc := range []bool{false, true} {
					m, n, k := sz[0], sz[1], sz[2]
					a, b, c0 := randn(rng, m*k, 1), randn(rng, k*n, 1), randn(rng, m*n, 1)
					want := clone64(c0)
					must(t, MatMulRef(want, a, b, ta, tb, m, n, k, acc))
					got := f32s(c0)
					must(t, MatMul(got, f32s(a), f32s(b), ta, tb, m, n, k, acc))
					numtest.Check(t, fmt.Sprintf("MatMul M=%d N=%d K=%d tA=%v tB=%v acc=%v", m, n, k, ta, tb, acc), got, want, numtest.F32.Scaled(k))
				}
			}
		}
	}
}
