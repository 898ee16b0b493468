package attention

import (
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

func TestRoPE(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range []struct {
		d    RoPEDims
		pos0 int
	}{{RoPEDims{1, 1, 1, 2}, 0}, {RoPEDims{2, 5, 3, 8}, 7}, {RoPEDims{1, 9, 2, 64}, 100000}, {RoPEDims{1, 3, 1, 6}, 3}} {
		n := c.d.B * c.d.L * c.d.H * c.d.Dh
		x := numtest.Round32(numtest.Normal(r, n, 1))
		want := make([]float64, n)
		if err := RoPERef(want, x, c.pos0, 10000, c.d); err != nil {
			t.Fatal(err)
		}
		got := numtest.F32s(x)
		if err := RoPE(got, got, c.pos0, 10000, c.d); err != nil { // in place
			t.Fatal(err)
		}
		numtest.Check(t, "rope", got, want, numtest.F32.Scaled(2))
		// Backward is the inverse rotation: it undoes the forward.
		back := make([]float32, n)
		if err := RoPEBackward(back, got, c.pos0, 10000, c.d); err != nil {
			t.Fatal(err)
		}
		numtest.Check(t, "inverse", back, x, numtest.F32.Scaled(4))
		// Gradient: the reference's finite differences of Σ out·g against RoPEBackward(g).
		g := numtest.Round32(numtest.Normal(r, n, 1))
		out := make([]float64, n)
		fd := numtest.NumGrad(func() float64 {
			if err := RoPERef(out, x, c.pos0, 10000, c.d); err != nil {
				t.Fatal(err)
			}
			return numtest.Dot(out, g)
		}, x, 1e-5)
		dx := make([]float32, n)
		if err := RoPEBackward(dx, numtest.F32s(g), c.pos0, 10000, c.d); err != nil {
			t.Fatal(err)
		}
		// float32 rotation of a float64 finite difference: both F32 and FD error.
		numtest.Check(t, "grad", dx, fd, numtest.F32.Scaled(2))
	}
}

func TestRoPEBadInput(t *testing.T) {
	f := make([]float32, 12)
	for name, err := range map[string]error{
		"Dh":    RoPE(f, f, 0, 1e4, RoPEDims{1, 2, 2, 3}),
		"out":   RoPE(f[:4], f, 0, 1e4, RoPEDims{1, 3, 2, 2}),
		"x":     RoPEBackward(f, f[:5], 0, 1e4, RoPEDims{1, 3, 2, 2}),
		"theta": RoPE(f, f, 0, 0, RoPEDims{1, 3, 2, 2}),
		"pos0":  RoPE(f, f, -1, 1e4, RoPEDims{1, 3, 2, 2}),
	} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v does not name it", name, err)
		}
	}
}
