package ops

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/hybridlab/hybrid/internal/par"
)

// Shapes: R rows, In input features, Out output features; M, N, K the sizes of a matrix product
// C (M, N) = op(A) (M, K) · op(B) (K, N).

func checkMatMul(op string, c, a, b int, m, n, k int) error {
	ch := newCheck(op, size{"M", m}, size{"N", n}, size{"K", k})
	ch.positive()
	ch.length("a", a, "M·K", m*k)
	ch.length("b", b, "K·N", k*n)
	ch.length("c", c, "M·N", m*n)
	return ch.err
}

func transpose(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// MatMul computes C = op(A)·op(B), or C += op(A)·op(B) when accumulate is set, through blas32.
//
//	c (M, N)
//	a (M, K), or stored (K, M) when transA
//	b (K, N), or stored (N, K) when transB
func MatMul(c, a, b []float32, transA, transB bool, m, n, k int, accumulate bool) error {
	if err := checkMatMul("MatMul", len(c), len(a), len(b), m, n, k); err != nil {
		return err
	}
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	blas32.Implementation().Sgemm(transpose(transA), transpose(transB), m, n, k, 1, a, lda, b, ldb, beta, c, n)
	return nil
}

// MatMulRef is the float64 reference of MatMul.
func MatMulRef(c, a, b []float64, transA, transB bool, m, n, k int, accumulate bool) error {
	if err := checkMatMul("MatMulRef", len(c), len(a), len(b), m, n, k); err != nil {
		return err
	}
	for i := range m {
		for j := range n {
			s := 0.0
			for p := range k {
				av, bv := a[i*k+p], b[p*n+j]
				if transA {
					av = a[p*m+i]
				}
				if transB {
					bv = b[j*k+p]
				}
				s += av * bv
			}
			if accumulate {
				c[i*n+j] += s
			} else {
				c[i*n+j] = s
			}
		}
	}
	return nil
}

// checkLinear validates a Linear call; the backward passes dx and dw lengths (≥ 0), the forward −1.
func checkLinear(op string, y, x, w, bias int, r, in, out int, dx, dw int) error {
	c := newCheck(op, size{"R", r}, size{"In", in}, size{"Out", out})
	c.positive()
	c.length("x", x, "R·In", r*in)
	c.length("w", w, "Out·In", out*in)
	if dw < 0 {
		c.optLength("bias", bias, "Out", out)
		c.length("y", y, "R·Out", r*out)
	} else {
		c.optLength("dbias", bias, "Out", out)
		c.length("dy", y, "R·Out", r*out)
		c.optLength("dx", dx, "R·In", r*in)
		c.length("dw", dw, "Out·In", out*in)
	}
	return c.err
}

// Linear computes y = x·Wᵀ + bias, as torch.nn.functional.linear.
//
//	y    (R, Out)  output
//	x    (R, In)
//	w    (Out, In)
//	bias (Out) or nil
func Linear(y, x, w, bias []float32, r, in, out int) error {
	if err := checkLinear("Linear", len(y), len(x), len(w), len(bias), r, in, out, -1, -1); err != nil {
		return err
	}
	beta := float32(0)
	if len(bias) > 0 {
		par.For(r, rowGrain(out), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				copy(y[i*out:(i+1)*out], bias)
			}
		})
		beta = 1
	}
	blas32.Implementation().Sgemm(blas.NoTrans, blas.Trans, r, out, in, 1, x, in, w, in, beta, y, out)
	return nil
}

// LinearBackward computes dx = dy·W (assigned) and accumulates dw += dyᵀ·x, dbias += Σ_rows dy.
// Pass dx = nil to skip the input gradient (a first layer) and dbias = nil for a Linear without bias.
//
//	dx    (R, In) or nil
//	dw    (Out, In)  accumulated
//	dbias (Out) or nil, accumulated
//	dy    (R, Out)
//	x     (R, In)
//	w     (Out, In)
func LinearBackward(dx, dw, dbias, dy, x, w []float32, r, in, out int) error {
	if err := checkLinear("LinearBackward", len(dy), len(x), len(w), len(dbias), r, in, out, len(dx), len(dw)); err != nil {
		return err
	}
	impl := blas32.Implementation()
	if len(dx) > 0 {
		impl.Sgemm(blas.NoTrans, blas.NoTrans, r, in, out, 1, dy, out, w, in, 0, dx, in)
	}
	impl.Sgemm(blas.Trans, blas.NoTrans, out, in, r, 1, dy, out, x, in, 1, dw, in)
	if len(dbias) > 0 {
		k := chunks(r, out)
		p := partials(dbias, k)
		forChunks(r, k, func(ci, lo, hi int) {
			acc := acc(p, dbias, ci)
			for i := lo; i < hi; i++ {
				row := dy[i*out : (i+1)*out]
				for j, v := range row {
					acc[j] += v
				}
			}
		})
		reduce(p)
	}
	return nil
}

// LinearRef is the float64 reference of Linear.
func LinearRef(y, x, w, bias []float64, r, in, out int) error {
	if err := checkLinear("LinearRef", len(y), len(x), len(w), len(bias), r, in, out, -1, -1); err != nil {
		return err
	}
	for i := range r {
		for o := range out {
			s := 0.0
			if len(bias) > 0 {
				s = bias[o]
			}
			for p := range in {
				s += x[i*in+p] * w[o*in+p]
			}
			y[i*out+o] = s
		}
	}
	return nil
}

// LinearBackwardRef is the float64 reference of LinearBackward.
func LinearBackwardRef(dx, dw, dbias, dy, x, w []float64, r, in, out int) error {
	if err := checkLinear("LinearBackwardRef", len(dy), len(x), len(w), len(dbias), r, in, out, len(dx), len(dw)); err != nil {
		return err
	}
	for i := range r {
		for p := range in {
			if len(dx) > 0 {
				s := 0.0
				for o := range out {
					s += dy[i*out+o] * w[o*in+p]
				}
				dx[i*in+p] = s
			}
			for o := range out {
				dw[o*in+p] += dy[i*out+o] * x[i*in+p]
			}
		}
		if len(dbias) > 0 {
			for o := range out {
				dbias[o] += dy[i*out+o]
			}
		}
	}
	return nil
}
