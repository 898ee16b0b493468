package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/kernels/openblas"
	"github.com/hybridlab/hybrid/ops"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// cmdBench times the compute kernels at the sizes the project's targets name and prints each
// beside the ceiling that bounds it, measured in the same process.
func cmdBench(args []string) error {
	if len(args) > 0 && args[0] == "train" {
		return benchTrain(args[1:])
	}
	if len(args) > 0 && args[0] == "kernels" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "smaller sizes (seconds instead of a minute)")
	reps := fs.Int("reps", 3, "timed repetitions per kernel (best is reported)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	blasName, err := openblas.Use()
	if err != nil {
		fmt.Fprintf(os.Stderr, "note: %v\n", err)
	}
	fmt.Printf("machine: %s/%s, %d cores (GOMAXPROCS %d), %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("BLAS:    %s\n", blasName)
	sg := ceiling.SGEMM()
	bw := ceiling.CopyBandwidth()
	pure := gonumRate(512)
	fmt.Printf("ceilings measured now: SGEMM 1024³ %.1f GFLOP/s (pure-Go gonum 512³: %.1f), copy bandwidth %.1f GB/s\n\n", sg, pure, bw)

	b := &bencher{reps: *reps, sgemm: sg, copyBW: bw}
	scale := 1
	if *quick {
		scale = 4
	}
	b.scan(selectivescan.ScanDims{B: 8 / scale, L: 2048, D: 512, N: 16, G: 1, Chunk: selectivescan.ScanDefaultChunk})
	b.ssd(selectivescan.SSDDims{B: 8 / scale, L: 2048, H: 8, P: 64, G: 1, N: 64, Chunk: 64})
	b.flash(attention.Dims{B: 4 / scale, L: 2048, S: 2048, H: 4, HKV: 4, Dh: 64, Causal: true})
	b.conv(selectivescan.ConvDims{B: 8 / scale, L: 2048, D: 1024, W: 4})
	b.linear(4096/scale, 256, 768)
	b.flashMemory([]int{2048, 4096, 8192})
	b.print()
	return nil
}

func gonumRate(n int) float64 {
	a := make([]float32, n*n)
	c := make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%7) * 0.1 // non-zero: gonum skips zero multipliers
	}
	start := time.Now()
	gonum.Implementation{}.Sgemm('N', 'N', n, n, n, 1, a, n, a, n, 0, c, n)
	return 2 * float64(n*n*n) / time.Since(start).Seconds() / 1e9
}

type row struct {
	kernel, size, time, rate, ceil, frac, target string
}

type bencher struct {
	reps          int
	sgemm, copyBW float64
	rows          []row
}

// best runs f reps times (after one warm-up) and returns the shortest wall time.
func (b *bencher) best(f func() error) (time.Duration, error) {
	if err := f(); err != nil {
		return 0, err
	}
	best := time.Duration(1<<63 - 1)
	for range b.reps {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		best = min(best, time.Since(start))
	}
	return best, nil
}

func (b *bencher) addFlops(kernel, size string, d time.Duration, flops float64, target string) {
	r := flops / d.Seconds() / 1e9
	b.rows = append(b.rows, row{kernel, size, d.Round(time.Microsecond).String(), fmt.Sprintf("%.1f GFLOP/s", r),
		"SGEMM", fmt.Sprintf("%.0f%%", 100*r/b.sgemm), target})
}

func (b *bencher) addBytes(kernel, size string, d time.Duration, bytes float64, target string) {
	r := bytes / d.Seconds() / 1e9
	b.rows = append(b.rows, row{kernel, size, d.Round(time.Microsecond).String(), fmt.Sprintf("%.1f GB/s", r),
		"copy", fmt.Sprintf("%.0f%%", 100*r/b.copyBW), target})
}

func (b *bencher) fail(kernel string, err error) {
	b.rows = append(b.rows, row{kernel: kernel, size: "error: " + err.Error()})
}

func randn(r *rand.Rand, n int, scale, mean float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = mean + scale*float32(r.NormFloat64())
	}
	return x
}

// scan: bytes moved are the activations each pass must read or write once:
// forward reads u, Δ, z (B·L·D each) and B, C (B·L·G·N each) and writes out (B·L·D);
// backward reads u, Δ, z, dout and B, C and writes du, dΔ, dz, dB, dC.
func (b *bencher) scan(d selectivescan.ScanDims) {
	r := rand.New(rand.NewPCG(1, 1))
	bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
	a := randn(r, d.D*d.N, 0.5, -1)
	for i := range a {
		a[i] = -abs32(a[i]) - 0.1
	}
	in := selectivescan.ScanInputs{U: randn(r, bld, 1, 0), Delta: randn(r, bld, 1, -3), A: a, Bm: randn(r, blgn, 1, 0),
		Cm: randn(r, blgn, 1, 0), Dskip: randn(r, d.D, 1, 0), Z: randn(r, bld, 1, 0), DeltaBias: randn(r, d.D, 0.1, 0), Softplus: true}
	out, saved, dout := make([]float32, bld), make([]float32, selectivescan.ScanSavedLen(d)), randn(r, bld, 1, 0)
	g := selectivescan.ScanGrads{DU: make([]float32, bld), DDelta: make([]float32, bld), DA: make([]float32, d.D*d.N),
		DBm: make([]float32, blgn), DCm: make([]float32, blgn), DDskip: make([]float32, d.D), DZ: make([]float32, bld), DDeltaBias: make([]float32, d.D)}
	t, err := b.best(func() error {
		if err := selectivescan.ScanForward(out, nil, saved, in, d); err != nil {
			return err
		}
		return selectivescan.ScanBackward(g, dout, nil, in, saved, d)
	})
	if err != nil {
		b.fail("mamba1 scan", err)
		return
	}
	bytes := 4 * float64(4*bld+2*blgn+7*bld+4*blgn)
	b.addBytes("mamba1 scan fwd+bwd", fmt.Sprintf("B=%d L=%d D=%d N=%d", d.B, d.L, d.D, d.N), t, bytes, "≥30% copy")
}

// ssd counts the matrix-product FLOPs of the SSD algorithm per (batch, head, chunk of Q):
// forward C·Bᵀ 2Q²N, Y_diag 2Q²P, chunk states 2QPN, Y_off 2QPN; the backward has twice as
// many (each product has two input gradients).
func (b *bencher) ssd(d selectivescan.SSDDims) {
	r := rand.New(rand.NewPCG(2, 2))
	x := d.B * d.L * d.H * d.P
	bgn := d.B * d.L * d.G * d.N
	a := make([]float32, d.H)
	for i := range a {
		a[i] = -1 - float32(i)
	}
	in := selectivescan.SSDInputs{X: randn(r, x, 1, 0), Dt: randn(r, d.B*d.L*d.H, 1, -4), DtBias: randn(r, d.H, 0.1, 0), A: a,
		Bm: randn(r, bgn, 1, 0), Cm: randn(r, bgn, 1, 0), Dskip: randn(r, d.H, 1, 0)}
	y, saved, dy := make([]float32, x), make([]float32, selectivescan.SSDSavedLen(d)), randn(r, x, 1, 0)
	g := selectivescan.SSDGrads{DX: make([]float32, x), DDt: make([]float32, d.B*d.L*d.H), DDtBias: make([]float32, d.H),
		DA: make([]float32, d.H), DBm: make([]float32, bgn), DCm: make([]float32, bgn), DDskip: make([]float32, d.H)}
	t, err := b.best(func() error {
		if err := selectivescan.SSDForward(y, nil, saved, in, d); err != nil {
			return err
		}
		return selectivescan.SSDBackward(g, dy, nil, in, saved, d)
	})
	if err != nil {
		b.fail("mamba2 SSD", err)
		return
	}
	Q, N, P := float64(d.Chunk), float64(d.N), float64(d.P)
	chunks := float64(d.B*d.H) * float64(d.L) / Q
	fwd := chunks * (2*Q*Q*N + 2*Q*Q*P + 4*Q*P*N)
	b.addFlops("mamba2 SSD fwd+bwd", fmt.Sprintf("B=%d L=%d H=%d P=%d N=%d Q=%d", d.B, d.L, d.H, d.P, d.N, d.Chunk), t, 3*fwd, "≥40% SGEMM")
}

// flash counts causal FLOPs: forward 2·B·H·L²·Dh (half of the dense 4·B·H·L²·Dh), backward 2.5× that.
func (b *bencher) flash(d attention.Dims) {
	r := rand.New(rand.NewPCG(3, 3))
	nq, nk := d.B*d.L*d.H*d.Dh, d.B*d.S*d.HKV*d.Dh
	q, k, v := randn(r, nq, 1, 0), randn(r, nk, 1, 0), randn(r, nk, 1, 0)
	o, lse, do := make([]float32, nq), make([]float32, d.B*d.H*d.L), randn(r, nq, 1, 0)
	dq, dk, dv := make([]float32, nq), make([]float32, nk), make([]float32, nk)
	size := fmt.Sprintf("B=%d H=%d L=%d Dh=%d causal", d.B, d.H, d.L, d.Dh)
	fwd := 2 * float64(d.B*d.H) * float64(d.L) * float64(d.L) * float64(d.Dh)
	t, err := b.best(func() error { return attention.Forward(o, lse, q, k, v, d) })
	if err != nil {
		b.fail("flash attention", err)
		return
	}
	b.addFlops("flash attention fwd", size, t, fwd, "≥40% SGEMM")
	t, err = b.best(func() error { return attention.Backward(dq, dk, dv, do, q, k, v, o, lse, d) })
	if err != nil {
		b.fail("flash attention bwd", err)
		return
	}
	b.addFlops("flash attention bwd", size, t, 2.5*fwd, "≥40% SGEMM")
}

// flashMemory reports the bytes of one forward+backward at growing L: the tensors it reads and
// writes (q, k, v, o, lse and their gradients) plus the heap the kernels allocate while running.
// Linear growth in L is the point: no L×L matrix is ever formed.
func (b *bencher) flashMemory(ls []int) {
	for _, l := range ls {
		d := attention.Dims{B: 1, L: l, S: l, H: 4, HKV: 4, Dh: 64, Causal: true}
		n := d.L * d.H * d.Dh
		r := rand.New(rand.NewPCG(4, 4))
		q, k, v, do := randn(r, n, 1, 0), randn(r, n, 1, 0), randn(r, n, 1, 0), randn(r, n, 1, 0)
		o, lse := make([]float32, n), make([]float32, d.H*d.L)
		dq, dk, dv := make([]float32, n), make([]float32, n), make([]float32, n)
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		start := time.Now()
		err := attention.Forward(o, lse, q, k, v, d)
		if err == nil {
			err = attention.Backward(dq, dk, dv, do, q, k, v, o, lse, d)
		}
		el := time.Since(start)
		runtime.ReadMemStats(&m1)
		if err != nil {
			b.fail("flash memory", err)
			return
		}
		tensors := 4 * float64(10*n+d.H*d.L)
		scratch := float64(m1.TotalAlloc - m0.TotalAlloc)
		dense := 4 * float64(d.H) * float64(l) * float64(l)
		b.rows = append(b.rows, row{"flash fwd+bwd memory", fmt.Sprintf("B=1 H=4 L=%d Dh=64", l), el.Round(time.Millisecond).String(),
			fmt.Sprintf("%s tensors + %s heap churn", mib(tensors), mib(scratch)), "L×L scores", fmt.Sprintf("%s avoided", mib(dense)), "linear in L"})
	}
}

func (b *bencher) conv(d selectivescan.ConvDims) {
	r := rand.New(rand.NewPCG(5, 5))
	n := d.B * d.L * d.D
	x, w, bias, dout := randn(r, n, 1, 0), randn(r, d.D*d.W, 0.5, 0), randn(r, d.D, 0.1, 0), randn(r, n, 1, 0)
	out, dx, dw, db := make([]float32, n), make([]float32, n), make([]float32, d.D*d.W), make([]float32, d.D)
	t, err := b.best(func() error {
		if err := selectivescan.Conv1DForward(out, nil, x, w, bias, nil, true, d); err != nil {
			return err
		}
		return selectivescan.Conv1DBackward(dx, dw, db, nil, dout, nil, x, w, bias, nil, true, d)
	})
	if err != nil {
		b.fail("conv1d", err)
		return
	}
	// forward reads x, writes out; backward reads x, dout, writes dx.
	b.addBytes("conv1d fwd+bwd (SiLU)", fmt.Sprintf("B=%d L=%d D=%d W=%d", d.B, d.L, d.D, d.W), t, 4*5*float64(n), "")
}

func (b *bencher) linear(r0, in, out int) {
	r := rand.New(rand.NewPCG(6, 6))
	x, w, dy := randn(r, r0*in, 1, 0), randn(r, out*in, 0.1, 0), randn(r, r0*out, 1, 0)
	y, dx, dw := make([]float32, r0*out), make([]float32, r0*in), make([]float32, out*in)
	t, err := b.best(func() error {
		if err := ops.Linear(y, x, w, nil, r0, in, out); err != nil {
			return err
		}
		return ops.LinearBackward(dx, dw, nil, dy, x, w, r0, in, out)
	})
	if err != nil {
		b.fail("linear", err)
		return
	}
	b.addFlops("linear fwd+bwd", fmt.Sprintf("R=%d %d→%d", r0, in, out), t, 6*float64(r0*in*out), "≥80% SGEMM")
	_ = blas32.Implementation()
}

func (b *bencher) print() {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KERNEL\tSIZE\tTIME\tRATE\tCEILING\tOF CEILING\tTARGET")
	for _, r := range b.rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.kernel, r.size, r.time, r.rate, r.ceil, r.frac, r.target)
	}
	w.Flush()
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
