package arch

// The intra-layer (parallel) hybrid block of Bae et al. (arXiv 2510.04800), kinds I and W:
//
//	f(X) = W_out( α_ssm · Norm(M_ssm(X))  ⊕  α_attn · Norm(M_attn(X)) )
//
// Both branches read the same normed input. The attention branch has AttnShare of the query and
// KV heads with Q/K width qk (V keeps hd); the SSM branch (Mamba-1 or -2) has (1−AttnShare) of
// the inner width. Choices (Config.Intra):
//
//	norm     groupnorm (one group per head: h for attention, H for Mamba-2, h for Mamba-1 when
//	         it divides di, else 1) | rmsnorm | none
//	scales   learned per-channel α per branch (init 1)
//	fusion   add: s + a;  diff: s − a (the paper's final design, ssm minus attention as the formula
//	         reads);  mean: (s + a)/2;  concat: [a, s] (needs one shared W_out)
//	share_out  one W_out after fusion, else each branch has its own (attention o_proj, SSM
//	         out_proj) and fusion happens in d space: f = W_o·a' ⊕ W_out·s'
//	share_value  the SSM branch's x is the attention V (no x part in its in_proj)
//
// Parameter names: mixer.attn.*, mixer.ssm.*, mixer.attn_norm.*, mixer.ssm_norm.*,
// mixer.attn_scale, mixer.ssm_scale, mixer.out_proj.weight (shared W_out only).

import (
	"github.com/hybridlab/hybrid/tensor"
)

type intra struct {
	attn               *attention
	ssm                ssmBranch
	attnNorm, ssmNorm  *norm          // nil for norm: none
	attnScale, ssmScal *tensor.Tensor // (vw), (di) or nil
	outProj            *tensor.Tensor // (d, vw or vw+di) when shared
	fusion             string
	shareValue         bool
}

func newIntra(bd *builder, c *Config, name string, windowed bool) (*intra, error) {
	b, err := c.intraDims()
	if err != nil {
		return nil, err
	}
	in := c.Intra
	sep := !in.ShareOut
	m := &intra{fusion: in.Fusion, shareValue: in.ShareValue}
	m.attn = newAttention(bd, c, name+".attn", b.h, b.kh, b.qk, windowed, sep)
	m.ssm = newSSM(bd, c, name+".ssm", b.di, in.ShareValue, sep)
	ssmGroups := b.mh
	if c.Mamba.Version == 1 {
		ssmGroups = 1
		if b.di%b.h == 0 {
			ssmGroups = b.h
		}
	}
	eps := float32(c.Norm.Eps)
	switch in.Norm {
	case "groupnorm":
		m.attnNorm = &norm{w: bd.constant(name+".attn_norm.weight", 1, b.vw), b: bd.constant(name+".attn_norm.bias", 0, b.vw), g: b.h, eps: eps}
		m.ssmNorm = &norm{w: bd.constant(name+".ssm_norm.weight", 1, b.di), b: bd.constant(name+".ssm_norm.bias", 0, b.di), g: ssmGroups, eps: eps}
	case "rmsnorm":
		m.attnNorm = &norm{w: bd.constant(name+".attn_norm.weight", 1, b.vw), g: 1, eps: eps}
		m.ssmNorm = &norm{w: bd.constant(name+".ssm_norm.weight", 1, b.di), g: 1, eps: eps}
	}
	if in.Scales {
		m.attnScale = bd.constant(name+".attn_scale", 1, b.vw)
		m.ssmScal = bd.constant(name+".ssm_scale", 1, b.di)
	}
	if in.ShareOut {
		w := b.vw
		if in.Fusion == "concat" {
			w += b.di
		}
		m.outProj = bd.normal(name+".out_proj.weight", outStd(c), c.DModel, w)
	}
	return m, nil
}

// scale multiplies every row of x (B, T, n) by the per-channel α (n). The tape has no
// broadcasting multiply, so α is first gathered into a (B, T, n) tensor by an embedding lookup of
// row 0 (whose backward sums the rows into α's gradient), then multiplied in.
func scale(tp *tensor.Tape, x, alpha *tensor.Tensor) *tensor.Tensor {
	if alpha == nil || tp.Err() != nil {
		return x
	}
	bs, t, n := x.Dim(0), x.Dim(1), x.Dim(2)
	ids := make([]int32, bs*t)
	return tp.Mul(x, tp.Embedding(ids, tp.Reshape(alpha, 1, n), bs, t))
}

func (m *intra) forward(tp *tensor.Tape, x *tensor.Tensor, st *layerState) *tensor.Tensor {
	a, v := m.attn.inner(tp, x, st.attn())
	if !m.shareValue {
		v = nil
	}
	s := m.ssm.inner(tp, x, v, st.ssmState())
	if m.attnNorm != nil {
		a, s = m.attnNorm.apply(tp, a), m.ssmNorm.apply(tp, s)
	}
	a, s = scale(tp, a, m.attnScale), scale(tp, s, m.ssmScal)
	if m.outProj == nil { // separate projections: fuse in d space
		a, s = tp.Linear(a, m.attn.o, nil), tp.Linear(s, m.ssm.out(), nil)
	}
	var f *tensor.Tensor
	switch m.fusion {
	case "add":
		f = tp.Add(s, a)
	case "diff":
		f = tp.Sub(s, a)
	case "mean":
		f = tp.Scale(tp.Add(s, a), 0.5)
	case "concat":
		f = tp.Concat(a, s)
	}
	if m.outProj != nil {
		f = tp.Linear(f, m.outProj, nil)
	}
	return f
}
