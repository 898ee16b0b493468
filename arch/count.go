package arch

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Accounting from the config alone: parameters, FLOPs per token and decode-cache size, op by op,
// so that `hybrid info`, the efficiency tables and FLOP-matched budgets need no model in memory.
//
// Parameters are what a standard implementation allocates (mamba_ssm, Llama); no linear layer has
// a bias except the conv and Mamba-1's dt_proj, as there.
//
// FLOPs are per token, forward, for training on sequences of length T (attention cost is the
// average over the T query positions). Counted: every matrix product as 2·in·out (+out for a
// bias); attention scores QKᵀ (2·qk per key per head) and values PV (2·hd per key per head); the
// conv (2·W+1 per channel); the scan (Mamba-1: 9·di·N as the selective-scan kernels count it;
// Mamba-2: the SSD chunk GEMMs, see ssdFLOPs); norms roughly (RMSNorm 4, LayerNorm and GroupNorm
// 6 per element); the LM head. Not counted: embedding lookup, softmax, RoPE, activations, gates,
// residual adds and fusion (all elementwise, a few per element). Training = 3 × forward: the
// backward pass does two products for each forward one.
//
// Decode cache: global attention keeps K and V for every past token; sliding-window attention at
// most window + sinks tokens; Mamba layers a fixed conv state ((W−1) × conv channels) and SSM state
// (di·N), whatever T is.

// Dtype is a storage type for the cache.
type Dtype string

// Storage types.
const (
	Float32 Dtype = "float32"
	BF16    Dtype = "bf16"
	FP16    Dtype = "fp16"
)

// Size is bytes per element; 0 for an unknown type.
func (d Dtype) Size() int {
	switch d {
	case Float32:
		return 4
	case BF16, FP16:
		return 2
	}
	return 0
}

// Op is one operation of a layer: the parameters it owns and its forward FLOPs per token.
type Op struct {
	Name   string
	Params int64
	FLOPs  float64
}

// LayerCount is one row of the per-layer table.
type LayerCount struct {
	Index  int
	Kind   Kind
	Ops    []Op
	Params int64
	FLOPs  float64 // forward, per token, at Count.T
	Cache  int64   // decode-cache elements at context Count.T
}

// Count is the accounting of a model at context length T.
type Count struct {
	T       int
	Pattern string
	Layers  []LayerCount
	// Embed is the input embedding (V·d). Head is the untied LM head (0 when tied) and HeadFLOPs
	// its product, counted either way. Final is the final norm.
	Embed, Head, Final  int64
	HeadFLOPs, FinalOps float64
}

// Params is the total parameter count; a tied head is counted once (in Embed).
func (c *Count) Params() int64 {
	n := c.Embed + c.Head + c.Final
	for _, l := range c.Layers {
		n += l.Params
	}
	return n
}

// NonEmbeddingParams leaves out the embedding table and an untied head, as scaling laws do.
func (c *Count) NonEmbeddingParams() int64 { return c.Params() - c.Embed - c.Head }

// ForwardFLOPs is forward FLOPs per token at context T.
func (c *Count) ForwardFLOPs() float64 {
	f := c.HeadFLOPs + c.FinalOps
	for _, l := range c.Layers {
		f += l.FLOPs
	}
	return f
}

// TrainFLOPs is forward + backward FLOPs per token (3 × forward).
func (c *Count) TrainFLOPs() float64 { return 3 * c.ForwardFLOPs() }

// CacheBytes is the decode cache of one sequence at context T in storage type d.
func (c *Count) CacheBytes(d Dtype) int64 {
	var n int64
	for _, l := range c.Layers {
		n += l.Cache
	}
	return n * int64(d.Size())
}

// WriteTable prints the per-layer table `hybrid info` shows, with cache sizes in d.
func (c *Count) WriteTable(w io.Writer, d Dtype) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "layer\tkind\tparams\tMFLOP/token\tcache KiB (%s, T=%d)\t\n", d, c.T)
	fmt.Fprintf(tw, "emb\t\t%d\t\t\t\n", c.Embed)
	for _, l := range c.Layers {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.3f\t%.1f\t\n", l.Index, l.Kind, l.Params, l.FLOPs/1e6,
			float64(l.Cache*int64(d.Size()))/1024)
	}
	fmt.Fprintf(tw, "head\t\t%d\t%.3f\t\t\n", c.Head+c.Final, (c.HeadFLOPs+c.FinalOps)/1e6)
	fmt.Fprintf(tw, "total\t%s\t%d\t%.3f\t%.1f\t\n", c.Pattern, c.Params(), c.ForwardFLOPs()/1e6,
		float64(c.CacheBytes(d))/1024)
	return tw.Flush()
}

// Count validates the config and accounts for it at context length T (T ≥ 1).
func (c *Config) Count(T int) (*Count, error) {
	if T < 1 {
		return nil, fmt.Errorf("arch.Count: context length T=%d, want ≥ 1", T)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kinds, pat, _ := c.Layout.Resolve(c.NLayers)
	d, V := int64(c.DModel), int64(c.VocabSize)
	out := &Count{T: T, Pattern: pat, Embed: V * d}
	if !c.TiedEmbeddings {
		out.Head = V * d
	}
	out.HeadFLOPs = 2 * float64(V*d)
	fin := c.norm("final_norm", c.DModel)
	out.Final, out.FinalOps = fin.Params, fin.FLOPs
	for i, k := range kinds {
		l := LayerCount{Index: i, Kind: k}
		if k != KindFFN {
			l.Ops = append(l.Ops, c.norm("norm", c.DModel))
			ops, cache := c.mixer(k, T)
			l.Ops = append(l.Ops, ops...)
			l.Cache = cache
		}
		if c.FFN.Type == "swiglu" && (k == KindFFN || c.FFN.Mode == "block") {
			F := int64(c.FFN.Hidden)
			l.Ops = append(l.Ops, c.norm("ffn_norm", c.DModel),
				linear("ffn_gate", d, F, false), linear("ffn_up", d, F, false), linear("ffn_down", F, d, false))
		}
		for _, o := range l.Ops {
			l.Params += o.Params
			l.FLOPs += o.FLOPs
		}
		out.Layers = append(out.Layers, l)
	}
	return out, nil
}

// CacheBytes is a shortcut for the decode cache of one sequence at context T.
func (c *Config) CacheBytes(T int, d Dtype) (int64, error) {
	if d.Size() == 0 {
		return 0, fmt.Errorf("arch.CacheBytes: unknown dtype %q (want float32, bf16, fp16)", d)
	}
	n, err := c.Count(T)
	if err != nil {
		return 0, err
	}
	return n.CacheBytes(d), nil
}

func linear(name string, in, out int64, bias bool) Op {
	o := Op{Name: name, Params: in * out, FLOPs: 2 * float64(in*out)}
	if bias {
		o.Params += out
		o.FLOPs += float64(out)
	}
	return o
}

func (c *Config) norm(name string, w int) Op {
	if c.Norm.Type == "layernorm" {
		return Op{name, 2 * int64(w), 6 * float64(w)}
	}
	return Op{name, int64(w), 4 * float64(w)}
}

// mixer returns the ops of a layer's mixer and its decode-cache elements at context T.
func (c *Config) mixer(k Kind, T int) ([]Op, int64) {
	a := c.Attention
	switch k {
	case KindAttn, KindWindow:
		return c.attn(a.Heads, a.KVHeads, c.headDim(), k == KindWindow, T, true)
	case KindMamba:
		return c.ssm(c.Mamba.Expand*c.DModel, T, false, true)
	case KindIntra, KindIntraWindow:
		return c.intra(k == KindIntraWindow, T)
	}
	return nil, 0
}

// keys is the average number of keys a query attends to over positions 1..T: (T+1)/2 causal,
// capped at window + sinks for sliding-window layers.
func (c *Config) keys(T int, window bool) float64 {
	if !window {
		return float64(T+1) / 2
	}
	cap := c.Attention.Window + c.Attention.Sinks
	m := min(T, cap)
	sum := float64(m) * float64(m+1) / 2
	sum += float64(T-m) * float64(cap)
	return sum / float64(T)
}

// cached is how many tokens an attention layer keeps after T tokens.
func (c *Config) cached(T int, window bool) int64 {
	if window {
		return int64(min(T, c.Attention.Window+c.Attention.Sinks))
	}
	return int64(T)
}

// attn counts GQA attention with h query heads of Q/K width qk (V width hd) and kh KV heads;
// out says whether it has its own o projection.
func (c *Config) attn(h, kh, qk int, window bool, T int, out bool) ([]Op, int64) {
	d, hd := int64(c.DModel), int64(c.headDim())
	H, K, QK := int64(h), int64(kh), int64(qk)
	kv := c.keys(T, window)
	ops := []Op{
		linear("q", d, H*QK, false),
		linear("k", d, K*QK, false),
		linear("v", d, K*hd, false),
		{Name: "scores", FLOPs: 2 * float64(H*QK) * kv},
		{Name: "values", FLOPs: 2 * float64(H*hd) * kv},
	}
	if out {
		ops = append(ops, linear("o", H*hd, d, false))
	}
	return ops, c.cached(T, window) * K * (QK + hd)
}

// ssm counts a Mamba mixer of inner width di. sharedX drops the x part of in_proj (it comes
// from the attention V in an intra block); out says whether it has its own out_proj.
func (c *Config) ssm(di, T int, sharedX, out bool) ([]Op, int64) {
	m := c.Mamba
	d, D, N, W := int64(c.DModel), int64(di), int64(m.DState), int64(m.ConvWidth)
	x := D
	if sharedX {
		x = 0
	}
	var ops []Op
	var cache int64
	if m.Version == 1 {
		R := int64(c.dtRank())
		ops = []Op{
			linear("in_proj", d, D+x, false), // z and x
			conv(D, W),
			linear("x_proj", D, R+2*N, false), // Δ (rank R), B, C
			linear("dt_proj", R, D, true),
			{Name: "A_log", Params: D * N},
			{Name: "D", Params: D},
			{Name: "scan", FLOPs: 9 * float64(D*N)},
		}
		cache = (W-1)*D + D*N
	} else {
		G, P := int64(m.NGroups), int64(m.HeadDim)
		H := D / P
		ops = []Op{
			linear("in_proj", d, D+x+2*G*N+H, false), // z, x, B, C, dt
			conv(D+2*G*N, W),                         // over x, B, C
			{Name: "dt_bias", Params: H},
			{Name: "A_log", Params: H},
			{Name: "D", Params: H},
			{Name: "ssd", FLOPs: ssdFLOPs(T, m.ChunkSize, P, N, H, G)},
			{Name: "gated_norm", Params: D, FLOPs: 4 * float64(D)},
		}
		cache = (W-1)*(D+2*G*N) + D*N
	}
	if out {
		ops = append(ops, linear("out_proj", D, d, false))
	}
	return ops, cache
}

func conv(C, W int64) Op {
	return Op{Name: "conv", Params: C*W + C, FLOPs: float64(C * (2*W + 1))}
}

// ssdFLOPs is Mamba-2's chunked SSD per token, averaged over a sequence of T tokens cut into
// chunks of Q (the last one may be shorter), with head dim P, state N, H heads and G groups.
// Per sequence (kernels.md's four steps; ℓ is a chunk's length, Σℓ² over chunks):
//
//	C·Bᵀ per group      2·N·G·Σℓ²
//	Y_diag = (CBᵀ∘L)·X  2·P·H·Σℓ²
//	chunk states B·X    2·N·P·H·T
//	state passing       2·N·P·H·(chunks − 1)
//	Y_off = C·S         2·N·P·H·T
//	D skip              2·P·H·T
//
// so for T a multiple of Q it is 2·Q·(N·G + P·H) + 4·N·P·H + 2·N·P·H·(1/Q − 1/T) + 2·P·H.
// Full ℓ×ℓ tiles are counted, as GEMMs compute them; the causal mask does not halve them.
func ssdFLOPs(T, Q int, P, N, H, G int64) float64 {
	full, rem := T/Q, T%Q
	chunks := full
	if rem > 0 {
		chunks++
	}
	sq := float64(full)*float64(Q)*float64(Q) + float64(rem)*float64(rem)
	t := float64(T)
	p, n, h, g := float64(P), float64(N), float64(H), float64(G)
	seq := 2*n*g*sq + 2*p*h*sq + 4*n*p*h*t + 2*n*p*h*float64(chunks-1) + 2*p*h*t
	return seq / t
}

// intra counts an intra-layer hybrid block (see Intra).
func (c *Config) intra(window bool, T int) ([]Op, int64) {
	b, _ := c.intraDims() // validated
	in := c.Intra
	d := int64(c.DModel)
	sep := !in.ShareOut
	aops, acache := c.attn(b.h, b.kh, b.qk, window, T, sep)
	sops, scache := c.ssm(b.di, T, in.ShareValue, sep)
	for i := range aops {
		aops[i].Name = "attn." + aops[i].Name
	}
	for i := range sops {
		sops[i].Name = "ssm." + sops[i].Name
	}
	ops := append(aops, sops...)
	vw, di := int64(b.vw), int64(b.di)
	switch in.Norm {
	case "groupnorm":
		ops = append(ops, Op{"attn.branch_norm", 2 * vw, 6 * float64(vw)}, Op{"ssm.branch_norm", 2 * di, 6 * float64(di)})
	case "rmsnorm":
		ops = append(ops, Op{"attn.branch_norm", vw, 4 * float64(vw)}, Op{"ssm.branch_norm", di, 4 * float64(di)})
	}
	if in.Scales {
		ops = append(ops, Op{Name: "attn.scale", Params: vw}, Op{Name: "ssm.scale", Params: di})
	}
	if in.ShareOut {
		w := vw
		if in.Fusion == "concat" {
			w = vw + di
		}
		ops = append(ops, linear("out_proj", w, d, false))
	}
	return ops, acache + scache
}
