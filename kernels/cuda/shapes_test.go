//go:build (cudaemu && !cuda) || cuda

package cuda

// Shapes the conformance suite does not reach, the CUDA backend (on a GPU with -tags cuda, or on
// the CPU emulator with -tags cudaemu) against the CPU backend on the same inputs: head dims above 32 and not a multiple of it, several key tiles, L < S, windows with sinks;
// scan states wider than a warp (N > 32) and chunks longer than the backward's sub-block; SSD
// with several groups and chunks; wide conv filters and L < W−1; vocabularies wider than a block;
// the decode steps and the KV-cache decode.

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/kernels/cpu"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
)

type twin struct {
	*testing.T
	r        *rand.Rand
	cpu, gpu kernels.Backend
}

func newTwin(t *testing.T) *twin {
	r, _ := numtest.Rand(t)
	return &twin{T: t, r: r, cpu: cpu.New(), gpu: testBackend(t)}
}

func (w *twin) up(be kernels.Backend, x []float32) kernels.Buffer {
	b := be.Alloc(len(x))
	if err := be.Upload(b, x); err != nil {
		w.Fatal(err)
	}
	return b
}

// in returns the same random values on both backends.
func (w *twin) in(n int, scale float64) (kernels.Buffer, kernels.Buffer) {
	x := numtest.F32s(numtest.Normal(w.r, n, scale))
	return w.up(w.cpu, x), w.up(w.gpu, x)
}

func (w *twin) vals(x []float32) (kernels.Buffer, kernels.Buffer) {
	return w.up(w.cpu, x), w.up(w.gpu, x)
}

func (w *twin) zeros(n int) (kernels.Buffer, kernels.Buffer) { return w.cpu.Alloc(n), w.gpu.Alloc(n) }

func (w *twin) down(be kernels.Backend, b kernels.Buffer) []float32 {
	h := make([]float32, b.Len())
	if err := be.Download(h, b); err != nil {
		w.Fatal(err)
	}
	return h
}

// cmp compares the CUDA result with the CPU's for a reduction of length n (both float32,
// different summation orders: twice the single-sided tolerance).
func (w *twin) cmp(name string, c, g kernels.Buffer, n int) {
	w.Helper()
	numtest.Check(w, name, w.down(w.gpu, g), numtest.F64s(w.down(w.cpu, c)), numtest.F32.Scaled(n).Times(2))
}

func (w *twin) must(err1, err2 error) {
	w.Helper()
	if err1 != nil || err2 != nil {
		w.Fatalf("cpu: %v; emu: %v", err1, err2)
	}
}

func TestShapesAttention(t *testing.T) {
	for _, d := range []attention.Dims{
		{B: 1, L: 40, S: 70, H: 4, HKV: 2, Dh: 40, Causal: true, Window: 20, Sinks: 3},
		{B: 2, L: 33, S: 33, H: 2, HKV: 1, Dh: 64, Causal: true},
		{B: 1, L: 5, S: 37, H: 2, HKV: 2, Dh: 96},
		{B: 1, L: 3, S: 3, H: 1, HKV: 1, Dh: 256, Causal: true, Scale: 0.3},
	} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			w := newTwin(t)
			nq, nkv := d.B*d.L*d.H*d.Dh, d.B*d.S*d.HKV*d.Dh
			qc, qg := w.in(nq, 1)
			kc, kg := w.in(nkv, 1)
			vc, vg := w.in(nkv, 1)
			oc, og := w.zeros(nq)
			lc, lg := w.zeros(d.B * d.H * d.L)
			w.must(w.cpu.Attention(oc, lc, qc, kc, vc, d), w.gpu.Attention(og, lg, qg, kg, vg, d))
			w.cmp("o", oc, og, d.S)
			w.cmp("lse", lc, lg, d.S)
			doc, dog := w.in(nq, 1)
			dqc, dqg := w.zeros(nq)
			dkc, dkg := w.zeros(nkv)
			dvc, dvg := w.zeros(nkv)
			w.must(w.cpu.AttentionBackward(dqc, dkc, dvc, doc, qc, kc, vc, oc, lc, d),
				w.gpu.AttentionBackward(dqg, dkg, dvg, dog, qg, kg, vg, og, lg, d))
			w.cmp("dq", dqc, dqg, d.S*d.Dh)
			w.cmp("dk", dkc, dkg, d.L*d.Dh*d.H/d.HKV)
			// dv = Pᵀ·dO sums L·rep terms, but P itself comes from Dh-long scores and an S-long
			// softmax: the attention package's own rule, Dh + S + L·rep (flash_test.go).
			w.cmp("dv", dvc, dvg, d.Dh+d.S+d.L*d.H/d.HKV)
		})
	}
}

func TestShapesScan(t *testing.T) {
	for _, c := range []struct {
		d        selectivescan.ScanDims
		softplus bool
	}{
		{selectivescan.ScanDims{B: 2, L: 45, D: 8, N: 40, G: 2, Chunk: 37}, true},
		{selectivescan.ScanDims{B: 1, L: 20, D: 5, N: 16, G: 1, Chunk: 16}, false},
		{selectivescan.ScanDims{B: 1, L: 7, D: 3, N: 1, G: 3, Chunk: 2}, true},
	} {
		t.Run(c.d.String(), func(t *testing.T) {
			w := newTwin(t)
			d := c.d
			bld, blgn, bdn := d.B*d.L*d.D, d.B*d.L*d.G*d.N, d.B*d.D*d.N
			var ac, ag kernels.ScanArgs
			ac.U, ag.U = w.in(bld, 1)
			ac.Delta, ag.Delta = w.in(bld, 0.5)
			a := numtest.F32s(numtest.Uniform(w.r, d.D*d.N, -2, -0.1))
			ac.A, ag.A = w.vals(a)
			ac.Bm, ag.Bm = w.in(blgn, 1)
			ac.Cm, ag.Cm = w.in(blgn, 1)
			ac.Dskip, ag.Dskip = w.in(d.D, 1)
			ac.Z, ag.Z = w.in(bld, 1)
			ac.DeltaBias, ag.DeltaBias = w.in(d.D, 0.5)
			if !c.softplus { // keep δ positive without softplus
				dl := numtest.F32s(numtest.Uniform(w.r, bld, 0.05, 0.5))
				ac.Delta, ag.Delta = w.vals(dl)
				ac.DeltaBias, ag.DeltaBias = nil, nil
			}
			ac.H0, ag.H0 = w.in(bdn, 1)
			ac.Softplus, ag.Softplus, ac.Dims, ag.Dims = c.softplus, c.softplus, d, d
			oc, og := w.zeros(bld)
			hc, hg := w.zeros(bdn)
			sc, sg := w.zeros(w.cpu.ScanSavedLen(d))
			w.must(w.cpu.Scan(oc, hc, sc, ac), w.gpu.Scan(og, hg, sg, ag))
			w.cmp("out", oc, og, d.L*d.N)
			w.cmp("hLast", hc, hg, d.L)
			w.cmp("saved", sc, sg, d.L)
			doc, dog := w.in(bld, 1)
			dhc, dhg := w.in(bdn, 1)
			gc, gg := kernels.ScanGrads{}, kernels.ScanGrads{}
			gc.DU, gg.DU = w.zeros(bld)
			gc.DDelta, gg.DDelta = w.zeros(bld)
			gc.DA, gg.DA = w.zeros(d.D * d.N)
			gc.DBm, gg.DBm = w.zeros(blgn)
			gc.DCm, gg.DCm = w.zeros(blgn)
			gc.DDskip, gg.DDskip = w.zeros(d.D)
			gc.DZ, gg.DZ = w.zeros(bld)
			if c.softplus {
				gc.DDeltaBias, gg.DDeltaBias = w.zeros(d.D)
			}
			gc.DH0, gg.DH0 = w.zeros(bdn)
			w.must(w.cpu.ScanBackward(gc, doc, dhc, ac, sc), w.gpu.ScanBackward(gg, dog, dhg, ag, sg))
			n := d.L * d.N
			w.cmp("dU", gc.DU, gg.DU, n)
			w.cmp("dDelta", gc.DDelta, gg.DDelta, n)
			w.cmp("dA", gc.DA, gg.DA, d.B*n)
			w.cmp("dB", gc.DBm, gg.DBm, n*d.D)
			w.cmp("dC", gc.DCm, gg.DCm, n*d.D)
			w.cmp("dD", gc.DDskip, gg.DDskip, d.B*d.L)
			w.cmp("dZ", gc.DZ, gg.DZ, d.N)
			if c.softplus {
				w.cmp("dDeltaBias", gc.DDeltaBias, gg.DDeltaBias, d.B*n)
			}
			w.cmp("dH0", gc.DH0, gg.DH0, n)
			// Decode step from the final state.
			bd, bgn := d.B*d.D, d.B*d.G*d.N
			uc, ug := w.in(bd, 1)
			tc, tg := w.in(bd, 0.5)
			if !c.softplus {
				tc, tg = w.vals(numtest.F32s(numtest.Uniform(w.r, bd, 0.05, 0.5)))
			}
			bc, bg := w.in(bgn, 1)
			cc, cg := w.in(bgn, 1)
			zc, zg := w.in(bd, 1)
			yc, yg := w.zeros(bd)
			w.must(w.cpu.ScanStep(hc, yc, uc, tc, bc, cc, zc, ac), w.gpu.ScanStep(hg, yg, ug, tg, bg, cg, zg, ag))
			w.cmp("step y", yc, yg, d.N)
			w.cmp("step state", hc, hg, d.L)
		})
	}
}

func TestShapesSSD(t *testing.T) {
	for _, d := range []selectivescan.SSDDims{
		{B: 1, L: 37, H: 4, P: 8, G: 2, N: 33, Chunk: 16},
		{B: 2, L: 9, H: 2, P: 3, G: 1, N: 4, Chunk: 9},
		{B: 1, L: 5, H: 1, P: 2, G: 1, N: 3, Chunk: 1},
	} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			w := newTwin(t)
			x5, bgn, hpn := d.B*d.L*d.H*d.P, d.B*d.L*d.G*d.N, d.B*d.H*d.P*d.N
			var ac, ag kernels.SSDArgs
			ac.X, ag.X = w.in(x5, 1)
			ac.Dt, ag.Dt = w.in(d.B*d.L*d.H, 0.5)
			ac.DtBias, ag.DtBias = w.in(d.H, 0.5)
			ac.A, ag.A = w.vals(numtest.F32s(numtest.Uniform(w.r, d.H, -2, -0.1)))
			ac.Bm, ag.Bm = w.in(bgn, 1)
			ac.Cm, ag.Cm = w.in(bgn, 1)
			ac.Dskip, ag.Dskip = w.in(d.H, 1)
			ac.H0, ag.H0 = w.in(hpn, 1)
			ac.Dims, ag.Dims = d, d
			yc, yg := w.zeros(x5)
			hc, hg := w.zeros(hpn)
			sc, sg := w.zeros(w.cpu.SSDSavedLen(d))
			w.must(w.cpu.SSD(yc, hc, sc, ac), w.gpu.SSD(yg, hg, sg, ag))
			w.cmp("y", yc, yg, d.L*d.N)
			w.cmp("hLast", hc, hg, d.L)
			dyc, dyg := w.in(x5, 1)
			dhc, dhg := w.in(hpn, 1)
			gc, gg := kernels.SSDGrads{}, kernels.SSDGrads{}
			gc.DX, gg.DX = w.zeros(x5)
			gc.DDt, gg.DDt = w.zeros(d.B * d.L * d.H)
			gc.DDtBias, gg.DDtBias = w.zeros(d.H)
			gc.DA, gg.DA = w.zeros(d.H)
			gc.DBm, gg.DBm = w.zeros(bgn)
			gc.DCm, gg.DCm = w.zeros(bgn)
			gc.DDskip, gg.DDskip = w.zeros(d.H)
			gc.DH0, gg.DH0 = w.zeros(hpn)
			w.must(w.cpu.SSDBackward(gc, dyc, dhc, ac, sc), w.gpu.SSDBackward(gg, dyg, dhg, ag, sg))
			n := d.L * d.N * d.P
			w.cmp("dX", gc.DX, gg.DX, n)
			w.cmp("dDt", gc.DDt, gg.DDt, n)
			w.cmp("dDtBias", gc.DDtBias, gg.DDtBias, d.B*n)
			w.cmp("dA", gc.DA, gg.DA, d.B*n)
			w.cmp("dB", gc.DBm, gg.DBm, n*d.H)
			w.cmp("dC", gc.DCm, gg.DCm, n*d.H)
			w.cmp("dD", gc.DDskip, gg.DDskip, d.B*d.L*d.P)
			w.cmp("dH0", gc.DH0, gg.DH0, n)
			xc, xg := w.in(d.B*d.H*d.P, 1)
			tc, tg := w.in(d.B*d.H, 0.5)
			bc, bg := w.in(d.B*d.G*d.N, 1)
			cc, cg := w.in(d.B*d.G*d.N, 1)
			oc, og := w.zeros(d.B * d.H * d.P)
			w.must(w.cpu.SSDStep(hc, oc, xc, tc, bc, cc, ac), w.gpu.SSDStep(hg, og, xg, tg, bg, cg, ag))
			w.cmp("step y", oc, og, d.N)
			w.cmp("step state", hc, hg, d.L)
		})
	}
}

func TestShapesConv(t *testing.T) {
	for _, d := range []selectivescan.ConvDims{{B: 2, L: 20, D: 40, W: 7}, {B: 1, L: 2, D: 3, W: 5}, {B: 1, L: 3, D: 2, W: 16}} {
		t.Run(d.String(), func(t *testing.T) {
			w := newTwin(t)
			n, ns := d.B*d.L*d.D, d.B*(d.W-1)*d.D
			xc, xg := w.in(n, 1)
			wc, wg := w.in(d.D*d.W, 0.5)
			bc, bg := w.in(d.D, 0.1)
			s0c, s0g := w.in(ns, 1)
			oc, og := w.zeros(n)
			soc, sog := w.zeros(ns)
			w.must(w.cpu.Conv1D(oc, soc, xc, wc, bc, s0c, true, d), w.gpu.Conv1D(og, sog, xg, wg, bg, s0g, true, d))
			w.cmp("out", oc, og, d.W)
			w.cmp("stateOut", soc, sog, 1)
			doc, dog := w.in(n, 1)
			dsc, dsg := w.in(ns, 1)
			dxc, dxg := w.zeros(n)
			dwc, dwg := w.zeros(d.D * d.W)
			dbc, dbg := w.zeros(d.D)
			d0c, d0g := w.zeros(ns)
			w.must(w.cpu.Conv1DBackward(dxc, dwc, dbc, d0c, doc, dsc, xc, wc, bc, s0c, true, d),
				w.gpu.Conv1DBackward(dxg, dwg, dbg, d0g, dog, dsg, xg, wg, bg, s0g, true, d))
			w.cmp("dx", dxc, dxg, d.W)
			w.cmp("dw", dwc, dwg, d.B*d.L)
			w.cmp("dbias", dbc, dbg, d.B*d.L)
			w.cmp("dstate0", d0c, d0g, d.W)
			yc, yg := w.zeros(d.B * d.D)
			x1c, x1g := w.in(d.B*d.D, 1)
			// In place: stateOut is state0 in the step.
			w.must(w.cpu.Conv1DStep(soc, yc, x1c, wc, bc, false, d), w.gpu.Conv1DStep(sog, yg, x1g, wg, bg, false, d))
			w.cmp("step y", yc, yg, d.W)
			w.cmp("step state", soc, sog, 1)
		})
	}
}

func TestShapesRows(t *testing.T) {
	w := newTwin(t)
	const r, v = 5, 600
	lc, lg := w.in(r*v, 3)
	tg := []int32{5, -100, 599, 0, 17}
	sc, sg := w.zeros(r)
	l1, c1, e1 := w.cpu.CrossEntropy(sc, lc, tg, r, v, -100)
	l2, c2, e2 := w.gpu.CrossEntropy(sg, lg, tg, r, v, -100)
	w.must(e1, e2)
	if c1 != c2 || !numtest.F32.Scaled(v).Close(l2, l1) {
		t.Errorf("CrossEntropy = %v over %d, cpu %v over %d", l2, c2, l1, c1)
	}
	w.cmp("lse", sc, sg, v)
	dc, dg := w.zeros(r * v)
	w.must(w.cpu.CrossEntropyBackward(dc, 1.3, lc, tg, sc, r, v, -100), w.gpu.CrossEntropyBackward(dg, 1.3, lg, tg, sg, r, v, -100))
	w.cmp("dlogits", dc, dg, v)

	const rr, d, g = 3, 300, 4
	xc, xg := w.in(rr*d, 2)
	zc, zg := w.in(rr*d, 1)
	wc, wg := w.in(d, 1)
	oc, og := w.zeros(rr * d)
	rc, rg := w.zeros(rr * g)
	w.must(w.cpu.GatedRMSNorm(oc, rc, xc, zc, wc, rr, d, g, 1e-5), w.gpu.GatedRMSNorm(og, rg, xg, zg, wg, rr, d, g, 1e-5))
	w.cmp("gated rms", oc, og, d)
	mc, mg := w.zeros(rr * g)
	bc, bg := w.in(d, 1)
	w.must(w.cpu.GroupNorm(oc, mc, rc, xc, wc, bc, rr, d, g, 1e-5), w.gpu.GroupNorm(og, mg, rg, xg, wg, bg, rr, d, g, 1e-5))
	w.cmp("group norm", oc, og, d)

	big := 5000
	bc2, bg2 := w.in(big, 1)
	s1, e1 := w.cpu.SumSquares(bc2)
	s2, e2 := w.gpu.SumSquares(bg2)
	w.must(e1, e2)
	if !numtest.F32.Scaled(big).Close(s2, s1) {
		t.Errorf("SumSquares = %v, cpu %v", s2, s1)
	}
}

func TestShapesDecode(t *testing.T) {
	w := newTwin(t)
	cd := attention.CacheDims{B: 2, HKV: 2, Dh: 40, Window: 5, Sinks: 2}
	dd := attention.DecodeDims{H: 4}
	host, err := attention.NewKVCache(cd)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := w.gpu.(*Backend).NewKVCache(cd)
	if err != nil {
		t.Fatal(err)
	}
	for step, T := range []int{4, 1, 3, 1} { // the ring wraps
		n := cd.B * T * cd.HKV * cd.Dh
		k := numtest.F32s(numtest.Normal(w.r, n, 1))
		v := numtest.F32s(numtest.Normal(w.r, n, 1))
		if err := host.Append(k, v, T); err != nil {
			t.Fatal(err)
		}
		if err := dev.Append(w.up(w.gpu, k), w.up(w.gpu, v), T); err != nil {
			t.Fatal(err)
		}
		q := numtest.F32s(numtest.Normal(w.r, cd.B*dd.H*cd.Dh, 1))
		want := make([]float32, len(q))
		if err := attention.Decode(want, q, host, dd); err != nil {
			t.Fatal(err)
		}
		o := w.gpu.Alloc(len(q))
		if err := dev.Decode(o, w.up(w.gpu, q), dd); err != nil {
			t.Fatal(err)
		}
		numtest.Check(t, fmt.Sprintf("decode step %d", step), w.down(w.gpu, o), numtest.F64s(want), numtest.F32.Scaled(cd.Sinks+cd.Window).Times(2))
	}
}

// TestShapesStorage: the bf16/fp16-storage variants of SSD and attention against the float32 path
// on the same (rounded) inputs. Both compute in float32, so they differ only by the rounding of
// the stored outputs; the float32 outputs (LSE, dDt, dA, …) agree to float32 tolerance.
func TestShapesStorage(t *testing.T) {
	for _, st := range []Storage{BF16, F16} {
		t.Run(st.String(), func(t *testing.T) {
			w := newTwin(t)
			be := w.gpu.(*Backend)
			half := numtest.Tol{Atol: 1e-5, Rtol: 4.5e-3} // unit roundoff 2^-8
			if st == F16 {
				half = numtest.Tol{Atol: 1e-5, Rtol: 5.5e-4} // unit roundoff 2^-11
			}
			// pair returns random values in a 16-bit buffer and their rounded values in a float32 one.
			pair := func(n int, scale float64) (h, f kernels.Buffer) {
				x := numtest.F32s(numtest.Normal(w.r, n, scale))
				h = be.AllocStorage(n, st)
				if err := be.Upload(h, x); err != nil {
					t.Fatal(err)
				}
				return h, w.up(be, w.down(be, h))
			}
			widen := func(h kernels.Buffer) kernels.Buffer { return w.up(be, w.down(be, h)) }
			cmpH := func(name string, h, f kernels.Buffer, n int) {
				t.Helper()
				numtest.Check(t, name, w.down(be, h), numtest.F64s(w.down(be, f)), half.Scaled(n))
			}
			cmp32 := func(name string, a, b kernels.Buffer, n int) {
				t.Helper()
				numtest.Check(t, name, w.down(be, a), numtest.F64s(w.down(be, b)), numtest.F32.Scaled(n).Times(2))
			}

			ad := attention.Dims{B: 1, L: 20, S: 29, H: 2, HKV: 1, Dh: 40, Causal: true, Window: 8, Sinks: 2}
			nq, nkv := ad.B*ad.L*ad.H*ad.Dh, ad.B*ad.S*ad.HKV*ad.Dh
			qh, qf := pair(nq, 1)
			kh, kf := pair(nkv, 1)
			vh, vf := pair(nkv, 1)
			oh, of := be.AllocStorage(nq, st), be.Alloc(nq)
			lh, lf := be.Alloc(ad.B*ad.H*ad.L), be.Alloc(ad.B*ad.H*ad.L)
			w.must(be.Attention(oh, lh, qh, kh, vh, ad), be.Attention(of, lf, qf, kf, vf, ad))
			cmpH("attention o", oh, of, 1)
			cmp32("attention lse", lh, lf, ad.S)
			doh, dof := pair(nq, 1)
			o32 := widen(oh) // the float32 backward sees the stored (rounded) output
			dqh, dkh, dvh := be.AllocStorage(nq, st), be.AllocStorage(nkv, st), be.AllocStorage(nkv, st)
			dqf, dkf, dvf := be.Alloc(nq), be.Alloc(nkv), be.Alloc(nkv)
			w.must(be.AttentionBackward(dqh, dkh, dvh, doh, qh, kh, vh, oh, lh, ad),
				be.AttentionBackward(dqf, dkf, dvf, dof, qf, kf, vf, o32, lh, ad))
			cmpH("attention dq", dqh, dqf, ad.S)
			cmpH("attention dk", dkh, dkf, ad.L)
			cmpH("attention dv", dvh, dvf, ad.L)

			sd := selectivescan.ScanDims{B: 1, L: 21, D: 4, N: 40, G: 2, Chunk: 8}
			bld, blgn, bdn := sd.B*sd.L*sd.D, sd.B*sd.L*sd.G*sd.N, sd.B*sd.D*sd.N
			var sh16, sfa kernels.ScanArgs
			sh16.U, sfa.U = pair(bld, 1)
			sh16.Delta, sfa.Delta = pair(bld, 0.5)
			sh16.Bm, sfa.Bm = pair(blgn, 1)
			sh16.Cm, sfa.Cm = pair(blgn, 1)
			sh16.Z, sfa.Z = pair(bld, 1)
			sfa.A = w.up(be, numtest.F32s(numtest.Uniform(w.r, sd.D*sd.N, -2, -0.1)))
			sfa.Dskip = w.up(be, numtest.F32s(numtest.Normal(w.r, sd.D, 1)))
			sfa.DeltaBias = w.up(be, numtest.F32s(numtest.Normal(w.r, sd.D, 0.5)))
			sh16.A, sh16.Dskip, sh16.DeltaBias = sfa.A, sfa.Dskip, sfa.DeltaBias
			sh16.Softplus, sfa.Softplus, sh16.Dims, sfa.Dims = true, true, sd, sd
			soh, sof := be.AllocStorage(bld, st), be.Alloc(bld)
			shh, shf := be.Alloc(bdn), be.Alloc(bdn)
			svh, svf := be.Alloc(be.ScanSavedLen(sd)), be.Alloc(be.ScanSavedLen(sd))
			w.must(be.Scan(soh, shh, svh, sh16), be.Scan(sof, shf, svf, sfa))
			cmpH("scan out", soh, sof, 1)
			cmp32("scan hLast", shh, shf, sd.L)
			sdoh, sdof := pair(bld, 1)
			var sgh, sgf kernels.ScanGrads
			sgh.DU, sgf.DU = be.AllocStorage(bld, st), be.Alloc(bld)
			sgh.DDelta, sgf.DDelta = be.AllocStorage(bld, st), be.Alloc(bld)
			sgh.DZ, sgf.DZ = be.AllocStorage(bld, st), be.Alloc(bld)
			sgh.DBm, sgf.DBm = be.AllocStorage(blgn, st), be.Alloc(blgn)
			sgh.DCm, sgf.DCm = be.AllocStorage(blgn, st), be.Alloc(blgn)
			sgh.DA, sgf.DA = be.Alloc(sd.D*sd.N), be.Alloc(sd.D*sd.N)
			w.must(be.ScanBackward(sgh, sdoh, nil, sh16, svh), be.ScanBackward(sgf, sdof, nil, sfa, svf))
			for _, c := range []struct {
				name string
				h, f kernels.Buffer
			}{{"scan dU", sgh.DU, sgf.DU}, {"scan dDelta", sgh.DDelta, sgf.DDelta}, {"scan dZ", sgh.DZ, sgf.DZ},
				{"scan dB", sgh.DBm, sgf.DBm}, {"scan dC", sgh.DCm, sgf.DCm}} {
				cmpH(c.name, c.h, c.f, 1)
			}
			cmp32("scan dA", sgh.DA, sgf.DA, sd.L*sd.N)

			d := selectivescan.SSDDims{B: 1, L: 13, H: 2, P: 8, G: 2, N: 12, Chunk: 8}
			x5, bgn, hpn := d.B*d.L*d.H*d.P, d.B*d.L*d.G*d.N, d.B*d.H*d.P*d.N
			var ah, af kernels.SSDArgs
			ah.X, af.X = pair(x5, 1)
			ah.Bm, af.Bm = pair(bgn, 1)
			ah.Cm, af.Cm = pair(bgn, 1)
			af.Dt = w.up(be, numtest.F32s(numtest.Normal(w.r, d.B*d.L*d.H, 0.5)))
			af.A = w.up(be, numtest.F32s(numtest.Uniform(w.r, d.H, -2, -0.1)))
			af.DtBias = w.up(be, numtest.F32s(numtest.Normal(w.r, d.H, 0.5)))
			af.Dskip = w.up(be, numtest.F32s(numtest.Normal(w.r, d.H, 1)))
			af.H0 = w.up(be, numtest.F32s(numtest.Normal(w.r, hpn, 1)))
			ah.Dt, ah.A, ah.DtBias, ah.Dskip, ah.H0 = af.Dt, af.A, af.DtBias, af.Dskip, af.H0
			ah.Dims, af.Dims = d, d
			yh, yf := be.AllocStorage(x5, st), be.Alloc(x5)
			hh, hf := be.Alloc(hpn), be.Alloc(hpn)
			sh, sf := be.Alloc(be.SSDSavedLen(d)), be.Alloc(be.SSDSavedLen(d))
			w.must(be.SSD(yh, hh, sh, ah), be.SSD(yf, hf, sf, af))
			cmpH("ssd y", yh, yf, 1)
			cmp32("ssd hLast", hh, hf, d.L)
			dyh, dyf := pair(x5, 1)
			var gh, gf kernels.SSDGrads
			gh.DX, gf.DX = be.AllocStorage(x5, st), be.Alloc(x5)
			gh.DBm, gf.DBm = be.AllocStorage(bgn, st), be.Alloc(bgn)
			gh.DCm, gf.DCm = be.AllocStorage(bgn, st), be.Alloc(bgn)
			gh.DDt, gf.DDt = be.Alloc(d.B*d.L*d.H), be.Alloc(d.B*d.L*d.H)
			gh.DA, gf.DA = be.Alloc(d.H), be.Alloc(d.H)
			gh.DH0, gf.DH0 = be.Alloc(hpn), be.Alloc(hpn)
			w.must(be.SSDBackward(gh, dyh, nil, ah, sh), be.SSDBackward(gf, dyf, nil, af, sf))
			n := d.L * d.N * d.P
			cmpH("ssd dX", gh.DX, gf.DX, 1)
			cmpH("ssd dB", gh.DBm, gf.DBm, 1)
			cmpH("ssd dC", gh.DCm, gf.DCm, 1)
			cmp32("ssd dDt", gh.DDt, gf.DDt, n)
			cmp32("ssd dA", gh.DA, gf.DA, n)
			cmp32("ssd dH0", gh.DH0, gf.DH0, n)
		})
	}
}
