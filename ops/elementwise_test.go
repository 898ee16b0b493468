package ops

import (
	"fmt"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// unary is an elementwise op with one input.
type unary struct {
	name   string
	fwd    func(out, x []float32, n int) error
	bwd    func(dx, dout, x []float32, n int) error
	fwdRef func(out, x []float64, n int) error
	bwdRef func(dx, dout, x []float64, n int) error
}

var unaries = []unary{
	{"SiLU", SiLU, SiLUBackward, SiLURef, SiLUBackwardRef},
	{"Softplus", Softplus, SoftplusBackward, SoftplusRef, SoftplusBackwardRef},
}

// 70001 elements take the parallel path.
var elementSizes = []int{1, 7, 70001}

func TestUnaryMatchesReference(t *testing.T) {
	for _, op := range unaries {
		for _, n := range elementSizes {
			t.Run(fmt.Sprintf("%s/N=%d", op.name, n), func(t *testing.T) {
				rng, _ := numtest.Rand(t)
				x := numtest.Round32(numtest.Uniform(rng, n, -30, 30)) // both sides of softplus's 20
				dout := randn(rng, n, 1)
				out, dx := make([]float64, n), make([]float64, n)
				must(t, op.fwdRef(out, x, n))
				must(t, op.bwdRef(dx, dout, x, n))
				out32, dx32 := make([]float32, n), make([]float32, n)
				must(t, op.fwd(out32, f32s(x), n))
				must(t, op.bwd(dx32, f32s(dout), f32s(x), n))
				numtest.Check(t, "out", out32, out, numtest.F32)
				numtest.Check(t, "dx", dx32, dx, numtest.F32)
				// In place: out may alias x.
				xs := f32s(x)
				must(t, op.fwd(xs, xs, n))
				numtest.Check(t, "out in place", xs, out32, numtest.Tol{})
			})
		}
	}
}

func TestUnaryFiniteDifferences(t *testing.T) {
	for _, op := range unaries {
		rng, _ := numtest.Rand(t)
		// Keep clear of softplus's kink at 20 by more than h.
		x := []float64{-25, -3, -0.7, 0, 0.4, 2.5, 19.9, 20.1, 27}
		n := len(x)
		cot := randn(rng, n, 1)
		dx := make([]float64, n)
		must(t, op.bwdRef(dx, cot, x, n))
		out := make([]float64, n)
		fdCheck(t, op.name, func() float64 {
			must(t, op.fwdRef(out, x, n))
			return numtest.Dot(out, cot)
		}, grad{"x", x, dx})
	}
}

func TestSwiGLU(t *testing.T) {
	for _, n := range elementSizes {
		rng, _ := numtest.Rand(t)
		a, b, dout := randn(rng, n, 3), randn(rng, n, 1), randn(rng, n, 1)
		out, da, db := make([]float64, n), make([]float64, n), make([]float64, n)
		must(t, SwiGLURef(out, a, b, n))
		must(t, SwiGLUBackwardRef(da, db, dout, a, b, n))
		out32, da32, db32 := make([]float32, n), make([]float32, n), make([]float32, n)
		must(t, SwiGLU(out32, f32s(a), f32s(b), n))
		must(t, SwiGLUBackward(da32, db32, f32s(dout), f32s(a), f32s(b), n))
		numtest.Check(t, fmt.Sprintf("SwiGLU N=%d out", n), out32, out, numtest.F32)
		numtest.Check(t, fmt.Sprintf("SwiGLU N=%d da", n), da32, da, numtest.F32)
		numtest.Check(t, fmt.Sprintf("SwiGLU N=%d db", n), db32, db, numtest.F32)
		if n < 10 {
			da0, db0 := make([]float64, n), make([]float64, n)
			must(t, SwiGLUBackwardRef(da0, db0, dout, a, b, n))
			fdCheck(t, "SwiGLU", func() float64 {
				must(t, SwiGLURef(out, a, b, n))
				return numtest.Dot(out, dout)
			}, grad{"a", a, da0}, grad{"b", b, db0})
		}
	}
}

func TestAddScale(t *testing.T) {
	for _, n := range elementSizes {
		rng, _ := numtest.Rand(t)
		a, b, dout := f32s(randn(rng, n, 1)), f32s(randn(rng, n, 1)), f32s(randn(rng, n, 1))
		out, want := make([]float32, n), make([]float32, n)
		must(t, Add(out, a, b, n))
		for i := range want {
			want[i] = a[i] + b[i]
		}
		numtest.Check(t, "Add", out, want, numtest.Tol{})
		da, db := make([]float32, n), make([]float32, n)
		must(t, AddBackward(da, db, dout, n))
		numtest.Check(t, "AddBackward da", da, dout, numtest.Tol{})
		numtest.Check(t, "AddBackward db", db, dout, numtest.Tol{})
		must(t, AddBackward(dout, nil, dout, n)) // aliasing and skipping are allowed

		must(t, Scale(out, a, n, -0.375))
		for i := range want {
			want[i] = -0.375 * a[i]
		}
		numtest.Check(t, "Scale", out, want, numtest.Tol{})
		must(t, ScaleBackward(da, dout, n, 2.5))
		for i := range want {
			want[i] = 2.5 * dout[i]
		}
		numtest.Check(t, "ScaleBackward", da, want, numtest.Tol{})
	}
}
