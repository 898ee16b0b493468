package arch_test

// Model-level golden test: whole models built by arch.Build against an independent float64
// PyTorch implementation (bench/torch/golden_model.py, run by testdata/gen_golden_model.py).
//
// For each case the weights live in testdata/golden_model_<case>.safetensors, written by this
// file (go test ./arch -run TestGoldenModel -golden.weights) from arch.Build with the norm
// weights, norm biases, D skips and branch scales perturbed away from their constant init (so a
// mix-up among them shows). The file's metadata holds the Config (JSON), the token ids and the
// targets. The generator reads it, runs the PyTorch model in float64 and writes
// testdata/golden_model_<case>.json: the logits, the loss, full gradients of a few chosen
// parameters and, for every parameter, the gradient's L2 norm and its dot with a fixed vector
// (goldenProj), so a wrong gradient anywhere shows without storing them all.
//
// Regenerate (only when a case or the model definition changes on purpose):
//
//	go test ./arch -run TestGoldenModel -golden.weights
//	/usr/bin/python3 arch/testdata/gen_golden_model.py

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/tensor"
	"github.com/hybridlab/hybrid/train"
)

var goldenWeights = flag.Bool("golden.weights", false,
	"write testdata/golden_model_*.safetensors (then run /usr/bin/python3 arch/testdata/gen_golden_model.py)")

// goldenB, goldenT: T is not a multiple of the SSD chunk (8), so the last chunk is partial.
const goldenB, goldenT = 2, 20

// goldenBase is a tiny model: V 64, d 32, 4 query heads over 2 KV heads of 8, Mamba-2 with 4
// heads of 16 in 2 B/C groups (N 8, conv 4, chunk 8), SwiGLU 48. init_std 0.2 keeps the
// attention scores and the SSM outputs well away from zero, so every path moves the logits.
func goldenBase(pattern string) arch.Config {
	c := arch.Default()
	c.VocabSize, c.DModel, c.NLayers = 64, 32, len(pattern)
	c.Layout = arch.Layout{Pattern: pattern}
	c.Attention = arch.Attention{Heads: 4, KVHeads: 2, HeadDim: 8, RopeTheta: 10000, Window: 8, Sinks: 0}
	c.Mamba = arch.Mamba{Version: 2, Expand: 2, HeadDim: 16, DState: 8, NGroups: 2, ConvWidth: 4, ChunkSize: 8,
		AInit: []float64{0.5, 4}}
	c.FFN = arch.FFN{Type: "swiglu", Hidden: 48, Mode: "block"}
	c.Intra = arch.Intra{AttnShare: 0.5, Norm: "groupnorm", Fusion: "diff", QKHeadDim: 4}
	c.Norm = arch.Norm{Type: "rmsnorm", Eps: 1e-5}
	c.TiedEmbeddings = true
	c.InitStd = 0.2
	return c
}

type goldenCase struct {
	name string
	cfg  arch.Config
}

func goldenCases() []goldenCase {
	var cs []goldenCase
	add := func(name, pattern string, edit func(c *arch.Config)) {
		c := goldenBase(pattern)
		if edit != nil {
			edit(&c)
		}
		cs = append(cs, goldenCase{name, c})
	}
	// Two attention layers (the MQAR configuration): GQA 4/2, RoPE, causal.
	add("attn", "AA", nil)
	// Two Mamba-2 layers, 2 B/C groups, a partial last chunk.
	add("mamba2", "MM", nil)
	// Inter-layer hybrid, as recipes/bench/cpu-inter.yaml (the bench/torch/cpu_inter.py twin runs it too).
	add("inter", "MA", nil)
	// Sliding window (5 recent keys + 2 sinks, its own RoPE base) after a global attention layer.
	add("swa", "AS", func(c *arch.Config) {
		c.Attention.Window, c.Attention.Sinks, c.Attention.WindowRopeTheta = 5, 2, 100
	})
	// Mamba-1 (dt_rank auto = 2), an FFN-only layer, LayerNorm and an untied head.
	add("mamba1", "M-", func(c *arch.Config) {
		c.Mamba.Version = 1
		c.FFN.Mode = "separate"
		c.Norm.Type = "layernorm"
		c.TiedEmbeddings = false
	})
	// The paper's intra block: groupnorm, diff, separate projections, reduced Q/K (4 of 8).
	add("intra", "IA", nil)
	// Intra variant: sliding-window branch, Mamba-1, rmsnorm, scales, mean fusion, shared V and
	// W_out (1 query and 1 KV head of 32 per branch = the SSM branch width 32).
	add("intra-m1", "WM", func(c *arch.Config) {
		c.Mamba.Version = 1
		c.Attention.Heads, c.Attention.KVHeads, c.Attention.HeadDim = 2, 2, 32
		c.Attention.Window, c.Attention.Sinks = 6, 1
		c.Intra = arch.Intra{AttnShare: 0.5, Norm: "rmsnorm", Scales: true, Fusion: "mean", ShareValue: true, ShareOut: true}
	})
	return cs
}

// goldenBatch is the fixed input: seeded ids, next-token targets, the last token of each row and
// one more unscored (−1).
func goldenBatch(v int) (ids, targets []int32) {
	r := rand.New(rand.NewPCG(2024, 7))
	ids = make([]int32, goldenB*goldenT)
	for i := range ids {
		ids[i] = int32(r.IntN(v))
	}
	targets = make([]int32, len(ids))
	for b := range goldenB {
		for t := range goldenT {
			i := b*goldenT + t
			if t == goldenT-1 {
				targets[i] = -1
			} else {
				targets[i] = ids[i+1]
			}
		}
	}
	targets[5] = -1
	return ids, targets
}

// goldenProj is the fixed vector the gradient summaries project on: w_i = sin(0.37·i + 1).
func goldenProj(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = math.Sin(0.37*float64(i) + 1)
	}
	return w
}

func goldenPath(name, ext string) string {
	return filepath.Join("testdata", "golden_model_"+name+ext)
}

// perturbed reports how a parameter's constant init is replaced in the golden weights.
func perturbed(name string) (center, spread float64, ok bool) {
	switch {
	case strings.HasSuffix(name, "norm.weight"), strings.HasSuffix(name, "norm_f.weight"),
		strings.HasSuffix(name, ".D"), strings.HasSuffix(name, "_scale"):
		return 1, 0.2, true
	case strings.HasSuffix(name, "norm.bias"), strings.HasSuffix(name, "norm_f.bias"):
		return 0, 0.2, true
	}
	return 0, 0, false
}

func writeGoldenWeights(t *testing.T, gc goldenCase) {
	be := cpu.New()
	m, err := arch.Build(gc.cfg, be, 11)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	var entries []train.Entry
	for _, p := range m.Params() {
		host := make([]float32, p.Size())
		if err := be.Download(host, p.Buf()); err != nil {
			t.Fatal(err)
		}
		if c, s, ok := perturbed(p.Name()); ok {
			for i := range host {
				host[i] = float32(c + s*r.NormFloat64())
			}
		}
		entries = append(entries, train.Entry{Name: p.Name(), Shape: append([]int(nil), p.Shape()...), Data: host})
	}
	cfgJSON, _ := json.Marshal(gc.cfg)
	ids, targets := goldenBatch(gc.cfg.VocabSize)
	idsJSON, _ := json.Marshal(ids)
	tgtJSON, _ := json.Marshal(targets)
	meta := map[string]string{
		"case": gc.name, "config": string(cfgJSON), "ids": string(idsJSON), "targets": string(tgtJSON),
		"B": fmt.Sprint(goldenB), "T": fmt.Sprint(goldenT),
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := train.WriteSafetensors(goldenPath(gc.name, ".safetensors"), entries, meta); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d tensors)", goldenPath(gc.name, ".safetensors"), len(entries))
}

// goldenFile is the generator's output.
type goldenFile struct {
	Case        string                `json:"case"`
	Loss        float64               `json:"loss"`
	Scored      int                   `json:"scored"`
	Logits      []float64             `json:"logits"` // (B, T, V)
	Grads       map[string][]float64  `json:"grads"`
	GradSummary map[string][2]float64 `json:"grad_summary"` // [‖g‖₂, g·goldenProj]
}

// goldenTol is a float32 model against a float64 reference: numtest.F32 times 10 (the forward
// and backward passes chain dozens of reductions), with the absolute part scaled by each
// tensor's magnitude, |got − want| ≤ atol·max|want| + rtol·|want|: rounding errors of the float32
// model are relative to the size of the values it mixes (a gradient entry near zero is a
// cancellation of terms of the tensor's typical size). Observed errors are at most 9e-7 of the
// scale for logits and 7e-6 for gradients; a swapped RoPE half, a causal mask off by one, a wrong GQA head mapping or scale,
// B and C swapped, a missing D or dt_bias, or a flipped A_log gradient miss by 1e3–1e4 times
// the tolerance. Gradients get goldenGradTol: every entry is a sum over all B·T tokens, and those
// of the small vectors (A_log, dt_bias, D) cancel heavily; their error also moves with the
// float32 kernels' rounding (an A_log gradient's went from 1.3e-6 to 6.9e-6 of the scale with a
// change to the conv1d/vmath kernels).
var goldenTol = numtest.F32.Times(10)

var goldenGradTol = goldenTol.Scaled(goldenB * goldenT)

func maxAbs(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// goldenCheck compares got with want at goldenTol scaled by want's magnitude and returns the
// worst absolute error relative to that magnitude.
func goldenCheck(t *testing.T, what string, got []float32, want []float64, base numtest.Tol) float64 {
	t.Helper()
	scale := maxAbs(want)
	if scale == 0 {
		scale = 1
	}
	tol := numtest.Tol{Atol: base.Atol * scale, Rtol: base.Rtol}
	numtest.Check(t, what, got, want, tol)
	worst := 0.0
	if len(got) == len(want) {
		for i := range got {
			worst = math.Max(worst, math.Abs(float64(got[i])-want[i])/scale)
		}
	}
	return worst
}

// TestGoldenModel builds every case, loads its golden weights, runs the loss and its backward
// pass and compares logits, loss and gradients with the PyTorch float64 reference.
func TestGoldenModel(t *testing.T) {
	for _, gc := range goldenCases() {
		t.Run(gc.name, func(t *testing.T) {
			if *goldenWeights {
				writeGoldenWeights(t, gc)
				return
			}
			st, err := train.ReadSafetensors(goldenPath(gc.name, ".safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			cfgJSON, _ := json.Marshal(gc.cfg)
			if st.Metadata["config"] != string(cfgJSON) {
				t.Fatalf("the golden weights were made for another config:\n file %s\n case %s\nregenerate (see golden_test.go)",
					st.Metadata["config"], cfgJSON)
			}
			raw, err := os.ReadFile(goldenPath(gc.name, ".json"))
			if err != nil {
				t.Fatal(err)
			}
			var want goldenFile
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			ids, targets := goldenBatch(gc.cfg.VocabSize)
			idsJSON, _ := json.Marshal(ids)
			tgtJSON, _ := json.Marshal(targets)
			if st.Metadata["ids"] != string(idsJSON) || st.Metadata["targets"] != string(tgtJSON) {
				t.Fatal("the golden file's ids or targets differ from goldenBatch; regenerate")
			}

			be := cpu.New()
			m, err := arch.Build(gc.cfg, be, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Entries) != len(m.Params()) {
				t.Fatalf("golden file has %d tensors, the model %d parameters", len(st.Entries), len(m.Params()))
			}
			for _, p := range m.Params() {
				e, ok := st.Get(p.Name())
				if !ok {
					t.Fatalf("golden file lacks %s", p.Name())
				}
				if fmt.Sprint(e.Shape) != fmt.Sprint(p.Shape()) {
					t.Fatalf("%s: golden shape %v, model %v", p.Name(), e.Shape, p.Shape())
				}
				if err := be.Upload(p.Buf(), e.Data); err != nil {
					t.Fatal(err)
				}
			}

			tp := tensor.NewTape(be)
			logits := m.Forward(tp, ids, goldenB, goldenT)
			loss, n := tp.CrossEntropy(logits, targets, -1) // as Model.Loss
			if err := tp.Err(); err != nil {
				t.Fatal(err)
			}
			if n != want.Scored {
				t.Errorf("scored %d tokens, reference %d", n, want.Scored)
			}
			got := make([]float32, logits.Size())
			if err := be.Download(got, logits.Buf()); err != nil {
				t.Fatal(err)
			}
			eLogits := goldenCheck(t, "logits", got, want.Logits, goldenTol)
			lv := make([]float32, 1)
			if err := be.Download(lv, loss.Buf()); err != nil {
				t.Fatal(err)
			}
			eLoss := goldenCheck(t, "loss", lv, []float64{want.Loss}, goldenTol)
			if err := tp.Backward(loss); err != nil {
				t.Fatal(err)
			}

			eGrad, eSum := 0.0, 0.0
			for _, p := range m.Params() {
				if p.Grad() == nil {
					t.Errorf("%s has no gradient", p.Name())
					continue
				}
				g := make([]float32, p.Size())
				if err := be.Download(g, p.Grad()); err != nil {
					t.Fatal(err)
				}
				if w, ok := want.Grads[p.Name()]; ok {
					eGrad = math.Max(eGrad, goldenCheck(t, "grad "+p.Name(), g, w, goldenGradTol))
				}
				s, ok := want.GradSummary[p.Name()]
				if !ok {
					t.Errorf("reference has no gradient summary of %s", p.Name())
					continue
				}
				// The projection mixes all entries with weights of size ≤ 1, so its error, like the
				// norm's, scales with the norm.
				norm, proj := 0.0, 0.0
				for i, w := range goldenProj(len(g)) {
					norm += float64(g[i]) * float64(g[i])
					proj += float64(g[i]) * w
				}
				norm = math.Sqrt(norm)
				scale := math.Max(s[0], 1e-30)
				tol := numtest.Tol{Atol: goldenGradTol.Atol * scale, Rtol: goldenGradTol.Rtol}
				if !tol.Close(norm, s[0]) || !tol.Close(proj, s[1]) {
					t.Errorf("grad %s: norm %.9g proj %.9g, reference %.9g %.9g", p.Name(), norm, proj, s[0], s[1])
				}
				eSum = math.Max(eSum, math.Max(math.Abs(norm-s[0]), math.Abs(proj-s[1]))/scale)
			}
			if len(want.Grads) == 0 {
				t.Error("reference has no full gradients")
			}
			t.Logf("worst error / max|ref|: logits %.2e (max|ref| %.3g), loss %.2e (%.6f), full grads %.2e, grad summaries %.2e",
				eLogits, maxAbs(want.Logits), eLoss, want.Loss, eGrad, eSum)
		})
	}
}
