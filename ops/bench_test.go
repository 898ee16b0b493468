package ops

import (
	"fmt"
	"sync"
	"testing"

	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/kernels/openblas"
)

var blasOnce sync.Once

func useBLAS(b *testing.B) {
	blasOnce.Do(func() {
		name, err := openblas.Use()
		if err != nil {
			b.Log(err)
		}
		b.Log("blas: ", name)
	})
}

func fill(x []float32, s float32) {
	for i := range x {
		x[i] = s * float32((i*7919)%1000-500) / 500
	}
}

// reportBandwidth reports GB/s for bytes moved per iteration and the fraction of copy bandwidth.
func reportBandwidth(b *testing.B, bytes float64) {
	gbs := bytes * float64(b.N) / b.Elapsed().Seconds() / 1e9
	b.ReportMetric(gbs, "GB/s")
	b.ReportMetric(gbs/ceiling.CopyBandwidth(), "frac-copy")
}

// BenchmarkRMSNorm: forward + backward. Bytes: x, out, dout, x again, dx (5·R·D floats).
func BenchmarkRMSNorm(b *testing.B) {
	useBLAS(b)
	const r, d = 4096, 256
	b.Run(fmt.Sprintf("R=%d/D=%d", r, d), func(b *testing.B) {
		x, out, dout, dx := make([]float32, r*d), make([]float32, r*d), make([]float32, r*d), make([]float32, r*d)
		w, dw, rstd := make([]float32, d), make([]float32, d), make([]float32, r)
		fill(x, 2)
		fill(dout, 1)
		fill(w, 1)
		ceiling.CopyBandwidth()
		b.ResetTimer()
		for b.Loop() {
			must(b, RMSNorm(out, rstd, x, w, r, d, 1e-5))
			must(b, RMSNormBackward(dx, dw, dout, x, w, rstd, r, d))
		}
		reportBandwidth(b, 5*4*r*d)
	})
}

// BenchmarkCrossEntropy: forward + backward. Bytes: logits read twice, dlogits written (3·R·V floats).
func BenchmarkCrossEntropy(b *testing.B) {
	useBLAS(b)
	const r = 4096
	for _, v := range []int{256, 32000} {
		b.Run(fmt.Sprintf("R=%d/V=%d", r, v), func(b *testing.B) {
			logits, dl := make([]float32, r*v), make([]float32, r*v)
			fill(logits, 8)
			targets, lse := make([]int32, r), make([]float32, r)
			for i := range targets {
				targets[i] = int32((i * 131) % v)
			}
			ceiling.CopyBandwidth()
			b.ResetTimer()
			for b.Loop() {
				_, _, err := CrossEntropy(lse, logits, targets, r, v, -1)
				must(b, err)
				must(b, CrossEntropyBackward(dl, 1, logits, targets, lse, r, v, -1))
			}
			reportBandwidth(b, 3*4*float64(r*v))
		})
		// Bytes: logits read, dlogits written (2·R·V floats; the rescale pass stays in cache).
		b.Run(fmt.Sprintf("fused/R=%d/V=%d", r, v), func(b *testing.B) {
			logits, dl := make([]float32, r*v), make([]float32, r*v)
			fill(logits, 8)
			targets, lse := make([]int32, r), make([]float32, r)
			for i := range targets {
				targets[i] = int32((i * 131) % v)
			}
			ceiling.CopyBandwidth()
			b.ResetTimer()
			for b.Loop() {
				_, _, err := CrossEntropyFused(dl, lse, 1, logits, targets, r, v, -1)
				must(b, err)
			}
			reportBandwidth(b, 2*4*float64(r*v))
		})
	}
}

// BenchmarkLinear: forward + backward (dx, dw, dbias): three GEMMs of 2·R·In·Out flops.
func BenchmarkLinear(b *testing.B) {
	useBLAS(b)
	const r, in, out = 4096, 256, 768
	b.Run(fmt.Sprintf("R=%d/In=%d/Out=%d", r, in, out), func(b *testing.B) {
		x, w, bias := make([]float32, r*in), make([]float32, out*in), make([]float32, out)
		y, dy, dx, dw, db := make([]float32, r*out), make([]float32, r*out), make([]float32, r*in), make([]float32, out*in), make([]float32, out)
		fill(x, 1)
		fill(w, 0.1)
		fill(dy, 1)
		ceiling.SGEMM()
		b.ResetTimer()
		for b.Loop() {
			must(b, Linear(y, x, w, bias, r, in, out))
			must(b, LinearBackward(dx, dw, db, dy, x, w, r, in, out))
		}
		gf := 6 * float64(r*in*out) * float64(b.N) / b.Elapsed().Seconds() / 1e9
		b.ReportMetric(gf, "GFLOP/s")
		b.ReportMetric(gf/ceiling.SGEMM(), "frac-sgemm")
	})
}
