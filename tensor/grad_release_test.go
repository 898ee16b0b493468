package tensor_test

import (
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/tensor"
)

// Gradient bookkeeping of the cheap ops (splits with unused and fully used pieces, a tensor added
// to itself, reshapes that hand their gradient over, scaling), where the exact gradient is known,
// over several steps on one tape: buffers released during Backward must not be handed out twice.
func TestGradientRouting(t *testing.T) {
	r, _ := numtest.Rand(t)
	be := cpu.New()
	const rows = 4
	w0, err := tensor.NewParam(be, "w", numtest.F32s(numtest.Normal(r, rows*6, 1)), rows, 6)
	if err != nil {
		t.Fatal(err)
	}
	seed := numtest.F32s(numtest.Normal(r, rows*5, 1))
	tp := tensor.NewTape(be)
	for range 3 {
		tp.Reset()
		w0.ZeroGrad(be)
		x := tp.Scale(w0, 1)                 // an activation
		p := tp.Split(x, 2, 1, 3)            // p[1] unused: its columns get zero
		s := tp.Scale(tp.Add(p[0], p[0]), 3) // 6·p0
		v := tp.Reshape(tp.Reshape(s, 2, rows), rows, 2)
		c := tp.Split(p[2], 2, 1) // both used
		out := tp.Concat(tp.Sub(v, c[0]), tp.Scale(c[1], 0.5), tp.Reshape(tp.Add(p[0], c[0]), rows, 2))
		if err := tp.Err(); err != nil {
			t.Fatal(err)
		}
		if err := tp.Backward(out, seed...); err != nil {
			t.Fatal(err)
		}
		g, _ := kernels.Host(w0.Grad())
		want := make([]float64, rows*6)
		for i := range rows {
			sr := seed[i*5 : i*5+5] // columns of out: 6·p0 − c0 (2), c1/2 (1), p0 + c0 (2)
			for j := range 2 {
				want[i*6+j] = 6*float64(sr[j]) + float64(sr[3+j])  // p0 is w[:, 0:2]
				want[i*6+3+j] = -float64(sr[j]) + float64(sr[3+j]) // c0 is w[:, 3:5]
			}
			want[i*6+2] = 0                    // p1 unused
			want[i*6+5] = 0.5 * float64(sr[2]) // c1 is w[:, 5]
		}
		numtest.Check(t, "dW", g, want, numtest.F32)
	}
}
