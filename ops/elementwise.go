package ops

import (
	"math"

	"github.com/hybridlab/hybrid/internal/par"
	"github.com/hybridlab/hybrid/internal/vmath"
)

// Elementwise ops over flat slices of N elements (any activation, e.g. N = R·D). Outputs may alias
// inputs (each element is read before it is written), so every op can run in place.

func checkN(op string, n int, args ...arg) error {
	c := newCheck(op, size{"N", n})
	c.positive()
	for _, a := range args {
		if a.kind >= 'a' {
			c.length(a.name, a.n, "N", n)
		} else {
			c.optLength(a.name, a.n, "N", n)
		}
	}
	return c.err
}

// each runs fn over [0, n) split across cores for large n.
func each(n int, fn func(lo, hi int)) { par.For(n, 2*minWork, fn) }

// SiLU computes out = x·σ(x).
//
//	out, x (N)
func SiLU(out, x []float32, n int) error {
	if err := checkN("SiLU", n, arg{"out", len(out), 'x'}, arg{"x", len(x), 'x'}); err != nil {
		return err
	}
	each(n, func(lo, hi int) {
		vmath.SiLU(out[lo:hi], x[lo:hi])
	})
	return nil
}

// SiLUBackward computes dx = dout·σ(x)·(1 + x·(1 − σ(x))).
//
//	dx, dout, x (N)
func SiLUBackward(dx, dout, x []float32, n int) error {
	if err := checkN("SiLUBackward", n, arg{"dx", len(dx), 'x'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}); err != nil {
		return err
	}
	each(n, func(lo, hi int) {
		vmath.SiLUBackward(dx[lo:hi], dout[lo:hi], x[lo:hi])
	})
	return nil
}

// Softplus computes out = log(1 + eˣ), and out = x for x > 20 (PyTorch's threshold, as Mamba's Δ uses).
//
//	out, x (N)
func Softplus(out, x []float32, n int) error {
	if err := checkN("Softplus", n, arg{"out", len(out), 'x'}, arg{"x", len(x), 'x'}); err != nil {
		return err
	}
	each(n, func(lo, hi int) {
		vmath.Softplus(out[lo:hi], x[lo:hi])
	})
	return nil
}

// SoftplusBackward computes dx = dout·σ(x), and dx = dout for x > 20.
//
//	dx, dout, x (N)
func SoftplusBackward(dx, dout, x []float32, n int) error {
	if err := checkN("SoftplusBackward", n, arg{"dx", len(dx), 'x'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}); err != nil {
		return err
	}
	each(n, func(lo, hi int) {
		vmath.SoftplusBackward(dx[lo:hi], dout[lo:hi], x[lo:hi])
	})
	return nil
}

// SwiGLU computes out = silu(a)·b from a gate a and an up projection b held in separate slices
// (two Linear outputs, or the two halves of a fused (2F, In) weight run as two Linears), which keeps
// all three tensors contiguous (R, F).
//
//	out, a, b (N = R·F)
func SwiGLU(out, a, b []float32, n int) error {
	if err := checkN("SwiGLU", n, arg{"out", len(out), 'x'}, arg{"a", len(a), 'x'}, arg{"b", len(b), 'x'}); err != nil {
		return err
	}
	each(n, func(lo, hi int) {
		vmath.SwiGLU(out[lo:hi], a[lo:hi], b[lo:hi])
	})
	return nil
}

// SwiGLUBackward computes da = dout·b·silu′(a) and db = dout·silu(a) (both assigned).
//
//	da, db, dout, a, b (N = R·F)
func SwiGLUBackward(da, db, dout, a, b []float32, n int) error {
	if err := checkN("SwiGLUBackward", n, arg{"da", len(da), 'x'}, arg{"db", len(db), 'x'}, arg{"dout", len(dout), 'x'},
		arg{"a", len(a), 'x'}, arg{"b", len(b), 'x'}); err != nil {
		return err
	}
	each(n, func(lo, hi int) {
		vmath.SwiGLUBackward(da[lo:hi], db[lo:hi], dout[lo:hi], a[lo:hi], b[lo:hi])
	})
	return nil
}

// Add computes out = a + b (a residual connection).
//
//	out, a, b (N)
func Add(out, a, b []float32, n int) error {
	if err := checkN("Add", n, arg{"out", len(out), 'x'}, arg{"a", len(a), 'x'}, arg{"b", len(b), 'x'}); err != nil {
		return err
	}
	each(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = a[i] + b[i]
		}
	})
	return nil
}

// AddBackward passes the gradient through: da = dout, db = dout (assigned). Either may be nil to
// skip it, or alias dout (then nothing is copied).
//
//	da, db, dout (N)
func AddBackward(da, db, dout []float32, n int) error {
	if err := checkN("AddBackward", n, arg{"da", len(da), 'X'}, arg{"db", len(db), 'X'}, arg{"dout", len(dout), 'x'}); err != nil {
		return err
	}
	for _, dst := range [2][]float32{da, db} {
		if len(dst) > 0 && &dst[0] != &dout[0] {
			copy(dst, dout)
		}
	}
	return nil
}

// Scale computes out = s·x.
//
//	out, x (N)
func Scale(out, x []float32, n int, s float32) error {
	if err := checkN("Scale", n, arg{"out", len(out), 'x'}, arg{"x", len(x), 'x'}); err != nil {
		return err
	}
	each(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = s * x[i]
		}
	})
	return nil
}

// ScaleBackward computes dx = s·dout.
//
//	dx, dout (N)
func ScaleBackward(dx, dout []float32, n int, s float32) error {
	if err := checkN("ScaleBackward", n, arg{"dx", len(dx), 'x'}, arg{"dout", len(dout), 'x'}); err != nil {
		return err
	}
	return Scale(dx, dout, n, s)
}

// SiLURef is the float64 reference of SiLU.
func SiLURef(out, x []float64, n int) error {
	if err := checkN("SiLURef", n, arg{"out", len(out), 'x'}, arg{"x", len(x), 'x'}); err != nil {
		return err
	}
	for i := range n {
		out[i] = x[i] * sigmoid64(x[i])
	}
	return nil
}

// SiLUBackwardRef is the float64 reference of SiLUBackward.
func SiLUBackwardRef(dx, dout, x []float64, n int) error {
	if err := checkN("SiLUBackwardRef", n, arg{"dx", len(dx), 'x'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}); err != nil {
		return err
	}
	for i := range n {
		s := sigmoid64(x[i])
		dx[i] = dout[i] * (s + x[i]*s*(1-s))
	}
	return nil
}

// SoftplusRef is the float64 reference of Softplus.
func SoftplusRef(out, x []float64, n int) error {
	if err := checkN("SoftplusRef", n, arg{"out", len(out), 'x'}, arg{"x", len(x), 'x'}); err != nil {
		return err
	}
	for i := range n {
		if x[i] > 20 {
			out[i] = x[i]
		} else {
			out[i] = math.Log1p(math.Exp(x[i]))
		}
	}
	return nil
}

// SoftplusBackwardRef is the float64 reference of SoftplusBackward.
func SoftplusBackwardRef(dx, dout, x []float64, n int) error {
	if err := checkN("SoftplusBackwardRef", n, arg{"dx", len(dx), 'x'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}); err != nil {
		return err
	}
	for i := range n {
		if x[i] > 20 {
			dx[i] = dout[i]
		} else {
			dx[i] = dout[i] * sigmoid64(x[i])
		}
	}
	return nil
}

// SwiGLURef is the float64 reference of SwiGLU.
func SwiGLURef(out, a, b []float64, n int) error {
	if err := checkN("SwiGLURef", n, arg{"out", len(out), 'x'}, arg{"a", len(a), 'x'}, arg{"b", len(b), 'x'}); err != nil {
		return err
	}
	for i := range n {
		out[i] = a[i] * sigmoid64(a[i]) * b[i]
	}
	return nil
}

// SwiGLUBackwardRef is the float64 reference of SwiGLUBackward.
func SwiGLUBackwardRef(da, db, dout, a, b []float64, n int) error {
	if err := checkN("SwiGLUBackwardRef", n, arg{"da", len(da), 'x'}, arg{"db", len(db), 'x'}, arg{"dout", len(dout), 'x'},
		arg{"a", len(a), 'x'}, arg{"b", len(b), 'x'}); err != nil {
		return err
	}
	for i := range n {
		s := sigmoid64(a[i])
		da[i] = dout[i] * b[i] * (s + a[i]*s*(1-s))
		db[i] = dout[i] * a[i] * s
	}
	return nil
}
