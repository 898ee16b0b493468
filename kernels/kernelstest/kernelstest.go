// Package kernelstest is the conformance suite every backend runs: each op on the backend,
// on fresh random inputs at awkward sizes, against the kernel packages' float64 references,
// forward and backward. A backend's test calls Run in one line:
//
//	func TestConformance(t *testing.T) { kernelstest.Run(t, cpu.New()) }
package kernelstest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/ops"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
)

// Tol is the per-element tolerance of a float32 backend; Run scales it by reduction length.
// A backend storing bf16 passes a looser one to RunTol.
var Tol = numtest.F32

// Run runs the whole suite against be with float32 tolerances.
func Run(t *testing.T, be kernels.Backend) { RunTol(t, be, Tol) }

// RunTol runs the suite with base tolerance tol.
func RunTol(t *testing.T, be kernels.Backend, tol numtest.Tol) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := numtest.Rand(t)
			c.run(&env{T: t, be: be, r: r, tol: tol})
		})
	}
}

type env struct {
	*testing.T
	be  kernels.Backend
	r   *rand.Rand
	tol numtest.Tol
}

// in returns n random normal values (rounded to float32 so the reference sees what the backend
// sees) and their buffer on the backend.
func (e *env) in(n int, scale float64) ([]float64, kernels.Buffer) {
	x := numtest.Round32(numtest.Normal(e.r, n, scale))
	b := e.be.Alloc(n)
	if err := e.be.Upload(b, numtest.F32s(x)); err != nil {
		e.Fatal(err)
	}
	return x, b
}

func (e *env) up(x []float64) kernels.Buffer {
	b := e.be.Alloc(len(x))
	if err := e.be.Upload(b, numtest.F32s(x)); err != nil {
		e.Fatal(err)
	}
	return b
}

func (e *env) down(b kernels.Buffer) []float32 {
	h := make([]float32, b.Len())
	if err := e.be.Download(h, b); err != nil {
		e.Fatal(err)
	}
	return h
}

// check compares a backend buffer with a float64 reference for a reduction of length n.
func (e *env) check(name string, got kernels.Buffer, want []float64, n int) {
	e.Helper()
	numtest.Check(e, name, e.down(got), want, e.tol.Scaled(n))
}

func (e *env) must(err error) {
	e.Helper()
	if err != nil {
		e.Fatal(err)
	}
}

type testCase struct {
	name string
	run  func(e *env)
}

var cases = []testCase{
	{"Memory", testMemory},
	{"MatMul", testMatMul},
	{"Linear", testLinear},
	{"Embedding", testEmbedding},
	{"RMSNorm", testRMSNorm},
	{"GatedRMSNorm", testGatedRMSNorm},
	{"LayerNorm", testLayerNorm},
	{"GroupNorm", testGroupNorm},
	{"Activations", testActivations},
	{"CrossEntropy", testCrossEntropy},
	{"Conv1D", testConv1D},
	{"Scan", testScan},
	{"SSD", testSSD},
	{"Attention", testAttention},
	{"RoPE", testRoPE},
	{"AdamW", testAdamW},
}

func testMemory(e *env) {
	x, xb := e.in(7*5, 1)
	y, yb := e.in(7*5, 1)
	d := e.be.Alloc(35)
	e.must(e.be.Axpby(d, 2, xb, -0.5, yb))
	want := make([]float64, 35)
	for i := range want {
		want[i] = 2*x[i] - 0.5*y[i]
	}
	e.check("Axpby", d, want, 2)
	e.must(e.be.Mul(d, xb, yb))
	for i := range want {
		want[i] = x[i] * y[i]
	}
	e.check("Mul", d, want, 1)
	ss, err := e.be.SumSquares(xb)
	e.must(err)
	if w := numtest.Dot(x, x); !e.tol.Scaled(35).Close(ss, w) {
		e.Errorf("SumSquares = %v, want %v", ss, w)
	}
	// Rows 7 of 5 columns: copy columns 1..3 into a 3-column buffer, then add them back.
	c := e.be.Alloc(7 * 3)
	e.must(e.be.CopyRows(c, 3, 0, xb, 5, 1, 7, 3, false))
	wc := make([]float64, 21)
	for r := range 7 {
		copy(wc[r*3:r*3+3], x[r*5+1:r*5+4])
	}
	e.check("CopyRows", c, wc, 1)
	e.must(e.be.CopyRows(c, 3, 0, xb, 5, 1, 7, 3, true))
	for i := range wc {
		wc[i] *= 2
	}
	e.check("CopyRows accumulate", c, wc, 1)
	if err := e.be.CopyRows(c, 3, 1, xb, 5, 1, 7, 3, false); err == nil {
		e.Error("CopyRows past the row end: no error")
	}
	e.be.Fill(c, 1.5)
	for _, v := range e.down(c) {
		if v != 1.5 {
			e.Fatalf("Fill wrote %v", v)
		}
	}
}

func testMatMul(e *env) {
	for _, sz := range [][3]int{{1, 1, 1}, {17, 33, 65}, {64, 63, 5}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			a, ab := e.in(m*k, 1)
			b, bb := e.in(k*n, 1)
			c0, cb := e.in(m*n, 1)
			want := append([]float64(nil), c0...)
			e.must(ops.MatMulRef(want, a, b, tr[0], tr[1], m, n, k, true))
			e.must(e.be.MatMul(cb, ab, bb, tr[0], tr[1], m, n, k, true))
			e.check(fmt.Sprintf("MatMul %v %v", sz, tr), cb, want, k)
		}
	}
}

func testLinear(e *env) {
	const r, in, out = 13, 9, 7
	x, xb := e.in(r*in, 1)
	w, wb := e.in(out*in, 0.3)
	bias, bb := e.in(out, 0.1)
	y := make([]float64, r*out)
	e.must(ops.LinearRef(y, x, w, bias, r, in, out))
	yb := e.be.Alloc(r * out)
	e.must(e.be.Linear(yb, xb, wb, bb, r, in, out))
	e.check("Linear", yb, y, in)
	dy, dyb := e.in(r*out, 1)
	dx, dw, db := make([]float64, r*in), make([]float64, out*in), make([]float64, out)
	e.must(ops.LinearBackwardRef(dx, dw, db, dy, x, w, r, in, out))
	dxb, dwb, dbb := e.be.Alloc(r*in), e.be.Alloc(out*in), e.be.Alloc(out)
	e.must(e.be.LinearBackward(dxb, dwb, dbb, dyb, xb, wb, r, in, out))
	e.check("Linear dx", dxb, dx, out)
	e.check("Linear dW", dwb, dw, r)
	e.check("Linear dbias", dbb, db, r)
}

func testEmbedding(e *env) {
	const r, v, d = 11, 13, 5
	ids := make([]int32, r)
	for i := range ids {
		ids[i] = int32(e.r.IntN(v))
	}
	tab, tb := e.in(v*d, 1)
	out := make([]float64, r*d)
	e.must(ops.EmbeddingRef(out, ids, tab, r, v, d))
	ob := e.be.Alloc(r * d)
	e.must(e.be.Embedding(ob, ids, tb, r, v, d))
	e.check("Embedding", ob, out, 1)
	dout, db := e.in(r*d, 1)
	dt := make([]float64, v*d)
	e.must(ops.EmbeddingBackwardRef(dt, dout, ids, r, v, d))
	dtb := e.be.Alloc(v * d)
	e.must(e.be.EmbeddingBackward(dtb, db, ids, r, v, d))
	e.check("Embedding dtable", dtb, dt, r)
}

func testRMSNorm(e *env) {
	const r, d = 9, 33
	x, xb := e.in(r*d, 2)
	w, wb := e.in(d, 1)
	out, rstd := make([]float64, r*d), make([]float64, r)
	e.must(ops.RMSNormRef(out, rstd, x, w, r, d, 1e-5))
	ob, rb := e.be.Alloc(r*d), e.be.Alloc(r)
	e.must(e.be.RMSNorm(ob, rb, xb, wb, r, d, 1e-5))
	e.check("RMSNorm", ob, out, d)
	dout, dob := e.in(r*d, 1)
	dx, dw := make([]float64, r*d), make([]float64, d)
	e.must(ops.RMSNormBackwardRef(dx, dw, dout, x, w, rstd, r, d))
	dxb, dwb := e.be.Alloc(r*d), e.be.Alloc(d)
	e.must(e.be.RMSNormBackward(dxb, dwb, dob, xb, wb, rb, r, d))
	e.check("RMSNorm dx", dxb, dx, d)
	e.check("RMSNorm dw", dwb, dw, r)
}

func testGatedRMSNorm(e *env) {
	const r, d, g = 7, 24, 3
	x, xb := e.in(r*d, 1)
	z, zb := e.in(r*d, 1)
	w, wb := e.in(d, 1)
	out, rstd := make([]float64, r*d), make([]float64, r*g)
	e.must(ops.GatedRMSNormRef(out, rstd, x, z, w, r, d, g, 1e-5))
	ob, rb := e.be.Alloc(r*d), e.be.Alloc(r*g)
	e.must(e.be.GatedRMSNorm(ob, rb, xb, zb, wb, r, d, g, 1e-5))
	e.check("GatedRMSNorm", ob, out, d)
	dout, dob := e.in(r*d, 1)
	dx, dz, dw := make([]float64, r*d), make([]float64, r*d), make([]float64, d)
	e.must(ops.GatedRMSNormBackwardRef(dx, dz, dw, dout, x, z, w, rstd, r, d, g))
	dxb, dzb, dwb := e.be.Alloc(r*d), e.be.Alloc(r*d), e.be.Alloc(d)
	e.must(e.be.GatedRMSNormBackward(dxb, dzb, dwb, dob, xb, zb, wb, rb, r, d, g))
	e.check("GatedRMSNorm dx", dxb, dx, d)
	e.check("GatedRMSNorm dz", dzb, dz, d)
	e.check("GatedRMSNorm dw", dwb, dw, r)
}

func testLayerNorm(e *env) {
	const r, d = 5, 31
	x, xb := e.in(r*d, 3)
	w, wb := e.in(d, 1)
	b, bb := e.in(d, 1)
	out, mean, rstd := make([]float64, r*d), make([]float64, r), make([]float64, r)
	e.must(ops.LayerNormRef(out, mean, rstd, x, w, b, r, d, 1e-5))
	ob, mb, rb := e.be.Alloc(r*d), e.be.Alloc(r), e.be.Alloc(r)
	e.must(e.be.LayerNorm(ob, mb, rb, xb, wb, bb, r, d, 1e-5))
	e.check("LayerNorm", ob, out, d)
	dout, dob := e.in(r*d, 1)
	dx, dw, db := make([]float64, r*d), make([]float64, d), make([]float64, d)
	e.must(ops.LayerNormBackwardRef(dx, dw, db, dout, x, w, mean, rstd, r, d))
	dxb, dwb, dbb := e.be.Alloc(r*d), e.be.Alloc(d), e.be.Alloc(d)
	e.must(e.be.LayerNormBackward(dxb, dwb, dbb, dob, xb, wb, mb, rb, r, d))
	e.check("LayerNorm dx", dxb, dx, d)
	e.check("LayerNorm dw", dwb, dw, r)
	e.check("LayerNorm db", dbb, db, r)
}

func testGroupNorm(e *env) {
	const r, d, g = 6, 30, 5
	x, xb := e.in(r*d, 2)
	w, wb := e.in(d, 1)
	b, bb := e.in(d, 1)
	out, mean, rstd := make([]float64, r*d), make([]float64, r*g), make([]float64, r*g)
	e.must(ops.GroupNormRef(out, mean, rstd, x, w, b, r, d, g, 1e-5))
	ob, mb, rb := e.be.Alloc(r*d), e.be.Alloc(r*g), e.be.Alloc(r*g)
	e.must(e.be.GroupNorm(ob, mb, rb, xb, wb, bb, r, d, g, 1e-5))
	e.check("GroupNorm", ob, out, d/g)
	dout, dob := e.in(r*d, 1)
	dx, dw, db := make([]float64, r*d), make([]float64, d), make([]float64, d)
	e.must(ops.GroupNormBackwardRef(dx, dw, db, dout, x, w, mean, rstd, r, d, g))
	dxb, dwb, dbb := e.be.Alloc(r*d), e.be.Alloc(d), e.be.Alloc(d)
	e.must(e.be.GroupNormBackward(dxb, dwb, dbb, dob, xb, wb, mb, rb, r, d, g))
	e.check("GroupNorm dx", dxb, dx, d/g)
	e.check("GroupNorm dw", dwb, dw, r)
	e.check("GroupNorm db", dbb, db, r)
}

func testActivations(e *env) {
	const n = 101
	x, xb := e.in(n, 4)
	dout, db := e.in(n, 1)
	refs := map[kernels.Unary][2]func(a, b, c []float64, n int) error{
		kernels.SiLU:     {func(o, x, _ []float64, n int) error { return ops.SiLURef(o, x, n) }, ops.SiLUBackwardRef},
		kernels.Softplus: {func(o, x, _ []float64, n int) error { return ops.SoftplusRef(o, x, n) }, ops.SoftplusBackwardRef},
	}
	for f, ref := range refs {
		out, dx := make([]float64, n), make([]float64, n)
		e.must(ref[0](out, x, nil, n))
		e.must(ref[1](dx, dout, x, n))
		ob, dxb := e.be.Alloc(n), e.be.Alloc(n)
		e.must(e.be.Activate(f, ob, xb))
		e.must(e.be.ActivateBackward(f, dxb, db, xb))
		e.check(f.String(), ob, out, 1)
		e.check(f.String()+" dx", dxb, dx, 1)
	}
	a, ab := e.in(n, 2)
	out, da, dbb := make([]float64, n), make([]float64, n), make([]float64, n)
	e.must(ops.SwiGLURef(out, x, a, n))
	e.must(ops.SwiGLUBackwardRef(da, dbb, dout, x, a, n))
	ob, dab, dbbb := e.be.Alloc(n), e.be.Alloc(n), e.be.Alloc(n)
	e.must(e.be.SwiGLU(ob, xb, ab))
	e.must(e.be.SwiGLUBackward(dab, dbbb, db, xb, ab))
	e.check("SwiGLU", ob, out, 1)
	e.check("SwiGLU da", dab, da, 1)
	e.check("SwiGLU db", dbbb, dbb, 1)
}

func testCrossEntropy(e *env) {
	const r, v = 13, 37
	logits, lb := e.in(r*v, 3)
	targets := make([]int32, r)
	for i := range targets {
		targets[i] = int32(e.r.IntN(v))
	}
	targets[3], targets[7] = -1, -1 // unscored positions
	lse := make([]float64, r)
	loss, count, err := ops.CrossEntropyRef(lse, logits, targets, r, v, -1)
	e.must(err)
	lseb := e.be.Alloc(r)
	gl, gc, err := e.be.CrossEntropy(lseb, lb, targets, r, v, -1)
	e.must(err)
	if gc != count || !e.tol.Scaled(v).Close(gl, loss) {
		e.Errorf("CrossEntropy = %v over %d rows, want %v over %d", gl, gc, loss, count)
	}
	dl := make([]float64, r*v)
	e.must(ops.CrossEntropyBackwardRef(dl, 0.7, logits, targets, lse, r, v, -1))
	dlb := e.be.Alloc(r * v)
	e.must(e.be.CrossEntropyBackward(dlb, 0.7, lb, targets, lseb, r, v, -1))
	e.check("CrossEntropy dlogits", dlb, dl, v)
}

func testConv1D(e *env) {
	for _, w := range []int{2, 3, 4} {
		d := selectivescan.ConvDims{B: 2, L: 9, D: 5, W: w}
		x, xb := e.in(d.B*d.L*d.D, 1)
		wt, wb := e.in(d.D*d.W, 0.5)
		bias, bb := e.in(d.D, 0.1)
		s0, s0b := e.in(d.B*(d.W-1)*d.D, 1)
		out, sOut := make([]float64, len(x)), make([]float64, len(s0))
		e.must(selectivescan.Conv1DRef(out, sOut, x, wt, bias, s0, true, d))
		ob, sob := e.be.Alloc(len(x)), e.be.Alloc(len(s0))
		e.must(e.be.Conv1D(ob, sob, xb, wb, bb, s0b, true, d))
		e.check(fmt.Sprintf("Conv1D W=%d", w), ob, out, w)
		e.check(fmt.Sprintf("Conv1D W=%d state", w), sob, sOut, 1)
		dout, dob := e.in(len(x), 1)
		dso, dsob := e.in(len(s0), 1)
		dx, dw, dbias, ds0 := make([]float64, len(x)), make([]float64, len(wt)), make([]float64, d.D), make([]float64, len(s0))
		e.must(selectivescan.Conv1DRefBackward(dx, dw, dbias, ds0, dout, dso, x, wt, bias, s0, true, d))
		dxb, dwb, dbb, ds0b := e.be.Alloc(len(x)), e.be.Alloc(len(wt)), e.be.Alloc(d.D), e.be.Alloc(len(s0))
		e.must(e.be.Conv1DBackward(dxb, dwb, dbb, ds0b, dob, dsob, xb, wb, bb, s0b, true, d))
		e.check("Conv1D dx", dxb, dx, w)
		e.check("Conv1D dw", dwb, dw, d.B*d.L)
		e.check("Conv1D dbias", dbb, dbias, d.B*d.L)
		e.check("Conv1D dstate0", ds0b, ds0, w)
	}
}

func testScan(e *env) {
	d := selectivescan.ScanDims{B: 2, L: 13, D: 6, N: 5, G: 2, Chunk: 4}
	bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
	var in selectivescan.ScanInputs64
	var a kernels.ScanArgs
	in.U, a.U = e.in(bld, 1)
	in.Delta, a.Delta = e.in(bld, 0.5)
	in.A, a.A = e.in(d.D*d.N, 1)
	for i := range in.A { // decaying states, as Mamba's A = −exp(A_log)
		in.A[i] = -0.1 - in.A[i]*in.A[i]
	}
	a.A = e.up(in.A)
	in.Bm, a.Bm = e.in(blgn, 1)
	in.Cm, a.Cm = e.in(blgn, 1)
	in.Dskip, a.Dskip = e.in(d.D, 1)
	in.Z, a.Z = e.in(bld, 1)
	in.DeltaBias, a.DeltaBias = e.in(d.D, 0.5)
	in.H0, a.H0 = e.in(d.B*d.D*d.N, 1)
	in.Softplus, a.Softplus, a.Dims = true, true, d
	out, hl := make([]float64, bld), make([]float64, d.B*d.D*d.N)
	e.must(selectivescan.ScanRef(out, hl, in, d))
	ob, hb, saved := e.be.Alloc(bld), e.be.Alloc(len(hl)), e.be.Alloc(e.be.ScanSavedLen(d))
	e.must(e.be.Scan(ob, hb, saved, a))
	e.check("Scan out", ob, out, d.L*d.N)
	e.check("Scan hLast", hb, hl, d.L)
	dout, dob := e.in(bld, 1)
	dhl, dhb := e.in(len(hl), 1)
	g := selectivescan.ScanGrads64{DU: make([]float64, bld), DDelta: make([]float64, bld), DA: make([]float64, d.D*d.N),
		DBm: make([]float64, blgn), DCm: make([]float64, blgn), DDskip: make([]float64, d.D), DZ: make([]float64, bld),
		DDeltaBias: make([]float64, d.D), DH0: make([]float64, len(hl))}
	e.must(selectivescan.ScanRefBackward(g, dout, dhl, in, d))
	gb := kernels.ScanGrads{DU: e.be.Alloc(bld), DDelta: e.be.Alloc(bld), DA: e.be.Alloc(d.D * d.N), DBm: e.be.Alloc(blgn),
		DCm: e.be.Alloc(blgn), DDskip: e.be.Alloc(d.D), DZ: e.be.Alloc(bld), DDeltaBias: e.be.Alloc(d.D), DH0: e.be.Alloc(len(hl))}
	e.must(e.be.ScanBackward(gb, dob, dhb, a, saved))
	n := d.L * d.N
	e.check("Scan dU", gb.DU, g.DU, n)
	e.check("Scan dDelta", gb.DDelta, g.DDelta, n)
	e.check("Scan dA", gb.DA, g.DA, d.B*n)
	e.check("Scan dB", gb.DBm, g.DBm, n*d.D)
	e.check("Scan dC", gb.DCm, g.DCm, n*d.D)
	e.check("Scan dD", gb.DDskip, g.DDskip, d.B*d.L)
	e.check("Scan dZ", gb.DZ, g.DZ, d.N)
	e.check("Scan dDeltaBias", gb.DDeltaBias, g.DDeltaBias, d.B*n)
	e.check("Scan dH0", gb.DH0, g.DH0, n)
}

func testSSD(e *env) {
	d := selectivescan.SSDDims{B: 2, L: 11, H: 3, P: 4, G: 1, N: 5, Chunk: 4}
	x5, bgn := d.B*d.L*d.H*d.P, d.B*d.L*d.G*d.N
	var in selectivescan.SSDInputs64
	var a kernels.SSDArgs
	in.X, a.X = e.in(x5, 1)
	in.Dt, a.Dt = e.in(d.B*d.L*d.H, 0.5)
	in.DtBias, a.DtBias = e.in(d.H, 0.5)
	in.A = numtest.Round32(numtest.Uniform(e.r, d.H, -2, -0.1))
	a.A = e.up(in.A)
	in.Bm, a.Bm = e.in(bgn, 1)
	in.Cm, a.Cm = e.in(bgn, 1)
	in.Dskip, a.Dskip = e.in(d.H, 1)
	in.H0, a.H0 = e.in(d.B*d.H*d.P*d.N, 1)
	a.Dims = d
	y, hl := make([]float64, x5), make([]float64, d.B*d.H*d.P*d.N)
	e.must(selectivescan.SSDRef(y, hl, in, d))
	yb, hb, saved := e.be.Alloc(x5), e.be.Alloc(len(hl)), e.be.Alloc(e.be.SSDSavedLen(d))
	e.must(e.be.SSD(yb, hb, saved, a))
	e.check("SSD y", yb, y, d.L*d.N)
	e.check("SSD hLast", hb, hl, d.L)
	dy, dyb := e.in(x5, 1)
	dhl, dhb := e.in(len(hl), 1)
	g := selectivescan.SSDGrads64{DX: make([]float64, x5), DDt: make([]float64, d.B*d.L*d.H), DDtBias: make([]float64, d.H),
		DA: make([]float64, d.H), DBm: make([]float64, bgn), DCm: make([]float64, bgn), DDskip: make([]float64, d.H), DH0: make([]float64, len(hl))}
	e.must(selectivescan.SSDRefBackward(g, dy, dhl, in, d))
	gb := kernels.SSDGrads{DX: e.be.Alloc(x5), DDt: e.be.Alloc(d.B * d.L * d.H), DDtBias: e.be.Alloc(d.H), DA: e.be.Alloc(d.H),
		DBm: e.be.Alloc(bgn), DCm: e.be.Alloc(bgn), DDskip: e.be.Alloc(d.H), DH0: e.be.Alloc(len(hl))}
	e.must(e.be.SSDBackward(gb, dyb, dhb, a, saved))
	n := d.L * d.N * d.P
	e.check("SSD dX", gb.DX, g.DX, n)
	e.check("SSD dDt", gb.DDt, g.DDt, n)
	e.check("SSD dDtBias", gb.DDtBias, g.DDtBias, d.B*n)
	e.check("SSD dA", gb.DA, g.DA, d.B*n)
	e.check("SSD dB", gb.DBm, g.DBm, n*d.H)
	e.check("SSD dC", gb.DCm, g.DCm, n*d.H)
	e.check("SSD dD", gb.DDskip, g.DDskip, d.B*d.L*d.P)
	e.check("SSD dH0", gb.DH0, g.DH0, n)
}

func testAttention(e *env) {
	for _, d := range []attention.Dims{
		{B: 2, L: 9, S: 9, H: 3, HKV: 3, Dh: 8, Causal: true},
		{B: 1, L: 17, S: 17, H: 4, HKV: 2, Dh: 16, Causal: true, Window: 5, Sinks: 2},
		{B: 1, L: 6, S: 6, H: 4, HKV: 1, Dh: 5, Causal: false},
	} {
		q, qb := e.in(d.B*d.L*d.H*d.Dh, 1)
		k, kb := e.in(d.B*d.S*d.HKV*d.Dh, 1)
		v, vb := e.in(d.B*d.S*d.HKV*d.Dh, 1)
		o, lse := make([]float64, len(q)), make([]float64, d.B*d.H*d.L)
		e.must(attention.Ref(o, lse, q, k, v, d))
		ob, lb := e.be.Alloc(len(q)), e.be.Alloc(len(lse))
		e.must(e.be.Attention(ob, lb, qb, kb, vb, d))
		e.check(fmt.Sprintf("Attention %v", d), ob, o, d.S)
		e.check("Attention LSE", lb, lse, d.S)
		do, dob := e.in(len(q), 1)
		dq, dk, dv := make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
		e.must(attention.RefBackward(dq, dk, dv, do, q, k, v, d))
		dqb, dkb, dvb := e.be.Alloc(len(q)), e.be.Alloc(len(k)), e.be.Alloc(len(v))
		e.must(e.be.AttentionBackward(dqb, dkb, dvb, dob, qb, kb, vb, ob, lb, d))
		e.check("Attention dQ", dqb, dq, d.S*d.Dh)
		e.check("Attention dK", dkb, dk, d.L*d.Dh*d.H/d.HKV)
		e.check("Attention dV", dvb, dv, d.L*d.H/d.HKV)
	}
}

func testAdamW(e *env) {
	const n = 37
	c := ops.AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	p, pb := e.in(n, 1)
	g, gb := e.in(n, 1)
	m, mb := e.in(n, 0.1)
	v := numtest.Round32(numtest.Uniform(e.r, n, 0, 0.1))
	vb := e.up(v)
	e.must(ops.AdamWRef(p, m, v, g, n, 3, c))
	e.must(e.be.AdamW(pb, mb, vb, gb, 3, c))
	e.check("AdamW p", pb, p, 1)
	e.check("AdamW m", mb, m, 1)
	e.check("AdamW v", vb, v, 1)
}

func testRoPE(e *env) {
	d := attention.RoPEDims{B: 2, L: 5, H: 3, Dh: 8}
	n := d.B * d.L * d.H * d.Dh
	x, xb := e.in(n, 1)
	want := make([]float64, n)
	e.must(attention.RoPERef(want, x, 7, 10000, d))
	ob := e.be.Alloc(n)
	e.must(e.be.RoPE(ob, xb, 7, 10000, d))
	e.check("RoPE", ob, want, 2)
	// The backward is the inverse rotation: it must take the output back to the input.
	back := e.be.Alloc(n)
	e.must(e.be.RoPEBackward(back, ob, 7, 10000, d))
	e.check("RoPE inverse", back, x, 2)
}
