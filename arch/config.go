// Package arch describes hybrid Mamba–attention language models.
//
// This file holds the model configuration: plain data that a recipe decodes and that the layer
// builders read. Everything a study varies is a field with a snake_case YAML name, so the dotted
// path of a field (model.attention.kv_heads) is the same in recipes, overrides, errors and sweeps.
//
// Glossary (the letters used in comments and formulas):
//
//	V  vocabulary size          d  d_model (residual width)
//	H  query heads              K  KV heads (GQA)          hd  head dim (V width per head)
//	qk Q/K width per head (hd unless reduced in intra blocks)
//	di Mamba inner width (expand·d)   P  Mamba-2 head dim   Hm  Mamba-2 heads (di/P)
//	N  d_state                  G  groups of B/C (Mamba-2)  W  conv width   Q  SSD chunk size
//	R  dt_rank (Mamba-1)        F  FFN hidden size          T  context length
package arch

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Config is a whole model: embeddings, the layer stack (its Layout) and the settings of each kind
// of mixer. Only the sections the layout uses are validated, so a pure Transformer may leave its
// Mamba section at the defaults.
type Config struct {
	VocabSize int       `yaml:"vocab_size" json:"vocab_size"`
	DModel    int       `yaml:"d_model" json:"d_model"`
	NLayers   int       `yaml:"n_layers" json:"n_layers"`
	Layout    Layout    `yaml:"layout" json:"layout"`
	Attention Attention `yaml:"attention" json:"attention"`
	Mamba     Mamba     `yaml:"mamba" json:"mamba"`
	FFN       FFN       `yaml:"ffn" json:"ffn"`
	Intra     Intra     `yaml:"intra" json:"intra"`
	Norm      Norm      `yaml:"norm" json:"norm"`
	// TiedEmbeddings reuses the input embedding as the LM head (the head then adds no parameters).
	TiedEmbeddings bool `yaml:"tied_embeddings" json:"tied_embeddings"`
	// InitStd is the standard deviation of the normal init of linear and embedding weights.
	InitStd float64 `yaml:"init_std" json:"init_std"`
}

// Attention configures softmax attention layers (A, S) and the attention branch of intra blocks.
type Attention struct {
	Heads   int `yaml:"heads" json:"heads"`
	KVHeads int `yaml:"kv_heads" json:"kv_heads"` // GQA: each KV head serves Heads/KVHeads query heads
	// HeadDim is the V (and, outside intra blocks, Q/K) width per head; 0 means d_model/heads.
	HeadDim int `yaml:"head_dim" json:"head_dim"`
	// RopeTheta is the RoPE base of global layers (the paper: 500k at 1B; 10k is fine for short contexts).
	RopeTheta float64 `yaml:"rope_theta" json:"rope_theta"`
	// WindowRopeTheta is the RoPE base of sliding-window layers; 0 means RopeTheta. The paper uses 10k there.
	WindowRopeTheta float64 `yaml:"window_rope_theta" json:"window_rope_theta"`
	// Window is the number of most recent keys a sliding-window layer (S, W) sees, itself included.
	Window int `yaml:"window" json:"window"`
	// Sinks is the number of first tokens every sliding-window query also sees (attention sinks).
	Sinks int `yaml:"sinks" json:"sinks"`
}

// Mamba configures the SSM mixers (M) and the SSM branch of intra blocks.
type Mamba struct {
	Version   int `yaml:"version" json:"version"` // 1 (selective scan) or 2 (SSD)
	Expand    int `yaml:"expand" json:"expand"`   // di = Expand·d
	HeadDim   int `yaml:"head_dim" json:"head_dim"`
	DState    int `yaml:"d_state" json:"d_state"`
	NGroups   int `yaml:"n_groups" json:"n_groups"` // Mamba-2 only
	ConvWidth int `yaml:"conv_width" json:"conv_width"`
	ChunkSize int `yaml:"chunk_size" json:"chunk_size"` // Mamba-2 SSD chunk Q
	// DtRank is Mamba-1's Δ projection rank; 0 means ceil(d/16) as mamba_ssm's "auto".
	DtRank int `yaml:"dt_rank" json:"dt_rank"`
	// AInit is the range A is initialised in (A = −exp(A_log)); mamba_ssm uses [1, 16], the paper [0.01, 2].
	AInit []float64 `yaml:"a_init" json:"a_init"`
}

// FFN configures the feed-forward network.
type FFN struct {
	Type   string `yaml:"type" json:"type"` // swiglu | none (moe is reserved)
	Hidden int    `yaml:"hidden" json:"hidden"`
	// Mode says where FFNs sit: "block" puts one after every mixer (Llama, the paper); "separate"
	// gives mixers no FFN and FFNs appear only as '-' layers (Megatron, Nemotron-H).
	Mode string `yaml:"mode" json:"mode"`
	// Experts, TopK and SharedExperts are reserved for MoE; non-zero values are refused for now.
	Experts       int `yaml:"experts" json:"experts"`
	TopK          int `yaml:"top_k" json:"top_k"`
	SharedExperts int `yaml:"shared_experts" json:"shared_experts"`
}

// Intra configures the intra-layer (parallel) hybrid block (I, W):
//
//	f(X) = W_out( α_ssm · Norm(M_ssm(X))  ⊕  α_attn · Norm(M_attn(X)) )
//
// The attention branch gets AttnShare of the query and KV heads; the SSM branch gets
// (1−AttnShare) of the inner width. The paper's final design: groupnorm, no scales, diff,
// separate value and output projections, reduced Q/K width.
type Intra struct {
	AttnShare float64 `yaml:"attn_share" json:"attn_share"`
	Norm      string  `yaml:"norm" json:"norm"`     // groupnorm | rmsnorm | none
	Scales    bool    `yaml:"scales" json:"scales"` // learned per-channel α per branch
	Fusion    string  `yaml:"fusion" json:"fusion"` // add | diff | concat | mean
	// ShareValue feeds the SSM branch from the attention V projection instead of its own x
	// projection (needs V width = SSM branch width).
	ShareValue bool `yaml:"share_value" json:"share_value"`
	// ShareOut uses one W_out after fusion; false gives each branch its own out projection and
	// fuses in d space. concat needs true.
	ShareOut bool `yaml:"share_out" json:"share_out"`
	// QKHeadDim is the reduced Q/K width per head in intra blocks; 0 means attention.head_dim.
	QKHeadDim int `yaml:"qk_head_dim" json:"qk_head_dim"`
}

// Norm is the normalisation used before each mixer and FFN and at the end of the stack.
type Norm struct {
	Type string  `yaml:"type" json:"type"` // rmsnorm | layernorm
	Eps  float64 `yaml:"eps" json:"eps"`
}

// Default returns a small, valid all-Mamba-2 model; recipes start from it so every field has an
// explicit value (recipes/README.md lists them).
func Default() Config {
	return Config{
		VocabSize: 256,
		DModel:    128,
		NLayers:   4,
		Layout:    Layout{},
		Attention: Attention{Heads: 4, KVHeads: 2, HeadDim: 32, RopeTheta: 10000, Window: 128, Sinks: 16},
		Mamba: Mamba{Version: 2, Expand: 2, HeadDim: 32, DState: 32, NGroups: 1, ConvWidth: 4,
			ChunkSize: 64, AInit: []float64{1, 16}},
		FFN:            FFN{Type: "swiglu", Hidden: 384, Mode: "block"},
		Intra:          Intra{AttnShare: 0.5, Norm: "groupnorm", Fusion: "diff"},
		Norm:           Norm{Type: "rmsnorm", Eps: 1e-5},
		TiedEmbeddings: true,
		InitStd:        0.02,
	}
}

// FieldError is one invalid field, named by its dotted path relative to the Config
// ("attention.kv_heads"); recipes prefix "model." and add the file and line.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Errors collects every invalid field so a user fixes a recipe in one pass.
type Errors []*FieldError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

type checker struct{ errs Errors }

func (c *checker) add(path, format string, a ...any) {
	c.errs = append(c.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, a...)})
}

func (c *checker) pos(path string, v int) bool {
	if v <= 0 {
		c.add(path, "must be positive, have %d", v)
		return false
	}
	return true
}

func (c *checker) oneOf(path, v string, ok ...string) {
	for _, o := range ok {
		if v == o {
			return
		}
	}
	c.add(path, "%q is not one of %s", v, strings.Join(ok, ", "))
}

// Validate checks sizes and divisibility and resolves the layout. It returns nil or an Errors
// listing every problem with its field path; sections the layout does not use are skipped.
func (c *Config) Validate() error {
	var ck checker
	ck.pos("vocab_size", c.VocabSize)
	ck.pos("d_model", c.DModel)
	if !ck.pos("n_layers", c.NLayers) {
		return ck.errs
	}
	if !(c.InitStd > 0) {
		ck.add("init_std", "must be positive, have %g", c.InitStd)
	}
	ck.oneOf("norm.type", c.Norm.Type, "rmsnorm", "layernorm")
	if !(c.Norm.Eps > 0) {
		ck.add("norm.eps", "must be positive, have %g", c.Norm.Eps)
	}
	kinds, _, err := c.Layout.Resolve(c.NLayers)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			ck.errs = append(ck.errs, fe)
		} else {
			ck.add("layout", "%v", err)
		}
		return ck.errs
	}
	var attn, window, ssm, intra, ffnOnly bool
	for _, k := range kinds {
		switch k {
		case KindAttn:
			attn = true
		case KindWindow:
			attn, window = true, true
		case KindMamba:
			ssm = true
		case KindIntra:
			attn, ssm, intra = true, true, true
		case KindIntraWindow:
			attn, ssm, intra, window = true, true, true, true
		case KindFFN:
			ffnOnly = true
		}
	}
	c.checkFFN(&ck, ffnOnly)
	if attn {
		c.checkAttention(&ck, window)
	}
	if ssm {
		c.checkMamba(&ck)
	}
	if intra && len(ck.errs) == 0 {
		c.checkIntra(&ck)
	}
	if len(ck.errs) > 0 {
		return ck.errs
	}
	return nil
}

func (c *Config) checkFFN(ck *checker, ffnOnly bool) {
	f := c.FFN
	switch f.Type {
	case "swiglu":
		ck.pos("ffn.hidden", f.Hidden)
	case "none":
		if ffnOnly {
			ck.add("ffn.type", `"none" but the layout has FFN-only '-' layers`)
		}
	case "moe":
		ck.add("ffn.type", `"moe" is reserved and not supported yet; use swiglu`)
	default:
		ck.oneOf("ffn.type", f.Type, "swiglu", "none")
	}
	ck.oneOf("ffn.mode", f.Mode, "block", "separate")
	if f.Experts != 0 || f.TopK != 0 || f.SharedExperts != 0 {
		ck.add("ffn.experts", "MoE fields are reserved and must be 0 for now")
	}
}

func (c *Config) checkAttention(ck *checker, window bool) {
	a := c.Attention
	okH := ck.pos("attention.heads", a.Heads)
	okK := ck.pos("attention.kv_heads", a.KVHeads)
	if a.HeadDim < 0 {
		ck.add("attention.head_dim", "must be ≥ 0 (0 means d_model/heads), have %d", a.HeadDim)
	} else if a.HeadDim == 0 && okH && c.DModel%a.Heads != 0 {
		ck.add("attention.heads", "%d does not divide d_model %d (head_dim 0 means d_model/heads)", a.Heads, c.DModel)
	}
	if okH && okK && a.Heads%a.KVHeads != 0 {
		ck.add("attention.kv_heads", "%d does not divide attention.heads %d", a.KVHeads, a.Heads)
	}
	if !(a.RopeTheta > 0) {
		ck.add("attention.rope_theta", "must be positive, have %g", a.RopeTheta)
	}
	if a.WindowRopeTheta < 0 {
		ck.add("attention.window_rope_theta", "must be ≥ 0 (0 means rope_theta), have %g", a.WindowRopeTheta)
	}
	if window {
		ck.pos("attention.window", a.Window)
	}
	if a.Window < 0 {
		ck.add("attention.window", "must be ≥ 0, have %d", a.Window)
	}
	if a.Sinks < 0 {
		ck.add("attention.sinks", "must be ≥ 0, have %d", a.Sinks)
	}
}

func (c *Config) checkMamba(ck *checker) {
	m := c.Mamba
	if m.Version != 1 && m.Version != 2 {
		ck.add("mamba.version", "must be 1 or 2, have %d", m.Version)
		return
	}
	ck.pos("mamba.expand", m.Expand)
	ck.pos("mamba.d_state", m.DState)
	ck.pos("mamba.conv_width", m.ConvWidth)
	if len(m.AInit) != 2 || !(m.AInit[0] > 0) || !(m.AInit[1] >= m.AInit[0]) {
		ck.add("mamba.a_init", "want [lo, hi] with 0 < lo ≤ hi, have %v", m.AInit)
	}
	if m.Version == 1 {
		if m.DtRank < 0 {
			ck.add("mamba.dt_rank", "must be ≥ 0 (0 means ceil(d_model/16)), have %d", m.DtRank)
		}
		return
	}
	okP := ck.pos("mamba.head_dim", m.HeadDim)
	okG := ck.pos("mamba.n_groups", m.NGroups)
	ck.pos("mamba.chunk_size", m.ChunkSize)
	if okP && m.Expand > 0 && c.DModel > 0 {
		di := m.Expand * c.DModel
		if di%m.HeadDim != 0 {
			ck.add("mamba.head_dim", "%d does not divide the inner width expand·d_model = %d", m.HeadDim, di)
		} else if okG && (di/m.HeadDim)%m.NGroups != 0 {
			ck.add("mamba.n_groups", "%d does not divide the %d Mamba-2 heads", m.NGroups, di/m.HeadDim)
		}
	}
}

func (c *Config) checkIntra(ck *checker) {
	in := c.Intra
	ck.oneOf("intra.norm", in.Norm, "groupnorm", "rmsnorm", "none")
	ck.oneOf("intra.fusion", in.Fusion, "add", "diff", "concat", "mean")
	if !(in.AttnShare > 0 && in.AttnShare < 1) {
		ck.add("intra.attn_share", "must lie in (0, 1), have %g", in.AttnShare)
		return
	}
	if in.QKHeadDim < 0 {
		ck.add("intra.qk_head_dim", "must be ≥ 0 (0 means attention.head_dim), have %d", in.QKHeadDim)
	}
	d, err := c.intraDims()
	if err != nil {
		ck.errs = append(ck.errs, err.(*FieldError))
		return
	}
	if in.Fusion == "concat" && !in.ShareOut {
		ck.add("intra.fusion", "concat needs one output projection after fusion: set intra.share_out")
	}
	if in.ShareOut && in.Fusion != "concat" && d.vw != d.di {
		ck.add("intra.share_out", "%s fusion before a shared W_out needs equal branch widths, have attention %d and SSM %d",
			in.Fusion, d.vw, d.di)
	}
	if in.ShareValue && d.kh*c.headDim() != d.di {
		ck.add("intra.share_value", "the shared V (%d KV heads × %d) must be as wide as the SSM branch (%d)",
			d.kh, c.headDim(), d.di)
	}
}

// intraBranches holds the derived widths of an intra block.
type intraBranches struct {
	h, kh, qk, vw int // attention branch: heads, KV heads, Q/K width per head, V width (h·hd)
	di, mh        int // SSM branch: inner width and Mamba-2 heads
}

// intraDims splits heads and width between the branches; the split must be exact so that the
// builder and the accounting never round differently.
func (c *Config) intraDims() (intraBranches, error) {
	a, m, s := c.Attention, c.Mamba, c.Intra.AttnShare
	exact := func(x float64) (int, bool) {
		r := math.Round(x)
		return int(r), math.Abs(x-r) < 1e-9 && r > 0
	}
	var b intraBranches
	var ok bool
	if b.h, ok = exact(float64(a.Heads) * s); !ok {
		return b, &FieldError{"intra.attn_share", fmt.Sprintf("%g of %d attention heads is not a positive whole number", s, a.Heads)}
	}
	if b.kh, ok = exact(float64(a.KVHeads) * s); !ok {
		return b, &FieldError{"intra.attn_share", fmt.Sprintf("%g of %d KV heads is not a positive whole number", s, a.KVHeads)}
	}
	if b.h%b.kh != 0 {
		return b, &FieldError{"intra.attn_share", fmt.Sprintf("branch KV heads %d do not divide branch heads %d", b.kh, b.h)}
	}
	full := m.Expand * c.DModel
	if b.di, ok = exact(float64(full) * (1 - s)); !ok {
		return b, &FieldError{"intra.attn_share", fmt.Sprintf("%g of the inner width %d is not a positive whole number", 1-s, full)}
	}
	if m.Version == 2 {
		if b.di%m.HeadDim != 0 {
			return b, &FieldError{"intra.attn_share", fmt.Sprintf("SSM branch width %d is not a multiple of mamba.head_dim %d", b.di, m.HeadDim)}
		}
		b.mh = b.di / m.HeadDim
		if b.mh%m.NGroups != 0 {
			return b, &FieldError{"mamba.n_groups", fmt.Sprintf("%d does not divide the %d SSM branch heads", m.NGroups, b.mh)}
		}
	}
	b.qk = c.Intra.QKHeadDim
	if b.qk == 0 {
		b.qk = c.headDim()
	}
	b.vw = b.h * c.headDim()
	return b, nil
}

// headDim is the attention head width, d_model/heads when not given.
func (c *Config) headDim() int {
	if c.Attention.HeadDim > 0 {
		return c.Attention.HeadDim
	}
	return c.DModel / c.Attention.Heads
}

// dtRank is Mamba-1's Δ rank with mamba_ssm's "auto" rule.
func (c *Config) dtRank() int {
	if c.Mamba.DtRank > 0 {
		return c.Mamba.DtRank
	}
	return (c.DModel + 15) / 16
}
