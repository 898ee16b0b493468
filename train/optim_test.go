package train

import (
	"math"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/ops"
	"github.com/hybridlab/hybrid/tensor"
)

// Three AdamW steps over a matrix and a vector match ops.AdamWRef, with weight decay applied to
// the matrix only.
func TestAdamW(t *testing.T) {
	be := cpu.New()
	r, _ := numtest.Rand(t)
	w0, b0 := numtest.Normal(r, 6, 1), numtest.Normal(r, 3, 1)
	w, _ := tensor.NewParam(be, "w", numtest.F32s(w0), 2, 3)
	b, _ := tensor.NewParam(be, "b", numtest.F32s(b0), 3)
	c := ops.AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	opt := NewAdamW(be, []*tensor.Tensor{w, b}, c)
	if !Decays(w) || Decays(b) {
		t.Fatal("Decays: want the matrix decayed and the vector not")
	}

	ref := [][]float64{numtest.Round32(w0), numtest.Round32(b0)}
	mv := [][]float64{make([]float64, 6), make([]float64, 6), make([]float64, 3), make([]float64, 3)}
	for step := 1; step <= 3; step++ {
		lr := 0.01 * float64(step)
		gw, gb := numtest.Normal(r, 6, 1), numtest.Normal(r, 3, 1)
		w.ZeroGrad(be)
		b.ZeroGrad(be)
		copy(hostOf(t, w.Grad()), numtest.F32s(gw))
		copy(hostOf(t, b.Grad()), numtest.F32s(gb))
		if err := opt.Update(lr); err != nil {
			t.Fatal(err)
		}
		cw, cb := c, c
		cw.LR, cb.LR, cb.WeightDecay = lr, lr, 0
		ops.AdamWRef(ref[0], mv[0], mv[1], numtest.Round32(gw), 6, step, cw)
		ops.AdamWRef(ref[1], mv[2], mv[3], numtest.Round32(gb), 3, step, cb)
	}
	if opt.Step != 3 {
		t.Errorf("Step = %d, want 3", opt.Step)
	}
	numtest.Check(t, "w", hostOf(t, w.Buf()), ref[0], numtest.F32.Scaled(3))
	numtest.Check(t, "b", hostOf(t, b.Buf()), ref[1], numtest.F32.Scaled(3))
	numtest.Check(t, "m(w)", hostOf(t, opt.M[0]), mv[0], numtest.F32.Scaled(3))
	numtest.Check(t, "v(b)", hostOf(t, opt.V[1]), mv[3], numtest.F32.Scaled(3))

	// With a zero gradient only decay moves parameters: the matrix shrinks, the vector does not.
	w.ZeroGrad(be)
	b.ZeroGrad(be)
	opt = NewAdamW(be, []*tensor.Tensor{w, b}, ops.AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1, WeightDecay: 0.5})
	before := append(append([]float32{}, hostOf(t, w.Buf())...), hostOf(t, b.Buf())...)
	if err := opt.Update(0.1); err != nil {
		t.Fatal(err)
	}
	for i, x := range hostOf(t, w.Buf()) {
		if want := before[i] * 0.95; math.Abs(float64(x-want)) > 1e-6 {
			t.Fatalf("decayed w[%d] = %v, want %v", i, x, want)
		}
	}
	for i, x := range hostOf(t, b.Buf()) {
		if x != before[6+i] {
			t.Fatalf("b[%d] changed from %v to %v: 1-D parameters must not decay", i, before[6+i], x)
		}
	}
}

func TestClipGrads(t *testing.T) {
	be := cpu.New()
	a, _ := tensor.NewParam(be, "a", nil, 2)
	b, _ := tensor.NewParam(be, "b", nil, 1, 2)
	ps := []*tensor.Tensor{a, b}
	for _, p := range ps {
		p.ZeroGrad(be)
	}
	copy(hostOf(t, a.Grad()), []float32{3, 0})
	copy(hostOf(t, b.Grad()), []float32{0, 4})
	norm, err := GradNorm(be, ps)
	if err != nil || norm != 5 {
		t.Fatalf("GradNorm = %v, %v; want 5", norm, err)
	}
	if err := ClipGrads(be, ps, norm, 10); err != nil { // under the limit: untouched
		t.Fatal(err)
	}
	if g := hostOf(t, a.Grad()); g[0] != 3 {
		t.Fatalf("clipped below the limit: %v", g)
	}
	if err := ClipGrads(be, ps, norm, 1); err != nil {
		t.Fatal(err)
	}
	after, _ := GradNorm(be, ps)
	if math.Abs(after-1) > 1e-6 {
		t.Errorf("norm after clipping to 1 = %v", after)
	}
	numtest.Check(t, "a", hostOf(t, a.Grad()), []float64{3 / (5 + 1e-6), 0}, numtest.F32)
}

func TestFirstNonFinite(t *testing.T) {
	be := cpu.New()
	a, _ := tensor.NewParam(be, "a", nil, 3)
	b, _ := tensor.NewParam(be, "b", nil, 3)
	c, _ := tensor.NewParam(be, "c", nil, 3)
	ps := []*tensor.Tensor{a, b, c}
	for _, p := range ps {
		p.ZeroGrad(be)
	}
	if name, _, err := FirstNonFinite(be, ps); name != "" || err != nil {
		t.Fatalf("all finite: got %q, %v", name, err)
	}
	hostOf(t, b.Grad())[2] = float32(math.Inf(-1))
	hostOf(t, c.Grad())[0] = float32(math.NaN())
	if name, i, err := FirstNonFinite(be, ps); name != "b" || i != 2 || err != nil {
		t.Fatalf("got %q[%d], %v; want b[2]", name, i, err)
	}
}
