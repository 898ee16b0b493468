package selectivescan

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/internal/fmath"
	"github.com/hybridlab/hybrid/internal/numtest"
)

// scanOpts says which optional inputs a test case has.
type scanOpts struct{ z, dskip, bias, h0, softplus, dhLast bool }

func (o scanOpts) String() string {
	var s []string
	for _, f := range []struct {
		on   bool
		name string
	}{{o.z, "z"}, {o.dskip, "D"}, {o.bias, "bias"}, {o.h0, "h0"}, {o.softplus, "softplus"}, {o.dhLast, "dhLast"}} {
		if f.on {
			s = append(s, f.name)
		}
	}
	if len(s) == 0 {
		return "plain"
	}
	return strings.Join(s, "+")
}

var scanAll = scanOpts{true, true, true, true, true, true}

// scanGen draws inputs (float64 values exactly representable in float32) in typical Mamba ranges:
// δ mostly in 0.05–1.3, A in [−2, −0.2].
func scanGen(r *rand.Rand, d ScanDims, o scanOpts) ScanInputs64 {
	bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
	in := ScanInputs64{
		U:        numtest.Round32(numtest.Normal(r, bld, 1)),
		A:        numtest.Round32(numtest.Uniform(r, d.D*d.N, -2, -0.2)),
		Bm:       numtest.Round32(numtest.Normal(r, blgn, 1)),
		Cm:       numtest.Round32(numtest.Normal(r, blgn, 1)),
		Softplus: o.softplus,
	}
	if o.softplus {
		in.Delta = numtest.Round32(numtest.Uniform(r, bld, -3, 1))
	} else {
		in.Delta = numtest.Round32(numtest.Uniform(r, bld, 0.05, 1))
	}
	if o.z {
		in.Z = numtest.Round32(numtest.Normal(r, bld, 1))
	}
	if o.dskip {
		in.Dskip = numtest.Round32(numtest.Normal(r, d.D, 1))
	}
	if o.bias {
		if o.softplus {
			in.DeltaBias = numtest.Round32(numtest.Normal(r, d.D, 0.3))
		} else { // without softplus Δ+bias must stay positive, as in use: a negative step grows h
			in.DeltaBias = numtest.Round32(numtest.Uniform(r, d.D, 0, 0.3))
		}
	}
	if o.h0 {
		in.H0 = numtest.Round32(numtest.Normal(r, d.B*d.D*d.N, 1))
	}
	return in
}

// scanF32 converts, keeping nil as nil.
func scanF32(x []float64) []float32 {
	if x == nil {
		return nil
	}
	return numtest.F32s(x)
}

func scanTo32(in ScanInputs64) ScanInputs {
	return ScanInputs{U: scanF32(in.U), Delta: scanF32(in.Delta), A: scanF32(in.A), Bm: scanF32(in.Bm), Cm: scanF32(in.Cm),
		Dskip: scanF32(in.Dskip), Z: scanF32(in.Z), DeltaBias: scanF32(in.DeltaBias), H0: scanF32(in.H0), Softplus: in.Softplus}
}

// scanCases are awkward sizes: L=1, L not a multiple of the chunk, chunk 1, chunk ≥ L, odd D,
// G=1 and 2, channel counts around the block sizes.
func scanCases() []struct {
	d ScanDims
	o scanOpts
} {
	return []struct {
		d ScanDims
		o scanOpts
	}{
		{ScanDims{B: 1, L: 1, D: 3, N: 4, G: 1, Chunk: 4}, scanAll},
		{ScanDims{B: 2, L: 1, D: 4, N: 2, G: 2, Chunk: 1}, scanOpts{}},
		{ScanDims{B: 2, L: 13, D: 5, N: 3, G: 1, Chunk: 4}, scanAll},
		{ScanDims{B: 1, L: 17, D: 6, N: 5, G: 2, Chunk: 1}, scanOpts{z: true, softplus: true}},
		{ScanDims{B: 3, L: 9, D: 7, N: 16, G: 7, Chunk: 9}, scanOpts{dskip: true, bias: true, h0: true}},
		{ScanDims{B: 1, L: 10, D: 4, N: 8, G: 2, Chunk: 64}, scanOpts{h0: true, dhLast: true}},
		{ScanDims{B: 2, L: 33, D: 66, N: 16, G: 2, Chunk: 8}, scanAll},
		{ScanDims{B: 1, L: 70, D: 129, N: 4, G: 3, Chunk: 16}, scanOpts{z: true, softplus: true, bias: true}},
		{ScanDims{B: 5, L: 65, D: 9, N: 1, G: 1, Chunk: 64}, scanAll},
	}
}

func scanName(d ScanDims, o scanOpts) string {
	return fmt.Sprintf("B=%d/L=%d/D=%d/N=%d/G=%d/Q=%d/%v", d.B, d.L, d.D, d.N, d.G, d.Chunk, o)
}

// scanTol is the tolerance of a float32 scan against the float64 reference: errors accumulate
// along the recurrence (L steps) and over the N-term output sum.
func scanTol(d ScanDims) numtest.Tol { return numtest.F32.Scaled(d.L * d.N) }

func TestScanForwardMatchesRef(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range scanCases() {
		t.Run(scanName(c.d, c.o), func(t *testing.T) {
			d := c.d
			in := scanGen(r, d, c.o)
			want, wantH := make([]float64, d.B*d.L*d.D), make([]float64, d.B*d.D*d.N)
			if err := ScanRef(want, wantH, in, d); err != nil {
				t.Fatal(err)
			}
			in32 := scanTo32(in)
			out, hLast := make([]float32, len(want)), make([]float32, len(wantH))
			saved := make([]float32, ScanSavedLen(d))
			if err := ScanForward(out, hLast, saved, in32, d); err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "out", out, want, scanTol(d))
			numtest.Check(t, "hLast", hLast, wantH, scanTol(d))
			// Inference path (no saved states, no final state) gives the same output.
			out2 := make([]float32, len(want))
			if err := ScanForward(out2, nil, nil, in32, d); err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "out without saved", out2, numtest.F64s(out), numtest.Tol{})
		})
	}
}

// scanLoss is Σ out·r + Σ hLast·rh from the reference.
func scanLoss(in ScanInputs64, d ScanDims, rOut, rH []float64) float64 {
	out, h := make([]float64, d.B*d.L*d.D), make([]float64, d.B*d.D*d.N)
	if err := ScanRef(out, h, in, d); err != nil {
		panic(err)
	}
	l := numtest.Dot(out, rOut)
	if rH != nil {
		l += numtest.Dot(h, rH)
	}
	return l
}

// scanRefGrads runs the reference backward with every gradient wanted that the inputs allow.
func scanRefGrads(t *testing.T, in ScanInputs64, d ScanDims, dout, dhLast []float64) ScanGrads64 {
	t.Helper()
	bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
	g := ScanGrads64{DU: make([]float64, bld), DDelta: make([]float64, bld), DA: make([]float64, d.D*d.N),
		DBm: make([]float64, blgn), DCm: make([]float64, blgn), DDeltaBias: make([]float64, d.D), DH0: make([]float64, d.B*d.D*d.N)}
	if in.Dskip != nil {
		g.DDskip = make([]float64, d.D)
	}
	if in.Z != nil {
		g.DZ = make([]float64, bld)
	}
	if err := ScanRefBackward(g, dout, dhLast, in, d); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestScanRefBackwardFiniteDifferences(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range []struct {
		d ScanDims
		o scanOpts
	}{
		{ScanDims{B: 2, L: 5, D: 4, N: 3, G: 2}, scanAll},
		{ScanDims{B: 1, L: 4, D: 3, N: 2, G: 1}, scanOpts{}},
		{ScanDims{B: 1, L: 3, D: 2, N: 2, G: 2}, scanOpts{z: true, bias: true}},
	} {
		t.Run(scanName(c.d, c.o), func(t *testing.T) {
			d := c.d
			in := scanGen(r, d, c.o)
			rOut := numtest.Normal(r, d.B*d.L*d.D, 1)
			var rH []float64
			if c.o.dhLast {
				rH = numtest.Normal(r, d.B*d.D*d.N, 1)
			}
			g := scanRefGrads(t, in, d, rOut, rH)
			f := func() float64 { return scanLoss(in, d, rOut, rH) }
			for _, p := range []struct {
				name string
				x    []float64
				g    []float64
			}{
				{"dU", in.U, g.DU}, {"dDelta", in.Delta, g.DDelta}, {"dA", in.A, g.DA}, {"dBm", in.Bm, g.DBm},
				{"dCm", in.Cm, g.DCm}, {"dDskip", in.Dskip, g.DDskip}, {"dZ", in.Z, g.DZ},
				{"dDeltaBias", in.DeltaBias, g.DDeltaBias}, {"dH0", in.H0, g.DH0},
			} {
				if p.x == nil {
					continue
				}
				numtest.Check(t, p.name, p.g, numtest.NumGrad(f, p.x, 1e-5), numtest.GradTol)
			}
			if in.H0 == nil { // dH0 is still defined: the gradient of a zero initial state
				in.H0 = make([]float64, d.B*d.D*d.N)
				numtest.Check(t, "dH0 (zero H0)", g.DH0, numtest.NumGrad(f, in.H0, 1e-5), numtest.GradTol)
			}
		})
	}
}

// scanNaNs returns n NaNs: assigned gradients must overwrite every element.
func scanNaNs(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.NaN())
	}
	return x
}

func TestScanBackwardMatchesRef(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range scanCases() {
		t.Run(scanName(c.d, c.o), func(t *testing.T) {
			d := c.d
			in := scanGen(r, d, c.o)
			in32 := scanTo32(in)
			bld, blgn, bdn := d.B*d.L*d.D, d.B*d.L*d.G*d.N, d.B*d.D*d.N
			dout := numtest.Round32(numtest.Normal(r, bld, 1))
			var dhLast []float64
			if c.o.dhLast {
				dhLast = numtest.Round32(numtest.Normal(r, bdn, 1))
			}
			want := scanRefGrads(t, in, d, dout, dhLast)
			// Parameter gradients accumulate: start them at a known value in both.
			acc := numtest.Round32(numtest.Normal(r, d.D*d.N+2*d.D, 1))
			want64 := func(x []float64, a []float64) []float64 {
				y := make([]float64, len(x))
				for i := range x {
					y[i] = x[i] + a[i]
				}
				return y
			}
			saved := make([]float32, ScanSavedLen(d))
			out := make([]float32, bld)
			if err := ScanForward(out, nil, saved, in32, d); err != nil {
				t.Fatal(err)
			}
			g := ScanGrads{DU: scanNaNs(bld), DDelta: scanNaNs(bld), DBm: scanNaNs(blgn), DCm: scanNaNs(blgn), DH0: scanNaNs(bdn),
				DA: numtest.F32s(acc[:d.D*d.N]), DDeltaBias: numtest.F32s(acc[d.D*d.N : d.D*d.N+d.D])}
			if in.Z != nil {
				g.DZ = scanNaNs(bld)
			}
			if in.Dskip != nil {
				g.DDskip = numtest.F32s(acc[d.D*d.N+d.D:])
			}
			if err := ScanBackward(g, numtest.F32s(dout), scanF32(dhLast), in32, saved, d); err != nil {
				t.Fatal(err)
			}
			tol := scanTol(d)
			// Parameter gradients sum B·L tokens of N-term products.
			tolT := numtest.F32.Scaled(d.B * d.L * d.N)
			numtest.Check(t, "dU", g.DU, want.DU, tol)
			numtest.Check(t, "dDelta", g.DDelta, want.DDelta, tol)
			numtest.Check(t, "dZ", g.DZ, want.DZ, tol)
			numtest.Check(t, "dH0", g.DH0, want.DH0, tol)
			numtest.Check(t, "dBm", g.DBm, want.DBm, tol.Times(math.Sqrt(float64(d.D/d.G)))) // sum over the group's channels
			numtest.Check(t, "dCm", g.DCm, want.DCm, tol.Times(math.Sqrt(float64(d.D/d.G))))
			numtest.Check(t, "dA", g.DA, want64(want.DA, acc[:d.D*d.N]), tolT)
			numtest.Check(t, "dDeltaBias", g.DDeltaBias, want64(want.DDeltaBias, acc[d.D*d.N:d.D*d.N+d.D]), tolT)
			if in.Dskip != nil {
				numtest.Check(t, "dDskip", g.DDskip, want64(want.DDskip, acc[d.D*d.N+d.D:]), tolT)
			}
		})
	}
}

// TestScanBackwardPartialGrads asks for a few gradients only and checks inputs are left unchanged.
func TestScanBackwardPartialGrads(t *testing.T) {
	r, _ := numtest.Rand(t)
	d := ScanDims{B: 2, L: 11, D: 6, N: 4, G: 3, Chunk: 4}
	in := scanGen(r, d, scanAll)
	in32 := scanTo32(in)
	dout := numtest.Round32(numtest.Normal(r, d.B*d.L*d.D, 1))
	want := scanRefGrads(t, in, d, dout, nil)
	saved := make([]float32, ScanSavedLen(d))
	if err := ScanForward(make([]float32, d.B*d.L*d.D), nil, saved, in32, d); err != nil {
		t.Fatal(err)
	}
	keep := scanTo32(in)
	savedKeep := append([]float32(nil), saved...)
	g := ScanGrads{DDelta: make([]float32, d.B*d.L*d.D), DCm: make([]float32, d.B*d.L*d.G*d.N)}
	if err := ScanBackward(g, numtest.F32s(dout), nil, in32, saved, d); err != nil {
		t.Fatal(err)
	}
	numtest.Check(t, "dDelta", g.DDelta, want.DDelta, scanTol(d))
	numtest.Check(t, "dCm", g.DCm, want.DCm, scanTol(d).Times(math.Sqrt(2)))
	for _, p := range [][2][]float32{{in32.U, keep.U}, {in32.Delta, keep.Delta}, {in32.A, keep.A}, {in32.Bm, keep.Bm},
		{in32.Cm, keep.Cm}, {in32.Z, keep.Z}, {in32.H0, keep.H0}, {saved, savedKeep}} {
		numtest.Check(t, "input unchanged", p[0], numtest.F64s(p[1]), numtest.Tol{})
	}
}

// scanTokens copies tokens [t0, t1) of x (B, L, W) into (B, t1−t0, W).
func scanTokens(x []float32, B, L, W, t0, t1 int) []float32 {
	if x == nil {
		return nil
	}
	y := make([]float32, 0, B*(t1-t0)*W)
	for b := range B {
		y = append(y, x[(b*L+t0)*W:(b*L+t1)*W]...)
	}
	return y
}

// TestScanStepContinuation: forward over L equals forward over L−k then k decode steps.
func TestScanStepContinuation(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range []struct {
		d ScanDims
		k int
		o scanOpts
	}{
		{ScanDims{B: 2, L: 12, D: 6, N: 4, G: 2, Chunk: 5}, 3, scanAll},
		{ScanDims{B: 1, L: 5, D: 3, N: 2, G: 1, Chunk: 2}, 5, scanOpts{}},
		{ScanDims{B: 3, L: 40, D: 70, N: 16, G: 1, Chunk: 64}, 1, scanOpts{z: true, softplus: true}},
	} {
		t.Run(fmt.Sprintf("%s/k=%d", scanName(c.d, c.o), c.k), func(t *testing.T) {
			d := c.d
			in := scanTo32(scanGen(r, d, c.o))
			B, L, D, N, G := d.B, d.L, d.D, d.N, d.G
			out, hLast := make([]float32, B*L*D), make([]float32, B*D*N)
			if err := ScanForward(out, hLast, nil, in, d); err != nil {
				t.Fatal(err)
			}
			dp := d
			dp.L = L - c.k
			state := make([]float32, B*D*N)
			if dp.L > 0 {
				pre := in
				pre.U, pre.Delta, pre.Z = scanTokens(in.U, B, L, D, 0, dp.L), scanTokens(in.Delta, B, L, D, 0, dp.L), scanTokens(in.Z, B, L, D, 0, dp.L)
				pre.Bm, pre.Cm = scanTokens(in.Bm, B, L, G*N, 0, dp.L), scanTokens(in.Cm, B, L, G*N, 0, dp.L)
				if err := ScanForward(make([]float32, B*dp.L*D), state, nil, pre, dp); err != nil {
					t.Fatal(err)
				}
			} else if in.H0 != nil {
				copy(state, in.H0)
			}
			got, want := make([]float32, 0, B*c.k*D), make([]float32, 0, B*c.k*D)
			ys := make([][]float32, c.k)
			for i := range c.k {
				tk := dp.L + i
				ys[i] = make([]float32, B*D)
				if err := ScanStep(state, ys[i], scanTokens(in.U, B, L, D, tk, tk+1), scanTokens(in.Delta, B, L, D, tk, tk+1),
					scanTokens(in.Bm, B, L, G*N, tk, tk+1), scanTokens(in.Cm, B, L, G*N, tk, tk+1),
					scanTokens(in.Z, B, L, D, tk, tk+1), in, d); err != nil {
					t.Fatal(err)
				}
			}
			for b := range B {
				for i := range c.k {
					got = append(got, ys[i][b*D:(b+1)*D]...)
				}
				want = append(want, out[(b*L+dp.L)*D:(b*L+L)*D]...)
			}
			// Same float32 operations in the same order: equal up to rounding of the block split.
			numtest.Check(t, "step outputs", got, numtest.F64s(want), numtest.F32)
			numtest.Check(t, "step state", state, numtest.F64s(hLast), numtest.F32)
		})
	}
}

// TestScanLongLargeDelta: a long sequence with huge steps and strongly negative A stays finite
// (decays underflow to zero without NaN) and matches the reference.
func TestScanLongLargeDelta(t *testing.T) {
	r, _ := numtest.Rand(t)
	d := ScanDims{B: 1, L: 16384, D: 4, N: 4, G: 2, Chunk: ScanDefaultChunk}
	in := scanGen(r, d, scanAll)
	in.Delta = numtest.Round32(numtest.Uniform(r, d.B*d.L*d.D, -5, 30))
	in.A = numtest.Round32(numtest.Uniform(r, d.D*d.N, -50, -0.01))
	in32 := scanTo32(in)
	want, wantH := make([]float64, d.B*d.L*d.D), make([]float64, d.B*d.D*d.N)
	if err := ScanRef(want, wantH, in, d); err != nil {
		t.Fatal(err)
	}
	out, hLast, saved := make([]float32, len(want)), make([]float32, len(wantH)), make([]float32, ScanSavedLen(d))
	if err := ScanForward(out, hLast, saved, in32, d); err != nil {
		t.Fatal(err)
	}
	// States do not accumulate over more than a few tokens here (large δ forgets): N terms.
	tol := numtest.F32.Scaled(d.N * 64)
	numtest.Check(t, "out", out, want, tol)
	numtest.Check(t, "hLast", hLast, wantH, tol)
	dout := numtest.Round32(numtest.Normal(r, len(want), 1))
	g := ScanGrads{DU: make([]float32, len(out)), DDelta: make([]float32, len(out)), DA: make([]float32, d.D*d.N),
		DBm: make([]float32, d.B*d.L*d.G*d.N), DCm: make([]float32, d.B*d.L*d.G*d.N), DDskip: make([]float32, d.D),
		DZ: make([]float32, len(out)), DDeltaBias: make([]float32, d.D), DH0: make([]float32, d.B*d.D*d.N)}
	if err := ScanBackward(g, numtest.F32s(dout), nil, in32, saved, d); err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string][]float32{"dU": g.DU, "dDelta": g.DDelta, "dA": g.DA, "dBm": g.DBm, "dCm": g.DCm,
		"dDskip": g.DDskip, "dZ": g.DZ, "dDeltaBias": g.DDeltaBias, "dH0": g.DH0} {
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s[%d] = %v", name, i, v)
			}
		}
	}
	wg := scanRefGrads(t, in, d, dout, nil)
	numtest.Check(t, "dU", g.DU, wg.DU, tol)
	numtest.Check(t, "dDelta", g.DDelta, wg.DDelta, tol)
	// Parameter gradients sum 16384 tokens.
	numtest.Check(t, "dA", g.DA, wg.DA, tol.Times(math.Sqrt(float64(d.L))))
}

func TestScanBadInputs(t *testing.T) {
	d := ScanDims{B: 1, L: 3, D: 4, N: 2, G: 2, Chunk: 2}
	mk := func() ScanInputs {
		return ScanInputs{U: make([]float32, 12), Delta: make([]float32, 12), A: make([]float32, 8),
			Bm: make([]float32, 12), Cm: make([]float32, 12)}
	}
	fwd := func(in ScanInputs, d ScanDims, out, saved []float32) error {
		return ScanForward(out, nil, saved, in, d)
	}
	out := make([]float32, 12)
	saved := make([]float32, ScanSavedLen(d))
	cases := []struct {
		name, want string
		err        error
	}{
		{"zero B", "sizes", fwd(mk(), ScanDims{B: 0, L: 3, D: 4, N: 2, G: 2, Chunk: 2}, out, nil)},
		{"negative N", "sizes", fwd(mk(), ScanDims{B: 1, L: 3, D: 4, N: -2, G: 2, Chunk: 2}, out, nil)},
		{"G does not divide D", "divisible", fwd(mk(), ScanDims{B: 1, L: 3, D: 4, N: 2, G: 3, Chunk: 2}, out, nil)},
		{"no chunk with saved", "Chunk", fwd(mk(), ScanDims{B: 1, L: 3, D: 4, N: 2, G: 2}, out, saved)},
		{"short U", "U has length", func() error { in := mk(); in.U = in.U[:11]; return fwd(in, d, out, nil) }()},
		{"long Bm", "Bm has length", func() error { in := mk(); in.Bm = make([]float32, 13); return fwd(in, d, out, nil) }()},
		{"short A", "A has length", func() error { in := mk(); in.A = in.A[:7]; return fwd(in, d, out, nil) }()},
		{"bad Z", "Z has length", func() error { in := mk(); in.Z = make([]float32, 3); return fwd(in, d, out, nil) }()},
		{"bad H0", "H0 has length", func() error { in := mk(); in.H0 = make([]float32, 3); return fwd(in, d, out, nil) }()},
		{"bad Dskip", "Dskip has length", func() error { in := mk(); in.Dskip = make([]float32, 5); return fwd(in, d, out, nil) }()},
		{"bad bias", "DeltaBias has length", func() error { in := mk(); in.DeltaBias = make([]float32, 1); return fwd(in, d, out, nil) }()},
		{"short out", "out has length", fwd(mk(), d, out[:5], nil)},
		{"bad saved", "saved has length", fwd(mk(), d, out, saved[:1])},
		{"bad hLast", "hLast has length", ScanForward(out, make([]float32, 3), nil, mk(), d)},
		{"backward no saved", "saved has length", ScanBackward(ScanGrads{}, out, nil, mk(), nil, d)},
		{"backward bad dout", "dout has length", ScanBackward(ScanGrads{}, out[:3], nil, mk(), saved, d)},
		{"backward bad DA", "DA has length", ScanBackward(ScanGrads{DA: make([]float32, 3)}, out, nil, mk(), saved, d)},
		{"backward bad DBm", "DBm has length", ScanBackward(ScanGrads{DBm: make([]float32, 3)}, out, nil, mk(), saved, d)},
		{"backward bad dhLast", "dhLast has length", ScanBackward(ScanGrads{}, out, make([]float32, 1), mk(), saved, d)},
		{"backward DZ without Z", "DZ", ScanBackward(ScanGrads{DZ: make([]float32, 12)}, out, nil, mk(), saved, d)},
		{"backward zero chunk", "Chunk", ScanBackward(ScanGrads{}, out, nil, mk(), saved, ScanDims{B: 1, L: 3, D: 4, N: 2, G: 2})},
		{"step bad state", "state has length", ScanStep(make([]float32, 3), make([]float32, 4), make([]float32, 4), make([]float32, 4), make([]float32, 4), make([]float32, 4), nil, mk(), d)},
		{"step bad bm", "bm has length", ScanStep(make([]float32, 8), make([]float32, 4), make([]float32, 4), make([]float32, 4), make([]float32, 3), make([]float32, 4), nil, mk(), d)},
		{"step bad y", "y has length", ScanStep(make([]float32, 8), make([]float32, 5), make([]float32, 4), make([]float32, 4), make([]float32, 4), make([]float32, 4), nil, mk(), d)},
		{"ref bad U", "U has length", ScanRef(make([]float64, 12), nil, ScanInputs64{U: make([]float64, 2)}, d)},
		{"ref backward bad dout", "dout has length", ScanRefBackward(ScanGrads64{}, make([]float64, 1), nil,
			ScanInputs64{U: make([]float64, 12), Delta: make([]float64, 12), A: make([]float64, 8), Bm: make([]float64, 12), Cm: make([]float64, 12)}, d)},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(c.err.Error(), c.want) || !strings.HasPrefix(c.err.Error(), "selectivescan.") {
			t.Errorf("%s: error %q does not mention %q", c.name, c.err, c.want)
		}
	}
	if ScanSavedLen(ScanDims{B: 1, L: 3, D: 4, N: 2, G: 2}) != 0 {
		t.Error("ScanSavedLen of dims without a chunk is not 0")
	}
	if got := ScanSavedLen(ScanDims{B: 2, L: 5, D: 3, N: 4, G: 1, Chunk: 2}); got != 2*3*3*4 {
		t.Errorf("ScanSavedLen = %d, want %d", got, 2*3*3*4)
	}
}

// ---- golden vectors from PyTorch (testdata/gen_golden_scan.py) ----

type scanTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

type scanGolden struct {
	Shapes  map[string]any        `json:"shapes"`
	Tensors map[string]scanTensor `json:"tensors"`
}

func scanLoadGolden(t *testing.T, pattern string) map[string]scanGolden {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files %s (run testdata/gen_golden_scan.py): %v", pattern, err)
	}
	gs := make(map[string]scanGolden)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var g scanGolden
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		gs[filepath.Base(f)] = g
	}
	return gs
}

// get returns a tensor's data, or nil when the file does not have it.
func (g scanGolden) get(name string) []float64 {
	if x, ok := g.Tensors[name]; ok {
		return x.Data
	}
	return nil
}

func (g scanGolden) int(name string) int {
	v, _ := g.Shapes[name].(float64)
	return int(v)
}

func (g scanGolden) flag(name string) bool {
	v, _ := g.Shapes[name].(bool)
	return v
}

func TestScanGolden(t *testing.T) {
	for name, gd := range scanLoadGolden(t, "golden_scan*.json") {
		t.Run(name, func(t *testing.T) {
			d := ScanDims{B: gd.int("B"), L: gd.int("L"), D: gd.int("D"), N: gd.int("N"), G: gd.int("G"), Chunk: gd.int("chunk")}
			in := ScanInputs64{U: gd.get("u"), Delta: gd.get("delta"), A: gd.get("A"), Bm: gd.get("Bm"), Cm: gd.get("Cm"),
				Dskip: gd.get("Dskip"), Z: gd.get("z"), DeltaBias: gd.get("delta_bias"), H0: gd.get("h0"), Softplus: gd.flag("softplus")}
			dout, dhLast := gd.get("dout"), gd.get("dhlast")
			// The reference against torch: float64 both, different code.
			out, h := make([]float64, d.B*d.L*d.D), make([]float64, d.B*d.D*d.N)
			if err := ScanRef(out, h, in, d); err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "ref out", out, gd.get("out"), numtest.F64)
			numtest.Check(t, "ref hLast", h, gd.get("hlast"), numtest.F64)
			gr := scanRefGrads(t, in, d, dout, dhLast)
			// The fast kernel against torch.
			in32 := scanTo32(in)
			out32, h32, saved := make([]float32, len(out)), make([]float32, len(h)), make([]float32, ScanSavedLen(d))
			if err := ScanForward(out32, h32, saved, in32, d); err != nil {
				t.Fatal(err)
			}
			// Inputs were rounded to float32 for the fast kernel only: allow that rounding (×4).
			tol := scanTol(d).Times(4)
			numtest.Check(t, "out", out32, gd.get("out"), tol)
			numtest.Check(t, "hLast", h32, gd.get("hlast"), tol)
			g := ScanGrads{DU: make([]float32, len(out)), DDelta: make([]float32, len(out)), DA: make([]float32, d.D*d.N),
				DBm: make([]float32, len(in.Bm)), DCm: make([]float32, len(in.Cm)), DH0: make([]float32, len(h))}
			if in.Z != nil {
				g.DZ = make([]float32, len(out))
			}
			if in.Dskip != nil {
				g.DDskip = make([]float32, d.D)
			}
			if in.DeltaBias != nil {
				g.DDeltaBias = make([]float32, d.D)
			}
			if err := ScanBackward(g, scanF32(dout), scanF32(dhLast), in32, saved, d); err != nil {
				t.Fatal(err)
			}
			tolT := numtest.F32.Scaled(d.B * d.L * d.N).Times(4)
			for _, c := range []struct {
				name   string
				ref    []float64
				fast   []float32
				tol    numtest.Tol
				golden string
			}{
				{"dU", gr.DU, g.DU, tol, "du"}, {"dDelta", gr.DDelta, g.DDelta, tol, "ddelta"}, {"dA", gr.DA, g.DA, tolT, "dA"},
				{"dBm", gr.DBm, g.DBm, tol.Times(math.Sqrt(float64(d.D / d.G))), "dBm"},
				{"dCm", gr.DCm, g.DCm, tol.Times(math.Sqrt(float64(d.D / d.G))), "dCm"},
				{"dDskip", gr.DDskip, g.DDskip, tolT, "dDskip"}, {"dZ", gr.DZ, g.DZ, tol, "dz"},
				{"dDeltaBias", gr.DDeltaBias, g.DDeltaBias, tolT, "ddelta_bias"}, {"dH0", gr.DH0, g.DH0, tol, "dh0"},
			} {
				want := gd.get(c.golden)
				if want == nil {
					continue
				}
				numtest.Check(t, "ref "+c.name, c.ref, want, numtest.F64)
				numtest.Check(t, c.name, c.fast, want, c.tol)
			}
		})
	}
}

func ExampleScanForward() {
	// One channel, one state: h_t = exp(δ·A)·h_{t−1} + δ·u_t·B, y = h·C; δ = 1, A = −ln 2 halves h.
	d := ScanDims{B: 1, L: 4, D: 1, N: 1, G: 1, Chunk: ScanDefaultChunk}
	in := ScanInputs{
		U:     []float32{1, 0, 0, 1},
		Delta: []float32{1, 1, 1, 1},
		A:     []float32{-0.6931472},
		Bm:    []float32{1, 1, 1, 1},
		Cm:    []float32{1, 1, 1, 1},
	}
	out, hLast := make([]float32, 4), make([]float32, 1)
	saved := make([]float32, ScanSavedLen(d)) // for ScanBackward; nil for inference
	if err := ScanForward(out, hLast, saved, in, d); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%.4f %.4f\n", out, hLast)
	// Output: [1.0000 0.5000 0.2500 1.1250] [1.1250]
}

// TestScanExp checks the kernels' exponential against math.Exp and fmath.Exp (the project's
// scalar one) over the float32 range, including saturation and NaN. Its error is that of
// rounding the argument once more (|x|·6e-8, the conditioning of exp) plus 2e-7.
func TestScanExp(t *testing.T) {
	const n = 100001
	x := make([]float32, n)
	for i := range x {
		x[i] = -87.3 + 175.3*float32(i)/(n-1)
	}
	y := make([]float32, n)
	scanExpScaled(y, x, 1)
	bad := 0
	for i, v := range x {
		tol := 2e-7 + 1.2e-7*math.Abs(float64(v))
		e1 := math.Abs(float64(y[i])/math.Exp(float64(v)) - 1)
		e2 := math.Abs(float64(y[i])/float64(fmath.Exp(v)) - 1)
		if e1 > tol || e2 > tol+3e-7 {
			if bad++; bad <= 4 {
				t.Errorf("exp(%g) = %g, want %g (fmath %g)", v, y[i], math.Exp(float64(v)), fmath.Exp(v))
			}
		}
	}
	special := []float32{-1e30, -1000, 1000, float32(math.NaN()), 0}
	scanExpScaled(special, special, 1)
	if special[0] > 2e-38 || special[1] > 2e-38 || special[0] < 0 || float64(special[2]) < 1e38 ||
		!math.IsNaN(float64(special[3])) || special[4] != 1 {
		t.Errorf("saturation/NaN: got %v", special)
	}
}
