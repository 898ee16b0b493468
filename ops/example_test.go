package ops_test

import (
	"fmt"

	"github.com/hybridlab/hybrid/ops"
)

// A language-model head: RMSNorm, a Linear to the vocabulary, cross-entropy with a padded position,
// then the backward pass in reverse order.
func Example() {
	const r, d, v = 3, 4, 5 // 3 tokens, 4 channels, vocabulary 5
	x := []float32{1, 2, 3, 4, 0, 1, 0, -1, 2, 2, 2, 2}
	w := []float32{1, 1, 1, 1}
	wOut := make([]float32, v*d) // (V, D), as torch stores it
	for i := range wOut {
		wOut[i] = float32(i%7-3) / 10
	}
	targets := []int32{2, 0, -1} // the last position is padding

	h, rstd := make([]float32, r*d), make([]float32, r)
	logits, lse := make([]float32, r*v), make([]float32, r)
	if err := ops.RMSNorm(h, rstd, x, w, r, d, 1e-5); err != nil {
		panic(err)
	}
	if err := ops.Linear(logits, h, wOut, nil, r, d, v); err != nil {
		panic(err)
	}
	loss, count, err := ops.CrossEntropy(lse, logits, targets, r, v, -1)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f over %d scored positions\n", loss, count)

	// Backward: dlogits in place, then parameter gradients accumulate into zeroed buffers.
	dwOut, dh, dx, dw := make([]float32, v*d), make([]float32, r*d), make([]float32, r*d), make([]float32, d)
	if err := ops.CrossEntropyBackward(logits, 1, logits, targets, lse, r, v, -1); err != nil {
		panic(err)
	}
	if err := ops.LinearBackward(dh, dwOut, nil, logits, h, wOut, r, d, v); err != nil {
		panic(err)
	}
	if err := ops.RMSNormBackward(dx, dw, dh, x, w, rstd, r, d); err != nil {
		panic(err)
	}
	fmt.Printf("padding row gradient %v\n", dx[2*d:])

	// Sizes are checked before anything runs.
	err = ops.RMSNorm(h, rstd[:2], x, w, r, d, 1e-5)
	fmt.Println(err)
	// Output:
	// loss 1.8608 over 2 scored positions
	// padding row gradient [0 0 0 0]
	// ops.RMSNorm: rstd has length 2, want R = 3 (R=3 D=4)
}
