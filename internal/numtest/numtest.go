// Package numtest holds the one "close enough" rule every numerical test in the project uses,
// plus seeded random inputs and a central finite-difference gradient checker.
//
// A value is close when |got − want| ≤ Atol + Rtol·|want|. Tolerances grow with the length of the
// reduction that produced a value (rounding errors of a sum of n terms grow like √n for random
// inputs), so kernels state a per-element tolerance and scale it with Scaled(n).
package numtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Tol is an absolute and a relative tolerance.
type Tol struct{ Atol, Rtol float64 }

// F32 is the base tolerance for a float32 kernel compared with a float64 reference.
var F32 = Tol{Atol: 2e-6, Rtol: 2e-5}

// F64 is the base tolerance for float64 code compared with float64 code computed another way.
var F64 = Tol{Atol: 1e-12, Rtol: 1e-10}

// Scaled returns t grown for a reduction over n terms (by √n, at least 1).
func (t Tol) Scaled(n int) Tol {
	s := math.Sqrt(math.Max(float64(n), 1))
	return Tol{Atol: t.Atol * s, Rtol: t.Rtol * s}
}

// Times multiplies both tolerances by f.
func (t Tol) Times(f float64) Tol { return Tol{Atol: t.Atol * f, Rtol: t.Rtol * f} }

// Close reports whether got is within the tolerance of want. NaN and Inf are never close.
func (t Tol) Close(got, want float64) bool {
	if math.IsNaN(got) || math.IsInf(got, 0) || math.IsNaN(want) || math.IsInf(want, 0) {
		return false
	}
	return math.Abs(got-want) <= t.Atol+t.Rtol*math.Abs(want)
}

// Float is either float type.
type Float interface{ ~float32 | ~float64 }

// Check fails tb when got and want differ in length or any element is not close,
// reporting the count, the worst element and the first few mismatches.
func Check[G, W Float](tb testing.TB, name string, got []G, want []W, t Tol) {
	tb.Helper()
	if err := Compare(got, want, t); err != nil {
		tb.Errorf("%s: %v", name, err)
	}
}

// Compare is Check without a testing.TB: it returns a descriptive error or nil.
func Compare[G, W Float](got []G, want []W, t Tol) error {
	if len(got) != len(want) {
		return fmt.Errorf("length %d, want %d", len(got), len(want))
	}
	bad, worst, worstIdx := 0, 0.0, -1
	var first []string
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if t.Close(g, w) {
			continue
		}
		bad++
		excess := math.Abs(g-w) / (t.Atol + t.Rtol*math.Abs(w))
		if math.IsNaN(excess) || math.IsInf(excess, 0) {
			excess = math.Inf(1)
		}
		if worstIdx < 0 || excess > worst {
			worst, worstIdx = excess, i
		}
		if len(first) < 4 {
			first = append(first, fmt.Sprintf("[%d] got %.9g want %.9g", i, g, w))
		}
	}
	if bad == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d elements differ (atol %.3g rtol %.3g); worst [%d] got %.9g want %.9g (%.3g× tolerance); %s",
		bad, len(got), t.Atol, t.Rtol, worstIdx, float64(got[worstIdx]), float64(want[worstIdx]), worst, strings.Join(first, ", "))
}

// Rand returns a seeded generator; tests log the seed so a failure can be replayed.
func Rand(tb testing.TB) (*rand.Rand, uint64) {
	tb.Helper()
	seed := rand.Uint64()
	tb.Logf("numtest seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed
}

// Normal returns n standard-normal float64 values scaled by s.
func Normal(r *rand.Rand, n int, s float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.NormFloat64() * s
	}
	return x
}

// Uniform returns n values uniform in [lo, hi).
func Uniform(r *rand.Rand, n int, lo, hi float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = lo + (hi-lo)*r.Float64()
	}
	return x
}

// F32s converts to float32.
func F32s(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// F64s converts to float64.
func F64s[T Float](x []T) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// Round32 rounds float64 values through float32, so a float64 reference sees exactly the
// inputs a float32 kernel sees.
func Round32(x []float64) []float64 {
	for i, v := range x {
		x[i] = float64(float32(v))
	}
	return x
}

// NumGrad returns the central finite-difference gradient of the scalar f with respect to x,
// perturbing each element by h in place and restoring it.
func NumGrad(f func() float64, x []float64, h float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		old := x[i]
		x[i] = old + h
		fp := f()
		x[i] = old - h
		fm := f()
		x[i] = old
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// GradTol is the tolerance for comparing an analytic float64 gradient with NumGrad at h = 1e-5
// (truncation error O(h²) plus cancellation error O(ε/h)).
var GradTol = Tol{Atol: 1e-7, Rtol: 1e-5}

// Dot is Σ a·b in float64, used to turn an output into a scalar loss with a random cotangent.
func Dot[A, B Float](a []A, b []B) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
