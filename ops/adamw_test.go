package ops

import (
	"math"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// TestAdamWHandStep checks one step against values worked out by hand:
// p=1, g=0.5, m=v=0, lr=0.1, β=(0.9, 0.999), wd=0.01, t=1:
// m=0.05, v=0.00025, m̂=0.5, v̂=0.25, p = 1·(1 − 0.001) − 0.1·0.5/(0.5 + eps) = 0.899 (+2e-9).
func TestAdamWHandStep(t *testing.T) {
	c := AdamWConfig{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	want := []float64{0.899 + 2e-9, 0.05, 0.00025}
	p, m, v := []float32{1}, []float32{0}, []float32{0}
	must(t, AdamW(p, m, v, []float32{0.5}, 1, 1, c))
	numtest.Check(t, "AdamW p m v", []float32{p[0], m[0], v[0]}, want, numtest.F32)
	p64, m64, v64 := []float64{1}, []float64{0}, []float64{0}
	must(t, AdamWRef(p64, m64, v64, []float64{0.5}, 1, 1, c))
	numtest.Check(t, "AdamWRef p m v", []float64{p64[0], m64[0], v64[0]}, want, numtest.F64)

	// Zero gradient: only the decay acts (m̂ = 0).
	p, m, v = []float32{2}, []float32{0}, []float32{0}
	must(t, AdamW(p, m, v, []float32{0}, 1, 1, c))
	numtest.Check(t, "AdamW zero grad", p, []float64{2 * (1 - 0.001)}, numtest.F32)
}

func TestAdamWMatchesReference(t *testing.T) {
	rng, _ := numtest.Rand(t)
	c := AdamWConfig{LR: 3e-3, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	for _, n := range []int{1, 7, 70001} {
		p, m, v := randn(rng, n, 1), make([]float64, n), make([]float64, n)
		p32, m32, v32 := f32s(p), make([]float32, n), make([]float32, n)
		for step := 1; step <= 3; step++ {
			g := randn(rng, n, 1)
			must(t, AdamWRef(p, m, v, g, n, step, c))
			must(t, AdamW(p32, m32, v32, f32s(g), n, step, c))
		}
		// The update divides by √v: tiny v (small gradients) amplifies rounding, so compare with a
		// tolerance a few times the base one.
		numtest.Check(t, "p", p32, p, numtest.F32.Times(4))
		numtest.Check(t, "m", m32, m, numtest.F32)
		numtest.Check(t, "v", v32, v, numtest.F32)
	}
}

func TestClipGradNorm(t *testing.T) {
	a, b := []float32{3, 0}, []float32{4}
	if n := GradNorm(a, b); n != 5 {
		t.Errorf("GradNorm %g, want 5", n)
	}
	norm, err := ClipGradNorm(10, a, b) // under the limit: untouched
	must(t, err)
	if norm != 5 || a[0] != 3 || b[0] != 4 {
		t.Errorf("norm %g grads %v %v, want 5 unchanged", norm, a, b)
	}
	norm, err = ClipGradNorm(1, a, b)
	must(t, err)
	s := 1 / (5 + 1e-6)
	numtest.Check(t, "clipped", append(a, b...), []float64{3 * s, 0, 4 * s}, numtest.F32)
	if norm != 5 {
		t.Errorf("norm %g, want 5 (before clipping)", norm)
	}

	// Large slices (parallel partial sums) against a float64 sum.
	rng, _ := numtest.Rand(t)
	big := f32s(randn(rng, 100003, 1))
	want := 0.0
	for _, v := range big {
		want += float64(v) * float64(v)
	}
	numtest.Check(t, "GradNorm big", []float64{GradNorm(big, nil)}, []float64{math.Sqrt(want)}, numtest.F64)

	nan := []float32{1, float32(math.NaN())}
	if _, err := ClipGradNorm(1, a, nan); err == nil {
		t.Error("NaN gradient: no error")
	}
	if nan[0] != 1 {
		t.Error("NaN gradient: gradients were scaled")
	}
	if _, err := ClipGradNorm(0, a); err == nil {
		t.Error("maxNorm 0: no error")
	}
}
