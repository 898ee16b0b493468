package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// ceProblem draws logits and targets with about a quarter of the rows ignored.
func ceProblem(t *testing.T, r, v int, scale float64, ignore int32) ([]float64, []int32) {
	rng, _ := numtest.Rand(t)
	logits := randn(rng, r*v, scale)
	targets := make([]int32, r)
	for i := range targets {
		targets[i] = int32(rng.IntN(v))
		if rng.IntN(4) == 0 {
			targets[i] = ignore
		}
	}
	return logits, targets
}

func TestCrossEntropyMatchesReference(t *testing.T) {
	// R=40, V=1001 takes the parallel path.
	for _, sz := range [][2]int{{1, 1}, {1, 7}, {5, 33}, {13, 8}, {40, 1001}} {
		for _, ignore := range []int32{-1, -100} {
			r, v := sz[0], sz[1]
			t.Run(fmt.Sprintf("R=%d/V=%d/ignore=%d", r, v, ignore), func(t *testing.T) {
				logits, targets := ceProblem(t, r, v, 3, ignore)
				lse := make([]float64, r)
				loss, count, err := CrossEntropyRef(lse, logits, targets, r, v, ignore)
				must(t, err)
				dl := make([]float64, r*v)
				must(t, CrossEntropyBackwardRef(dl, 0.7, logits, targets, lse, r, v, ignore))

				lse32 := make([]float32, r)
				l32, c32, err := CrossEntropy(lse32, f32s(logits), targets, r, v, ignore)
				must(t, err)
				if c32 != count {
					t.Errorf("count %d, want %d", c32, count)
				}
				numtest.Check(t, "loss", []float64{l32}, []float64{loss}, numtest.F32.Scaled(v))
				// Ignored rows save lse = 0 in both.
				numtest.Check(t, "lse", lse32, lse, numtest.F32.Scaled(v))
				dl32 := make([]float32, r*v)
				must(t, CrossEntropyBackward(dl32, 0.7, f32s(logits), targets, lse32, r, v, ignore))
				numtest.Check(t, "dlogits", dl32, dl, numtest.F32.Scaled(v))

				// The fused pass agrees with the two calls.
				lseF, dlF := make([]float32, r), make([]float32, r*v)
				lF, cF, err := CrossEntropyFused(dlF, lseF, 0.7, f32s(logits), targets, r, v, ignore)
				must(t, err)
				if cF != count {
					t.Errorf("fused count %d, want %d", cF, count)
				}
				numtest.Check(t, "fused loss", []float64{lF}, []float64{loss}, numtest.F32.Scaled(v))
				numtest.Check(t, "fused lse", lseF, lse, numtest.F32.Scaled(v))
				numtest.Check(t, "fused dlogits", dlF, dl, numtest.F32.Scaled(v))
				inPlaceF := f32s(logits)
				_, _, err = CrossEntropyFused(inPlaceF, lseF, 0.7, inPlaceF, targets, r, v, ignore)
				must(t, err)
				numtest.Check(t, "fused dlogits in place", inPlaceF, dlF, numtest.Tol{})

				// In place: dlogits overwrites logits.
				inPlace := f32s(logits)
				must(t, CrossEntropyBackward(inPlace, 0.7, inPlace, targets, lse32, r, v, ignore))
				numtest.Check(t, "dlogits in place", inPlace, dl32, numtest.Tol{})
			})
		}
	}
}

func TestCrossEntropyFiniteDifferences(t *testing.T) {
	const r, v = 4, 5
	logits, targets := ceProblem(t, r, v, 2, -1)
	targets[0], targets[1] = -1, 3 // at least one ignored and one scored row
	lse := make([]float64, r)
	_, _, err := CrossEntropyRef(lse, logits, targets, r, v, -1)
	must(t, err)
	const dloss = 1.3
	dl := make([]float64, r*v)
	must(t, CrossEntropyBackwardRef(dl, dloss, logits, targets, lse, r, v, -1))
	fdCheck(t, "CrossEntropy", func() float64 {
		l, _, err := CrossEntropyRef(lse, logits, targets, r, v, -1)
		must(t, err)
		return dloss * l
	}, grad{"logits", logits, dl})
}

func TestCrossEntropyAllIgnored(t *testing.T) {
	const r, v = 3, 4
	logits := make([]float32, r*v)
	for i := range logits {
		logits[i] = float32(i)
	}
	targets := []int32{-1, -1, -1}
	lse := make([]float32, r)
	loss, count, err := CrossEntropy(lse, logits, targets, r, v, -1)
	must(t, err)
	if loss != 0 || count != 0 {
		t.Errorf("loss %g count %d, want 0 0", loss, count)
	}
	dl := make([]float32, r*v)
	for i := range dl {
		dl[i] = 99 // must be overwritten with 0
	}
	must(t, CrossEntropyBackward(dl, 1, logits, targets, lse, r, v, -1))
	numtest.Check(t, "dlogits", dl, make([]float32, r*v), numtest.Tol{})
	for i := range dl {
		dl[i] = 99
	}
	loss, count, err = CrossEntropyFused(dl, lse, 1, logits, targets, r, v, -1)
	must(t, err)
	if loss != 0 || count != 0 {
		t.Errorf("fused: loss %g count %d, want 0 0", loss, count)
	}
	numtest.Check(t, "fused dlogits", dl, make([]float32, r*v), numtest.Tol{})
}

// TestCrossEntropyLargeLogits: logits of ±1e4 must not overflow exp.
func TestCrossEntropyLargeLogits(t *testing.T) {
	const r, v = 3, 5
	logits := []float64{
		1e4, 1e4 - 1, -1e4, 0, 1e4 - 3,
		-1e4, -1e4, -1e4, -1e4 + 2, -1e4,
		1e4, 1e4, 1e4, 1e4, 1e4,
	}
	targets := []int32{1, 3, 4}
	lse := make([]float64, r)
	loss, _, err := CrossEntropyRef(lse, logits, targets, r, v, -1)
	must(t, err)
	dl := make([]float64, r*v)
	must(t, CrossEntropyBackwardRef(dl, 1, logits, targets, lse, r, v, -1))

	lse32 := make([]float32, r)
	l32, _, err := CrossEntropy(lse32, f32s(logits), targets, r, v, -1)
	must(t, err)
	if math.IsNaN(l32) || math.IsInf(l32, 0) {
		t.Fatalf("loss %g", l32)
	}
	numtest.Check(t, "loss", []float64{l32}, []float64{loss}, numtest.F32)
	dl32 := make([]float32, r*v)
	must(t, CrossEntropyBackward(dl32, 1, f32s(logits), targets, lse32, r, v, -1))
	// The saved lse is a float32 near 1e4 (half-ulp 5e-4), so exp(x − lse) carries that relative
	// error: the softmax is only ~5e-4 accurate at this magnitude, inherent to a float32 lse.
	numtest.Check(t, "dlogits", dl32, dl, numtest.Tol{Atol: 1e-6, Rtol: 1e-3})
	lF, _, err := CrossEntropyFused(dl32, lse32, 1, f32s(logits), targets, r, v, -1)
	must(t, err)
	numtest.Check(t, "fused loss", []float64{lF}, []float64{loss}, numtest.F32)
	// The fused pass normalises by Σ exp(x − max) directly, without the rounded lse: full accuracy.
	numtest.Check(t, "fused dlogits", dl32, dl, numtest.F32)
}
