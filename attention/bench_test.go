package attention

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels/openblas"
)

// benchSetup installs OpenBLAS and runs it single-threaded: the kernels parallelise over tiles
// themselves, and OpenBLAS threading its own small tile GEMMs on top only adds contention.
func benchSetup(b *testing.B) {
	b.Helper()
	name, err := openblas.Use()
	if err != nil {
		b.Logf("blas: %s (%v)", name, err)
	}
	openblas.SetThreads(1)
}

// flops counts the multiply-adds ×2 of the forward's two products over visible (query, key)
// pairs: 4·Dh per pair, i.e. 4·B·H·L·S·Dh without a mask and 2·B·H·L²·Dh causal (the usual
// FlashAttention convention, which counts half of the square). The backward counts 2.5× that
// (five products instead of two).
func (d Dims) flops() float64 {
	pairs := float64(d.L) * float64(d.S)
	if d.Causal {
		pairs /= 2
	}
	return 4 * float64(d.B*d.H*d.Dh) * pairs
}

type benchBufs struct {
	q, k, v, do, o, lse, dq, dk, dv []float32
}

func newBenchBufs(d Dims) *benchBufs {
	r := rand.New(rand.NewPCG(1, 2))
	nq, nkv := d.B*d.L*d.H*d.Dh, d.B*d.S*d.HKV*d.Dh
	return &benchBufs{
		q: numtest.F32s(numtest.Normal(r, nq, 1)), k: numtest.F32s(numtest.Normal(r, nkv, 1)),
		v: numtest.F32s(numtest.Normal(r, nkv, 1)), do: numtest.F32s(numtest.Normal(r, nq, 1)),
		o: make([]float32, nq), lse: make([]float32, d.B*d.H*d.L),
		dq: make([]float32, nq), dk: make([]float32, nkv), dv: make([]float32, nkv),
	}
}

func (x *benchBufs) fwd(b *testing.B, d Dims) {
	if err := Forward(x.o, x.lse, x.q, x.k, x.v, d); err != nil {
		b.Fatal(err)
	}
}

func (x *benchBufs) bwd(b *testing.B, d Dims) {
	if err := Backward(x.dq, x.dk, x.dv, x.do, x.q, x.k, x.v, x.o, x.lse, d); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFlash reports GFLOP/s (causal FLOPs, see flops), its fraction of the machine's SGEMM
// rate and tokens per second.
func BenchmarkFlash(b *testing.B) {
	benchSetup(b)
	peak := ceiling.SGEMM()
	for _, sz := range []struct{ B, H, L, Dh int }{{4, 4, 2048, 64}, {1, 4, 512, 64}, {2, 4, 1024, 128}} {
		d := Dims{B: sz.B, L: sz.L, S: sz.L, H: sz.H, HKV: sz.H, Dh: sz.Dh, Causal: true}
		x := newBenchBufs(d)
		for _, pass := range []string{"fwd", "fwdbwd"} {
			b.Run(fmt.Sprintf("B=%d/H=%d/L=%d/Dh=%d/causal/%s", d.B, d.H, d.L, d.Dh, pass), func(b *testing.B) {
				fl := d.flops()
				if pass == "fwdbwd" {
					fl *= 3.5
				}
				x.fwd(b, d)
				for b.Loop() {
					x.fwd(b, d)
					if pass == "fwdbwd" {
						x.bwd(b, d)
					}
				}
				gf := fl * float64(b.N) / b.Elapsed().Seconds() / 1e9
				b.ReportMetric(gf, "GFLOP/s")
				b.ReportMetric(gf/peak, "frac-sgemm")
				b.ReportMetric(float64(d.B*d.L)*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}

// BenchmarkFlashMemory reports the bytes one forward+backward allocates (TotalAlloc, scratch pools
// emptied first) at growing L, beside the bytes of its inputs and outputs (io-B). It grows
// linearly: the kernels' own scratch is tile buffers plus Δ (B·H·L floats), about 0.2 MB here
// (TestScratchLinear measures it alone); most of the rest is short-lived garbage from the
// OpenBLAS wrapper (a few hundred bytes per GEMM call through purego), linear in the number of
// tiles, which a window keeps linear in L.
func BenchmarkFlashMemory(b *testing.B) {
	benchSetup(b)
	for _, l := range []int{2048, 4096, 8192} {
		d := Dims{B: 1, L: l, S: l, H: 4, HKV: 4, Dh: 64, Causal: true, Window: 512}
		x := newBenchBufs(d)
		b.Run(fmt.Sprintf("B=1/H=4/L=%d/Dh=64/W=512", l), func(b *testing.B) {
			var alloc uint64
			for b.Loop() {
				alloc = allocBytes(func() { x.fwd(b, d); x.bwd(b, d) })
			}
			b.ReportMetric(float64(alloc), "alloc-B/op")
			b.ReportMetric(float64(alloc)/float64(l), "alloc-B/token")
			io := 4 * (len(x.q)*6 + len(x.lse))
			b.ReportMetric(float64(io), "io-B")
		})
	}
}

// allocBytes returns the heap bytes allocated while fn runs, with the scratch pools emptied
// first so the call pays for its own scratch.
func allocBytes(fn func()) uint64 {
	runtime.GC()
	runtime.GC() // sync.Pool is dropped over two cycles
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	fn()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}
