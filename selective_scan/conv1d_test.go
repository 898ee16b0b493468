package selectivescan

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

type convOpts struct{ bias, silu, state, dstate bool }

type convIn struct{ x, w, bias, state0 []float64 }

func convGen(r *rand.Rand, d ConvDims, o convOpts) convIn {
	in := convIn{x: numtest.Round32(numtest.Normal(r, d.B*d.L*d.D, 1)), w: numtest.Round32(numtest.Normal(r, d.D*d.W, 0.5))}
	if o.bias {
		in.bias = numtest.Round32(numtest.Normal(r, d.D, 0.5))
	}
	if o.state {
		in.state0 = numtest.Round32(numtest.Normal(r, d.B*(d.W-1)*d.D, 1))
	}
	return in
}

// convCases: W 1–4 (2–4 are the real widths), L = 1 and L < W−1 (the final state reaches into
// state0), odd D, lengths around the token block (256).
func convCases() []struct {
	d ConvDims
	o convOpts
} {
	all := convOpts{true, true, true, true}
	return []struct {
		d ConvDims
		o convOpts
	}{
		{ConvDims{B: 1, L: 1, D: 3, W: 4}, all},
		{ConvDims{B: 2, L: 2, D: 5, W: 4}, all},
		{ConvDims{B: 2, L: 1, D: 1, W: 2}, convOpts{}},
		{ConvDims{B: 3, L: 9, D: 7, W: 3}, convOpts{silu: true}},
		{ConvDims{B: 1, L: 13, D: 4, W: 2}, convOpts{bias: true, state: true}},
		{ConvDims{B: 2, L: 257, D: 9, W: 4}, all},
		{ConvDims{B: 1, L: 300, D: 33, W: 3}, convOpts{silu: true, dstate: true}},
		{ConvDims{B: 2, L: 6, D: 5, W: 1}, convOpts{bias: true, silu: true}},
	}
}

func convName(d ConvDims, o convOpts) string {
	return fmt.Sprintf("B=%d/L=%d/D=%d/W=%d/%+v", d.B, d.L, d.D, d.W, o)
}

func TestConv1DForwardMatchesRef(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range convCases() {
		t.Run(convName(c.d, c.o), func(t *testing.T) {
			d := c.d
			in := convGen(r, d, c.o)
			want, wantS := make([]float64, d.B*d.L*d.D), make([]float64, d.B*(d.W-1)*d.D)
			if err := Conv1DRef(want, wantS, in.x, in.w, in.bias, in.state0, c.o.silu, d); err != nil {
				t.Fatal(err)
			}
			out, st := make([]float32, len(want)), make([]float32, len(wantS))
			if err := Conv1DForward(out, st, scanF32(in.x), scanF32(in.w), scanF32(in.bias), scanF32(in.state0), c.o.silu, d); err != nil {
				t.Fatal(err)
			}
			tol := numtest.F32.Scaled(d.W)
			numtest.Check(t, "out", out, want, tol)
			numtest.Check(t, "stateOut", st, wantS, numtest.Tol{})
			// stateOut may be state0 itself (in-place cache update).
			if in.state0 != nil {
				s := scanF32(in.state0)
				out2 := make([]float32, len(want))
				if err := Conv1DForward(out2, s, scanF32(in.x), scanF32(in.w), scanF32(in.bias), s, c.o.silu, d); err != nil {
					t.Fatal(err)
				}
				numtest.Check(t, "out (in place)", out2, numtest.F64s(out), numtest.Tol{})
				numtest.Check(t, "stateOut (in place)", s, wantS, numtest.Tol{})
			}
		})
	}
}

type convGrads struct{ dx, dw, dbias, dstate0 []float64 }

func convRefGrads(t *testing.T, in convIn, d ConvDims, silu bool, dout, dstate []float64) convGrads {
	t.Helper()
	g := convGrads{dx: make([]float64, d.B*d.L*d.D), dw: make([]float64, d.D*d.W), dbias: make([]float64, d.D),
		dstate0: make([]float64, d.B*(d.W-1)*d.D)}
	if err := Conv1DRefBackward(g.dx, g.dw, g.dbias, g.dstate0, dout, dstate, in.x, in.w, in.bias, in.state0, silu, d); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestConv1DRefBackwardFiniteDifferences(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range []struct {
		d ConvDims
		o convOpts
	}{
		{ConvDims{B: 2, L: 5, D: 3, W: 4}, convOpts{true, true, true, true}},
		{ConvDims{B: 1, L: 2, D: 2, W: 4}, convOpts{true, true, true, true}},
		{ConvDims{B: 1, L: 4, D: 2, W: 2}, convOpts{silu: true}},
		{ConvDims{B: 2, L: 3, D: 1, W: 3}, convOpts{bias: true, dstate: true}},
	} {
		t.Run(convName(c.d, c.o), func(t *testing.T) {
			d := c.d
			in := convGen(r, d, c.o)
			if in.bias == nil {
				in.bias = make([]float64, d.D) // a zero bias still has a gradient
			}
			if in.state0 == nil {
				in.state0 = make([]float64, d.B*(d.W-1)*d.D)
			}
			rOut := numtest.Normal(r, d.B*d.L*d.D, 1)
			var rS []float64
			if c.o.dstate {
				rS = numtest.Normal(r, d.B*(d.W-1)*d.D, 1)
			}
			g := convRefGrads(t, in, d, c.o.silu, rOut, rS)
			f := func() float64 {
				out, s := make([]float64, len(rOut)), make([]float64, d.B*(d.W-1)*d.D)
				if err := Conv1DRef(out, s, in.x, in.w, in.bias, in.state0, c.o.silu, d); err != nil {
					panic(err)
				}
				l := numtest.Dot(out, rOut)
				if rS != nil {
					l += numtest.Dot(s, rS)
				}
				return l
			}
			numtest.Check(t, "dx", g.dx, numtest.NumGrad(f, in.x, 1e-5), numtest.GradTol)
			numtest.Check(t, "dw", g.dw, numtest.NumGrad(f, in.w, 1e-5), numtest.GradTol)
			numtest.Check(t, "dbias", g.dbias, numtest.NumGrad(f, in.bias, 1e-5), numtest.GradTol)
			numtest.Check(t, "dstate0", g.dstate0, numtest.NumGrad(f, in.state0, 1e-5), numtest.GradTol)
		})
	}
}

func TestConv1DBackwardMatchesRef(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range convCases() {
		t.Run(convName(c.d, c.o), func(t *testing.T) {
			d := c.d
			in := convGen(r, d, c.o)
			dout := numtest.Round32(numtest.Normal(r, d.B*d.L*d.D, 1))
			var dstate []float64
			if c.o.dstate {
				dstate = numtest.Round32(numtest.Normal(r, d.B*(d.W-1)*d.D, 1))
			}
			want := convRefGrads(t, in, d, c.o.silu, dout, dstate)
			// dw and dbias accumulate: start both at 1 (and add 1 to the reference).
			dw, dbias := make([]float32, d.D*d.W), make([]float32, d.D)
			for i := range dw {
				dw[i] = 1
				want.dw[i]++
			}
			for i := range dbias {
				dbias[i] = 1
				want.dbias[i]++
			}
			dx, ds := scanNaNs(d.B*d.L*d.D), scanNaNs(d.B*(d.W-1)*d.D)
			if err := Conv1DBackward(dx, dw, dbias, ds, numtest.F32s(dout), scanF32(dstate), scanF32(in.x), scanF32(in.w),
				scanF32(in.bias), scanF32(in.state0), c.o.silu, d); err != nil {
				t.Fatal(err)
			}
			tol := numtest.F32.Scaled(d.W)
			numtest.Check(t, "dx", dx, want.dx, tol)
			numtest.Check(t, "dstate0", ds, want.dstate0, tol)
			numtest.Check(t, "dw", dw, want.dw, tol.Scaled(d.B*d.L)) // sums over B·L tokens
			numtest.Check(t, "dbias", dbias, want.dbias, tol.Scaled(d.B*d.L))
			// Only some gradients wanted.
			dx2 := make([]float32, d.B*d.L*d.D)
			if err := Conv1DBackward(dx2, nil, nil, nil, numtest.F32s(dout), scanF32(dstate), scanF32(in.x), scanF32(in.w),
				scanF32(in.bias), scanF32(in.state0), c.o.silu, d); err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "dx alone", dx2, numtest.F64s(dx), numtest.Tol{})
		})
	}
}

// TestConv1DStepContinuation: forward over L equals forward over L−k then k decode steps.
func TestConv1DStepContinuation(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, c := range []struct {
		d ConvDims
		k int
		o convOpts
	}{
		{ConvDims{B: 2, L: 10, D: 5, W: 4}, 3, convOpts{bias: true, silu: true, state: true}},
		{ConvDims{B: 1, L: 3, D: 3, W: 4}, 3, convOpts{silu: true}},
		{ConvDims{B: 3, L: 300, D: 8, W: 2}, 1, convOpts{bias: true}},
		{ConvDims{B: 1, L: 6, D: 2, W: 3}, 5, convOpts{state: true}},
	} {
		t.Run(fmt.Sprintf("%s/k=%d", convName(c.d, c.o), c.k), func(t *testing.T) {
			d := c.d
			in := convGen(r, d, c.o)
			B, L, D, W := d.B, d.L, d.D, d.W
			x, w, bias := scanF32(in.x), scanF32(in.w), scanF32(in.bias)
			out, st := make([]float32, B*L*D), make([]float32, B*(W-1)*D)
			if err := Conv1DForward(out, st, x, w, bias, scanF32(in.state0), c.o.silu, d); err != nil {
				t.Fatal(err)
			}
			state := make([]float32, B*(W-1)*D)
			if in.state0 != nil {
				copy(state, scanF32(in.state0))
			}
			dp := d
			dp.L = L - c.k
			if dp.L > 0 {
				if err := Conv1DForward(make([]float32, B*dp.L*D), state, scanTokens(x, B, L, D, 0, dp.L), w, bias, state, c.o.silu, dp); err != nil {
					t.Fatal(err)
				}
			}
			var got, want []float32
			ys := make([][]float32, c.k)
			for i := range c.k {
				ys[i] = make([]float32, B*D)
				if err := Conv1DStep(state, ys[i], scanTokens(x, B, L, D, dp.L+i, dp.L+i+1), w, bias, c.o.silu, d); err != nil {
					t.Fatal(err)
				}
			}
			for b := range B {
				for i := range c.k {
					got = append(got, ys[i][b*D:(b+1)*D]...)
				}
				want = append(want, out[(b*L+dp.L)*D:(b*L+L)*D]...)
			}
			numtest.Check(t, "step outputs", got, numtest.F64s(want), numtest.Tol{})
			numtest.Check(t, "step state", state, numtest.F64s(st), numtest.Tol{})
		})
	}
}

func TestConv1DGolden(t *testing.T) {
	for name, gd := range scanLoadGolden(t, "golden_conv*.json") {
		t.Run(name, func(t *testing.T) {
			d := ConvDims{B: gd.int("B"), L: gd.int("L"), D: gd.int("D"), W: gd.int("W")}
			silu := gd.flag("silu")
			in := convIn{x: gd.get("x"), w: gd.get("w"), bias: gd.get("bias"), state0: gd.get("state0")}
			dout, dstate := gd.get("dout"), gd.get("dstate_out")
			out, st := make([]float64, d.B*d.L*d.D), make([]float64, d.B*(d.W-1)*d.D)
			if err := Conv1DRef(out, st, in.x, in.w, in.bias, in.state0, silu, d); err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "ref out", out, gd.get("out"), numtest.F64)
			numtest.Check(t, "ref stateOut", st, gd.get("state_out"), numtest.F64)
			gr := convRefGrads(t, in, d, silu, dout, dstate)
			out32, st32 := make([]float32, len(out)), make([]float32, len(st))
			if err := Conv1DForward(out32, st32, scanF32(in.x), scanF32(in.w), scanF32(in.bias), scanF32(in.state0), silu, d); err != nil {
				t.Fatal(err)
			}
			tol := numtest.F32.Scaled(d.W)
			numtest.Check(t, "out", out32, gd.get("out"), tol)
			numtest.Check(t, "stateOut", st32, gd.get("state_out"), tol)
			dx, dw, db, ds := make([]float32, len(out)), make([]float32, d.D*d.W), make([]float32, d.D), make([]float32, len(st))
			if err := Conv1DBackward(dx, dw, db, ds, scanF32(dout), scanF32(dstate), scanF32(in.x), scanF32(in.w),
				scanF32(in.bias), scanF32(in.state0), silu, d); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name, golden string
				ref          []float64
				fast         []float32
				tol          numtest.Tol
			}{
				{"dx", "dx", gr.dx, dx, tol}, {"dw", "dw", gr.dw, dw, tol.Scaled(d.B * d.L)},
				{"dbias", "dbias", gr.dbias, db, tol.Scaled(d.B * d.L)}, {"dstate0", "dstate0", gr.dstate0, ds, tol},
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

func TestConv1DBadInputs(t *testing.T) {
	d := ConvDims{B: 1, L: 3, D: 2, W: 3}
	x, w, out := make([]float32, 6), make([]float32, 6), make([]float32, 6)
	cases := []struct {
		name, want string
		err        error
	}{
		{"zero W", "sizes", Conv1DForward(out, nil, x, w, nil, nil, false, ConvDims{B: 1, L: 3, D: 2, W: 0})},
		{"negative L", "sizes", Conv1DForward(out, nil, x, w, nil, nil, false, ConvDims{B: 1, L: -3, D: 2, W: 3})},
		{"short x", "x has length", Conv1DForward(out, nil, x[:5], w, nil, nil, false, d)},
		{"short out", "out has length", Conv1DForward(out[:1], nil, x, w, nil, nil, false, d)},
		{"bad w", "w has length", Conv1DForward(out, nil, x, w[:4], nil, nil, false, d)},
		{"bad bias", "bias has length", Conv1DForward(out, nil, x, w, make([]float32, 3), nil, false, d)},
		{"bad state0", "state0 has length", Conv1DForward(out, nil, x, w, nil, make([]float32, 3), false, d)},
		{"bad stateOut", "stateOut has length", Conv1DForward(out, make([]float32, 5), x, w, nil, nil, false, d)},
		{"backward bad dout", "dout has length", Conv1DBackward(nil, nil, nil, nil, out[:2], nil, x, w, nil, nil, false, d)},
		{"backward bad dw", "dw has length", Conv1DBackward(nil, make([]float32, 2), nil, nil, out, nil, x, w, nil, nil, false, d)},
		{"backward bad dstate0", "dstate0 has length", Conv1DBackward(nil, nil, nil, make([]float32, 2), out, nil, x, w, nil, nil, false, d)},
		{"backward bad dstateOut", "dstateOut has length", Conv1DBackward(nil, nil, nil, nil, out, make([]float32, 2), x, w, nil, nil, false, d)},
		{"step bad state", "state has length", Conv1DStep(make([]float32, 3), make([]float32, 2), make([]float32, 2), w, nil, false, d)},
		{"step bad x", "x has length", Conv1DStep(make([]float32, 4), make([]float32, 2), make([]float32, 3), w, nil, false, d)},
		{"ref bad w", "w has length", Conv1DRef(make([]float64, 6), nil, make([]float64, 6), make([]float64, 1), nil, nil, false, d)},
		{"ref backward bad x", "x has length", Conv1DRefBackward(nil, nil, nil, nil, make([]float64, 6), nil, make([]float64, 1), make([]float64, 6), nil, nil, false, d)},
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
}

func ExampleConv1DStep() {
	// Width 3: y_t = w0·x_{t−2} + w1·x_{t−1} + w2·x_t; the state holds the last two inputs.
	d := ConvDims{B: 1, D: 1, W: 3}
	w := []float32{1, 10, 100}
	state := make([]float32, 2) // (B, W−1, D)
	y := make([]float32, 1)
	for _, x := range []float32{1, 2, 3} {
		if err := Conv1DStep(state, y, []float32{x}, w, nil, false, d); err != nil {
			fmt.Println(err)
		}
		fmt.Print(y[0], " ")
	}
	fmt.Println(state)
	// Output: 100 210 321 [2 3]
}
