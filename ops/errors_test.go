package ops

import (
	"math"
	"strings"
	"testing"
)

// TestBadInputs: every op returns an error naming the op and the argument, and does not panic.
func TestBadInputs(t *testing.T) {
	f := func(n int) []float32 { return make([]float32, n) }
	d := func(n int) []float64 { return make([]float64, n) }
	ce := func(lse, logits []float32, tg []int32, r, v int) error {
		_, _, err := CrossEntropy(lse, logits, tg, r, v, -1)
		return err
	}
	good := AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	bad := func(mod func(*AdamWConfig)) AdamWConfig { c := good; mod(&c); return c }
	cases := []struct {
		name string
		err  error
		want []string // substrings of the message
	}{
		{"Embedding short out", Embedding(f(5), []int32{0, 1}, f(6), 2, 2, 3), []string{"ops.Embedding", "out", "R·D = 6"}},
		{"Embedding id out of range", Embedding(f(6), []int32{0, 2}, f(6), 2, 2, 3), []string{"ids[1] = 2"}},
		{"Embedding negative id", EmbeddingBackward(f(6), f(6), []int32{-1, 0}, 2, 2, 3), []string{"EmbeddingBackward", "ids[0] = -1"}},
		{"Embedding zero D", Embedding(f(0), []int32{0}, f(0), 1, 1, 0), []string{"D = 0"}},
		{"EmbeddingRef ids length", EmbeddingRef(d(6), []int32{0}, d(6), 2, 2, 3), []string{"EmbeddingRef", "ids"}},
		{"Linear w", Linear(f(6), f(4), f(5), nil, 2, 2, 3), []string{"ops.Linear", "w has length 5", "Out·In = 6", "(R=2 In=2 Out=3)"}},
		{"Linear bias", Linear(f(6), f(4), f(6), f(2), 2, 2, 3), []string{"bias"}},
		{"LinearBackward dw", LinearBackward(f(4), f(5), nil, f(6), f(4), f(6), 2, 2, 3), []string{"LinearBackward", "dw"}},
		{"LinearBackward dx", LinearBackward(f(3), f(6), nil, f(6), f(4), f(6), 2, 2, 3), []string{"dx"}},
		{"LinearBackward dbias", LinearBackward(f(4), f(6), f(1), f(6), f(4), f(6), 2, 2, 3), []string{"dbias"}},
		{"MatMul c", MatMul(f(5), f(6), f(9), false, false, 2, 3, 3, false), []string{"MatMul", "c has length 5"}},
		{"MatMul negative", MatMul(f(0), f(0), f(0), false, false, -1, 3, 3, false), []string{"M = -1"}},
		{"RMSNorm rstd", RMSNorm(f(6), f(1), f(6), f(3), 2, 3, 1e-5), []string{"ops.RMSNorm", "rstd", "R = 2"}},
		{"RMSNorm eps", RMSNorm(f(6), f(2), f(6), f(3), 2, 3, 0), []string{"eps"}},
		{"LayerNorm eps -1", LayerNorm(f(6), f(2), f(2), f(6), f(3), nil, 2, 3, -1), []string{"eps = -1"}},
		{"RMSNorm NaN eps", RMSNorm(f(6), f(2), f(6), f(3), 2, 3, float32(math.NaN())), []string{"eps"}},
		{"RMSNormBackward w", RMSNormBackward(f(6), f(3), f(6), f(6), f(2), f(2), 2, 3), []string{"RMSNormBackward", "w has length 2"}},
		{"GatedRMSNorm G", GatedRMSNorm(f(6), f(4), f(6), f(6), f(3), 2, 3, 2, 1e-5), []string{"G = 2 does not divide D = 3"}},
		{"GatedRMSNorm z", GatedRMSNorm(f(8), f(4), f(8), f(7), f(4), 2, 4, 2, 1e-5), []string{"z has length 7"}},
		{"GatedRMSNormBackward dz", GatedRMSNormBackward(f(8), nil, f(4), f(8), f(8), f(8), f(4), f(4), 2, 4, 2), []string{"dz"}},
		{"GatedRMSNormRef G zero", GatedRMSNormRef(d(8), d(4), d(8), d(8), d(4), 2, 4, 0, 1e-5), []string{"G = 0"}},
		{"LayerNorm mean", LayerNorm(f(6), f(3), f(2), f(6), f(3), nil, 2, 3, 1e-5), []string{"LayerNorm", "mean"}},
		{"LayerNorm b", LayerNorm(f(6), f(2), f(2), f(6), f(3), f(2), 2, 3, 1e-5), []string{"b has length 2"}},
		{"GroupNorm rstd", GroupNorm(f(8), f(4), f(2), f(8), f(4), nil, 2, 4, 2, 1e-5), []string{"GroupNorm", "rstd", "R·G = 4"}},
		{"GroupNormBackward db", GroupNormBackward(f(8), f(4), f(1), f(8), f(8), f(4), f(4), f(4), 2, 4, 2), []string{"db"}},
		{"SiLU x", SiLU(f(3), f(2), 3), []string{"ops.SiLU", "x has length 2, want N = 3"}},
		{"Softplus n", Softplus(f(0), f(0), 0), []string{"N = 0"}},
		{"SwiGLUBackward db", SwiGLUBackward(f(3), f(2), f(3), f(3), f(3), 3), []string{"db"}},
		{"Add b", Add(f(3), f(3), f(4), 3), []string{"ops.Add", "b has length 4"}},
		{"AddBackward da", AddBackward(f(2), nil, f(3), 3), []string{"da"}},
		{"Scale out", Scale(f(1), f(3), 3, 2), []string{"out"}},
		{"CrossEntropy logits", ce(f(2), f(5), []int32{0, 1}, 2, 3), []string{"ops.CrossEntropy", "logits has length 5", "R·V = 6"}},
		{"CrossEntropy target", ce(f(2), f(6), []int32{0, 3}, 2, 3), []string{"targets[1] = 3"}},
		{"CrossEntropy negative target", ce(f(2), f(6), []int32{-2, 0}, 2, 3), []string{"targets[0] = -2"}},
		{"CrossEntropy lse", ce(f(1), f(6), []int32{0, 1}, 2, 3), []string{"lse"}},
		{"CrossEntropyBackward dlogits", CrossEntropyBackward(f(5), 1, f(6), []int32{0, 1}, f(2), 2, 3, -1), []string{"CrossEntropyBackward", "dlogits"}},
		{"CrossEntropyFused dlogits", func() error {
			_, _, err := CrossEntropyFused(f(5), f(2), 1, f(6), []int32{0, 1}, 2, 3, -1)
			return err
		}(), []string{"CrossEntropyFused", "dlogits"}},
		{"AdamW v", AdamW(f(3), f(3), f(2), f(3), 3, 1, good), []string{"ops.AdamW", "v has length 2"}},
		{"AdamW step", AdamW(f(3), f(3), f(3), f(3), 3, 0, good), []string{"step = 0"}},
		{"AdamW beta", AdamW(f(3), f(3), f(3), f(3), 3, 1, bad(func(c *AdamWConfig) { c.Beta2 = 1 })), []string{"Beta2"}},
		{"AdamW eps", AdamW(f(3), f(3), f(3), f(3), 3, 1, bad(func(c *AdamWConfig) { c.Eps = 0 })), []string{"Eps"}},
		{"AdamW lr", AdamWRef(d(3), d(3), d(3), d(3), 3, 1, bad(func(c *AdamWConfig) { c.LR = math.Inf(1) })), []string{"AdamWRef", "LR"}},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(c.err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, c.err, w)
			}
		}
	}
}
