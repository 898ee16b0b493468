package arch

// Parameter allocation and initialisation.
//
// Every parameter draws from its own random stream, seeded by (model seed, FNV-1a of its name),
// so a model is a pure function of (Config, seed) and adding a layer or a parameter never
// changes the values of the others.
//
// The rules (std = Config.InitStd, n = Config.NLayers):
//
//	embed, lm_head, q/k/v, in_proj, x_proj,
//	ffn gate/up                               N(0, std²)
//	o_proj, out_proj, ffn down                N(0, (std/√(2n))²): GPT-2's scaling of the projections
//	                                          that write into the residual stream, so the stream's
//	                                          variance does not grow with depth (two writes per layer)
//	conv1d weight and bias                    U(±1/√W): PyTorch's Conv1d default, which mamba_ssm keeps
//	Mamba-2 A_log (H)                         log(A), A ~ U(mamba.a_init)
//	Mamba-1 A_log (D, N)                      log(A), A[d, n] evenly spaced over mamba.a_init in n
//	                                          (with a_init = [1, N] exactly S4D-real's A = n+1, as mamba_ssm)
//	dt_bias, dt_proj.bias                     softplus⁻¹(Δ), Δ = exp(U(log 1e-3, log 1e-1)), floored at 1e-4
//	Mamba-1 dt_proj.weight (D, R)             U(±R^−½), mamba_ssm's dt_init "random"
//	D (skip)                                  1
//	norm weights, branch scales               1;  norm biases 0

import (
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/tensor"
)

// Δ range of the dt bias init (mamba_ssm's dt_min, dt_max, dt_init_floor).
const (
	dtMin, dtMax, dtFloor = 1e-3, 1e-1, 1e-4
)

// builder allocates named parameters in a fixed order; the first error sticks.
type builder struct {
	be     kernels.Backend
	seed   uint64
	params []*tensor.Tensor
	err    error
}

// rng is the random stream of one parameter.
func (b *builder) rng(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(b.seed, h.Sum64()))
}

// param allocates a parameter from values (nil = zeros).
func (b *builder) param(name string, data []float32, shape ...int) *tensor.Tensor {
	if b.err != nil {
		return nil
	}
	p, err := tensor.NewParam(b.be, name, data, shape...)
	if err != nil {
		b.err = err
		return nil
	}
	b.params = append(b.params, p)
	return p
}

func size(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// fill draws every entry from f.
func (b *builder) fill(name string, f func(r *rand.Rand) float64, shape ...int) *tensor.Tensor {
	r := b.rng(name)
	v := make([]float32, size(shape))
	for i := range v {
		v[i] = float32(f(r))
	}
	return b.param(name, v, shape...)
}

func (b *builder) normal(name string, std float64, shape ...int) *tensor.Tensor {
	return b.fill(name, func(r *rand.Rand) float64 { return std * r.NormFloat64() }, shape...)
}

func (b *builder) uniform(name string, lo, hi float64, shape ...int) *tensor.Tensor {
	return b.fill(name, func(r *rand.Rand) float64 { return lo + (hi-lo)*r.Float64() }, shape...)
}

func (b *builder) constant(name string, c float64, shape ...int) *tensor.Tensor {
	return b.fill(name, func(*rand.Rand) float64 { return c }, shape...)
}

// dtBias is softplus⁻¹(Δ) for Δ log-uniform in [dtMin, dtMax] (floored at dtFloor).
func (b *builder) dtBias(name string, n int) *tensor.Tensor {
	return b.fill(name, func(r *rand.Rand) float64 {
		dt := math.Exp(math.Log(dtMin) + r.Float64()*(math.Log(dtMax)-math.Log(dtMin)))
		dt = math.Max(dt, dtFloor)
		return dt + math.Log(-math.Expm1(-dt)) // log(eᵟ − 1), stable for small Δ
	}, n)
}

// aLog2 is Mamba-2's per-head A_log: log of A ~ U(lo, hi).
func (b *builder) aLog2(name string, h int, rng []float64) *tensor.Tensor {
	lo, hi := rng[0], rng[1]
	return b.fill(name, func(r *rand.Rand) float64 { return math.Log(lo + (hi-lo)*r.Float64()) }, h)
}

// aLog1 is Mamba-1's (D, N) A_log: every channel has A evenly spaced over [lo, hi] in n.
func (b *builder) aLog1(name string, d, n int, rng []float64) *tensor.Tensor {
	lo, hi := rng[0], rng[1]
	v := make([]float32, d*n)
	for i := range d {
		for j := range n {
			a := lo
			if n > 1 {
				a = lo + (hi-lo)*float64(j)/float64(n-1)
			}
			v[i*n+j] = float32(math.Log(a))
		}
	}
	return b.param(name, v, d, n)
}
