package openblas

import (
	"fmt"
	"testing"

	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/internal/numtest"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

func TestSgemmMatchesGonum(t *testing.T) {
	if err := Load(); err != nil {
		t.Skipf("OpenBLAS not installed: %v", err)
	}
	t.Logf("using %s", Name())
	r, _ := numtest.Rand(t)
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 7}, {63, 65, 64}, {128, 17, 129}, {200, 1, 33}, {300, 257, 129}, {40, 300, 200}} {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				m, n, k := sz[0], sz[1], sz[2]
				lda, ldb := k, n
				if tA == blas.Trans {
					lda = m
				}
				if tB == blas.Trans {
					ldb = k
				}
				a := numtest.F32s(numtest.Normal(r, m*k, 1))
				b := numtest.F32s(numtest.Normal(r, k*n, 1))
				c0 := numtest.F32s(numtest.Normal(r, m*n, 1))
				got := append([]float32(nil), c0...)
				want := append([]float32(nil), c0...)
				Implementation{}.Sgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, got, n)
				gonum.Implementation{}.Sgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, want, n)
				numtest.Check(t, fmt.Sprintf("%v%v %v", tA, tB, sz), got, want, numtest.F32.Scaled(k))
			}
		}
	}
}

func TestBadArgumentsPanicLikeGonum(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("short slice did not panic")
		}
	}()
	Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, 4, 4, 4, 1, make([]float32, 3), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
}

// BenchmarkSgemm reports GFLOP/s of both BLAS paths side by side.
func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{256, 512, 1024} {
		for _, path := range []string{"gonum", "openblas"} {
			b.Run(fmt.Sprintf("%s/n=%d", path, n), func(b *testing.B) {
				var impl blas.Float32 = gonum.Implementation{}
				if path == "openblas" {
					if err := Load(); err != nil {
						b.Skip(err)
					}
					impl = Implementation{}
				}
				a := make([]float32, n*n)
				c := make([]float32, n*n)
				for i := range a {
					a[i] = float32(i%13) * 0.01
				}
				b.ResetTimer()
				for b.Loop() {
					impl.Sgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, a, n, a, n, 0, c, n)
				}
				b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkCeilings(b *testing.B) {
	if _, err := Use(); err != nil {
		b.Log(err)
	}
	for b.Loop() {
	}
	b.ReportMetric(ceiling.SGEMM(), "sgemm-GFLOP/s")
	b.ReportMetric(ceiling.CopyBandwidth(), "copy-GB/s")
	_ = blas32.Implementation()
}

// TestSgemmNoAllocs checks that a call into OpenBLAS leaves no garbage (kernels call Sgemm per
// chunk or tile, thousands of times a step). The serial path is measured: par.For's goroutines
// allocate by themselves.
func TestSgemmNoAllocs(t *testing.T) {
	if err := Load(); err != nil {
		t.Skipf("OpenBLAS not installed: %v", err)
	}
	if sgemmF == 0 {
		t.Skip("no sgemm_ symbol: the cblas fallback allocates")
	}
	const m, n, k = 8, 8, 8
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	for i := range a {
		a[i], b[i] = float32(i%5), float32(i%3)
	}
	for _, tr := range [][2]blas.Transpose{{blas.NoTrans, blas.NoTrans}, {blas.Trans, blas.NoTrans}, {blas.NoTrans, blas.Trans}} {
		if got := testing.AllocsPerRun(100, func() {
			Implementation{}.Sgemm(tr[0], tr[1], m, n, k, 1, a, 8, b, 8, 0.5, c, n)
		}); got != 0 {
			t.Errorf("%c%c: %v allocations per Sgemm call, want 0", tr[0], tr[1], got)
		}
	}
}
