package arch

// The mixers: GQA softmax attention with RoPE (global or sliding-window), Mamba-2 (SSD) and
// Mamba-1 (selective scan). Each has an inner pass up to (not including) its output projection,
// which the intra-layer block reuses for its branches, and a forward pass = W_out(inner).
//
// Glossary (paper symbols as in selective_scan and config.go):
//
//	B batch, T tokens, d d_model
//	attention: h query heads, kh KV heads, qk Q/K width per head, hd V width per head
//	Mamba:     di inner width, H SSD heads, P head dim (di = H·P), G groups of B/C, N d_state,
//	           W conv width, R dt_rank; Δ step, A state matrix (= −exp(A_log)), D skip

import (
	"fmt"
	"math"

	selectivescan "github.com/hybridlab/hybrid/selective_scan"
	"github.com/hybridlab/hybrid/tensor"
)

// rope applies rotary position embeddings to x (B, T, heads, width) for positions pos…pos+T−1
// with base θ: the one place attention layers rotate Q and K (pos is 0 except when decoding
// after earlier tokens).
func rope(tp *tensor.Tape, x *tensor.Tensor, pos int, theta float64) *tensor.Tensor {
	return tp.RoPE(x, pos, theta)
}

// negExp returns A = −exp(A_log) for a parameter A_log, with the exact gradient
// dA_log = dA ⊙ A.
//
// The tape has no exp op, so this is a straight-through composition of public ops:
//
//	E = exp(A_log) computed on the host (a constant),  A = −E − E ⊙ (A_log − stop(A_log))
//
// The value is exactly −E (A_log − stop(A_log) is exactly 0 in floating point) and the derivative
// with respect to A_log is −E = A. Cost: one download of A_log (H or D·N values) and three
// elementwise ops on that small tensor per layer per step. A tensor-level Exp (or NegExp) op
// would replace it with one node.
func negExp(tp *tensor.Tape, aLog *tensor.Tensor) *tensor.Tensor {
	shape := aLog.Shape()
	host := make([]float32, aLog.Size())
	if err := tp.Backend().Download(host, aLog.Buf()); err != nil {
		tp.Fail(fmt.Errorf("arch: reading %s: %w", aLog.Name(), err))
	}
	e, neg := make([]float32, len(host)), make([]float32, len(host))
	for i, v := range host {
		x := float32(math.Exp(float64(v)))
		e[i], neg[i] = x, -x
	}
	a := tp.Constant("A", neg, shape...)
	if tp.NoGrad() {
		return a
	}
	zero := tp.Sub(aLog, tp.Constant("A_log", host, shape...)) // exactly 0, gradient 1
	return tp.Sub(a, tp.Mul(tp.Constant("exp(A_log)", e, shape...), zero))
}

// zeros is a zero activation that needs no gradient.
func zeros(tp *tensor.Tape, shape ...int) *tensor.Tensor {
	z := tp.New("zeros", shape...)
	tp.Backend().Fill(z.Buf(), 0)
	return z
}

// padLast widens the last axis of x with zeros to n.
func padLast(tp *tensor.Tape, x *tensor.Tensor, n int) *tensor.Tensor {
	if w := x.Dim(-1); w < n {
		s := append([]int(nil), x.Shape()...)
		s[len(s)-1] = n - w
		return tp.Concat(x, zeros(tp, s...))
	}
	return x
}

// attention is Llama-style grouped-query attention:
//
//	q = RoPE(x·W_qᵀ) (B, T, h, qk),  k = RoPE(x·W_kᵀ) (B, T, kh, qk),  v = x·W_vᵀ (B, T, kh, hd)
//	o = softmax(q·kᵀ/√qk + causal/window mask)·v  (B, T, h, hd),   out = o·W_oᵀ
//
// Sliding-window layers see the window most recent keys plus the first sinks tokens.
// The flash kernel takes one head width, so when Q/K are narrower than V (the intra block's
// reduced qk) they are zero-padded to hd: the scores are unchanged (the padding contributes 0
// to every dot product) and the scale stays 1/√qk.
type attention struct {
	q, k, v, o    *tensor.Tensor // (h·qk, d), (kh·qk, d), (kh·hd, d), (d, h·hd) or nil
	h, kh, qk, hd int
	theta         float64
	window, sinks int
}

func newAttention(bd *builder, c *Config, name string, h, kh, qk int, windowed, out bool) *attention {
	d, hd, std := c.DModel, c.headDim(), c.InitStd
	a := &attention{h: h, kh: kh, qk: qk, hd: hd, theta: c.Attention.RopeTheta}
	if windowed {
		a.window, a.sinks = c.Attention.Window, c.Attention.Sinks
		if c.Attention.WindowRopeTheta > 0 {
			a.theta = c.Attention.WindowRopeTheta
		}
	}
	a.q = bd.normal(name+".q_proj.weight", std, h*qk, d)
	a.k = bd.normal(name+".k_proj.weight", std, kh*qk, d)
	a.v = bd.normal(name+".v_proj.weight", std, kh*hd, d)
	if out {
		a.o = bd.normal(name+".o_proj.weight", outStd(c), d, h*hd)
	}
	return a
}

// inner maps x (B, T, d) to the attention output before W_o, (B, T, h·hd), and returns the V
// projection (B, T, kh·hd) too (the intra block may share it with its SSM branch). With a decode
// cache kv (nil in training) the tokens sit at positions kv.n…, their keys and values join the
// cache and the queries attend to it (decode.go).
func (a *attention) inner(tp *tensor.Tape, x *tensor.Tensor, kv *kvCache) (o, v *tensor.Tensor) {
	bs, t := x.Dim(0), x.Dim(1)
	vflat := tp.Linear(x, a.v, nil)
	q := rope(tp, tp.Reshape(tp.Linear(x, a.q, nil), bs, t, a.h, a.qk), kv.pos(), a.theta)
	k := rope(tp, tp.Reshape(tp.Linear(x, a.k, nil), bs, t, a.kh, a.qk), kv.pos(), a.theta)
	v = tp.Reshape(vflat, bs, t, a.kh, a.hd)
	if kv != nil {
		return tp.Reshape(kv.attend(tp, a, q, k, v), bs, t, a.h*a.hd), vflat
	}
	w := max(a.qk, a.hd)
	q, k, v4 := padLast(tp, q, w), padLast(tp, k, w), padLast(tp, v, w)
	o = tp.Attention(q, k, v4, tensor.AttentionOptions{Causal: true, Window: a.window, Sinks: a.sinks,
		Scale: float32(1 / math.Sqrt(float64(a.qk)))})
	if w > a.hd {
		o = tp.Split(o, a.hd, w-a.hd)[0]
	}
	return tp.Reshape(o, bs, t, a.h*a.hd), vflat
}

func (a *attention) forward(tp *tensor.Tape, x *tensor.Tensor, st *layerState) *tensor.Tensor {
	o, _ := a.inner(tp, x, st.attn())
	return tp.Linear(o, a.o, nil)
}

// conv is the causal depthwise conv1d before the scan, with bias and SiLU.
type convLayer struct{ w, b *tensor.Tensor } // (C, W), (C)

func newConv(bd *builder, name string, ch, width int) convLayer {
	bound := 1 / math.Sqrt(float64(width))
	return convLayer{w: bd.uniform(name+".weight", -bound, bound, ch, width), b: bd.uniform(name+".bias", -bound, bound, ch)}
}

// mamba2 is the Mamba-2 mixer (Dao & Gu 2024), as mamba_ssm's Mamba2:
//
//	[z, xBC, dt] = x·W_inᵀ                 z (di), xBC (di + 2·G·N), dt (H)
//	[x, B, C]    = silu(conv1d(xBC))
//	y            = SSD(x, Δ = softplus(dt + dt_bias), A = −exp(A_log), B, C) + D·x
//	out          = W_out · RMSNorm_G(y ⊙ silu(z))
//
// In an intra block with shared values, in_proj has no x part and x is the attention V.
type mamba2 struct {
	inProj                *tensor.Tensor // (di·[2 or 1] + 2·G·N + H, d)
	conv                  convLayer      // over di + 2·G·N channels
	dtBias, aLog, dskip   *tensor.Tensor // (H) each
	normW                 *tensor.Tensor // (di) gated RMSNorm weight
	outProj               *tensor.Tensor // (d, di) or nil
	di, h, p, g, n, chunk int
	sharedX               bool
	eps                   float32
}

func newMamba2(bd *builder, c *Config, name string, di int, sharedX, out bool) *mamba2 {
	m := c.Mamba
	d := c.DModel
	mb := &mamba2{di: di, p: m.HeadDim, h: di / m.HeadDim, g: m.NGroups, n: m.DState, chunk: m.ChunkSize,
		sharedX: sharedX, eps: float32(c.Norm.Eps)}
	gn := mb.g * mb.n
	x := di
	if sharedX {
		x = 0
	}
	mb.inProj = bd.normal(name+".in_proj.weight", c.InitStd, di+x+2*gn+mb.h, d)
	mb.conv = newConv(bd, name+".conv1d", di+2*gn, m.ConvWidth)
	mb.dtBias = bd.dtBias(name+".dt_bias", mb.h)
	mb.aLog = bd.aLog2(name+".A_log", mb.h, m.AInit)
	mb.dskip = bd.constant(name+".D", 1, mb.h)
	mb.normW = bd.constant(name+".norm.weight", 1, di)
	if out {
		mb.outProj = bd.normal(name+".out_proj.weight", outStd(c), d, di)
	}
	return mb
}

// inner maps x (B, T, d) to the gated-normed SSD output (B, T, di); xv (B, T, di) is the
// shared value input or nil. With a decode state st (nil in training) the conv and the SSD start
// from it and leave their final states in it.
func (m *mamba2) inner(tp *tensor.Tape, x, xv *tensor.Tensor, st *ssmCache) *tensor.Tensor {
	bs, t, gn := x.Dim(0), x.Dim(1), m.g*m.n
	var z, xbc, dt *tensor.Tensor
	if m.sharedX {
		p := tp.Split(tp.Linear(x, m.inProj, nil), m.di, 2*gn, m.h)
		z, xbc, dt = p[0], tp.Concat(xv, p[1]), p[2]
	} else {
		p := tp.Split(tp.Linear(x, m.inProj, nil), m.di, m.di+2*gn, m.h)
		z, xbc, dt = p[0], p[1], p[2]
	}
	p := tp.Split(st.conv1d(tp, xbc, m.conv), m.di, gn, gn)
	in := tensor.SSDInputs{
		X: tp.Reshape(p[0], bs, t, m.h, m.p), Dt: dt, DtBias: m.dtBias,
		Bm: tp.Reshape(p[1], bs, t, m.g, m.n), Cm: tp.Reshape(p[2], bs, t, m.g, m.n), Dskip: m.dskip, Chunk: m.chunk}
	var y *tensor.Tensor
	if st != nil {
		y = st.ssd(tp, in, bs, t, m)
	} else {
		in.A = negExp(tp, m.aLog)
		y = tp.SSD(in)
	}
	return tp.GatedRMSNorm(tp.Reshape(y, bs, t, m.di), z, m.normW, m.g, m.eps)
}

func (m *mamba2) forward(tp *tensor.Tape, x *tensor.Tensor, st *layerState) *tensor.Tensor {
	return tp.Linear(m.inner(tp, x, nil, st.ssmState()), m.outProj, nil)
}

// mamba1 is the Mamba-1 mixer (Gu & Dao 2023), as mamba_ssm's Mamba:
//
//	[x, z]     = x·W_inᵀ                           (di each)
//	x          = silu(conv1d(x))
//	[δ, B, C]  = x·W_xᵀ                            (R, N, N)
//	y          = scan(x, Δ = softplus(W_dt·δ + dt_bias), A = −exp(A_log), B, C, D) ⊙ silu(z)
//	out        = W_out·y
//
// dt_proj's bias is the scan's fused Δ bias, as mamba_ssm passes delta_bias. With shared values
// (intra block) in_proj produces only z and x is the attention V.
type mamba1 struct {
	inProj, xProj *tensor.Tensor // (di·[2 or 1], d), (R + 2N, di)
	conv          convLayer      // over di channels
	dtW, dtB      *tensor.Tensor // (di, R), (di)
	aLog          *tensor.Tensor // (di, N)
	dskip         *tensor.Tensor // (di)
	outProj       *tensor.Tensor // (d, di) or nil
	di, n, r      int
	sharedX       bool
}

func newMamba1(bd *builder, c *Config, name string, di int, sharedX, out bool) *mamba1 {
	m := c.Mamba
	d := c.DModel
	mb := &mamba1{di: di, n: m.DState, r: c.dtRank(), sharedX: sharedX}
	x := di
	if sharedX {
		x = 0
	}
	mb.inProj = bd.normal(name+".in_proj.weight", c.InitStd, x+di, d)
	mb.conv = newConv(bd, name+".conv1d", di, m.ConvWidth)
	mb.xProj = bd.normal(name+".x_proj.weight", c.InitStd, mb.r+2*mb.n, di)
	std := 1 / math.Sqrt(float64(mb.r))
	mb.dtW = bd.uniform(name+".dt_proj.weight", -std, std, di, mb.r)
	mb.dtB = bd.dtBias(name+".dt_proj.bias", di)
	mb.aLog = bd.aLog1(name+".A_log", di, mb.n, m.AInit)
	mb.dskip = bd.constant(name+".D", 1, di)
	if out {
		mb.outProj = bd.normal(name+".out_proj.weight", outStd(c), d, di)
	}
	return mb
}

// inner maps x (B, T, d) to the gated scan output (B, T, di); xv is the shared value or nil; st
// is the decode state or nil (as mamba2.inner).
func (m *mamba1) inner(tp *tensor.Tape, x, xv *tensor.Tensor, st *ssmCache) *tensor.Tensor {
	bs, t := x.Dim(0), x.Dim(1)
	var xs, z *tensor.Tensor
	if m.sharedX {
		xs, z = xv, tp.Linear(x, m.inProj, nil)
	} else {
		p := tp.Split(tp.Linear(x, m.inProj, nil), m.di, m.di)
		xs, z = p[0], p[1]
	}
	xs = st.conv1d(tp, xs, m.conv)
	p := tp.Split(tp.Linear(xs, m.xProj, nil), m.r, m.n, m.n)
	in := tensor.ScanInputs{
		U: xs, Delta: tp.Linear(p[0], m.dtW, nil),
		Bm: tp.Reshape(p[1], bs, t, 1, m.n), Cm: tp.Reshape(p[2], bs, t, 1, m.n),
		Dskip: m.dskip, Z: z, DeltaBias: m.dtB, Softplus: true, Groups: 1, Chunk: selectivescan.ScanDefaultChunk}
	if st != nil {
		return st.scan(tp, in, bs, t, m)
	}
	in.A = negExp(tp, m.aLog)
	return tp.SelectiveScan(in)
}

func (m *mamba1) forward(tp *tensor.Tape, x *tensor.Tensor, st *layerState) *tensor.Tensor {
	return tp.Linear(m.inner(tp, x, nil, st.ssmState()), m.outProj, nil)
}

// ssmBranch is either Mamba version behind one interface (the intra block's SSM branch).
type ssmBranch interface {
	inner(tp *tensor.Tape, x, xv *tensor.Tensor, st *ssmCache) *tensor.Tensor
	out() *tensor.Tensor
}

func (m *mamba2) out() *tensor.Tensor { return m.outProj }
func (m *mamba1) out() *tensor.Tensor { return m.outProj }

func newSSM(bd *builder, c *Config, name string, di int, sharedX, out bool) ssmBranch {
	if c.Mamba.Version == 1 {
		return newMamba1(bd, c, name, di, sharedX, out)
	}
	return newMamba2(bd, c, name, di, sharedX, out)
}
