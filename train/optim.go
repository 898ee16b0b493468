package train

import (
	"fmt"
	"math"

	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/ops"
	"github.com/hybridlab/hybrid/tensor"
)

// AdamW is torch.optim.AdamW over a list of parameters, with one first-moment (m) and one
// second-moment (v) buffer per parameter on the parameters' backend.
//
// Weight decay is decoupled (p ← p·(1 − lr·wd) before the Adam update) and applied only to
// parameters of two or more dimensions (matrices, embeddings, conv kernels). One-dimensional
// parameters (norm weights, biases, Mamba's A, D and Δ bias) are not decayed: pulling a norm
// gain or A_log towards zero changes what the layer computes rather than regularising it, the
// convention of GPT-2/nanoGPT and the Mamba reference training code.
type AdamW struct {
	Config ops.AdamWConfig // LR is replaced by the schedule's rate at each step
	Params []*tensor.Tensor
	M, V   []kernels.Buffer // moments, one per parameter, zero before the first step
	Step   int              // completed updates; the next update is number Step+1

	be kernels.Backend
}

// NewAdamW allocates zeroed moments for params on be.
func NewAdamW(be kernels.Backend, params []*tensor.Tensor, c ops.AdamWConfig) *AdamW {
	o := &AdamW{Config: c, Params: params, be: be}
	for _, p := range params {
		o.M = append(o.M, be.Alloc(p.Size()))
		o.V = append(o.V, be.Alloc(p.Size()))
	}
	return o
}

// Decays reports whether weight decay applies to p (two or more dimensions).
func Decays(p *tensor.Tensor) bool { return len(p.Shape()) >= 2 }

// Update does one AdamW step at rate lr with the parameters' current gradients.
func (o *AdamW) Update(lr float64) error {
	o.Step++
	for i, p := range o.Params {
		if p.Grad() == nil {
			return fmt.Errorf("train.AdamW: parameter %s has no gradient (call ZeroGrad before the step)", p.Name())
		}
		c := o.Config
		c.LR = lr
		if !Decays(p) {
			c.WeightDecay = 0
		}
		if err := o.be.AdamW(p.Buf(), o.M[i], o.V[i], p.Grad(), o.Step, c); err != nil {
			return fmt.Errorf("train.AdamW: parameter %s: %w", p.Name(), err)
		}
	}
	return nil
}

// GradNorm returns the global L2 norm √(Σ g²) over every parameter's gradient (summed in
// float64 by the backend); parameters without a gradient count as zero.
func GradNorm(be kernels.Backend, params []*tensor.Tensor) (float64, error) {
	total := 0.0
	for _, p := range params {
		if p.Grad() == nil {
			continue
		}
		s, err := be.SumSquares(p.Grad())
		if err != nil {
			return 0, fmt.Errorf("train.GradNorm: %s: %w", p.Name(), err)
		}
		total += s
	}
	return math.Sqrt(total), nil
}

// ClipGrads scales every gradient by maxNorm/(norm + 1e-6) when the global norm exceeds
// maxNorm, as torch.nn.utils.clip_grad_norm_. maxNorm ≤ 0 turns clipping off; a norm that is
// not finite leaves the gradients alone (the loop's guard reports it).
func ClipGrads(be kernels.Backend, params []*tensor.Tensor, norm, maxNorm float64) error {
	if maxNorm <= 0 || !finite(norm) || norm <= maxNorm {
		return nil
	}
	s := float32(maxNorm / (norm + 1e-6))
	for _, p := range params {
		if g := p.Grad(); g != nil {
			if err := be.Axpby(g, s, g, 0, g); err != nil {
				return fmt.Errorf("train.ClipGrads: %s: %w", p.Name(), err)
			}
		}
	}
	return nil
}

// FirstNonFinite returns the name of the first parameter (in order) whose gradient holds a NaN
// or an infinity, and the index of the first such element; "" when all are finite.
func FirstNonFinite(be kernels.Backend, params []*tensor.Tensor) (name string, index int, err error) {
	for _, p := range params {
		g := p.Grad()
		if g == nil {
			continue
		}
		h, err := host(be, g)
		if err != nil {
			return "", 0, err
		}
		for i, x := range h {
			if !finite(float64(x)) {
				return p.Name(), i, nil
			}
		}
	}
	return "", 0, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// host returns b's values in host memory: the buffer itself on the CPU backend (do not keep
// it), a downloaded copy elsewhere.
func host(be kernels.Backend, b kernels.Buffer) ([]float32, error) {
	if h, ok := kernels.Host(b); ok {
		return h, nil
	}
	h := make([]float32, b.Len())
	return h, be.Download(h, b)
}
