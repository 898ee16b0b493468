package arch

// Building blocks shared by every layer kind: norms, the SwiGLU FFN, and the pre-norm residual
// block that wraps a mixer.
//
// Glossary: B batch, T tokens, d d_model, F FFN hidden; activations are token-major (B, T, ·).

import (
	"math"

	"github.com/hybridlab/hybrid/tensor"
)

// norm is an RMSNorm (w) or a LayerNorm (w, b) over the last axis, or a per-token GroupNorm of
// g groups (w, b) when g > 1.
type norm struct {
	w, b *tensor.Tensor // b nil for RMSNorm
	g    int
	eps  float32
}

// newNorm allocates the model norm (Config.Norm) of width n as name.weight (and name.bias).
func newNorm(bd *builder, c *Config, name string, n int) *norm {
	nm := &norm{w: bd.constant(name+".weight", 1, n), g: 1, eps: float32(c.Norm.Eps)}
	if c.Norm.Type == "layernorm" {
		nm.b = bd.constant(name+".bias", 0, n)
	}
	return nm
}

// apply normalises x (..., n).
func (n *norm) apply(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	switch {
	case n.b == nil:
		return tp.RMSNorm(x, n.w, n.eps)
	case n.g > 1:
		return tp.GroupNorm(x, n.w, n.b, n.g, n.eps)
	default:
		return tp.LayerNorm(x, n.w, n.b, n.eps)
	}
}

// ffn is the SwiGLU feed-forward network (Shazeer 2020, as Llama):
//
//	FFN(x) = W_down( silu(W_gate·x) ⊙ (W_up·x) )
type ffn struct {
	gate, up, down *tensor.Tensor // (F, d), (F, d), (d, F)
}

func newFFN(bd *builder, c *Config, name string) *ffn {
	d, f, std := c.DModel, c.FFN.Hidden, c.InitStd
	return &ffn{
		gate: bd.normal(name+".gate.weight", std, f, d),
		up:   bd.normal(name+".up.weight", std, f, d),
		down: bd.normal(name+".down.weight", outStd(c), d, f),
	}
}

// forward maps x (B, T, d) → (B, T, d).
func (f *ffn) forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	return tp.Linear(tp.SwiGLU(tp.Linear(x, f.gate, nil), tp.Linear(x, f.up, nil)), f.down, nil)
}

// outStd is the init std of projections that write into the residual stream: InitStd/√(2·n_layers)
// (GPT-2: each layer adds to the stream twice, mixer and FFN).
func outStd(c *Config) float64 { return c.InitStd / math.Sqrt(2*float64(c.NLayers)) }

// mixer is a token-mixing layer: (B, T, d) → (B, T, d). st is the layer's decode cache, nil in
// training and in Model.Forward (decode.go).
type mixer interface {
	forward(tp *tensor.Tape, x *tensor.Tensor, st *layerState) *tensor.Tensor
}

// Block is one layer of the stack, pre-norm with residuals:
//
//	x ← x + Mixer(Norm(x))      (absent for '-' layers)
//	x ← x + FFN(FFNNorm(x))     (when the layer has an FFN)
type Block struct {
	Kind    Kind
	norm    *norm
	mixer   mixer
	ffnNorm *norm
	ffn     *ffn
}

func (b *Block) forward(tp *tensor.Tape, x *tensor.Tensor, st *layerState) *tensor.Tensor {
	if tp.Err() != nil { // x may be a placeholder without (B, T, d) dims
		return x
	}
	if b.mixer != nil {
		x = tp.Add(x, b.mixer.forward(tp, b.norm.apply(tp, x), st))
	}
	if b.ffn != nil {
		x = tp.Add(x, b.ffn.forward(tp, b.ffnNorm.apply(tp, x)))
	}
	return x
}
