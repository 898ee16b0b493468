package ops

import (
	"fmt"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

func TestEmbeddingMatchesReference(t *testing.T) {
	// The last size takes the parallel (column-split) backward.
	for _, sz := range [][3]int{{1, 1, 1}, {1, 7, 3}, {9, 5, 33}, {200, 11, 171}} {
		r, v, d := sz[0], sz[1], sz[2]
		t.Run(fmt.Sprintf("R=%d/V=%d/D=%d", r, v, d), func(t *testing.T) {
			rng, _ := numtest.Rand(t)
			ids := make([]int32, r)
			for i := range ids {
				ids[i] = int32(rng.IntN(v)) // repeats are likely: they must add up
			}
			table, dout, dt0 := randn(rng, v*d, 1), randn(rng, r*d, 1), randn(rng, v*d, 1)
			out, dt := make([]float64, r*d), clone64(dt0)
			must(t, EmbeddingRef(out, ids, table, r, v, d))
			must(t, EmbeddingBackwardRef(dt, dout, ids, r, v, d))
			out32, dt32 := make([]float32, r*d), f32s(dt0)
			must(t, Embedding(out32, ids, f32s(table), r, v, d))
			must(t, EmbeddingBackward(dt32, f32s(dout), ids, r, v, d))
			numtest.Check(t, "out", out32, out, numtest.Tol{}) // a copy: exact
			numtest.Check(t, "dtable", dt32, dt, numtest.F32.Scaled(r))
		})
	}
}

func TestEmbeddingFiniteDifferences(t *testing.T) {
	rng, _ := numtest.Rand(t)
	const r, v, d = 5, 4, 3
	ids := []int32{1, 3, 1, 0, 1}
	table, cot := randn(rng, v*d, 1), randn(rng, r*d, 1)
	dt := make([]float64, v*d)
	must(t, EmbeddingBackwardRef(dt, cot, ids, r, v, d))
	out := make([]float64, r*d)
	loss := func() float64 {
		must(t, EmbeddingRef(out, ids, table, r, v, d))
		return numtest.Dot(out, cot)
	}
	fdCheck(t, "Embedding", loss, grad{"table", table, dt})
}
