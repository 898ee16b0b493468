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

	"github.com/hybridlab/hybrid/internal/numtest"
)

// ssdCase is a random SSD problem in float32 and the same values in float64.
type ssdCase struct {
	d    SSDDims
	in   SSDInputs
	in64 SSDInputs64
}

type ssdOpts struct {
	bias, skip, h0 bool
	dtMean         float64 // mean of the raw Dt
	aLo, aHi       float64 // A_h = −U(aLo, aHi)
	bigHeads       bool    // make every other head decay hard (A = −30): the direct path
}

var ssdAll = ssdOpts{bias: true, skip: true, h0: true, dtMean: -1, aLo: 0.3, aHi: 2}

func ssdNewCase(r *rand.Rand, d SSDDims, o ssdOpts) ssdCase {
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	f := func(n int, mean, s float64) []float64 {
		v := numtest.Normal(r, n, s)
		for i := range v {
			v[i] += mean
		}
		return numtest.Round32(v)
	}
	var in SSDInputs64
	in.X = f(B*L*H*P, 0, 1)
	in.Dt = f(B*L*H, o.dtMean, 0.7)
	in.A = numtest.Round32(numtest.Uniform(r, H, -o.aHi, -o.aLo))
	if o.bigHeads {
		for h := 0; h < H; h += 2 {
			in.A[h] = -30
		}
	}
	in.Bm = f(B*L*G*N, 0, 1)
	in.Cm = f(B*L*G*N, 0, 1)
	if o.bias {
		in.DtBias = f(H, 0, 0.5)
	}
	if o.skip {
		in.Dskip = f(H, 0, 1)
	}
	if o.h0 {
		in.H0 = f(B*H*P*N, 0, 1)
	}
	c := ssdCase{d: d, in64: in}
	conv := func(x []float64) []float32 {
		if x == nil {
			return nil
		}
		return numtest.F32s(x)
	}
	c.in = SSDInputs{X: conv(in.X), Dt: conv(in.Dt), DtBias: conv(in.DtBias), A: conv(in.A), Bm: conv(in.Bm),
		Cm: conv(in.Cm), Dskip: conv(in.Dskip), H0: conv(in.H0)}
	return c
}

func (d SSDDims) String() string {
	return fmt.Sprintf("B=%d/L=%d/H=%d/P=%d/G=%d/N=%d/Q=%d", d.B, d.L, d.H, d.P, d.G, d.N, d.Chunk)
}

// ssdCheckAgainstRef runs the fast forward and backward and the float64 reference on c and
// compares outputs, final state and every gradient.
func ssdCheckAgainstRef(t *testing.T, r *rand.Rand, c ssdCase) {
	t.Helper()
	d := c.d
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	y := make([]float32, B*L*H*P)
	hl := make([]float32, B*H*P*N)
	saved := make([]float32, SSDSavedLen(d))
	if err := SSDForward(y, hl, saved, c.in, d); err != nil {
		t.Fatal(err)
	}
	y64 := make([]float64, len(y))
	hl64 := make([]float64, len(hl))
	if err := SSDRef(y64, hl64, c.in64, d); err != nil {
		t.Fatal(err)
	}
	// Each output sums N products per token over the tokens the decay lets through.
	tol := numtest.F32.Scaled(L * N)
	numtest.Check(t, d.String()+" y", y, y64, tol)
	numtest.Check(t, d.String()+" hLast", hl, hl64, tol)

	dy64 := numtest.Round32(numtest.Normal(r, len(y), 1))
	dh64 := numtest.Round32(numtest.Normal(r, len(hl), 1))
	var g64 SSDGrads64
	g64.DX, g64.DDt, g64.DBm, g64.DCm, g64.DH0 = make([]float64, B*L*H*P), make([]float64, B*L*H), make([]float64, B*L*G*N), make([]float64, B*L*G*N), make([]float64, B*H*P*N)
	g64.DDtBias, g64.DA, g64.DDskip = make([]float64, H), make([]float64, H), make([]float64, H)
	if err := SSDRefBackward(g64, dy64, dh64, c.in64, d); err != nil {
		t.Fatal(err)
	}
	var g SSDGrads
	g.DX, g.DDt, g.DBm, g.DCm, g.DH0 = make([]float32, B*L*H*P), make([]float32, B*L*H), make([]float32, B*L*G*N), make([]float32, B*L*G*N), make([]float32, B*H*P*N)
	// Parameter gradients accumulate: start them at 1 and subtract it again.
	g.DDtBias, g.DA, g.DDskip = ssdOnes(H), ssdOnes(H), ssdOnes(H)
	for _, s := range [][]float32{g.DX, g.DDt, g.DBm, g.DCm, g.DH0} { // assigned: garbage must vanish
		for i := range s {
			s[i] = 7
		}
	}
	if err := SSDBackward(g, numtest.F32s(dy64), numtest.F32s(dh64), c.in, saved, d); err != nil {
		t.Fatal(err)
	}
	for _, s := range [][]float32{g.DDtBias, g.DA, g.DDskip} {
		for i := range s {
			s[i]--
		}
	}
	hpg := H / G
	numtest.Check(t, d.String()+" dX", g.DX, g64.DX, numtest.F32.Scaled(L*N))
	numtest.Check(t, d.String()+" dH0", g.DH0, g64.DH0, numtest.F32.Scaled(L*N))
	numtest.Check(t, d.String()+" dB", g.DBm, g64.DBm, numtest.F32.Scaled(L*hpg*P))
	numtest.Check(t, d.String()+" dC", g.DCm, g64.DCm, numtest.F32.Scaled(L*hpg*P))
	numtest.Check(t, d.String()+" dDt", g.DDt, g64.DDt, numtest.F32.Scaled(L*P*N))
	numtest.Check(t, d.String()+" dDtBias", g.DDtBias, g64.DDtBias, numtest.F32.Scaled(B*L*P*N))
	numtest.Check(t, d.String()+" dA", g.DA, g64.DA, numtest.F32.Scaled(B*L*P*N))
	numtest.Check(t, d.String()+" dDskip", g.DDskip, g64.DDskip, numtest.F32.Scaled(B*L*P))
}

func ssdOnes(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

func TestSSDMatchesRef(t *testing.T) {
	r, _ := numtest.Rand(t)
	cases := []SSDDims{
		{B: 1, L: 1, H: 1, P: 1, G: 1, N: 1, Chunk: 4},     // length 1
		{B: 2, L: 7, H: 3, P: 3, G: 1, N: 5, Chunk: 8},     // Q = L+1
		{B: 1, L: 9, H: 3, P: 5, G: 3, N: 3, Chunk: 8},     // Q = L−1, G = H
		{B: 2, L: 16, H: 4, P: 3, G: 2, N: 5, Chunk: 8},    // L a multiple of Q, G between
		{B: 1, L: 23, H: 5, P: 7, G: 1, N: 3, Chunk: 8},    // L not a multiple, odd H
		{B: 1, L: 11, H: 2, P: 3, G: 1, N: 3, Chunk: 1},    // Q = 1
		{B: 1, L: 13, H: 6, P: 5, G: 3, N: 7, Chunk: 64},   // Q ≫ L
		{B: 3, L: 40, H: 6, P: 9, G: 2, N: 11, Chunk: 16},  // several chunks, heads split across tasks or not
		{B: 1, L: 70, H: 4, P: 16, G: 1, N: 16, Chunk: 32}, // B·G below the worker count: heads split
	}
	for _, d := range cases {
		for _, o := range []struct {
			name string
			o    ssdOpts
		}{
			{"all", ssdAll},
			{"bare", ssdOpts{dtMean: -1, aLo: 0.3, aHi: 2}},
			{"direct", ssdOpts{bias: true, skip: true, h0: true, dtMean: 1, aLo: 0.3, aHi: 2, bigHeads: true}},
		} {
			t.Run(d.String()+"/"+o.name, func(t *testing.T) {
				ssdCheckAgainstRef(t, r, ssdNewCase(r, d, o.o))
			})
		}
	}
}

// TestSSDRefBackwardFD checks the reference gradient by central finite differences.
func TestSSDRefBackwardFD(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, d := range []SSDDims{
		{B: 1, L: 3, H: 2, P: 2, G: 1, N: 2, Chunk: 1},
		{B: 2, L: 4, H: 2, P: 1, G: 2, N: 3, Chunk: 1},
	} {
		c := ssdNewCase(r, d, ssdAll)
		in := c.in64
		if d.B == 2 {
			in.Dt[0] = 21.5 // above the softplus threshold
		}
		B, L, H, P, N := d.B, d.L, d.H, d.P, d.N
		ry := numtest.Normal(r, B*L*H*P, 1)
		rh := numtest.Normal(r, B*H*P*N, 1)
		y, hl := make([]float64, len(ry)), make([]float64, len(rh))
		loss := func() float64 {
			if err := SSDRef(y, hl, in, d); err != nil {
				t.Fatal(err)
			}
			return numtest.Dot(y, ry) + numtest.Dot(hl, rh)
		}
		g := SSDGrads64{DX: make([]float64, len(in.X)), DDt: make([]float64, len(in.Dt)), DDtBias: make([]float64, H),
			DA: make([]float64, H), DBm: make([]float64, len(in.Bm)), DCm: make([]float64, len(in.Cm)),
			DDskip: make([]float64, H), DH0: make([]float64, len(in.H0))}
		if err := SSDRefBackward(g, ry, rh, in, d); err != nil {
			t.Fatal(err)
		}
		for _, v := range []struct {
			name    string
			x, grad []float64
		}{
			{"X", in.X, g.DX}, {"Dt", in.Dt, g.DDt}, {"DtBias", in.DtBias, g.DDtBias}, {"A", in.A, g.DA},
			{"Bm", in.Bm, g.DBm}, {"Cm", in.Cm, g.DCm}, {"Dskip", in.Dskip, g.DDskip}, {"H0", in.H0, g.DH0},
		} {
			numtest.Check(t, d.String()+" d"+v.name, v.grad, numtest.NumGrad(loss, v.x, 1e-5), numtest.GradTol)
		}
	}
}

// TestSSDDecodeContinuation: a forward over L equals a forward over L−k followed by k steps,
// and a forward over the suffix started from the prefix's final state.
func TestSSDDecodeContinuation(t *testing.T) {
	r, _ := numtest.Rand(t)
	d := SSDDims{B: 2, L: 21, H: 4, P: 3, G: 2, N: 5, Chunk: 8}
	const k = 6
	c := ssdNewCase(r, d, ssdAll)
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	y := make([]float32, B*L*H*P)
	hl := make([]float32, B*H*P*N)
	if err := SSDForward(y, hl, nil, c.in, d); err != nil {
		t.Fatal(err)
	}
	// slice tokens [t0, t1) of a (B, L, w) tensor
	cut := func(x []float32, w, t0, t1 int) []float32 {
		var out []float32
		for b := range B {
			out = append(out, x[(b*L+t0)*w:(b*L+t1)*w]...)
		}
		return out
	}
	pre := d
	pre.L = L - k
	pin := c.in
	pin.X, pin.Dt, pin.Bm, pin.Cm = cut(c.in.X, H*P, 0, L-k), cut(c.in.Dt, H, 0, L-k), cut(c.in.Bm, G*N, 0, L-k), cut(c.in.Cm, G*N, 0, L-k)
	state := make([]float32, B*H*P*N)
	if err := SSDForward(make([]float32, B*pre.L*H*P), state, nil, pin, pre); err != nil {
		t.Fatal(err)
	}
	// Suffix from the prefix state.
	suf := d
	suf.L = k
	sin := c.in
	sin.X, sin.Dt, sin.Bm, sin.Cm = cut(c.in.X, H*P, L-k, L), cut(c.in.Dt, H, L-k, L), cut(c.in.Bm, G*N, L-k, L), cut(c.in.Cm, G*N, L-k, L)
	sin.H0 = state
	ys := make([]float32, B*k*H*P)
	hs := make([]float32, B*H*P*N)
	if err := SSDForward(ys, hs, nil, sin, suf); err != nil {
		t.Fatal(err)
	}
	tol := numtest.F32.Scaled(L * N)
	numtest.Check(t, "suffix y", ys, numtest.F64s(cut(y, H*P, L-k, L)), tol)
	numtest.Check(t, "suffix hLast", hs, numtest.F64s(hl), tol)
	// Token-by-token decode.
	yk := make([]float32, B*H*P)
	for t0 := L - k; t0 < L; t0++ {
		if err := SSDStep(state, yk, cut(c.in.X, H*P, t0, t0+1), cut(c.in.Dt, H, t0, t0+1),
			cut(c.in.Bm, G*N, t0, t0+1), cut(c.in.Cm, G*N, t0, t0+1), c.in, d); err != nil {
			t.Fatal(err)
		}
		numtest.Check(t, fmt.Sprintf("step y t=%d", t0), yk, numtest.F64s(cut(y, H*P, t0, t0+1)), tol)
	}
	numtest.Check(t, "step state", state, numtest.F64s(hl), tol)
}

// TestSSDLongFinite: a long sequence with huge steps and decays stays finite and matches the
// reference (small H·P·N keeps it fast).
func TestSSDLongFinite(t *testing.T) {
	r, _ := numtest.Rand(t)
	d := SSDDims{B: 1, L: 16384, H: 3, P: 2, G: 1, N: 3, Chunk: 64}
	for _, o := range []ssdOpts{
		{bias: true, skip: true, dtMean: 25, aLo: 20, aHi: 60}, // Δ above the softplus threshold, |Δ·A| ~ 1000
		{bias: true, skip: true, dtMean: -3, aLo: 0.5, aHi: 4}, // slow decay: the factored path over long runs
	} {
		c := ssdNewCase(r, d, o)
		y := make([]float32, d.B*d.L*d.H*d.P)
		hl := make([]float32, d.B*d.H*d.P*d.N)
		saved := make([]float32, SSDSavedLen(d))
		if err := SSDForward(y, hl, saved, c.in, d); err != nil {
			t.Fatal(err)
		}
		g := SSDGrads{DX: make([]float32, len(y)), DDt: make([]float32, len(c.in.Dt)), DA: make([]float32, d.H),
			DDtBias: make([]float32, d.H), DBm: make([]float32, len(c.in.Bm)), DCm: make([]float32, len(c.in.Cm))}
		dy := numtest.F32s(numtest.Normal(r, len(y), 1))
		if err := SSDBackward(g, dy, nil, c.in, saved, d); err != nil {
			t.Fatal(err)
		}
		for name, s := range map[string][]float32{"y": y, "hLast": hl, "dX": g.DX, "dDt": g.DDt, "dA": g.DA, "dDtBias": g.DDtBias, "dB": g.DBm, "dC": g.DCm} {
			for i, v := range s {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("dtMean=%v: %s[%d] = %v", o.dtMean, name, i, v)
				}
			}
		}
		y64 := make([]float64, len(y))
		if err := SSDRef(y64, nil, c.in64, d); err != nil {
			t.Fatal(err)
		}
		numtest.Check(t, fmt.Sprintf("dtMean=%v y", o.dtMean), y, y64, numtest.F32.Scaled(d.Chunk*d.N))
	}
}

func TestSSDBadInputs(t *testing.T) {
	r, _ := numtest.Rand(t)
	d := SSDDims{B: 1, L: 5, H: 2, P: 2, G: 1, N: 3, Chunk: 2}
	c := ssdNewCase(r, d, ssdAll)
	ok := func() (SSDInputs, []float32, []float32, []float32) {
		return c.in, make([]float32, 20), make([]float32, 12), make([]float32, SSDSavedLen(d))
	}
	short := func(s []float32) []float32 { return s[:len(s)-1] }
	type tc struct {
		arg string
		err error
	}
	var cases []tc
	add := func(arg string, err error) { cases = append(cases, tc{arg, err}) }
	{
		in, y, hl, sv := ok()
		in.X = short(in.X)
		add("X", SSDForward(y, hl, sv, in, d))
		in, y, hl, sv = ok()
		in.Dt = nil
		add("Dt", SSDForward(y, hl, sv, in, d))
		in, y, hl, sv = ok()
		in.Bm = short(in.Bm)
		add("Bm", SSDForward(y, hl, sv, in, d))
		in, y, hl, sv = ok()
		in.Cm = short(in.Cm)
		add("Cm", SSDForward(y, hl, sv, in, d))
		in, y, hl, sv = ok()
		in.A = in.A[:1]
		add("A", SSDForward(y, hl, sv, in, d))
		in, y, hl, sv = ok()
		in.DtBias = in.DtBias[:1]
		add("DtBias", SSDForward(y, hl, sv, in, d))
		in, y, hl, sv = ok()
		in.Dskip = in.Dskip[:1]
		add("Dskip", SSDForward(y, hl, sv, in, d))
		in, y, hl, sv = ok()
		in.H0 = short(in.H0)
		add("H0", SSDForward(y, hl, sv, in, d))
		in, y, hl, sv = ok()
		add("y", SSDForward(short(y), hl, sv, in, d))
		add("hLast", SSDForward(y, short(hl), sv, in, d))
		add("saved", SSDForward(y, hl, short(sv), in, d))
		for _, bad := range []SSDDims{
			{B: 0, L: 5, H: 2, P: 2, G: 1, N: 3, Chunk: 2},
			{B: 1, L: 5, H: 2, P: 2, G: 1, N: 3, Chunk: 0},
			{B: 1, L: -1, H: 2, P: 2, G: 1, N: 3, Chunk: 2},
		} {
			add("sizes", SSDForward(y, hl, sv, in, bad))
		}
		add("divisible", SSDForward(y, hl, sv, in, SSDDims{B: 1, L: 5, H: 3, P: 2, G: 2, N: 3, Chunk: 2}))
		// Backward.
		dy := make([]float32, 20)
		g := SSDGrads{DX: make([]float32, 20)}
		add("dy", SSDBackward(g, short(dy), nil, in, sv, d))
		add("dhLast", SSDBackward(g, dy, short(hl), in, sv, d))
		add("saved", SSDBackward(g, dy, nil, in, nil, d))
		add("DX", SSDBackward(SSDGrads{DX: make([]float32, 3)}, dy, nil, in, sv, d))
		add("DA", SSDBackward(SSDGrads{DA: make([]float32, 3)}, dy, nil, in, sv, d))
		add("DBm", SSDBackward(SSDGrads{DBm: make([]float32, 3)}, dy, nil, in, sv, d))
		add("DH0", SSDBackward(SSDGrads{DH0: make([]float32, 3)}, dy, nil, in, sv, d))
		in.X = short(in.X)
		add("X", SSDBackward(g, dy, nil, in, sv, d))
		// Step.
		in, _, _, _ = ok()
		st, yk, xk, dt, bk := make([]float32, 12), make([]float32, 4), make([]float32, 4), make([]float32, 2), make([]float32, 3)
		add("state", SSDStep(short(st), yk, xk, dt, bk, bk, in, d))
		add("y", SSDStep(st, short(yk), xk, dt, bk, bk, in, d))
		add("x", SSDStep(st, yk, short(xk), dt, bk, bk, in, d))
		add("dt", SSDStep(st, yk, xk, short(dt), bk, bk, in, d))
		add("bm", SSDStep(st, yk, xk, dt, short(bk), bk, in, d))
		add("cm", SSDStep(st, yk, xk, dt, bk, short(bk), in, d))
		in.A = nil
		add("A", SSDStep(st, yk, xk, dt, bk, bk, in, d))
		if err := SSDStep(st, yk, xk, dt, bk, bk, c.in, d); err != nil {
			t.Errorf("valid step: %v", err)
		}
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.arg)
			continue
		}
		if !strings.Contains(c.err.Error(), c.arg) && c.arg != "sizes" && c.arg != "divisible" {
			t.Errorf("%s: error does not name the argument: %v", c.arg, c.err)
		}
		t.Log(c.err)
	}
}

// ssdGolden is one file written by testdata/gen_golden_ssd.py.
type ssdGolden struct {
	Shapes  map[string]int `json:"shapes"`
	Tensors map[string]struct {
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
	} `json:"tensors"`
}

// TestSSDGolden compares outputs and gradients with PyTorch autograd through the sequential
// recurrence (float64), at a chunk size that does not divide L.
func TestSSDGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden_ssd*.json")
	if len(files) == 0 {
		t.Fatal("no testdata/golden_ssd*.json (run testdata/gen_golden_ssd.py)")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var gf ssdGolden
		if err := json.Unmarshal(raw, &gf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s := gf.Shapes
		d := SSDDims{B: s["B"], L: s["L"], H: s["H"], P: s["P"], G: s["G"], N: s["N"], Chunk: s["Q"]}
		ten := func(name string) []float32 {
			v, ok := gf.Tensors[name]
			if !ok {
				t.Fatalf("%s: no tensor %q", f, name)
			}
			return numtest.F32s(v.Data)
		}
		want := func(name string) []float64 { return gf.Tensors[name].Data }
		in := SSDInputs{X: ten("x"), Dt: ten("dt"), DtBias: ten("dt_bias"), A: ten("A"), Bm: ten("B"), Cm: ten("C"), Dskip: ten("D"), H0: ten("h0")}
		B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
		y := make([]float32, B*L*H*P)
		hl := make([]float32, B*H*P*N)
		saved := make([]float32, SSDSavedLen(d))
		if err := SSDForward(y, hl, saved, in, d); err != nil {
			t.Fatal(err)
		}
		tol := numtest.F32.Scaled(L * N)
		numtest.Check(t, f+" y", y, want("y"), tol)
		numtest.Check(t, f+" hLast", hl, want("h_last"), tol)
		g := SSDGrads{DX: make([]float32, len(in.X)), DDt: make([]float32, len(in.Dt)), DDtBias: make([]float32, H),
			DA: make([]float32, H), DBm: make([]float32, len(in.Bm)), DCm: make([]float32, len(in.Cm)),
			DDskip: make([]float32, H), DH0: make([]float32, len(in.H0))}
		if err := SSDBackward(g, ten("dy"), ten("dh_last"), in, saved, d); err != nil {
			t.Fatal(err)
		}
		hpg := H / G
		numtest.Check(t, f+" dx", g.DX, want("grad_x"), numtest.F32.Scaled(L*N))
		numtest.Check(t, f+" ddt", g.DDt, want("grad_dt"), numtest.F32.Scaled(L*P*N))
		numtest.Check(t, f+" ddt_bias", g.DDtBias, want("grad_dt_bias"), numtest.F32.Scaled(B*L*P*N))
		numtest.Check(t, f+" dA", g.DA, want("grad_A"), numtest.F32.Scaled(B*L*P*N))
		numtest.Check(t, f+" dB", g.DBm, want("grad_B"), numtest.F32.Scaled(L*hpg*P))
		numtest.Check(t, f+" dC", g.DCm, want("grad_C"), numtest.F32.Scaled(L*hpg*P))
		numtest.Check(t, f+" dD", g.DDskip, want("grad_D"), numtest.F32.Scaled(B*L*P))
		numtest.Check(t, f+" dh0", g.DH0, want("grad_h0"), numtest.F32.Scaled(L*N))
	}
}

// ExampleSSDForward runs a tiny SSD and then decodes one more token with SSDStep.
func ExampleSSDForward() {
	d := SSDDims{B: 1, L: 3, H: 2, P: 1, G: 1, N: 1, Chunk: 2}
	in := SSDInputs{
		X:  []float32{1, 1, 0, 0, 0, 0},                               // (B, L, H, P): one impulse at t = 0
		Dt: []float32{0.5413, 0.5413, 0.5413, 0.5413, 0.5413, 0.5413}, // softplus(0.5413) ≈ 1
		A:  []float32{-0.6931, -1.3863},                               // decay by 1/2 and 1/4 per step
		Bm: []float32{1, 1, 1},                                        // (B, L, G, N)
		Cm: []float32{1, 1, 1},
	}
	y := make([]float32, 6)
	state := make([]float32, 2) // (B, H, P, N)
	if err := SSDForward(y, state, nil, in, d); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("y %.4f state %.4f\n", y, state)
	yk := make([]float32, 2)
	if err := SSDStep(state, yk, []float32{0, 0}, []float32{0.5413, 0.5413}, []float32{1}, []float32{1}, in, d); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("next %.4f\n", yk)
	// Output:
	// y [1.0000 1.0000 0.5000 0.2500 0.2500 0.0625] state [0.2500 0.0625]
	// next [0.1250 0.0156]
}
