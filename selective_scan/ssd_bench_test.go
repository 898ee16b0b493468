package selectivescan

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels/openblas"
)

// ssdFlops counts the matrix-product FLOPs the chunked kernel executes (the factored path; the
// per-head products of "direct" heads are not counted), per (b, group, chunk of q tokens) with
// K = (H/G)·P:
//
//	forward:  C·Bᵀ 2q²N, [C | T]·[Sᵀ ; Xg] 2q(N+q)K (= Y_diag 2q²P + Y_off 2qNP per head),
//	          chunk state Bᵀ·Xg 2qNK
//	backward: C·Bᵀ 2q²N, recomputed output 2q(N+q)K, [C | T]ᵀ·dYe 2q(N+q)K, B·dS 2qNK,
//	          dYe·Wᵀ 2q(N+q)K, Xs·dSᵀ 2qNK, dT·B and dTᵀ·C 2·2q²N
//
// C·Bᵀ is counted once per group (it is computed once per group), not once per head.
func ssdFlops(d SSDDims) (fwd, bwd float64) {
	K := float64(d.H / d.G * d.P)
	N := float64(d.N)
	for t0 := 0; t0 < d.L; t0 += d.Chunk {
		q := float64(min(d.Chunk, d.L-t0))
		cb := 2 * q * q * N
		y := 2 * q * (N + q) * K
		st := 2 * q * N * K
		fwd += cb + y + st
		bwd += cb + 3*y + 2*st + 2*cb
	}
	s := float64(d.B * d.G)
	return fwd * s, bwd * s
}

func BenchmarkSSD(b *testing.B) {
	if name, err := openblas.Use(); err != nil {
		b.Logf("BLAS: %s (%v)", name, err)
	} else {
		b.Logf("BLAS: %s", name)
	}
	peak := ceiling.SGEMM()
	// OpenBLAS must run single-threaded here (openblas.Load sets it): the kernel already runs
	// one GEMM per par worker, and nested OpenBLAS threads made it ~6× slower on 2 cores.
	for _, c := range []struct {
		d      SSDDims
		dtMean float32
		tag    string
	}{
		{SSDDims{B: 8, L: 2048, H: 8, P: 64, G: 1, N: 64, Chunk: 64}, -4, ""},
		{SSDDims{B: 1, L: 1024, H: 8, P: 64, G: 1, N: 64, Chunk: 64}, -4, ""},
		{SSDDims{B: 4, L: 1024, H: 8, P: 32, G: 2, N: 32, Chunk: 32}, -4, ""},
		// Δ ≈ 0.7: every chunk decays past e^−40, all heads take the per-head "direct" path.
		{SSDDims{B: 8, L: 2048, H: 8, P: 64, G: 1, N: 64, Chunk: 64}, 0, "/fastdecay"},
	} {
		d := c.d
		// Mamba-2-like values: Δ = softplus(raw) ≈ 0.02 (raw ~ N(−4, 1)), A ∈ [−16, −1].
		r := rand.New(rand.NewPCG(1, 2))
		B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
		in := SSDInputs{
			X:  numtest.F32s(numtest.Normal(r, B*L*H*P, 1)),
			Dt: numtest.F32s(numtest.Normal(r, B*L*H, 1)),
			A:  numtest.F32s(numtest.Uniform(r, H, -16, -1)),
			Bm: numtest.F32s(numtest.Normal(r, B*L*G*N, 1)),
			Cm: numtest.F32s(numtest.Normal(r, B*L*G*N, 1)),
		}
		for i := range in.Dt {
			in.Dt[i] += c.dtMean
		}
		in.Dskip = numtest.F32s(numtest.Normal(r, H, 1))
		y := make([]float32, B*L*H*P)
		hl := make([]float32, B*H*P*N)
		saved := make([]float32, SSDSavedLen(d))
		dy := numtest.F32s(numtest.Normal(r, B*L*H*P, 1))
		g := SSDGrads{DX: make([]float32, B*L*H*P), DDt: make([]float32, B*L*H), DDtBias: make([]float32, H),
			DA: make([]float32, H), DBm: make([]float32, B*L*G*N), DCm: make([]float32, B*L*G*N), DDskip: make([]float32, H)}
		fwdF, bwdF := ssdFlops(d)
		name := fmt.Sprintf("B=%d/L=%d/H=%d/P=%d/N=%d/Q=%d", B, L, H, P, N, d.Chunk)
		if G != 1 {
			name = fmt.Sprintf("B=%d/L=%d/H=%d/P=%d/G=%d/N=%d/Q=%d", B, L, H, P, G, N, d.Chunk)
		}
		name += c.tag
		report := func(b *testing.B, flops float64) {
			s := b.Elapsed().Seconds() / float64(b.N)
			gf := flops / s / 1e9
			b.ReportMetric(float64(B*L)/s, "tok/s")
			b.ReportMetric(gf, "GFLOP/s")
			b.ReportMetric(gf/peak, "frac-sgemm")
		}
		b.Run(name+"/fwd", func(b *testing.B) {
			for b.Loop() {
				if err := SSDForward(y, hl, saved, in, d); err != nil {
					b.Fatal(err)
				}
			}
			report(b, fwdF)
		})
		b.Run(name+"/fwdbwd", func(b *testing.B) {
			for b.Loop() {
				if err := SSDForward(y, hl, saved, in, d); err != nil {
					b.Fatal(err)
				}
				if err := SSDBackward(g, dy, nil, in, saved, d); err != nil {
					b.Fatal(err)
				}
			}
			report(b, fwdF+bwdF)
		})
	}
}
