package arch_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/ops"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/tensor"
)

// tiny returns a small config of the given pattern: d=16, V=11, 4 heads (2 KV) of 4, Mamba-2
// with 4 heads of 8 (N 4, chunk 4 so a 7-token sequence spans a full and a partial chunk).
func tiny(pattern string) arch.Config {
	c := arch.Default()
	c.VocabSize, c.DModel, c.NLayers = 11, 16, len(pattern)
	c.Layout = arch.Layout{Pattern: pattern}
	c.Attention = arch.Attention{Heads: 4, KVHeads: 2, HeadDim: 4, RopeTheta: 10000, WindowRopeTheta: 100, Window: 3, Sinks: 1}
	c.Mamba = arch.Mamba{Version: 2, Expand: 2, HeadDim: 8, DState: 4, NGroups: 2, ConvWidth: 3, ChunkSize: 4, AInit: []float64{0.5, 2}}
	c.FFN = arch.FFN{Type: "swiglu", Hidden: 24, Mode: "block"}
	c.Intra = arch.Intra{AttnShare: 0.5, Norm: "groupnorm", Fusion: "diff", QKHeadDim: 2}
	return c
}

// gradCases covers every mixer kind and the intra-block options.
func gradCases() []struct {
	name string
	cfg  arch.Config
} {
	type tc = struct {
		name string
		cfg  arch.Config
	}
	var cs []tc
	add := func(name, pattern string, edit func(c *arch.Config)) {
		c := tiny(pattern)
		if edit != nil {
			edit(&c)
		}
		cs = append(cs, tc{name, c})
	}
	add("attention", "A", nil)
	add("swa", "S", nil)
	add("mamba2", "M", nil)
	add("mamba1", "M", func(c *arch.Config) { c.Mamba.Version, c.Mamba.DtRank = 1, 3 })
	add("intra/paper", "I", nil) // groupnorm, no scales, diff, separate projections, reduced Q/K
	add("intra/window", "W", nil)
	add("intra/concat-shared-out", "I", func(c *arch.Config) {
		c.Intra = arch.Intra{AttnShare: 0.5, Norm: "none", Fusion: "concat", ShareOut: true}
	})
	add("intra/mean-scales-rms-mamba1-shared-v", "I", func(c *arch.Config) {
		c.Mamba.Version = 1
		// 1 query and 1 KV head of 16 per branch: V and the attention branch are as wide as the SSM branch (16)
		c.Attention.Heads, c.Attention.KVHeads, c.Attention.HeadDim = 2, 2, 16
		c.Intra = arch.Intra{AttnShare: 0.5, Norm: "rmsnorm", Scales: true, Fusion: "mean", ShareValue: true, ShareOut: true}
	})
	add("intra/add-shared-v-mamba2-qk-wide", "I", func(c *arch.Config) {
		c.Attention.HeadDim = 16 // 1 KV head × 16 = the SSM branch width; Q/K wider (20) than V
		c.Intra = arch.Intra{AttnShare: 0.5, Norm: "groupnorm", Fusion: "add", ShareValue: true, QKHeadDim: 20}
	})
	add("ffn-only/layernorm/untied", "M-", func(c *arch.Config) {
		c.FFN.Mode = "separate"
		c.Norm.Type = "layernorm"
		c.TiedEmbeddings = false
	})
	return cs
}

const gB, gT = 2, 7

func batch(r *rand.Rand, v, n int) (ids, tgts []int32) {
	for range n {
		ids = append(ids, int32(r.IntN(v)))
		tgts = append(tgts, int32(r.IntN(v)))
	}
	return ids, tgts
}

func lossValue(t *testing.T, m *arch.Model, tp *tensor.Tape, ids, tgts []int32) float64 {
	t.Helper()
	tp.Reset()
	l, _ := m.Loss(tp, ids, tgts, gB, gT)
	if err := tp.Err(); err != nil {
		t.Fatal(err)
	}
	v := make([]float32, 1)
	if err := tp.Backend().Download(v, l.Buf()); err != nil {
		t.Fatal(err)
	}
	return float64(v[0])
}

// TestGradients checks every parameter's gradient (a few entries each) against central
// differences of the float32 loss, for each mixer kind and intra variant.
func TestGradients(t *testing.T) {
	for _, tc := range gradCases() {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := numtest.Rand(t)
			cfg := tc.cfg
			cfg.InitStd = 0.3 // large weights: gradients well above the finite-difference noise
			be := cpu.New()
			m, err := arch.Build(cfg, be, 7)
			if err != nil {
				t.Fatal(err)
			}
			ids, tgts := batch(r, cfg.VocabSize, gB*gT)
			tgts[3] = -1
			tp := tensor.NewTape(be)
			loss, n := m.Loss(tp, ids, tgts, gB, gT)
			if n != gB*gT-1 {
				t.Fatalf("scored %d tokens, want %d", n, gB*gT-1)
			}
			if err := tp.Backward(loss); err != nil {
				t.Fatal(err)
			}
			const h = 2e-3
			for _, p := range m.Params() {
				host, _ := kernels.Host(p.Buf())
				grad, _ := kernels.Host(p.Grad())
				if grad == nil {
					t.Fatalf("%s got no gradient", p.Name())
				}
				idx := r.Perm(p.Size())[:min(3, p.Size())]
				got, want := make([]float64, len(idx)), make([]float64, len(idx))
				for j, i := range idx {
					old := host[i]
					host[i] = old + h
					fp := lossValue(t, m, tp, ids, tgts)
					host[i] = old - h
					fm := lossValue(t, m, tp, ids, tgts)
					host[i] = old
					want[j] = (fp - fm) / (2 * h)
					got[j] = float64(grad[i])
				}
				// Loose: central differences of a float32 forward carry an error of
				// ~ε₃₂·|loss|/h ≈ 1e-4 plus O(h²) curvature terms; 8 seeded runs pass at a third of
				// this tolerance, and a sign error in A = −exp(A_log)'s gradient fails it.
				numtest.Check(t, p.Name(), got, want, numtest.Tol{Atol: 5e-4, Rtol: 2e-2})
			}
		})
	}
}

// TestNumParamsMatchesCount builds every shipped recipe (and every gradient-check variant) and
// compares the allocated parameter count with the accounting in count.go.
func TestNumParamsMatchesCount(t *testing.T) {
	be := cpu.New()
	check := func(t *testing.T, cfg arch.Config) {
		n, err := cfg.Count(64)
		if err != nil {
			t.Fatal(err)
		}
		m, err := arch.Build(cfg, be, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.NumParams(), n.Params(); got != want {
			t.Errorf("%s: model has %d parameters, accounting says %d", n.Pattern, got, want)
		}
	}
	names := recipes.List()
	if len(names) == 0 {
		t.Fatal("no shipped recipes")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			rc, err := recipes.Load(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			check(t, rc.Model)
		})
	}
	for _, tc := range gradCases() {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.cfg) })
	}
}

// TestLayoutLetters checks that each layout letter builds its mixer, by the parameter names.
func TestLayoutLetters(t *testing.T) {
	cfg := tiny("MASIW-")
	cfg.FFN.Mode = "separate"
	m, err := arch.Build(cfg, cpu.New(), 1)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][]int{}
	for _, p := range m.Params() {
		names[p.Name()] = p.Shape()
	}
	has := func(name string) bool { _, ok := names[name]; return ok }
	want := []struct {
		layer    int
		has, not []string
	}{
		{0, []string{"mixer.in_proj.weight", "mixer.A_log", "mixer.dt_bias", "mixer.norm.weight", "mixer.out_proj.weight"}, []string{"mixer.q_proj.weight", "ffn.up.weight"}},
		{1, []string{"mixer.q_proj.weight", "mixer.k_proj.weight", "mixer.v_proj.weight", "mixer.o_proj.weight"}, []string{"mixer.A_log"}},
		{2, []string{"mixer.q_proj.weight", "mixer.o_proj.weight"}, []string{"mixer.A_log"}},
		{3, []string{"mixer.attn.q_proj.weight", "mixer.ssm.A_log", "mixer.attn_norm.bias", "mixer.ssm.out_proj.weight", "mixer.attn.o_proj.weight"}, []string{"mixer.out_proj.weight"}},
		{4, []string{"mixer.attn.q_proj.weight", "mixer.ssm.in_proj.weight"}, nil},
		{5, []string{"ffn_norm.weight", "ffn.gate.weight", "ffn.up.weight", "ffn.down.weight"}, []string{"norm.weight", "mixer.in_proj.weight"}},
	}
	for _, w := range want {
		for _, n := range w.has {
			if !has(fmt.Sprintf("layers.%d.%s", w.layer, n)) {
				t.Errorf("layer %d (%c) lacks %s", w.layer, cfg.Layout.Pattern[w.layer], n)
			}
		}
		for _, n := range w.not {
			if has(fmt.Sprintf("layers.%d.%s", w.layer, n)) {
				t.Errorf("layer %d (%c) has %s", w.layer, cfg.Layout.Pattern[w.layer], n)
			}
		}
	}
	if s := names["layers.3.mixer.attn.q_proj.weight"]; !slices.Equal(s, []int{2 * 2, 16}) {
		t.Errorf("intra Q is %v, want (2 heads × qk 2, d 16)", s)
	}
	if !has("embed.weight") || !has("norm_f.weight") || has("lm_head.weight") {
		t.Error("want embed.weight and norm_f.weight and a tied head")
	}
	for i, k := range m.Kinds {
		if byte(k) != cfg.Layout.Pattern[i] || m.Blocks[i].Kind != k {
			t.Errorf("layer %d: kind %v, pattern letter %c", i, k, cfg.Layout.Pattern[i])
		}
	}
	// Mamba-1 A_log is (D, N), Mamba-2's (H).
	cfg1 := tiny("M")
	cfg1.Mamba.Version = 1
	m1, err := arch.Build(cfg1, cpu.New(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m1.Params() {
		if p.Name() == "layers.0.mixer.A_log" && !slices.Equal(p.Shape(), []int{32, 4}) {
			t.Errorf("Mamba-1 A_log is %v, want (32, 4)", p.Shape())
		}
	}
	if !slices.Equal(names["layers.0.mixer.A_log"], []int{4}) {
		t.Errorf("Mamba-2 A_log is %v, want (4)", names["layers.0.mixer.A_log"])
	}
}

// TestInit checks the documented init: seeds, norms 1, D 1, A_log in the A range, dt biases
// softplus⁻¹ of Δ in [1e-3, 1e-1], scaled output projections.
func TestInit(t *testing.T) {
	cfg := tiny("MA")
	cfg.DModel, cfg.FFN.Hidden = 64, 128
	be := cpu.New()
	m, err := arch.Build(cfg, be, 3)
	if err != nil {
		t.Fatal(err)
	}
	std := func(v []float32) float64 {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		return math.Sqrt(s / float64(len(v)))
	}
	for _, p := range m.Params() {
		v, _ := kernels.Host(p.Buf())
		name := p.Name()
		switch {
		case strings.HasSuffix(name, "norm.weight"), strings.HasSuffix(name, ".D"):
			for _, x := range v {
				if x != 1 {
					t.Fatalf("%s has %v, want 1", name, x)
				}
			}
		case strings.HasSuffix(name, "A_log"):
			for _, x := range v {
				if a := math.Exp(float64(x)); a < 0.5-1e-6 || a > 2+1e-6 {
					t.Fatalf("%s: A = %v outside a_init [0.5, 2]", name, a)
				}
			}
		case strings.HasSuffix(name, "dt_bias"):
			for _, x := range v {
				if dt := math.Log1p(math.Exp(float64(x))); dt < 1e-3*(1-1e-4) || dt > 0.1*(1+1e-4) {
					t.Fatalf("%s: softplus(dt_bias) = %v outside [1e-3, 1e-1]", name, dt)
				}
			}
		case name == "embed.weight", strings.HasSuffix(name, "in_proj.weight"), strings.HasSuffix(name, "q_proj.weight"):
			if s := std(v); math.Abs(s-cfg.InitStd) > 0.1*cfg.InitStd {
				t.Errorf("%s: std %.4f, want %.4f", name, s, cfg.InitStd)
			}
		case strings.HasSuffix(name, "out_proj.weight"), strings.HasSuffix(name, "o_proj.weight"), strings.HasSuffix(name, "down.weight"):
			want := cfg.InitStd / math.Sqrt(2*float64(cfg.NLayers))
			if s := std(v); math.Abs(s-want) > 0.1*want {
				t.Errorf("%s: std %.4f, want %.4f", name, s, want)
			}
		}
	}
}

func logits(t *testing.T, cfg arch.Config, seed uint64, ids []int32) []float32 {
	t.Helper()
	be := cpu.New()
	m, err := arch.Build(cfg, be, seed)
	if err != nil {
		t.Fatal(err)
	}
	tp := tensor.NewTape(be)
	tp.SetNoGrad(true)
	out := m.Forward(tp, ids, gB, gT)
	if err := tp.Err(); err != nil {
		t.Fatal(err)
	}
	if s := out.Shape(); !slices.Equal(s, []int{gB, gT, cfg.VocabSize}) {
		t.Fatalf("logits %v, want (%d, %d, %d)", s, gB, gT, cfg.VocabSize)
	}
	v := make([]float32, out.Size())
	if err := be.Download(v, out.Buf()); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestForwardDeterministic(t *testing.T) {
	cfg := tiny("MAIS")
	r, _ := numtest.Rand(t)
	ids, _ := batch(r, cfg.VocabSize, gB*gT)
	a, b, c := logits(t, cfg, 5, ids), logits(t, cfg, 5, ids), logits(t, cfg, 6, ids)
	if !slices.Equal(a, b) {
		t.Error("same seed, different logits")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same logits")
	}
}

func TestErrors(t *testing.T) {
	be := cpu.New()
	m, err := arch.Build(tiny("MA"), be, 1)
	if err != nil {
		t.Fatal(err)
	}
	tp := tensor.NewTape(be)
	m.Forward(tp, []int32{1, 2, 3}, 2, 2)
	if tp.Err() == nil {
		t.Error("3 ids for B=2, T=2 accepted")
	}
	tp.Reset()
	m.Forward(tp, []int32{1, 2, 99, 3}, 2, 2)
	if tp.Err() == nil {
		t.Error("id 99 ≥ V accepted")
	}
	bad := tiny("A")
	bad.Attention.HeadDim = 3
	if _, err := arch.Build(bad, be, 1); err == nil || !strings.Contains(err.Error(), "head_dim") {
		t.Errorf("odd head dim: err = %v", err)
	}
	bad = tiny("A")
	bad.NLayers = 0
	if _, err := arch.Build(bad, be, 1); err == nil {
		t.Error("invalid config built")
	}
}

// adamw is a minimal optimizer loop for the tests and the benchmark: one (m, v) pair per parameter.
type adamw struct {
	be   kernels.Backend
	m, v []kernels.Buffer
	step int
	cfg  ops.AdamWConfig
}

func newAdamW(be kernels.Backend, params []*tensor.Tensor, cfg ops.AdamWConfig) *adamw {
	o := &adamw{be: be, cfg: cfg}
	for _, p := range params {
		o.m, o.v = append(o.m, be.Alloc(p.Size())), append(o.v, be.Alloc(p.Size()))
	}
	return o
}

func (o *adamw) update(params []*tensor.Tensor) error {
	o.step++
	for i, p := range params {
		if err := o.be.AdamW(p.Buf(), o.m[i], o.v[i], p.Grad(), o.step, o.cfg); err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
	}
	return nil
}

// trainStep runs forward, backward and (when opt is set) an optimizer update; it returns the loss.
func trainStep(m *arch.Model, tp *tensor.Tape, opt *adamw, ids, tgts []int32, B, T int) (float32, error) {
	tp.Reset()
	for _, p := range m.Params() {
		p.ZeroGrad(m.Backend())
	}
	loss, _ := m.Loss(tp, ids, tgts, B, T)
	if err := tp.Backward(loss); err != nil {
		return 0, err
	}
	v := make([]float32, 1)
	if err := m.Backend().Download(v, loss.Buf()); err != nil {
		return 0, err
	}
	if opt != nil {
		return v[0], opt.update(m.Params())
	}
	return v[0], nil
}

// TestOverfit trains a tiny MAM hybrid on one batch until it memorises it.
func TestOverfit(t *testing.T) {
	cfg := tiny("MAM")
	cfg.VocabSize, cfg.DModel, cfg.FFN.Hidden = 32, 32, 64
	cfg.Attention.HeadDim = 8
	cfg.Mamba.HeadDim, cfg.Mamba.ChunkSize, cfg.Mamba.NGroups, cfg.Mamba.DState = 16, 8, 1, 8
	be := cpu.New()
	m, err := arch.Build(cfg, be, 1)
	if err != nil {
		t.Fatal(err)
	}
	const B, T = 2, 16
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]int32, B*T+B)
	for i := range ids {
		ids[i] = int32(r.IntN(cfg.VocabSize))
	}
	in, tgt := make([]int32, 0, B*T), make([]int32, 0, B*T)
	for b := range B { // next-token targets
		row := ids[b*(T+1) : (b+1)*(T+1)]
		in, tgt = append(in, row[:T]...), append(tgt, row[1:]...)
	}
	opt := newAdamW(be, m.Params(), ops.AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8})
	tp := tensor.NewTape(be)
	var first, loss float32
	for step := range 400 {
		if loss, err = trainStep(m, tp, opt, in, tgt, B, T); err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = loss
		}
		if loss < 0.02 {
			t.Logf("loss %.3f → %.4f in %d steps", first, loss, step+1)
			return
		}
	}
	t.Fatalf("loss %.3f → %.4f after 400 steps, want < 0.02", first, loss)
}
