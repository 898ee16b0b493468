// Package ceiling measures the machine's own limits in the running process, so that every
// benchmark can state its speed as a fraction of what this machine can do right now:
// the float32 GEMM rate of the BLAS in use (1024×1024×1024) and memory copy bandwidth.
// Both are measured once per process and cached.
package ceiling

import (
	"sync"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

var (
	gemmOnce, copyOnce sync.Once
	gemmRate, copyRate float64
)

// SGEMM returns the float32 GEMM rate in GFLOP/s of the current blas32 implementation on
// 1024×1024 matrices (best of a few runs).
func SGEMM() float64 {
	gemmOnce.Do(func() { gemmRate = measureGemm(1024) })
	return gemmRate
}

func measureGemm(n int) float64 {
	a := make([]float32, n*n)
	b := make([]float32, n*n)
	c := make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%7) * 0.1
		b[i] = float32(i%5) * 0.1
	}
	impl := blas32.Implementation()
	best := 0.0
	for range 4 {
		start := time.Now()
		impl.Sgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, a, n, b, n, 0, c, n)
		if r := 2 * float64(n*n*n) / time.Since(start).Seconds() / 1e9; r > best {
			best = r
		}
	}
	return best
}

// CopyBandwidth returns memory copy bandwidth in GB/s, counting bytes read plus bytes written,
// on buffers far larger than the caches (best of a few runs, both cores).
func CopyBandwidth() float64 {
	copyOnce.Do(func() { copyRate = measureCopy(64 << 20) })
	return copyRate
}

func measureCopy(bytes int) float64 {
	n := bytes / 4
	src := make([]float32, n)
	dst := make([]float32, n)
	for i := range src {
		src[i] = float32(i)
	}
	const workers = 2
	best := 0.0
	for range 5 {
		start := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			lo, hi := w*n/workers, (w+1)*n/workers
			wg.Go(func() { copy(dst[lo:hi], src[lo:hi]) })
		}
		wg.Wait()
		if r := 2 * float64(bytes) / time.Since(start).Seconds() / 1e9; r > best {
			best = r
		}
	}
	return best
}
