package selectivescan

// Benchmarks of the selective scan and the conv1d, named by size, reporting tok/s, GB/s of bytes
// moved, frac-copy = GB/s ÷ ceiling.CopyBandwidth() (read+write copy bandwidth measured in the
// same process) and, for the scan, GFLOP/s.
//
// Bytes moved (float32, each tensor counted once, caches ignored):
//
//	scan forward:  reads u, Δ, z (3·B·L·D) and Bm, Cm (2·B·L·G·N), writes out (B·L·D)
//	scan backward: reads u, Δ, z, dout (4·B·L·D) and Bm, Cm (2·B·L·G·N),
//	               writes du, dΔ, dz (3·B·L·D) and dBm, dCm (2·B·L·G·N)
//	conv forward:  reads x, writes out (2·B·L·D); conv backward: reads x, dout, writes dx (3·B·L·D)
//
// Parameters, saved chunk states (B·L·D·N/Q) and the recomputation's second read of the inputs
// are not counted. FLOPs: 9·B·L·D·N for the scan forward; backward counted as 2× forward.

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels/openblas"
)

func scanBenchInputs(d ScanDims) ScanInputs {
	r := rand.New(rand.NewPCG(1, 2))
	bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
	return ScanInputs{
		U: numtest.F32s(numtest.Normal(r, bld, 1)), Delta: numtest.F32s(numtest.Uniform(r, bld, -4, 1)),
		A: numtest.F32s(numtest.Uniform(r, d.D*d.N, -8, -0.5)), Bm: numtest.F32s(numtest.Normal(r, blgn, 1)),
		Cm: numtest.F32s(numtest.Normal(r, blgn, 1)), Dskip: numtest.F32s(numtest.Normal(r, d.D, 1)),
		Z: numtest.F32s(numtest.Normal(r, bld, 1)), DeltaBias: numtest.F32s(numtest.Normal(r, d.D, 0.3)), Softplus: true,
	}
}

func scanReport(b *testing.B, tokens, bytes, flops float64) {
	sec := b.Elapsed().Seconds() / float64(b.N)
	gbs := bytes / sec / 1e9
	b.ReportMetric(tokens/sec, "tok/s")
	b.ReportMetric(gbs, "GB/s")
	b.ReportMetric(gbs/ceiling.CopyBandwidth(), "frac-copy")
	if flops > 0 {
		b.ReportMetric(flops/sec/1e9, "GFLOP/s")
	}
}

// scanBenchSetup installs OpenBLAS as the conventions ask (openblas.Load keeps its thread pool at
// one, so idle pool threads do not spin on a core the kernel needs) and measures the ceiling.
func scanBenchSetup() {
	openblas.Use()
	ceiling.CopyBandwidth() // measure before any timing
}

func BenchmarkScan(b *testing.B) {
	scanBenchSetup()
	for _, d := range []ScanDims{
		{B: 2, L: 512, D: 256, N: 16, G: 1, Chunk: ScanDefaultChunk},
		{B: 8, L: 2048, D: 512, N: 16, G: 1, Chunk: ScanDefaultChunk},
	} {
		in := scanBenchInputs(d)
		bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
		out, saved := make([]float32, bld), make([]float32, ScanSavedLen(d))
		tokens := float64(d.B * d.L)
		fwdBytes := 4 * float64(4*bld+2*blgn)
		bwdBytes := 4 * float64(7*bld+4*blgn)
		flops := 9 * float64(d.B*d.L*d.D*d.N)
		name := fmt.Sprintf("B=%d/L=%d/D=%d/N=%d", d.B, d.L, d.D, d.N)
		b.Run(name+"/fwd", func(b *testing.B) {
			for b.Loop() {
				if err := ScanForward(out, nil, saved, in, d); err != nil {
					b.Fatal(err)
				}
			}
			scanReport(b, tokens, fwdBytes, flops)
		})
		dout := numtest.F32s(numtest.Normal(rand.New(rand.NewPCG(3, 4)), bld, 1))
		g := ScanGrads{DU: make([]float32, bld), DDelta: make([]float32, bld), DA: make([]float32, d.D*d.N),
			DBm: make([]float32, blgn), DCm: make([]float32, blgn), DDskip: make([]float32, d.D), DZ: make([]float32, bld),
			DDeltaBias: make([]float32, d.D)}
		b.Run(name+"/fwdbwd", func(b *testing.B) {
			for b.Loop() {
				if err := ScanForward(out, nil, saved, in, d); err != nil {
					b.Fatal(err)
				}
				if err := ScanBackward(g, dout, nil, in, saved, d); err != nil {
					b.Fatal(err)
				}
			}
			scanReport(b, tokens, fwdBytes+bwdBytes, 3*flops)
		})
	}
}

func BenchmarkConv1D(b *testing.B) {
	scanBenchSetup()
	for _, d := range []ConvDims{{B: 8, L: 2048, D: 1024, W: 4}} {
		r := rand.New(rand.NewPCG(5, 6))
		bld := d.B * d.L * d.D
		x, w, bias := numtest.F32s(numtest.Normal(r, bld, 1)), numtest.F32s(numtest.Normal(r, d.D*d.W, 1)), numtest.F32s(numtest.Normal(r, d.D, 1))
		out, dout, dx := make([]float32, bld), numtest.F32s(numtest.Normal(r, bld, 1)), make([]float32, bld)
		dw, db := make([]float32, d.D*d.W), make([]float32, d.D)
		name := fmt.Sprintf("B=%d/L=%d/D=%d/W=%d", d.B, d.L, d.D, d.W)
		b.Run(name+"/fwd", func(b *testing.B) {
			for b.Loop() {
				if err := Conv1DForward(out, nil, x, w, bias, nil, true, d); err != nil {
					b.Fatal(err)
				}
			}
			scanReport(b, float64(d.B*d.L), 4*float64(2*bld), 0)
		})
		b.Run(name+"/bwd", func(b *testing.B) {
			for b.Loop() {
				if err := Conv1DBackward(dx, dw, db, nil, dout, nil, x, w, bias, nil, true, d); err != nil {
					b.Fatal(err)
				}
			}
			scanReport(b, float64(d.B*d.L), 4*float64(3*bld), 0)
		})
	}
}
