package vmath

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// Each function, as the package runs it (assembly where available) and as the Go version
// element by element, against a float64 definition.
type fn1 struct {
	name string
	vec  func(dst, x []float32)
	one  func(x float32) float32
	ref  func(x float64) (y, scale float64) // scale: magnitude of the terms, for relative error
}

func sig64(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

var unary = []fn1{
	{"Exp", Exp, exp32, func(x float64) (float64, float64) { y := math.Exp(x); return y, y }},
	{"Sigmoid", Sigmoid, sigmoid32, func(x float64) (float64, float64) { y := sig64(x); return y, y }},
	{"SiLU", SiLU, func(x float32) float32 { return x * sigmoid32(x) },
		func(x float64) (float64, float64) { y := x * sig64(x); return y, math.Abs(y) }},
	{"Softplus", Softplus, softplus32, func(x float64) (float64, float64) {
		if x > 20 {
			return x, math.Abs(x)
		}
		y := math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x)))
		return y, y
	}},
}

// tolerance: relative 1e-6 of the scale, and within 2 denormal steps where the scale is denormal.
func close32(got float32, want, scale float64) bool { return close32a(got, want, scale, 1) }

// close32a allows amp denormal steps more (SiLU multiplies a denormal σ(x) by x).
func close32a(got float32, want, scale, amp float64) bool {
	g := float64(got)
	if math.IsNaN(want) {
		return math.IsNaN(g)
	}
	if math.IsInf(want, 0) || math.Abs(want) > math.MaxFloat32 {
		// Rounding at the top of the range: either MaxFloat32 or Inf.
		return math.IsInf(g, int(math.Copysign(1, want))) || math.Abs(g) >= math.MaxFloat32*(1-1e-6)
	}
	if math.Abs(want) > math.MaxFloat32*(1-1e-6) && math.IsInf(g, int(math.Copysign(1, want))) {
		return true
	}
	return math.Abs(g-want) <= 1e-6*scale+3*amp*math.SmallestNonzeroFloat32
}

// inputs: special values, random values over the range the functions vary on, and a stride
// through all float32 bit patterns (the full range, both signs).
func inputs(t *testing.T, stride uint32) []float32 {
	xs := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		88.72, 88.7228, 88.73, 89, 89.1, -87.33, -87.34, -100, -103.97, -103.98, -104, -104.1, -150, 150,
		20, 20.000002, 19.999998, -20, 0.4142135, 1e-8, -1e-8, 1e-30, -1e-30, -1.2784645, 0.5, -0.5}
	r, _ := numtest.Rand(t)
	for range 20000 {
		xs = append(xs, float32(r.Float64()*230-120), float32(r.NormFloat64()*3))
	}
	for b := uint64(0); b < 1<<32; b += uint64(stride) {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	return xs
}

func TestUnaryAccuracy(t *testing.T) {
	xs := inputs(t, 2039)
	got := make([]float32, len(xs))
	for _, f := range unary {
		f.vec(got, xs)
		bad := 0
		worst := 0.0
		for i, x := range xs {
			want, scale := f.ref(float64(x))
			one := f.one(x)
			amp := 1.0
			if f.name == "SiLU" {
				amp = max(1, math.Abs(float64(x)))
			}
			for _, g := range []float32{got[i], one} {
				if !close32a(g, want, scale, amp) {
					if bad++; bad <= 5 {
						t.Errorf("%s(%g) = %g (vec %g, Go %g), want %g", f.name, x, g, got[i], one, want)
					}
				} else if scale > 1e-30 && !math.IsInf(want, 0) && scale < math.MaxFloat32 {
					worst = max(worst, math.Abs(float64(g)-want)/scale)
				}
			}
		}
		// The assembly and the Go version run the same algorithm: they differ by rounding only.
		maxULP := 0
		for i, x := range xs {
			// Where a denormal intermediate (σ below −87) or result has few bits, ulps mean little.
			if g, o := got[i], f.one(x); g != o && !(g != g && o != o) && x > -87 && math.Abs(float64(o)) >= 0x1p-126 {
				maxULP = max(maxULP, ulps(g, o))
			}
		}
		if maxULP > 4 {
			t.Errorf("%s: vector and Go versions differ by %d ulp", f.name, maxULP)
		}
		t.Logf("%s: worst relative error %.3g over %d inputs, vector vs Go %d ulp (asm %v)", f.name, worst, len(xs), maxULP, useAVX2)
	}
}

// ulps is the distance between a and b in units in the last place (same sign assumed; else large).
func ulps(a, b float32) int {
	ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if (ia < 0x80000000) != (ib < 0x80000000) {
		return 1 << 30
	}
	d := ia - ib
	if d < 0 {
		d = -d
	}
	return int(d)
}

func TestSpecialValues(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	cases := []struct {
		name string
		f    func(dst, x []float32)
		x    float32
		want float32
	}{
		{"Exp", Exp, inf, inf}, {"Exp", Exp, -inf, 0}, {"Exp", Exp, 0, 1}, {"Exp", Exp, 100, inf}, {"Exp", Exp, -110, 0},
		{"Exp", Exp, -100, float32(math.Exp(-100))},
		{"Sigmoid", Sigmoid, inf, 1}, {"Sigmoid", Sigmoid, -inf, 0}, {"Sigmoid", Sigmoid, 0, 0.5}, {"Sigmoid", Sigmoid, 200, 1},
		{"SiLU", SiLU, inf, inf}, {"SiLU", SiLU, -inf, float32(math.NaN())}, {"SiLU", SiLU, -200, 0},
		{"Softplus", Softplus, inf, inf}, {"Softplus", Softplus, -inf, 0}, {"Softplus", Softplus, 25, 25},
	}
	for _, c := range cases {
		for n := 1; n <= 17; n += 8 { // Go tail and assembly
			x := make([]float32, n)
			for i := range x {
				x[i] = c.x
			}
			got := make([]float32, n)
			c.f(got, x)
			for _, g := range got {
				same := g == c.want || (g != g && c.want != c.want)
				if !same {
					t.Errorf("%s(%g) = %g, want %g (n=%d)", c.name, c.x, g, c.want, n)
					break
				}
			}
		}
		// NaN propagates.
		x := []float32{nan, nan, nan, nan, nan, nan, nan, nan, nan}
		got := make([]float32, len(x))
		c.f(got, x)
		for _, g := range got {
			if g == g {
				t.Errorf("%s(NaN) = %g", c.name, g)
				break
			}
		}
	}
}

// The vector versions at every length 0..33 and a long one, from unaligned starts, out of place
// and in place, match the Go versions element by element.
func TestLengthsAndAlignment(t *testing.T) {
	r, _ := numtest.Rand(t)
	ns := []int{}
	for n := range 34 {
		ns = append(ns, n)
	}
	ns = append(ns, 1000, 4099)
	for _, n := range ns {
		for off := range 8 {
			buf := randBuf(r, n+off+8)
			x := buf[off : off+n]
			for _, f := range unary {
				got := make([]float32, n+off+1)[off+1 : off+1+n] // a different misalignment
				f.vec(got, x)
				in := append([]float32(nil), x...)
				f.vec(in, in)
				for i, v := range x {
					want, scale := f.ref(float64(v))
					if !close32(got[i], want, scale) || got[i] != in[i] {
						t.Fatalf("%s n=%d off=%d i=%d: x=%g got %g in-place %g want %g", f.name, n, off, i, v, got[i], in[i], want)
					}
				}
			}
			checkBinary(t, r, n, off)
		}
	}
}

func randBuf(r *rand.Rand, n int) []float32 {
	b := make([]float32, n)
	for i := range b {
		b[i] = float32(r.NormFloat64() * 6)
	}
	return b
}

// checkBinary tests the backward functions and SwiGLU at length n, offset off.
func checkBinary(t *testing.T, r *rand.Rand, n, off int) {
	t.Helper()
	x, dout, b := randBuf(r, n+off)[off:], randBuf(r, n+off)[off:], randBuf(r, n+off)[off:]
	dx, db, out := make([]float32, n), make([]float32, n), make([]float32, n)
	SiLUBackward(dx, dout, x)
	SwiGLU(out, x, b)
	da := make([]float32, n)
	SwiGLUBackward(da, db, dout, x, b)
	dsp := make([]float32, n)
	SoftplusBackward(dsp, dout, x)
	for i := range n {
		xv, g, bv := float64(x[i]), float64(dout[i]), float64(b[i])
		s := sig64(xv)
		dsilu, dscale := s*(1+xv*(1-s)), s+math.Abs(xv)*s*(1-s)
		check := func(name string, got float32, want, scale float64) {
			if !close32(got, want, scale) {
				t.Fatalf("%s n=%d off=%d i=%d: got %g want %g", name, n, off, i, got, want)
			}
		}
		check("SiLUBackward", dx[i], g*dsilu, math.Abs(g)*dscale)
		check("SwiGLU", out[i], xv*s*bv, math.Abs(xv*s*bv))
		check("SwiGLUBackward da", da[i], g*bv*dsilu, math.Abs(g*bv)*dscale)
		check("SwiGLUBackward db", db[i], g*xv*s, math.Abs(g*xv*s))
		sp := g * s
		if xv > 20 {
			sp = g
		}
		check("SoftplusBackward", dsp[i], sp, math.Abs(sp))
	}
	acc := randBuf(r, n)
	want := append([]float32(nil), acc...)
	MulAdd(acc, x, b)
	for i := range n {
		w := float64(want[i]) + float64(x[i])*float64(b[i])
		if d := math.Abs(float64(acc[i]) - w); d > 2e-7*(math.Abs(float64(want[i]))+math.Abs(float64(x[i]*b[i]))) {
			t.Fatalf("MulAdd n=%d off=%d i=%d: got %g want %g", n, off, i, acc[i], w)
		}
	}
	// In place: every output may be the slice of an input.
	xc, bc, gc := append([]float32(nil), x...), append([]float32(nil), b...), append([]float32(nil), dout...)
	SwiGLUBackward(xc, bc, gc, xc, bc)
	gc2 := append([]float32(nil), dout...)
	SiLUBackward(gc2, gc2, x)
	xs := append([]float32(nil), x...)
	SwiGLU(xs, xs, b)
	for i := range n {
		if xc[i] != da[i] || bc[i] != db[i] || gc2[i] != dx[i] || xs[i] != out[i] {
			t.Fatalf("in place differs at n=%d i=%d", n, i)
		}
	}
}

func TestBackwardSpecial(t *testing.T) {
	inf := float32(math.Inf(1))
	x := []float32{inf, -inf, 200, -200, 0, 30, 20, -30, inf}
	n := len(x)
	one := make([]float32, n)
	for i := range one {
		one[i] = 1
	}
	dx, da, db := make([]float32, n), make([]float32, n), make([]float32, n)
	SiLUBackward(dx, one, x[:8]) // assembly for 8, Go for the ninth
	SiLUBackward(dx[8:], one[8:], x[8:])
	want := []float32{1, 0, 1, 0, 0.5, 1, float32(sig64(20) * (1 + 20*(1-sig64(20)))), 0, 1}
	for i := range want {
		if math.IsInf(float64(x[i]), 0) {
			continue // x·(1−σ) is Inf·0
		}
		if d := math.Abs(float64(dx[i] - want[i])); d > 1e-6 {
			t.Errorf("SiLUBackward(%g) = %g want %g", x[i], dx[i], want[i])
		}
	}
	SoftplusBackward(dx, one, x)
	for i, v := range x {
		w := float32(sig64(float64(v)))
		if v > 20 {
			w = 1
		}
		if math.Abs(float64(dx[i]-w)) > 1e-7 {
			t.Errorf("SoftplusBackward(%g) = %g want %g", v, dx[i], w)
		}
	}
	SwiGLUBackward(da, db, one, x, one)
	_ = da
}

func BenchmarkVmath(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i)*0.01 - 20
	}
	y, z := make([]float32, len(x)), make([]float32, len(x))
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Exp", func() { Exp(y, x) }},
		{"Sigmoid", func() { Sigmoid(y, x) }},
		{"SiLU", func() { SiLU(y, x) }},
		{"SwiGLUBackward", func() { SwiGLUBackward(y, z, x, x, x) }},
		{"Softplus", func() { Softplus(y, x) }},
		{"expGo", func() {
			for i, v := range x {
				y[i] = exp32(v)
			}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.f()
			}
			b.ReportMetric(float64(b.N*len(x))/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}
