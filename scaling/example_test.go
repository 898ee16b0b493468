package scaling_test

import (
	"fmt"
	"math"

	"github.com/hybridlab/hybrid/scaling"
)

// An isoFLOP study: three budgets, five sizes each, losses on parabolas in ln N whose vertex
// grows as N* = 0.1·C^0.5. The fit places each vertex and the power law through them.
func ExampleFitIsoFLOP() {
	var ps []scaling.Point
	for _, c := range []float64{1e16, 1e17, 1e18} {
		nopt := 0.1 * math.Sqrt(c)
		for _, f := range []float64{0.25, 0.5, 1, 2, 4} {
			n := nopt * f
			loss := 2 + 0.05*math.Log(f)*math.Log(f) + 10*math.Pow(c, -0.1)
			ps = append(ps, scaling.Point{Run: "demo", N: n, D: c / (6 * n), C: c, Loss: loss})
		}
	}
	iso, err := scaling.FitIsoFLOP(ps, scaling.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, b := range iso.Budgets {
		fmt.Printf("C=%.0e  N*=%.3g  D*=%.3g  D*/N*=%.1f\n", b.FLOPs, b.NOpt, b.DOpt, b.DOpt/b.NOpt)
	}
	fmt.Printf("N* ∝ C^%.2f, D* ∝ C^%.2f\n", iso.N.Exponent, iso.D.Exponent)

	// The parametric law's allocation at C = 6ND, here for the Chinchilla refit.
	law := scaling.Law{E: 1.8172, A: 482.01, B: 2085.43, Alpha: 0.3478, Beta: 0.3658}
	n, d := law.Optimal(1e23, 6)
	fmt.Printf("Chinchilla refit at 1e23 FLOPs: N*=%.3g D*=%.3g (%.0f tokens/param)\n", n, d, d/n)
	// Output:
	// C=1e+16  N*=1e+07  D*=1.67e+08  D*/N*=16.7
	// C=1e+17  N*=3.16e+07  D*=5.27e+08  D*/N*=16.7
	// C=1e+18  N*=1e+08  D*=1.67e+09  D*/N*=16.7
	// N* ∝ C^0.50, D* ∝ C^0.50
	// Chinchilla refit at 1e23 FLOPs: N*=2.94e+10 D*=5.66e+11 (19 tokens/param)
}
