package fmath

import (
	"math"
	"testing"
)

func TestExpAccuracy(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x < 88.5; x += 0.000731 {
		got := float64(Exp(x))
		want := math.Exp(float64(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 3e-7 {
		t.Fatalf("worst relative error %.3g", worst)
	}
	t.Logf("worst relative error %.3g", worst)
	if Exp(-100) != 0 || !math.IsInf(float64(Exp(100)), 1) || Exp(0) != 1 {
		t.Fatal("edge values wrong")
	}
	if nan := Exp(float32(math.NaN())); nan == nan {
		t.Fatal("NaN not propagated")
	}
}

func TestSoftplusSigmoid(t *testing.T) {
	for _, x := range []float32{-30, -5, -0.1, 0, 0.3, 4, 19.9, 20.1, 50} {
		sp := math.Log1p(math.Exp(float64(x)))
		if x > 20 {
			sp = float64(x)
		}
		if d := math.Abs(float64(Softplus(x)) - sp); d > 1e-6*math.Max(1, sp) {
			t.Errorf("Softplus(%v) = %v want %v", x, Softplus(x), sp)
		}
		sg := 1 / (1 + math.Exp(-float64(x)))
		if d := math.Abs(float64(Sigmoid(x)) - sg); d > 1e-7 {
			t.Errorf("Sigmoid(%v) = %v want %v", x, Sigmoid(x), sg)
		}
	}
}

func BenchmarkExp(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i)*0.01 - 20
	}
	var s float32
	for b.Loop() {
		for _, v := range x {
			s += Exp(v)
		}
	}
	b.ReportMetric(float64(b.N*len(x))/b.Elapsed().Seconds()/1e6, "Mexp/s")
	_ = s
}
