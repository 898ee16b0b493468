//go:build cuda

package cuda

// GPU tests: the shared conformance suite and the wider shapes of shapes_test.go on the device,
// and per-kernel benchmarks reporting domain units and the fraction of the device's ceilings
// (copy bandwidth, cuBLAS SGEMM), measured in the same process. Everything skips with a clear
// message when no device is present.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/kernels/kernelstest"
	"github.com/hybridlab/hybrid/ops"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
)

var (
	devOnce sync.Once
	devBe   *Backend
	devErr  error
)

func testBackend(tb testing.TB) *Backend {
	tb.Helper()
	devOnce.Do(func() { devBe, devErr = New() })
	if errors.Is(devErr, errNoDevice) {
		tb.Skip("no CUDA device found: the CUDA backend's tests need a GPU (see kernels/cuda/README.md)")
	}
	if devErr != nil {
		tb.Fatal(devErr)
	}
	return devBe
}

func TestConformance(t *testing.T) {
	be := testBackend(t)
	t.Log(be.Name())
	kernelstest.Run(t, be)
}

func TestRegistered(t *testing.T) {
	be, err := kernels.Get("cuda")
	if err != nil {
		if strings.Contains(err.Error(), "no CUDA device found") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	if !strings.HasPrefix(be.Name(), "cuda") {
		t.Errorf("Get(cuda).Name() = %q", be.Name())
	}
}

// ---- ceilings ----

var (
	ceilOnce           sync.Once
	ceilBW, ceilGEMM   float64 // GB/s (read + write), GFLOP/s
	ceilBWE, ceilGEMME error
)

func ceilings(b *testing.B, be *Backend) (float64, float64) {
	ceilOnce.Do(func() {
		const n = 1 << 28 // 1 GiB of float32
		src, dst := be.Alloc(n).(*Buf), be.Alloc(n).(*Buf)
		defer src.Free()
		defer dst.Free()
		copyOnce := func() error {
			return be.call(func() error { return be.dev.dtod(dst.p, src.p, 4*n) })
		}
		ceilBW, ceilBWE = timeRate(be, copyOnce, 2*4*n/1e9)
		const m = 8192
		a, bb, c := be.Alloc(m*m), be.Alloc(m*m), be.Alloc(m*m)
		defer a.(*Buf).Free()
		defer bb.(*Buf).Free()
		defer c.(*Buf).Free()
		ceilGEMM, ceilGEMME = timeRate(be, func() error { return be.MatMul(c, a, bb, false, false, m, m, m, false) }, 2*m*m*float64(m)/1e9)
	})
	if ceilBWE != nil || ceilGEMME != nil {
		b.Fatal(ceilBWE, ceilGEMME)
	}
	return ceilBW, ceilGEMM
}

// timeRate runs f (warm-up, then 10 timed runs) and returns units/second.
func timeRate(be *Backend, f func() error, units float64) (float64, error) {
	if err := f(); err != nil {
		return 0, err
	}
	if err := be.Sync(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	for range 10 {
		if err := f(); err != nil {
			return 0, err
		}
	}
	if err := be.Sync(); err != nil {
		return 0, err
	}
	return 10 * units / time.Since(t0).Seconds(), nil
}

// ---- benchmarks ----

type bufs struct {
	be *Backend
	r  *rand.Rand
	bs []*Buf
}

func (x *bufs) rnd(n int, scale float32) kernels.Buffer {
	h := make([]float32, n)
	for i := range h {
		h[i] = scale * float32(x.r.NormFloat64())
	}
	b := x.be.Alloc(n)
	if err := x.be.Upload(b, h); err != nil {
		panic(err)
	}
	x.bs = append(x.bs, b.(*Buf))
	return b
}

// rndS is rnd in the given storage.
func (x *bufs) rndS(n int, scale float32, st Storage) kernels.Buffer {
	if st == F32 {
		return x.rnd(n, scale)
	}
	h := make([]float32, n)
	for i := range h {
		h[i] = scale * float32(x.r.NormFloat64())
	}
	b := x.be.AllocStorage(n, st)
	if err := x.be.Upload(b, h); err != nil {
		panic(err)
	}
	x.bs = append(x.bs, b)
	return b
}

func (x *bufs) zeroS(n int, st Storage) kernels.Buffer {
	b := x.be.AllocStorage(n, st)
	x.bs = append(x.bs, b)
	return b
}

func (x *bufs) val(n int, lo, hi float32) kernels.Buffer {
	h := make([]float32, n)
	for i := range h {
		h[i] = lo + (hi-lo)*x.r.Float32()
	}
	b := x.be.Alloc(n)
	if err := x.be.Upload(b, h); err != nil {
		panic(err)
	}
	x.bs = append(x.bs, b.(*Buf))
	return b
}

func (x *bufs) zero(n int) kernels.Buffer {
	b := x.be.Alloc(n)
	x.bs = append(x.bs, b.(*Buf))
	return b
}

func (x *bufs) free() {
	for _, b := range x.bs {
		b.Free()
	}
}

// run times op and reports GB/s (bytes moved, an estimate) or GFLOP/s with the fraction of the
// matching ceiling.
func run(b *testing.B, be *Backend, bytes, flops float64, op func() error) {
	bw, gemm := ceilings(b, be)
	if err := op(); err != nil { // warm-up and error check
		b.Fatal(err)
	}
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	if bytes > 0 {
		b.ReportMetric(bytes/sec/1e9, "GB/s")
		b.ReportMetric(bytes/sec/1e9/bw, "frac-bw")
	}
	if flops > 0 {
		b.ReportMetric(flops/sec/1e9, "GFLOP/s")
		b.ReportMetric(flops/sec/1e9/gemm, "frac-sgemm")
	}
}

func BenchmarkCeilings(b *testing.B) {
	be := testBackend(b)
	bw, gemm := ceilings(b, be)
	b.ReportMetric(bw, "copy-GB/s")
	b.ReportMetric(gemm, "sgemm-GFLOP/s")
}

func BenchmarkElementwise(b *testing.B) {
	be := testBackend(b)
	x := &bufs{be: be, r: rand.New(rand.NewPCG(1, 2))}
	defer x.free()
	const n = 1 << 26
	p, g, m, v := x.rnd(n, 1), x.rnd(n, 1), x.zero(n), x.zero(n)
	c := ops.AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	b.Run(fmt.Sprintf("AdamW/N=%d", n), func(b *testing.B) {
		run(b, be, 4*7*n, 0, func() error { return be.AdamW(p, m, v, g, 1, c) })
	})
	b.Run(fmt.Sprintf("SwiGLU/N=%d", n), func(b *testing.B) { run(b, be, 4*3*n, 0, func() error { return be.SwiGLU(m, p, g) }) })
	b.Run(fmt.Sprintf("Axpby/N=%d", n), func(b *testing.B) { run(b, be, 4*3*n, 0, func() error { return be.Axpby(m, 2, p, 3, g) }) })
}

func BenchmarkRows(b *testing.B) {
	be := testBackend(b)
	x := &bufs{be: be, r: rand.New(rand.NewPCG(3, 4))}
	defer x.free()
	const r, d = 8192, 2048
	xb, w, out, rstd := x.rnd(r*d, 1), x.rnd(d, 1), x.zero(r*d), x.zero(r)
	b.Run(fmt.Sprintf("RMSNorm/R=%d/D=%d", r, d), func(b *testing.B) {
		run(b, be, 4*2*r*d, 0, func() error { return be.RMSNorm(out, rstd, xb, w, r, d, 1e-5) })
	})
	dx, dw := x.zero(r*d), x.zero(d)
	b.Run(fmt.Sprintf("RMSNormBackward/R=%d/D=%d", r, d), func(b *testing.B) {
		run(b, be, 4*5*r*d, 0, func() error { return be.RMSNormBackward(dx, dw, out, xb, w, rstd, r, d) })
	})
	const rr, v = 4096, 32000
	logits, lse, dl := x.rnd(rr*v, 2), x.zero(rr), x.zero(rr*v)
	tg := make([]int32, rr)
	for i := range tg {
		tg[i] = int32(i * 7 % v)
	}
	b.Run(fmt.Sprintf("CrossEntropy/R=%d/V=%d", rr, v), func(b *testing.B) {
		run(b, be, 4*2*rr*v, 0, func() error { _, _, err := be.CrossEntropy(lse, logits, tg, rr, v, -1); return err })
	})
	b.Run(fmt.Sprintf("CrossEntropyBackward/R=%d/V=%d", rr, v), func(b *testing.B) {
		run(b, be, 4*2*rr*v, 0, func() error { return be.CrossEntropyBackward(dl, 1, logits, tg, lse, rr, v, -1) })
	})
	const in, o = 2048, 2048
	y, wl := x.zero(r*o), x.rnd(o*in, 0.02)
	b.Run(fmt.Sprintf("Linear/R=%d/In=%d/Out=%d", r, in, o), func(b *testing.B) {
		run(b, be, 0, 2*r*in*float64(o), func() error { return be.Linear(y, xb, wl, nil, r, in, o) })
	})
}

func BenchmarkConv1D(b *testing.B) {
	be := testBackend(b)
	x := &bufs{be: be, r: rand.New(rand.NewPCG(5, 6))}
	defer x.free()
	d := selectivescan.ConvDims{B: 4, L: 2048, D: 1536, W: 4}
	n := d.B * d.L * d.D
	xb, w, bias, out := x.rnd(n, 1), x.rnd(d.D*d.W, 0.5), x.rnd(d.D, 0.1), x.zero(n)
	b.Run(fmt.Sprintf("Conv1D/B=%d/L=%d/D=%d/W=%d", d.B, d.L, d.D, d.W), func(b *testing.B) {
		run(b, be, 4*2*float64(n), 0, func() error { return be.Conv1D(out, nil, xb, w, bias, nil, true, d) })
	})
	dx, dw, db := x.zero(n), x.zero(d.D*d.W), x.zero(d.D)
	b.Run(fmt.Sprintf("Conv1DBackward/B=%d/L=%d/D=%d/W=%d", d.B, d.L, d.D, d.W), func(b *testing.B) {
		run(b, be, 4*6*float64(n), 0, func() error {
			return be.Conv1DBackward(dx, dw, db, nil, out, nil, xb, w, bias, nil, true, d)
		})
	})
}

func BenchmarkScan(b *testing.B) {
	be := testBackend(b)
	x := &bufs{be: be, r: rand.New(rand.NewPCG(7, 8))}
	defer x.free()
	d := selectivescan.ScanDims{B: 4, L: 2048, D: 1536, N: 16, G: 1, Chunk: 256}
	bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
	a := kernels.ScanArgs{U: x.rnd(bld, 1), Delta: x.rnd(bld, 0.5), A: x.val(d.D*d.N, -2, -0.1), Bm: x.rnd(blgn, 1), Cm: x.rnd(blgn, 1),
		Dskip: x.rnd(d.D, 1), Z: x.rnd(bld, 1), DeltaBias: x.rnd(d.D, 0.5), Softplus: true, Dims: d}
	out, saved := x.zero(bld), x.zero(be.ScanSavedLen(d))
	name := fmt.Sprintf("B=%d/L=%d/D=%d/N=%d", d.B, d.L, d.D, d.N)
	bytes := 4 * (4*float64(bld) + 2*float64(blgn))
	b.Run("Scan/"+name, func(b *testing.B) {
		run(b, be, bytes, 9*float64(bld*d.N), func() error { return be.Scan(out, nil, saved, a) })
	})
	g := kernels.ScanGrads{DU: x.zero(bld), DDelta: x.zero(bld), DA: x.zero(d.D * d.N), DBm: x.zero(blgn), DCm: x.zero(blgn),
		DDskip: x.zero(d.D), DZ: x.zero(bld), DDeltaBias: x.zero(d.D)}
	b.Run("ScanBackward/"+name, func(b *testing.B) {
		run(b, be, 2.5*bytes, 2.5*9*float64(bld*d.N), func() error { return be.ScanBackward(g, out, nil, a, saved) })
	})
}

func BenchmarkSSD(b *testing.B) {
	be := testBackend(b)
	x := &bufs{be: be, r: rand.New(rand.NewPCG(9, 10))}
	defer x.free()
	d := selectivescan.SSDDims{B: 4, L: 2048, H: 24, P: 64, G: 1, N: 128, Chunk: 128}
	nx, bgn := d.B*d.L*d.H*d.P, d.B*d.L*d.G*d.N
	a := kernels.SSDArgs{X: x.rnd(nx, 1), Dt: x.rnd(d.B*d.L*d.H, 0.5), DtBias: x.rnd(d.H, 0.5), A: x.val(d.H, -2, -0.1),
		Bm: x.rnd(bgn, 1), Cm: x.rnd(bgn, 1), Dskip: x.rnd(d.H, 1), Dims: d}
	y, saved := x.zero(nx), x.zero(be.SSDSavedLen(d))
	// Chunk products: states (2·L·H·P·N), output from states (2·L·H·P·N), intra-chunk (L·H·Q·P), C·Bᵀ (L·G·Q·N).
	fl := float64(d.B) * float64(d.L) * (4*float64(d.H*d.P*d.N) + float64(d.H*d.Chunk*d.P) + float64(d.G*d.Chunk*d.N))
	name := fmt.Sprintf("B=%d/L=%d/H=%d/P=%d/N=%d/Q=%d", d.B, d.L, d.H, d.P, d.N, d.Chunk)
	b.Run("SSD/"+name, func(b *testing.B) { run(b, be, 0, fl, func() error { return be.SSD(y, nil, saved, a) }) })
	g := kernels.SSDGrads{DX: x.zero(nx), DDt: x.zero(d.B * d.L * d.H), DDtBias: x.zero(d.H), DA: x.zero(d.H), DBm: x.zero(bgn),
		DCm: x.zero(bgn), DDskip: x.zero(d.H)}
	b.Run("SSDBackward/"+name, func(b *testing.B) {
		run(b, be, 0, 2.5*fl, func() error { return be.SSDBackward(g, y, nil, a, saved) })
	})
}

func BenchmarkAttention(b *testing.B) {
	be := testBackend(b)
	for _, d := range []attention.Dims{
		{B: 4, L: 2048, S: 2048, H: 16, HKV: 16, Dh: 64, Causal: true},
		{B: 4, L: 2048, S: 2048, H: 16, HKV: 4, Dh: 128, Causal: true},
		{B: 2, L: 4096, S: 4096, H: 16, HKV: 4, Dh: 128, Causal: true, Window: 1024, Sinks: 4},
	} {
		for _, st := range []Storage{F32, BF16} {
			x := &bufs{be: be, r: rand.New(rand.NewPCG(11, 12))}
			nq, nkv := d.B*d.L*d.H*d.Dh, d.B*d.S*d.HKV*d.Dh
			q, k, v, o, lse := x.rndS(nq, 1, st), x.rndS(nkv, 1, st), x.rndS(nkv, 1, st), x.zeroS(nq, st), x.zero(d.B*d.H*d.L)
			// Visible pairs: causal ~L²/2, windowed ~L·W.
			pairs := float64(d.L) * float64(d.L) / 2
			if d.Window > 0 {
				pairs = float64(d.L) * float64(d.Window)
			}
			fl := 4 * float64(d.B*d.H*d.Dh) * pairs
			name := fmt.Sprintf("B=%d/L=%d/H=%d/HKV=%d/Dh=%d/W=%d/%v", d.B, d.L, d.H, d.HKV, d.Dh, d.Window, st)
			b.Run("Forward/"+name, func(b *testing.B) { run(b, be, 0, fl, func() error { return be.Attention(o, lse, q, k, v, d) }) })
			dq, dk, dv := x.zeroS(nq, st), x.zeroS(nkv, st), x.zeroS(nkv, st)
			b.Run("Backward/"+name, func(b *testing.B) {
				run(b, be, 0, 2.5*fl, func() error { return be.AttentionBackward(dq, dk, dv, o, q, k, v, o, lse, d) })
			})
			x.free()
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	be := testBackend(b)
	x := &bufs{be: be, r: rand.New(rand.NewPCG(13, 14))}
	defer x.free()
	cd := attention.CacheDims{B: 8, Cap: 4096, HKV: 8, Dh: 128}
	dd := attention.DecodeDims{H: 32}
	c, err := be.NewKVCache(cd)
	if err != nil {
		b.Fatal(err)
	}
	n := cd.B * cd.Cap * cd.HKV * cd.Dh
	if err := c.Append(x.rnd(n, 1), x.rnd(n, 1), cd.Cap); err != nil {
		b.Fatal(err)
	}
	q, o := x.rnd(cd.B*dd.H*cd.Dh, 1), x.zero(cd.B*dd.H*cd.Dh)
	b.Run(fmt.Sprintf("KVDecode/B=%d/ctx=%d/H=%d/HKV=%d/Dh=%d", cd.B, cd.Cap, dd.H, cd.HKV, cd.Dh), func(b *testing.B) {
		run(b, be, 4*2*float64(n), 0, func() error { return c.Decode(o, q, dd) })
	})
	sd := selectivescan.SSDDims{B: 8, H: 24, P: 64, G: 1, N: 128}
	st := x.zero(sd.B * sd.H * sd.P * sd.N)
	a := kernels.SSDArgs{A: x.val(sd.H, -2, -0.1), Dims: sd}
	xs, dt, bm, cm, y := x.rnd(sd.B*sd.H*sd.P, 1), x.rnd(sd.B*sd.H, 0.5), x.rnd(sd.B*sd.N, 1), x.rnd(sd.B*sd.N, 1), x.zero(sd.B*sd.H*sd.P)
	b.Run(fmt.Sprintf("SSDStep/B=%d/H=%d/P=%d/N=%d", sd.B, sd.H, sd.P, sd.N), func(b *testing.B) {
		run(b, be, 4*2*float64(sd.B*sd.H*sd.P*sd.N), 0, func() error { return be.SSDStep(st, y, xs, dt, bm, cm, a) })
	})
}
