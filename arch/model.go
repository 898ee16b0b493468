package arch

// Model: a hybrid language model built from a Config on the tensor Tape.
//
//	ids (B, T) → embed (B, T, d) → blocks (Layout) → final norm → head (B, T, V)
//
// Layer letters map to mixers: M Mamba (mamba.version 1 or 2), A global attention, S
// sliding-window attention, I intra block, W intra block with a sliding-window attention
// branch, '-' no mixer (FFN only). Each mixer layer is followed by a SwiGLU FFN when
// ffn.type is swiglu and ffn.mode is block; '-' layers always have one.
//
// Parameter names (stable, dotted, safetensors-ready; Params returns them in this order):
//
//	embed.weight                                 (V, d)
//	layers.{i}.norm.weight [.bias]               (d)       pre-mixer norm
//	layers.{i}.mixer.…                           see below
//	layers.{i}.ffn_norm.weight [.bias]           (d)
//	layers.{i}.ffn.{gate,up,down}.weight         (F, d), (F, d), (d, F)
//	norm_f.weight [.bias]                        (d)
//	lm_head.weight                               (V, d)    untied head only
//
//	attention:  mixer.{q,k,v,o}_proj.weight
//	Mamba-2:    mixer.in_proj.weight, mixer.conv1d.{weight,bias}, mixer.dt_bias, mixer.A_log,
//	            mixer.D, mixer.norm.weight, mixer.out_proj.weight
//	Mamba-1:    mixer.in_proj.weight, mixer.conv1d.{weight,bias}, mixer.x_proj.weight,
//	            mixer.dt_proj.{weight,bias}, mixer.A_log, mixer.D, mixer.out_proj.weight
//	intra:      mixer.attn.*, mixer.ssm.*, mixer.{attn,ssm}_norm.*, mixer.{attn,ssm}_scale,
//	            mixer.out_proj.weight (see intra.go)

import (
	"fmt"

	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/tensor"
)

// Model is a built model: its parameters live on one backend.
type Model struct {
	Config Config
	Kinds  []Kind // the resolved layout
	Blocks []*Block

	be     kernels.Backend
	embed  *tensor.Tensor // (V, d)
	head   *tensor.Tensor // (V, d): embed when tied
	normF  *norm
	params []*tensor.Tensor
}

// Build validates cfg and allocates a model on be, initialised deterministically from seed
// (init.go lists the rules).
func Build(cfg Config, be kernels.Backend, seed uint64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kinds, _, _ := cfg.Layout.Resolve(cfg.NLayers)
	if err := checkBuildable(&cfg, kinds); err != nil {
		return nil, err
	}
	bd := &builder{be: be, seed: seed}
	m := &Model{Config: cfg, Kinds: kinds, be: be}
	c := &m.Config
	m.embed = bd.normal("embed.weight", c.InitStd, c.VocabSize, c.DModel)
	for i, k := range kinds {
		pre := fmt.Sprintf("layers.%d.", i)
		b := &Block{Kind: k}
		if k != KindFFN {
			b.norm = newNorm(bd, c, pre+"norm", c.DModel)
			name := pre + "mixer"
			a := c.Attention
			switch k {
			case KindAttn, KindWindow:
				b.mixer = newAttention(bd, c, name, a.Heads, a.KVHeads, c.headDim(), k == KindWindow, true)
			case KindMamba:
				if c.Mamba.Version == 1 {
					b.mixer = newMamba1(bd, c, name, c.Mamba.Expand*c.DModel, false, true)
				} else {
					b.mixer = newMamba2(bd, c, name, c.Mamba.Expand*c.DModel, false, true)
				}
			case KindIntra, KindIntraWindow:
				in, err := newIntra(bd, c, name, k == KindIntraWindow)
				if err != nil {
					return nil, err
				}
				b.mixer = in
			}
		}
		if c.FFN.Type == "swiglu" && (k == KindFFN || c.FFN.Mode == "block") {
			b.ffnNorm = newNorm(bd, c, pre+"ffn_norm", c.DModel)
			b.ffn = newFFN(bd, c, pre+"ffn")
		}
		m.Blocks = append(m.Blocks, b)
	}
	m.normF = newNorm(bd, c, "norm_f", c.DModel)
	m.head = m.embed
	if !c.TiedEmbeddings {
		m.head = bd.normal("lm_head.weight", c.InitStd, c.VocabSize, c.DModel)
	}
	if bd.err != nil {
		return nil, fmt.Errorf("arch.Build: %w", bd.err)
	}
	m.params = bd.params
	return m, nil
}

// checkBuildable refuses what Validate accepts but the kernels cannot run: RoPE rotates pairs,
// so every Q/K head width must be even.
func checkBuildable(c *Config, kinds []Kind) error {
	for _, k := range kinds {
		switch k {
		case KindAttn, KindWindow:
			if c.headDim()%2 != 0 {
				return &FieldError{"attention.head_dim", fmt.Sprintf("%d is odd; RoPE needs an even head dim", c.headDim())}
			}
		case KindIntra, KindIntraWindow:
			if b, _ := c.intraDims(); b.qk%2 != 0 {
				return &FieldError{"intra.qk_head_dim", fmt.Sprintf("Q/K width %d is odd; RoPE needs an even width", b.qk)}
			}
		}
	}
	return nil
}

// Backend is the backend holding the parameters.
func (m *Model) Backend() kernels.Backend { return m.be }

// Params returns every parameter in a stable order (embedding, layers in order, final norm, head).
func (m *Model) Params() []*tensor.Tensor { return m.params }

// NumParams is the total number of parameter values (a tied head counted once); it equals
// Config.Count(T).Params().
func (m *Model) NumParams() int64 {
	var n int64
	for _, p := range m.params {
		n += int64(p.Size())
	}
	return n
}

// Forward maps token ids (B·T, row-major (B, T)) to logits (B, T, V). Errors (bad ids, shape
// mismatches) are recorded on the tape; check tp.Err().
func (m *Model) Forward(tp *tensor.Tape, ids []int32, B, T int) *tensor.Tensor {
	if len(ids) != B*T || B <= 0 || T <= 0 {
		tp.Fail(fmt.Errorf("arch.Forward: %d ids for B=%d, T=%d", len(ids), B, T))
	}
	x := tp.Embedding(ids, m.embed, B, T)
	for _, b := range m.Blocks {
		x = b.forward(tp, x, nil)
	}
	return tp.Linear(m.normF.apply(tp, x), m.head, nil)
}

// Loss is the mean next-token cross-entropy of Forward(ids) against targets (B·T; −1 = not
// scored). It returns the scalar loss and the number of scored tokens.
func (m *Model) Loss(tp *tensor.Tape, ids, targets []int32, B, T int) (*tensor.Tensor, int) {
	logits := m.Forward(tp, ids, B, T)
	if len(targets) != B*T {
		tp.Fail(fmt.Errorf("arch.Loss: %d targets for B=%d, T=%d", len(targets), B, T))
	}
	return tp.CrossEntropy(logits, targets, -1)
}
