package attention

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hybridlab/hybrid/internal/ceiling"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// TestGemmSweep times the forward's two tile GEMMs alone at several tile shapes
// (HYBRID_TILE_SWEEP=1).
func TestGemmSweep(t *testing.T) {
	if os.Getenv("HYBRID_TILE_SWEEP") == "" {
		t.Skip("set HYBRID_TILE_SWEEP=1")
	}
	benchSetup(&testing.B{})
	fmt.Printf("sgemm ceiling %.1f\n", ceiling.SGEMM())
	impl := blas32.Implementation()
	for _, dh := range []int{64, 128} {
		ld := 4 * dh
		q := make([]float32, 512*ld)
		k := make([]float32, 1024*ld)
		for i := range q {
			q[i] = float32(i%7) * 0.01
		}
		for i := range k {
			k[i] = float32(i%5) * 0.01
		}
		acc := make([]float32, 512*dh)
		s := make([]float32, 512*1024)
		for _, c := range [][2]int{{64, 128}, {64, 256}, {128, 128}, {128, 256}, {256, 256}, {64, 512}} {
			n, nc := c[0], c[1]
			reps := 400 * 64 * 128 / (n * nc)
			best1, best2 := time.Duration(1<<62), time.Duration(1<<62)
			for range 5 {
				st := time.Now()
				for range reps {
					impl.Sgemm(blas.NoTrans, blas.Trans, n, nc, dh, 1, q, ld, k, ld, 0, s, nc)
				}
				best1 = min(best1, time.Since(st))
				st = time.Now()
				for range reps {
					impl.Sgemm(blas.NoTrans, blas.NoTrans, n, dh, nc, 1, s, nc, k, ld, 1, acc, dh)
				}
				best2 = min(best2, time.Since(st))
			}
			fl := 2 * float64(n*nc*dh*reps) / 1e9
			fmt.Printf("Dh=%d %dx%d: QK %.1f GF/s  PV %.1f GF/s\n", dh, n, nc, fl/best1.Seconds(), fl/best2.Seconds())
		}
	}
}
