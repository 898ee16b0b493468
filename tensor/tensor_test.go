package tensor_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/tensor"
)

// net is a tiny hybrid-shaped graph touching every op: embedding → RMSNorm → in-projection
// split into Mamba-2 pieces → conv1d → SSD → gated norm, an attention branch with GroupNorm,
// diff fusion, a Mamba-1 scan, SwiGLU, LayerNorm, residuals, a head and cross-entropy.
type net struct {
	be     kernels.Backend
	params map[string]*tensor.Tensor
	order  []string
	ids    []int32
	tgts   []int32
}

const (
	bsz, seq, dm, vocab = 2, 7, 8, 11
	heads, hd, nst      = 2, 4, 3
)

func newNet(t *testing.T, r *rand.Rand) *net {
	n := &net{be: cpu.New(), params: map[string]*tensor.Tensor{}}
	add := func(name string, scale, offset float64, shape ...int) {
		size := 1
		for _, s := range shape {
			size *= s
		}
		v := numtest.Normal(r, size, scale)
		for i := range v {
			v[i] += offset
		}
		p, err := tensor.NewParam(n.be, name, numtest.F32s(v), shape...)
		if err != nil {
			t.Fatal(err)
		}
		n.params[name] = p
		n.order = append(n.order, name)
	}
	din := heads * hd
	add("emb", 1, 0, vocab, dm)
	add("norm", 0.1, 1, dm)
	add("in", 0.2, 0, din+din+2*nst+heads, dm) // z, x, B, C, Δ
	add("conv", 0.3, 0, din, 3)
	add("convb", 0.1, 0, din)
	add("dtb", 0.3, 0, heads)
	add("A", 0.1, -0.7, heads)
	add("D", 0.5, 0, heads)
	add("gn", 0.1, 1, din)
	add("q", 0.2, 0, heads*hd, dm)
	add("k", 0.2, 0, hd, dm)
	add("v", 0.2, 0, hd, dm)
	add("grpw", 0.1, 1, din)
	add("grpb", 0.1, 0, din)
	add("A1", 0.1, -1, din, nst)
	add("bc1", 0.2, 0, 2*nst, din)
	add("up", 0.2, 0, 2*dm, din)
	add("lnw", 0.1, 1, dm)
	add("lnb", 0.1, 0, dm)
	for range bsz * seq {
		n.ids = append(n.ids, int32(r.IntN(vocab)))
		n.tgts = append(n.tgts, int32(r.IntN(vocab)))
	}
	n.tgts[3] = -1
	return n
}

func (n *net) forward(tp *tensor.Tape) *tensor.Tensor {
	p := n.params
	din := heads * hd
	x := tp.Embedding(n.ids, p["emb"], bsz, seq)
	h := tp.RMSNorm(x, p["norm"], 1e-5)
	parts := tp.Split(tp.Linear(h, p["in"], nil), din, din, nst, nst, heads)
	z, xs, bm, cm, dt := parts[0], parts[1], parts[2], parts[3], parts[4]
	xs = tp.Conv1D(xs, p["conv"], p["convb"], true)
	y := tp.SSD(tensor.SSDInputs{
		X: tp.Reshape(xs, bsz, seq, heads, hd), Dt: dt, DtBias: p["dtb"], A: p["A"],
		Bm: tp.Reshape(bm, bsz, seq, 1, nst), Cm: tp.Reshape(cm, bsz, seq, 1, nst), Dskip: p["D"], Chunk: 3})
	m := tp.GatedRMSNorm(tp.Reshape(y, bsz, seq, din), z, p["gn"], 2, 1e-5)
	q := tp.RoPE(tp.Reshape(tp.Linear(h, p["q"], nil), bsz, seq, heads, hd), 0, 10000)
	k := tp.RoPE(tp.Reshape(tp.Linear(h, p["k"], nil), bsz, seq, 1, hd), 0, 10000)
	v := tp.Reshape(tp.Linear(h, p["v"], nil), bsz, seq, 1, hd)
	a := tp.Reshape(tp.Attention(q, k, v, tensor.AttentionOptions{Causal: true}), bsz, seq, din)
	a = tp.GroupNorm(a, p["grpw"], p["grpb"], heads, 1e-5)
	f := tp.Scale(tp.Sub(m, a), 0.5)
	bc := tp.Split(tp.Linear(f, p["bc1"], nil), nst, nst)
	s := tp.SelectiveScan(tensor.ScanInputs{U: f, Delta: tp.Softplus(f), A: p["A1"],
		Bm: tp.Reshape(bc[0], bsz, seq, 1, nst), Cm: tp.Reshape(bc[1], bsz, seq, 1, nst), Z: tp.SiLU(f), Groups: 1, Chunk: 2})
	s = tp.Mul(s, f)
	g := tp.Split(tp.Linear(s, p["up"], nil), dm, dm)
	x = tp.Add(x, tp.SwiGLU(g[0], g[1]))
	x = tp.LayerNorm(tp.Concat(x), p["lnw"], p["lnb"], 1e-5)
	logits := tp.Linear(x, p["emb"], nil) // tied head
	loss, _ := tp.CrossEntropy(logits, n.tgts, -1)
	return loss
}

func (n *net) loss(t *testing.T, tp *tensor.Tape) float64 {
	tp.Reset()
	l := n.forward(tp)
	if err := tp.Err(); err != nil {
		t.Fatal(err)
	}
	v := make([]float32, 1)
	if err := n.be.Download(v, l.Buf()); err != nil {
		t.Fatal(err)
	}
	return float64(v[0])
}

func TestGradientsMatchFiniteDifferences(t *testing.T) {
	r, _ := numtest.Rand(t)
	n := newNet(t, r)
	tp := tensor.NewTape(n.be)
	loss := n.forward(tp)
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	for _, name := range n.order {
		p := n.params[name]
		host, _ := kernels.Host(p.Buf())
		grad, _ := kernels.Host(p.Grad())
		// Check a handful of entries per parameter: float32 forward passes, h = 1e-2.
		idx := r.Perm(p.Size())[:min(4, p.Size())]
		got, want := make([]float64, len(idx)), make([]float64, len(idx))
		for j, i := range idx {
			old := host[i]
			host[i] = old + fdH
			fp := n.loss(t, tp)
			host[i] = old - fdH
			fm := n.loss(t, tp)
			host[i] = old
			want[j] = (fp - fm) / (2 * float64(fdH))
			got[j] = float64(grad[i])
		}
		// Loose: central differences of a float32 forward (error ~ ε₃₂·|loss|/h plus O(h²)).
		numtest.Check(t, name, got, want, numtest.Tol{Atol: 3e-3, Rtol: 3e-2})
	}
}

func TestStepReusesMemory(t *testing.T) {
	r, _ := numtest.Rand(t)
	n := newNet(t, r)
	tp := tensor.NewTape(n.be)
	step := func() {
		tp.Reset()
		for _, p := range n.params {
			p.ZeroGrad(n.be)
		}
		if err := tp.Backward(n.forward(tp)); err != nil {
			t.Fatal(err)
		}
	}
	step()
	a1, _ := tp.PoolStats()
	for range 3 {
		step()
	}
	a2, reuses := tp.PoolStats()
	if a2 != a1 {
		t.Fatalf("steps after the first allocated %d new buffers", a2-a1)
	}
	if reuses == 0 {
		t.Fatal("pool never reused a buffer")
	}
	t.Logf("pool: %d buffers allocated in step 1, %d reuses over 3 more steps", a1, reuses)
}

func TestGradientsAccumulate(t *testing.T) {
	r, _ := numtest.Rand(t)
	n := newNet(t, r)
	tp := tensor.NewTape(n.be)
	if err := tp.Backward(n.forward(tp)); err != nil {
		t.Fatal(err)
	}
	g1, _ := kernels.Host(n.params["q"].Grad())
	once := append([]float32(nil), g1...)
	tp.Reset()
	if err := tp.Backward(n.forward(tp)); err != nil {
		t.Fatal(err)
	}
	g2, _ := kernels.Host(n.params["q"].Grad())
	twice := make([]float64, len(once))
	for i := range once {
		twice[i] = 2 * float64(once[i])
	}
	numtest.Check(t, "accumulated grad", g2, twice, numtest.F32)
}

func TestNoGrad(t *testing.T) {
	r, _ := numtest.Rand(t)
	n := newNet(t, r)
	tp := tensor.NewTape(n.be)
	tp.SetNoGrad(true)
	loss := n.forward(tp)
	if tp.Err() != nil {
		t.Fatal(tp.Err())
	}
	if err := tp.Backward(loss); err == nil {
		t.Fatal("Backward in no-grad mode did not fail")
	}
	for name, p := range n.params {
		if p.Grad() != nil {
			t.Fatalf("%s got a gradient in no-grad mode", name)
		}
	}
}

func TestShapeErrorsAreSticky(t *testing.T) {
	be := cpu.New()
	tp := tensor.NewTape(be)
	x := tp.Constant("x", make([]float32, 6), 2, 3)
	w, _ := tensor.NewParam(be, "w", nil, 4, 5)
	y := tp.Linear(x, w, nil)
	z := tp.SiLU(y) // runs after the failure: must not panic, must keep the first error
	_ = z
	err := tp.Err()
	if err == nil || !strings.Contains(err.Error(), "Linear") || !strings.Contains(err.Error(), "(2,3)") {
		t.Fatalf("error = %v, want one naming Linear and x's shape", err)
	}
	if tp.Backward(z) == nil {
		t.Fatal("Backward after a failed op did not fail")
	}
	tp.Reset()
	if tp.Err() != nil {
		t.Fatal("Reset kept the error")
	}
	if _, err := tensor.NewParam(be, "bad", nil, 0, 3); err == nil {
		t.Fatal("zero-sized parameter accepted")
	}
}

var fdH float32 = 2e-3
