package arch_test

import (
	"testing"
	"time"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/kernels/openblas"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/tensor"
)

// BenchmarkTrainStep times forward + backward (no optimizer) of recipes/bench/cpu-inter.yaml at
// its batch (B=8, T=512) and reports tokens/s and model FLOP utilisation: the accounting's
// training FLOPs per token × tokens/s over the machine's measured SGEMM rate.
func BenchmarkTrainStep(b *testing.B) {
	blas, err := openblas.Use()
	if err != nil {
		b.Logf("openblas: %v (using %s)", err, blas)
	}
	rc, err := recipes.Load("bench/cpu-inter", nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg, B, T := rc.Model, rc.Data.BatchSize, rc.Data.SeqLen
	be := cpu.New()
	m, err := arch.Build(cfg, be, 1)
	if err != nil {
		b.Fatal(err)
	}
	n, err := cfg.Count(T)
	if err != nil {
		b.Fatal(err)
	}
	ids, tgts := make([]int32, B*T), make([]int32, B*T)
	for i := range ids {
		ids[i], tgts[i] = int32(i*7%cfg.VocabSize), int32((i*7+3)%cfg.VocabSize)
	}
	tp := tensor.NewTape(be)
	if _, err := trainStep(m, tp, nil, ids, tgts, B, T); err != nil { // warm the pool
		b.Fatal(err)
	}
	gemm := ceiling.SGEMM()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := trainStep(m, tp, nil, ids, tgts, B, T); err != nil {
			b.Fatal(err)
		}
	}
	sec := time.Since(start).Seconds()
	tps := float64(b.N*B*T) / sec
	b.ReportMetric(tps, "tok/s")
	b.ReportMetric(100*n.TrainFLOPs()*tps/(gemm*1e9), "%MFU")
	b.Logf("%s, %s: %.0f tok/s, %.2f GFLOP/s of model FLOPs (%.1f MFLOP/token train), SGEMM ceiling %.1f GFLOP/s",
		cfg.Layout.Pattern, blas, tps, n.TrainFLOPs()*tps/1e9, n.TrainFLOPs()/1e6, gemm)
}
