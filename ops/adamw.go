package ops

import (
	"fmt"
	"math"
)

// Shapes: N parameters in one flat slice (the optimizer walks each parameter tensor, or one arena).

// AdamWConfig holds AdamW's hyperparameters. torch.optim.AdamW's defaults are
// LR 1e-3, Beta1 0.9, Beta2 0.999, Eps 1e-8, WeightDecay 1e-2.
type AdamWConfig struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
}

func checkAdamW(op string, p, m, v, g, n, step int, c AdamWConfig) error {
	ch := newCheck(op, size{"N", n})
	ch.positive()
	ch.length("p", p, "N", n)
	ch.length("m", m, "N", n)
	ch.length("v", v, "N", n)
	ch.length("g", g, "N", n)
	if ch.err == nil && step < 1 {
		ch.fail("step = %d, want ≥ 1 (1 for the first step)", step)
	}
	ch.atLeast("LR", c.LR, 0, false)
	ch.atLeast("Beta1", c.Beta1, 0, false)
	ch.atLeast("Beta2", c.Beta2, 0, false)
	ch.atLeast("Eps", c.Eps, 0, true)
	ch.atLeast("WeightDecay", c.WeightDecay, 0, false)
	if ch.err == nil && (c.Beta1 >= 1 || c.Beta2 >= 1) {
		ch.fail("Beta1 = %g, Beta2 = %g, want both < 1", c.Beta1, c.Beta2)
	}
	return ch.err
}

// AdamW does optimizer step number step (1 for the first) in place, as torch.optim.AdamW:
// decoupled weight decay p ← p·(1 − lr·wd), moments m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
// then p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps).
//
//	p    (N)  parameters, updated
//	m, v (N)  first and second moments, updated (zero before the first step)
//	g    (N)  gradient
func AdamW(p, m, v, g []float32, n, step int, c AdamWConfig) error {
	if err := checkAdamW("AdamW", len(p), len(m), len(v), len(g), n, step, c); err != nil {
		return err
	}
	decay := float32(1 - c.LR*c.WeightDecay)
	b1, b2 := float32(c.Beta1), float32(c.Beta2)
	stepSize := float32(c.LR / (1 - math.Pow(c.Beta1, float64(step))))
	invBC2 := float32(1 / math.Sqrt(1-math.Pow(c.Beta2, float64(step))))
	eps := float32(c.Eps)
	each(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gi := g[i]
			mi := b1*m[i] + (1-b1)*gi
			vi := b2*v[i] + (1-b2)*gi*gi
			m[i], v[i] = mi, vi
			den := float32(math.Sqrt(float64(vi)))*invBC2 + eps
			p[i] = p[i]*decay - stepSize*mi/den
		}
	})
	return nil
}

// AdamWRef is the float64 reference of AdamW.
func AdamWRef(p, m, v, g []float64, n, step int, c AdamWConfig) error {
	if err := checkAdamW("AdamWRef", len(p), len(m), len(v), len(g), n, step, c); err != nil {
		return err
	}
	bc1 := 1 - math.Pow(c.Beta1, float64(step))
	bc2 := 1 - math.Pow(c.Beta2, float64(step))
	for i := range n {
		p[i] *= 1 - c.LR*c.WeightDecay
		m[i] = c.Beta1*m[i] + (1-c.Beta1)*g[i]
		v[i] = c.Beta2*v[i] + (1-c.Beta2)*g[i]*g[i]
		p[i] -= c.LR / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + c.Eps)
	}
	return nil
}

// GradNorm returns the global L2 norm √(Σ g²) over all the slices, summed in float64.
func GradNorm(grads ...[]float32) float64 {
	total := 0.0
	for _, g := range grads {
		n := len(g)
		k := chunks(n, 1)
		sums := make([]float64, k)
		forChunks(n, k, func(ci, lo, hi int) {
			s := 0.0
			for _, v := range g[lo:hi] {
				s += float64(v) * float64(v)
			}
			sums[ci] = s
		})
		for _, s := range sums {
			total += s
		}
	}
	return math.Sqrt(total)
}

// ClipGradNorm scales every gradient by maxNorm/(norm + 1e-6) when the global norm exceeds maxNorm,
// as torch.nn.utils.clip_grad_norm_, and returns the norm before clipping. A NaN or infinite norm is
// returned with an error and the gradients are left as they are (the caller usually skips the step).
func ClipGradNorm(maxNorm float64, grads ...[]float32) (float64, error) {
	if !(maxNorm > 0) || math.IsInf(maxNorm, 0) {
		return 0, fmt.Errorf("ops.ClipGradNorm: maxNorm = %g, want a finite value > 0", maxNorm)
	}
	norm := GradNorm(grads...)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, fmt.Errorf("ops.ClipGradNorm: gradient norm is %g over %d slices; gradients not clipped", norm, len(grads))
	}
	if coef := maxNorm / (norm + 1e-6); coef < 1 {
		s := float32(coef)
		for _, g := range grads {
			each(len(g), func(lo, hi int) {
				for i := lo; i < hi; i++ {
					g[i] *= s
				}
			})
		}
	}
	return norm, nil
}
