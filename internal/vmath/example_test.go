package vmath_test

import (
	"fmt"

	"github.com/hybridlab/hybrid/internal/vmath"
)

// A SwiGLU feed-forward's activation and its backward over whole rows: out = silu(a)·b.
func Example() {
	a := []float32{-2, -1, 0, 1, 2}
	b := []float32{1, 1, 1, 1, 2}
	out := make([]float32, len(a))
	vmath.SwiGLU(out, a, b)
	fmt.Printf("%.4f\n", out)

	da, db := make([]float32, len(a)), make([]float32, len(a))
	dout := []float32{1, 1, 1, 1, 1}
	vmath.SwiGLUBackward(da, db, dout, a, b)
	fmt.Printf("%.4f\n", db) // silu(a)

	vmath.SiLU(a, a) // in place
	fmt.Printf("%.4f\n", a)
	// Output:
	// [-0.2384 -0.2689 0.0000 0.7311 3.5232]
	// [-0.2384 -0.2689 0.0000 0.7311 1.7616]
	// [-0.2384 -0.2689 0.0000 0.7311 1.7616]
}
