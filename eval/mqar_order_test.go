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

// mqarConfig is a 2-layer model of width 64 over the pattern (A attention, M Mamba-2 with
// d_state dState).
func mqarConfig(pattern string, dState int) arch.Config {
	c := arch.Default()
	c.VocabSize, c.DModel, c.NLayers = 256, 64, len(pattern)
	c.Layout = arch.Layout{Pattern: pattern}
	c.Attention = arch.Attention{Heads: 4, KVHeads: 4, HeadDim: 16, RopeTheta: 10000, Window: 64}
	c.Mamba = arch.Mamba{Version: 2, Expand: 2, HeadDim: 16, DState: dState, NGroups: 1, ConvWidth: 4,
		ChunkSize: 64, AInit: []float64{1, 16}}
	c.FFN = arch.FFN{Type: "swiglu", Hidden: 128, Mode: "block"}
	return c
}

// TestMQAROrdering trains each model on the same endless MQAR stream (V=64, T=32, K=4;
// HYBRID_MQAR_STEPS steps of 32 examples, default 1500, constant rate 3e-3 after 20 warmup
// steps) and scores 1,000 held-out examples.
//
// Measured (2 cores, 1500 steps): the Mamba-2 + attention hybrid escapes the 1/K plateau
// ("some value from the context") after about 900 steps and ends near 0.96; the small-state
// Mamba-2 climbs more slowly. A 2-layer attention-only model stays on the 1/K plateau for at
// least 3,000 steps (it must first learn a previous-token head, which the hybrid gets from
// Mamba's short convolution), so its accuracy is logged, not asserted.
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
	steps := 1500
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
		{"attention", "AA", 16},
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
	if acc["hybrid"] < 0.9 {
		t.Errorf("the hybrid recalls %.3f, want ≥ 0.9", acc["hybrid"])
	}
	if acc["mamba2-small-state"] > acc["hybrid"]-0.2 {
		t.Errorf("small-state Mamba-2 (%.3f) should fall well short of the hybrid (%.3f)", acc["mamba2-small-state"], acc["hybrid"])
	}
}
