package experiment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/internal/sysinfo"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/tensor"
	"github.com/hybridlab/hybrid/train"
)

// TrainBench is the steady-state speed of full training steps (forward, backward, clipping,
// AdamW) of one recipe, beside the machine's SGEMM rate measured in the same process.
type TrainBench struct {
	Recipe        string
	Pattern       string
	Params        int64
	Batch, SeqLen int
	Steps         int     // timed steps
	StepSeconds   float64 // median
	TokensPerSec  float64 // tokens per step / median step time
	FLOPsPerToken float64 // training FLOPs per token (arch accounting)
	GFLOPS        float64 // achieved model FLOP/s / 1e9
	SGEMM         float64 // GFLOP/s
	MFU           float64 // GFLOPS / SGEMM
	PeakBytes     int64   // process peak resident memory
}

// BenchTrain times steps full training steps of r (after warmup untimed ones) on random tokens,
// through the same loop train.Run uses, with nothing written to disk.
func BenchTrain(ctx context.Context, r *recipes.Recipe, backendName string, warmup, steps int) (*TrainBench, error) {
	if steps < 1 || warmup < 0 {
		return nil, fmt.Errorf("bench: %d steps after %d warmup, want ≥ 1 and ≥ 0", steps, warmup)
	}
	be, err := backend(backendName)
	if err != nil {
		return nil, err
	}
	B, T := r.Data.BatchSize, r.Data.SeqLen
	count, err := r.Model.Count(T)
	if err != nil {
		return nil, err
	}
	m, err := arch.Build(r.Model, be, uint64(r.Train.Seed))
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int32, (B*T+1)*4)
	for i := range ids {
		ids[i] = int32(rng.IntN(r.Model.VocabSize))
	}
	s, err := data.NewStream(ids, r.Model.VocabSize)
	if err != nil {
		return nil, err
	}
	ld, err := data.NewLoader(s, B, T, 1)
	if err != nil {
		return nil, err
	}
	rc := r.Train
	rc.Budget = recipes.Budget{Steps: warmup + steps}
	rc.EvalEvery, rc.CheckpointEvery, rc.GradAccum = 0, 0, 1
	var times []float64
	last := time.Now()
	_, err = train.Run(ctx, train.Options{
		Model: m, Backend: be, Train: ld, Recipe: rc, FLOPsPerToken: count.TrainFLOPs(), Tape: tensor.NewTape(be),
		Hooks: train.Hooks{OnStep: func(si train.StepInfo) error {
			now := time.Now()
			if si.Step > warmup {
				times = append(times, now.Sub(last).Seconds())
			}
			last = now
			return nil
		}},
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(times)
	med := times[len(times)/2]
	tb := &TrainBench{
		Recipe: r.Name, Pattern: r.Pattern, Params: count.Params(), Batch: B, SeqLen: T, Steps: steps,
		StepSeconds: med, TokensPerSec: float64(B*T) / med, FLOPsPerToken: count.TrainFLOPs(),
		SGEMM: ceiling.SGEMM(), PeakBytes: sysinfo.PeakRSS(),
	}
	tb.GFLOPS = tb.FLOPsPerToken * tb.TokensPerSec / 1e9
	tb.MFU = tb.GFLOPS / tb.SGEMM
	return tb, nil
}
