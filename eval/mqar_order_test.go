package eval_test

// The MQAR ordering check: trained on the same multi-query associative recall task with the same
// budget, attention and an attention hybrid recall nearly every value, while a Mamba-2 stack with
// a small state falls short (Zoology's finding). It trains three small models for minutes on two
// cores, so it runs only with
//
//	go test ./eval -run MQAROrdering -mqar -v     (or HYBRID_LONG_TESTS=1)

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/eval"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/kernels/openblas"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/train"
)

var longMQAR = flag.Bool("mqar", false, "run the minutes-long MQAR ordering test")

// mqarWindow is the sliding window of the attention model's first layer: 4 tokens, as wide as
// Mamba's short convolution (conv_width 4).
const mqarWindow = 4

// mqarConfig is a 2-layer model of width 64 over the pattern (A global attention, S sliding-window
// attention over the mqarWindow most recent tokens, M Mamba-2 with d_state dState).
func mqarConfig(pattern string, dState int) arch.Config {
	c := arch.Default()
	c.VocabSize, c.DModel, c.NLayers = 256, 64, len(pattern)
	c.Layout = arch.Layout{Pattern: pattern}
	c.Attention = arch.Attention{Heads: 4, KVHeads: 4, HeadDim: 16, RopeTheta: 10000, Window: mqarWindow}
	c.Mamba = arch.Mamba{Version: 2, Expand: 2, HeadDim: 16, DState: dState, NGroups: 1, ConvWidth: 4,
		ChunkSize: 64, AInit: []float64{1, 16}}
	c.FFN = arch.FFN{Type: "swiglu", Hidden: 128, Mode: "block"}
	return c
}

// TestMQAROrdering trains each model on the same endless MQAR stream (V=64, T=32, K=4;
// HYBRID_MQAR_STEPS steps of 32 examples, default 2000, constant rate 3e-3 after 20 warmup
// steps) and scores 1,000 held-out examples.
//
// The attention model is attention only: a sliding-window layer over the last 4 tokens (S)
// under a global layer (A). Recall needs an induction circuit, a previous-token step in layer 1
// and a key match in layer 2; the window hands layer 1 the local view that the hybrid gets from
// Mamba's short convolution. Two global layers (AA) stay on the 1/K plateau ("some value from
// the context", accuracy ≈ 0.27) for at least 3,000 steps of this budget, with or without FFNs,
// with 3 layers, 8 heads, RoPE θ 100 or lr 1e-2: they must first find a previous-token head
// through RoPE, which Zoology gets with far longer training.
//
// Measured (2 cores, the seeds here): after 2000 steps the SA model recalls 0.998, the hybrid
// 0.993 and the small-state Mamba-2 0.272, in about 4 minutes. The SA model escapes the 1/K
// plateau after about 600 steps, the hybrid after 900–1300: with other seeds the hybrid is at
// 0.85 after 1500 steps but 0.94–0.98 after 2000 (Mamba-2 d_state 1: 0.27), hence the default.
func TestMQAROrdering(t *testing.T) {
	if !*longMQAR && os.Getenv("HYBRID_LONG_TESTS") != "1" {
		t.Skip("minutes long: run with -mqar or HYBRID_LONG_TESTS=1")
	}
	openblas.Use()
	var be kernels.Backend = cpu.New()
	task := data.MQAR{Vocab: 64, T: 32, Pairs: 4}
	held, err := data.NewMQAREval(task, 32, 1000, 7)
	if err != nil {
		t.Fatal(err)
	}
	steps := 2000
	if s := os.Getenv("HYBRID_MQAR_STEPS"); s != "" {
		if _, err := fmt.Sscan(s, &steps); err != nil {
			t.Fatalf("HYBRID_MQAR_STEPS=%q: %v", s, err)
		}
	}
	acc := map[string]float64{}
	for _, c := range []struct {
		name    string
		pattern string
		dState  int
	}{
		{"hybrid", "MA", 16},
		{"mamba2-small-state", "MM", 1},
		{"attention", "SA", 16},
	} {
		cfg := mqarConfig(c.pattern, c.dState)
		cfg.VocabSize = task.Vocab
		m, err := arch.Build(cfg, be, 1)
		if err != nil {
			t.Fatal(err)
		}
		ld, err := data.NewMQARLoader(task, 32, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		rc := recipes.Default().Train
		rc.Optimizer.LR, rc.Optimizer.WeightDecay = 3e-3, 0
		rc.Schedule = recipes.Schedule{Kind: "constant", Warmup: 20}
		rc.Budget = recipes.Budget{Steps: steps}
		rc.EvalEvery, rc.CheckpointEvery, rc.LogEvery = 0, 0, 100
		start := time.Now()
		res, err := train.Run(context.Background(), train.Options{Model: m, Backend: be, Train: ld, Recipe: rc})
		if err != nil {
			t.Fatal(err)
		}
		r, err := eval.MQAR(context.Background(), eval.Arch{M: m}, eval.Options{MQAR: held})
		if err != nil {
			t.Fatal(err)
		}
		acc[c.name] = r.Accuracy
		t.Logf("%-19s %s d_state %2d: accuracy %.3f, final loss %.3f after %d steps (%s)", c.name, c.pattern, c.dState,
			r.Accuracy, res.LastLoss, steps, time.Since(start).Round(time.Second))
	}
	for _, name := range []string{"attention", "hybrid"} {
		if acc[name] < 0.9 {
			t.Errorf("the %s model recalls %.3f, want ≥ 0.9", name, acc[name])
		}
		if acc["mamba2-small-state"] > acc[name]-0.2 {
			t.Errorf("small-state Mamba-2 (%.3f) should fall at least 0.2 short of the %s model (%.3f)",
				acc["mamba2-small-state"], name, acc[name])
		}
	}
}
