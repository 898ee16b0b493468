package numtest

import (
	"math"
	"testing"
)

func TestClose(t *testing.T) {
	tol := Tol{Atol: 1e-3, Rtol: 1e-2}
	cases := []struct {
		got, want float64
		ok        bool
	}{
		{1, 1, true}, {1.0105, 1, true}, {1.012, 1, false}, {0.0009, 0, true}, {0.002, 0, false},
		{math.NaN(), 0, false}, {math.Inf(1), math.Inf(1), false},
	}
	for _, c := range cases {
		if tol.Close(c.got, c.want) != c.ok {
			t.Errorf("Close(%v, %v) = %v", c.got, c.want, !c.ok)
		}
	}
	if s := tol.Scaled(100); s.Atol != 1e-2 || s.Rtol != 1e-1 {
		t.Errorf("Scaled(100) = %+v", s)
	}
}

func TestCompareReportsWorst(t *testing.T) {
	err := Compare([]float32{1, 2, 3.5}, []float64{1, 2, 3}, F32)
	if err == nil {
		t.Fatal("no error for a mismatch")
	}
	if err := Compare([]float32{1, 2}, []float64{1, 2, 3}, F32); err == nil {
		t.Fatal("no error for a length mismatch")
	}
}

func TestNumGrad(t *testing.T) {
	x := []float64{0.3, -1.2}
	f := func() float64 { return x[0]*x[0]*x[1] + math.Sin(x[1]) }
	g := NumGrad(f, x, 1e-5)
	want := []float64{2 * x[0] * x[1], x[0]*x[0] + math.Cos(x[1])}
	Check(t, "grad", g, want, GradTol)
}
