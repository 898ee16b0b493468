package eval_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/eval"
	"github.com/hybridlab/hybrid/kernels/cpu"
)

// archModel is a small hybrid (Mamba-2, attention, intra) with random weights.
func archModel(t *testing.T) (*arch.Model, arch.Config) {
	t.Helper()
	c := mqarConfig("MAI", 8)
	c.VocabSize = 32
	c.Intra.QKHeadDim = 8
	m, err := arch.Build(c, cpu.New(), 3)
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

// Greedy decoding through the decoder agrees with the argmax of Logits over the growing sequence.
func TestArchGreedyMatchesLogits(t *testing.T) {
	m, c := archModel(t)
	a := eval.Arch{M: m}
	r := rand.New(rand.NewPCG(1, 1))
	prompts := make([][]int32, 3)
	for i := range prompts {
		for range 20 {
			prompts[i] = append(prompts[i], int32(r.IntN(c.VocabSize)))
		}
	}
	gen, err := eval.Greedy(a, prompts, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	V := c.VocabSize
	for i, p := range prompts {
		seq := slices.Clone(p)
		for k := range 4 {
			lg, err := a.Logits(seq, 1, len(seq))
			if err != nil {
				t.Fatal(err)
			}
			last := lg[(len(seq)-1)*V:]
			best := 0
			for v := range V {
				if last[v] > last[best] {
					best = v
				}
			}
			if int32(best) != gen[i][k] {
				// A near tie may flip with float32 rounding; accept it only when it is one.
				if last[gen[i][k]] < last[best]-1e-4 {
					t.Fatalf("prompt %d token %d: greedy %d, Logits argmax %d", i, k, gen[i][k], best)
				}
			}
			seq = append(seq, gen[i][k])
		}
	}
}

// The measured decode cache equals the analytic one at every context and batch.
func TestArchCacheBytes(t *testing.T) {
	m, c := archModel(t)
	o := eval.Options{Contexts: []int{16, 40}, DecodeBatches: []int{1, 3}, DecodeSteps: 2, MemoryBytes: -1}
	eval.ArchMemory(c, &o)
	r, err := eval.Efficiency(context.Background(), eval.Arch{M: m}, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Decode) != 4 {
		t.Fatalf("%+v", r.Decode)
	}
	for _, d := range r.Decode {
		if d.CacheBytes <= 0 || d.CacheBytes != d.AnalyticBytes {
			t.Fatalf("context %d batch %d: measured %d, analytic %d", d.Context, d.Batch, d.CacheBytes, d.AnalyticBytes)
		}
	}
}
