package attention

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// attnCase holds one set of random inputs, as float64 (rounded through float32) and float32.
type attnCase struct {
	d                   Dims
	q, k, v, do         []float64
	q32, k32, v32, do32 []float32
}

func newCase(r *rand.Rand, d Dims, s float64) attnCase {
	nq, nkv := d.B*d.L*d.H*d.Dh, d.B*d.S*d.HKV*d.Dh
	c := attnCase{d: d,
		q: numtest.Round32(numtest.Normal(r, nq, s)), k: numtest.Round32(numtest.Normal(r, nkv, s)),
		v: numtest.Round32(numtest.Normal(r, nkv, 1)), do: numtest.Round32(numtest.Normal(r, nq, 1))}
	c.q32, c.k32, c.v32, c.do32 = numtest.F32s(c.q), numtest.F32s(c.k), numtest.F32s(c.v), numtest.F32s(c.do)
	return c
}

func (d Dims) name() string {
	var b strings.Builder
	fmt.Fprintf(&b, "B=%d/L=%d/S=%d/H=%d/HKV=%d/Dh=%d", d.B, d.L, d.S, d.H, d.HKV, d.Dh)
	if d.Causal {
		b.WriteString("/causal")
	}
	if d.Window > 0 {
		fmt.Fprintf(&b, "/W=%d", d.Window)
	}
	if d.Sinks > 0 {
		fmt.Fprintf(&b, "/sinks=%d", d.Sinks)
	}
	return b.String()
}

// testDims are awkward sizes: L=1, tile edges ±1, odd heads, GQA 1/2/4 and MQA, windows below
// and above L, sinks, S > L (chunked prefill), head dims 32/64/128 and small odd ones.
func testDims() []Dims {
	return []Dims{
		{B: 1, L: 1, S: 1, H: 1, HKV: 1, Dh: 3, Causal: true},
		{B: 2, L: 1, S: 1, H: 3, HKV: 1, Dh: 5},
		{B: 1, L: 63, S: 63, H: 3, HKV: 3, Dh: 32, Causal: true},
		{B: 1, L: 65, S: 65, H: 2, HKV: 1, Dh: 64, Causal: true},
		{B: 2, L: 64, S: 64, H: 4, HKV: 2, Dh: 7},
		{B: 1, L: 129, S: 129, H: 4, HKV: 1, Dh: 64, Causal: true, Window: 40},
		{B: 1, L: 130, S: 130, H: 4, HKV: 4, Dh: 32, Causal: true, Window: 17, Sinks: 3},
		{B: 1, L: 100, S: 100, H: 2, HKV: 2, Dh: 16, Causal: true, Window: 300, Sinks: 2},
		{B: 1, L: 97, S: 97, H: 8, HKV: 2, Dh: 9, Causal: true, Window: 1},
		{B: 1, L: 70, S: 70, H: 2, HKV: 1, Dh: 128, Causal: true, Window: 33, Sinks: 70},
		{B: 1, L: 90, S: 90, H: 1, HKV: 1, Dh: 11, Window: 20, Sinks: 5},
		{B: 2, L: 33, S: 161, H: 4, HKV: 2, Dh: 32, Causal: true},
		{B: 1, L: 65, S: 200, H: 3, HKV: 1, Dh: 24, Causal: true, Window: 70, Sinks: 4},
		{B: 1, L: 40, S: 75, H: 2, HKV: 2, Dh: 6},
		{B: 1, L: 128, S: 128, H: 1, HKV: 1, Dh: 128, Causal: true, Scale: 0.3},
	}
}

func forwardRef(t *testing.T, c attnCase) (o, lse []float64) {
	t.Helper()
	d := c.d
	o, lse = make([]float64, d.B*d.L*d.H*d.Dh), make([]float64, d.B*d.H*d.L)
	if err := Ref(o, lse, c.q, c.k, c.v, d); err != nil {
		t.Fatal(err)
	}
	return o, lse
}

func forward32(t *testing.T, c attnCase) (o, lse []float32) {
	t.Helper()
	d := c.d
	o, lse = make([]float32, d.B*d.L*d.H*d.Dh), make([]float32, d.B*d.H*d.L)
	if err := Forward(o, lse, c.q32, c.k32, c.v32, d); err != nil {
		t.Fatal(err)
	}
	return o, lse
}

func TestForwardMatchesRef(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, d := range testDims() {
		t.Run(d.name(), func(t *testing.T) {
			c := newCase(r, d, 1)
			wo, wl := forwardRef(t, c)
			o, lse := forward32(t, c)
			// o is a convex combination over S keys of scores reduced over Dh.
			numtest.Check(t, "o", o, wo, numtest.F32.Scaled(d.Dh+d.S))
			numtest.Check(t, "lse", lse, wl, numtest.F32.Scaled(d.Dh+d.S))
		})
	}
}

func TestBackwardMatchesRef(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, d := range testDims() {
		t.Run(d.name(), func(t *testing.T) {
			c := newCase(r, d, 1)
			o, lse := forward32(t, c)
			nq, nkv := len(c.q), len(c.k)
			dq, dk, dv := make([]float32, nq), make([]float32, nkv), make([]float32, nkv)
			for i := range dk { // assigned, not accumulated
				dk[i], dv[i] = 7, 7
			}
			if err := Backward(dq, dk, dv, c.do32, c.q32, c.k32, c.v32, o, lse, d); err != nil {
				t.Fatal(err)
			}
			wq, wk, wv := make([]float64, nq), make([]float64, nkv), make([]float64, nkv)
			if err := RefBackward(wq, wk, wv, c.do, c.q, c.k, c.v, d); err != nil {
				t.Fatal(err)
			}
			// Each gradient sums over keys or queries (and the H/HKV heads of a group) of
			// products reduced over Dh.
			tol := numtest.F32.Scaled(d.Dh + d.S + d.L*d.rep())
			numtest.Check(t, "dq", dq, wq, tol)
			numtest.Check(t, "dk", dk, wk, tol)
			numtest.Check(t, "dv", dv, wv, tol)
		})
	}
}

// TestRefBackwardFD checks the float64 reference gradient by central differences.
func TestRefBackwardFD(t *testing.T) {
	r, _ := numtest.Rand(t)
	for _, d := range []Dims{
		{B: 1, L: 4, S: 4, H: 2, HKV: 1, Dh: 3, Causal: true},
		{B: 2, L: 3, S: 5, H: 2, HKV: 2, Dh: 2, Causal: true, Window: 2, Sinks: 1},
		{B: 1, L: 3, S: 4, H: 4, HKV: 2, Dh: 3},
		{B: 1, L: 5, S: 5, H: 1, HKV: 1, Dh: 2, Window: 2, Scale: 0.7},
	} {
		t.Run(d.name(), func(t *testing.T) {
			c := newCase(r, d, 1)
			o := make([]float64, len(c.q))
			lse := make([]float64, d.B*d.H*d.L)
			loss := func() float64 {
				if err := Ref(o, lse, c.q, c.k, c.v, d); err != nil {
					t.Fatal(err)
				}
				return numtest.Dot(o, c.do)
			}
			dq, dk, dv := make([]float64, len(c.q)), make([]float64, len(c.k)), make([]float64, len(c.v))
			if err := RefBackward(dq, dk, dv, c.do, c.q, c.k, c.v, d); err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "dq", dq, numtest.NumGrad(loss, c.q, 1e-5), numtest.GradTol)
			numtest.Check(t, "dk", dk, numtest.NumGrad(loss, c.k, 1e-5), numtest.GradTol)
			numtest.Check(t, "dv", dv, numtest.NumGrad(loss, c.v, 1e-5), numtest.GradTol)
		})
	}
}

func TestLargeScoresStayFinite(t *testing.T) {
	r, _ := numtest.Rand(t)
	// Scores in the thousands: the online softmax must rescale without overflow.
	d := Dims{B: 1, L: 200, S: 200, H: 2, HKV: 1, Dh: 16, Causal: true, Window: 50, Sinks: 2}
	c := newCase(r, d, 10)
	wo, wl := forwardRef(t, c)
	o, lse := forward32(t, c)
	// Scores of size ~1e3 carry absolute float32 errors ~1e-4, amplified by the sharp softmax.
	numtest.Check(t, "o", o, wo, numtest.F32.Scaled(d.Dh+d.S).Times(100))
	numtest.Check(t, "lse", lse, wl, numtest.F32.Scaled(d.Dh+d.S).Times(100))
}

func TestLongSequenceFinite(t *testing.T) {
	r, _ := numtest.Rand(t)
	d := Dims{B: 1, L: 16384, S: 16384, H: 1, HKV: 1, Dh: 32, Causal: true, Window: 128, Sinks: 4}
	c := newCase(r, d, 6) // scores of order 6²·√32 ≈ 200 before scaling by 1/√32
	o, lse := forward32(t, c)
	dq, dk, dv := make([]float32, len(c.q)), make([]float32, len(c.k)), make([]float32, len(c.v))
	if err := Backward(dq, dk, dv, c.do32, c.q32, c.k32, c.v32, o, lse, d); err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string][]float32{"o": o, "lse": lse, "dq": dq, "dk": dk, "dv": dv} {
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s[%d] = %v", name, i, v)
			}
		}
	}
	// Spot-check the last 64 rows against the reference: they see the sinks and keys from
	// S−64−W on, so the reference runs on those keys only (positions shift by a constant, which
	// leaves the window and the sinks unchanged).
	ds := d
	ds.L = 64
	sinkRows := d.Sinks * d.Dh
	tail := (d.S - 64 - d.Window) * d.Dh
	kk := append(append([]float64{}, c.k[:sinkRows]...), c.k[tail:]...)
	vv := append(append([]float64{}, c.v[:sinkRows]...), c.v[tail:]...)
	ds.S = len(kk) / d.Dh
	cs := attnCase{d: ds, q: c.q[(d.L-64)*d.Dh:], k: kk, v: vv}
	wo, _ := forwardRef(t, cs)
	numtest.Check(t, "o tail", o[(d.L-64)*d.Dh:], wo, numtest.F32.Scaled(d.Dh+d.Window).Times(10))
}

func TestBadInput(t *testing.T) {
	good := Dims{B: 1, L: 4, S: 4, H: 2, HKV: 1, Dh: 3, Causal: true}
	n := 1 * 4 * 2 * 3
	kv := 1 * 4 * 1 * 3
	f := func(n int) []float32 { return make([]float32, n) }
	cases := []struct {
		name, want string
		err        error
	}{
		{"B=0", "B", Forward(f(n), f(8), f(n), f(kv), f(kv), Dims{L: 4, S: 4, H: 2, HKV: 1, Dh: 3})},
		{"Dh<0", "Dh", Forward(f(n), f(8), f(n), f(kv), f(kv), Dims{B: 1, L: 4, S: 4, H: 2, HKV: 1, Dh: -3})},
		{"H%HKV", "HKV", Forward(f(n), f(8), f(n), f(kv), f(kv), Dims{B: 1, L: 4, S: 4, H: 3, HKV: 2, Dh: 3})},
		{"S<L causal", "S", Forward(f(n), f(8), f(n), f(kv), f(kv), Dims{B: 1, L: 4, S: 3, H: 2, HKV: 1, Dh: 3, Causal: true})},
		{"window<0", "Window", Forward(f(n), f(8), f(n), f(kv), f(kv), Dims{B: 1, L: 4, S: 4, H: 2, HKV: 1, Dh: 3, Window: -1})},
		{"scale NaN", "Scale", Forward(f(n), f(8), f(n), f(kv), f(kv), Dims{B: 1, L: 4, S: 4, H: 2, HKV: 1, Dh: 3, Scale: float32(math.NaN())})},
		{"short q", "q has length", Forward(f(n), f(8), f(n-1), f(kv), f(kv), good)},
		{"short o", "o has length", Forward(f(n+1), f(8), f(n), f(kv), f(kv), good)},
		{"short k", "k has length", Forward(f(n), f(8), f(n), f(kv-1), f(kv), good)},
		{"short v", "v has length", Forward(f(n), f(8), f(n), f(kv), f(0), good)},
		{"short lse", "lse has length", Forward(f(n), f(7), f(n), f(kv), f(kv), good)},
		{"bwd dq", "dq has length", Backward(f(1), f(kv), f(kv), f(n), f(n), f(kv), f(kv), f(n), f(8), good)},
		{"bwd dk", "dk has length", Backward(f(n), f(1), f(kv), f(n), f(n), f(kv), f(kv), f(n), f(8), good)},
		{"bwd do", "do has length", Backward(f(n), f(kv), f(kv), f(1), f(n), f(kv), f(kv), f(n), f(8), good)},
		{"bwd lse", "lse has length", Backward(f(n), f(kv), f(kv), f(n), f(n), f(kv), f(kv), f(n), f(1), good)},
		{"ref H", "H", Ref(make([]float64, n), make([]float64, 8), make([]float64, n), make([]float64, kv), make([]float64, kv), Dims{B: 1, L: 4, S: 4, HKV: 1, Dh: 3})},
		{"refbwd dv", "dv has length", RefBackward(make([]float64, n), make([]float64, kv), nil, make([]float64, n), make([]float64, n), make([]float64, kv), make([]float64, kv), good)},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(c.err.Error(), c.want) || !strings.HasPrefix(c.err.Error(), "attention.") {
			t.Errorf("%s: error %q does not name the op and %q", c.name, c.err, c.want)
		}
	}
}
