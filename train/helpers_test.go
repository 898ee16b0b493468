package train

import (
	"math/rand/v2"
	"testing"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/tensor"
)

// tiny is a bigram language model: embedding (V, D) → linear (V, D) + bias (V) → cross-entropy.
// The bias is one-dimensional, so weight decay skips it.
type tiny struct {
	emb, w, b *tensor.Tensor
}

const tinyV, tinyD = 16, 8

func newTiny(t testing.TB, be kernels.Backend, seed uint64) *tiny {
	r := rand.New(rand.NewPCG(seed, 1))
	randn := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * s)
		}
		return v
	}
	m := &tiny{}
	var err error
	if m.emb, err = tensor.NewParam(be, "emb", randn(tinyV*tinyD, 1), tinyV, tinyD); err != nil {
		t.Fatal(err)
	}
	if m.w, err = tensor.NewParam(be, "head.w", randn(tinyV*tinyD, 0.3), tinyV, tinyD); err != nil {
		t.Fatal(err)
	}
	if m.b, err = tensor.NewParam(be, "head.b", randn(tinyV, 0.1), tinyV); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *tiny) Params() []*tensor.Tensor { return []*tensor.Tensor{m.emb, m.w, m.b} }

func (m *tiny) Loss(tp *tensor.Tape, ids, targets []int32, B, T int) (*tensor.Tensor, int) {
	x := tp.Embedding(ids, m.emb, B, T) // (B, T, D)
	logits := tp.Linear(x, m.w, m.b)    // (B, T, V)
	return tp.CrossEntropy(logits, targets, -1)
}

// markov returns a stream of n tokens from a seeded random walk that mostly steps by +1 or +3,
// so a bigram model can learn it.
func markov(t testing.TB, n int) *data.Stream {
	r := rand.New(rand.NewPCG(7, 7))
	ids := make([]int32, n)
	for i := 1; i < n; i++ {
		switch x := r.IntN(10); {
		case x < 6:
			ids[i] = (ids[i-1] + 1) % tinyV
		case x < 9:
			ids[i] = (ids[i-1] + 3) % tinyV
		default:
			ids[i] = int32(r.IntN(tinyV))
		}
	}
	s, err := data.NewStream(ids, tinyV)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testRecipe is a short run: 6 steps, warmup 2, cosine, clipping on, checkpoints every 3.
func testRecipe() recipes.Train {
	tr := recipes.Default().Train
	tr.Optimizer.LR = 3e-2
	tr.Schedule = recipes.Schedule{Kind: "cosine", Warmup: 2, MinLRRatio: 0.1}
	tr.GradClip = 0.5
	tr.Budget = recipes.Budget{Steps: 6}
	tr.EvalEvery = 3
	tr.CheckpointEvery = 3
	tr.LogEvery = 1
	tr.Seed = 11
	return tr
}

// setup returns a fresh backend, model and loaders, as a new process would build them.
func setup(t testing.TB, modelSeed uint64) (kernels.Backend, *tiny, *data.Loader, *data.Eval) {
	be := cpu.New()
	s := markov(t, 4000)
	ld, err := data.NewLoader(s, 4, 8, 11)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := data.NewEval(markov(t, 300), 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	return be, newTiny(t, be, modelSeed), ld, ev
}

func hostOf(t testing.TB, b kernels.Buffer) []float32 {
	h, ok := kernels.Host(b)
	if !ok {
		t.Fatal("not a host buffer")
	}
	return h
}
