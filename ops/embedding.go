package ops

import "github.com/hybridlab/hybrid/internal/par"

// Shapes: R rows (tokens), V table rows (vocabulary), D channels.

func checkEmbedding(op string, out, table int, ids []int32, r, v, d int) error {
	c := newCheck(op, size{"R", r}, size{"V", v}, size{"D", d})
	c.positive()
	c.length("ids", len(ids), "R", r)
	c.length("table", table, "V·D", v*d)
	c.length("out", out, "R·D", r*d)
	if c.err == nil {
		for i, id := range ids {
			if id < 0 || int(id) >= v {
				c.fail("ids[%d] = %d out of range [0, V)", i, id)
				break
			}
		}
	}
	return c.err
}

// Embedding gathers rows: out[r] = table[ids[r]].
//
//	out   (R, D)  output
//	ids   (R)     token ids in [0, V)
//	table (V, D)
func Embedding(out []float32, ids []int32, table []float32, r, v, d int) error {
	if err := checkEmbedding("Embedding", len(out), len(table), ids, r, v, d); err != nil {
		return err
	}
	par.For(r, rowGrain(d), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			id := int(ids[i])
			copy(out[i*d:(i+1)*d], table[id*d:(id+1)*d])
		}
	})
	return nil
}

// EmbeddingBackward accumulates dtable[ids[r]] += dout[r] (repeated ids add up).
//
//	dtable (V, D)  parameter gradient, accumulated
//	dout   (R, D)
//	ids    (R)
func EmbeddingBackward(dtable, dout []float32, ids []int32, r, v, d int) error {
	if err := checkEmbedding("EmbeddingBackward", len(dout), len(dtable), ids, r, v, d); err != nil {
		return err
	}
	// Repeated ids collide across rows, so cores split the channels instead: every core walks all
	// rows over its own column range.
	grain := d
	if r*d >= 2*minWork {
		grain = max(16, d/par.Workers())
	}
	par.For(d, grain, func(lo, hi int) {
		for i := range r {
			id := int(ids[i])
			dst := dtable[id*d+lo : id*d+hi]
			src := dout[i*d+lo : i*d+hi]
			for j := range dst {
				dst[j] += src[j]
			}
		}
	})
	return nil
}

// EmbeddingRef is the float64 reference of Embedding.
func EmbeddingRef(out []float64, ids []int32, table []float64, r, v, d int) error {
	if err := checkEmbedding("EmbeddingRef", len(out), len(table), ids, r, v, d); err != nil {
		return err
	}
	for i := range r {
		for j := range d {
			out[i*d+j] = table[int(ids[i])*d+j]
		}
	}
	return nil
}

// EmbeddingBackwardRef is the float64 reference of EmbeddingBackward.
func EmbeddingBackwardRef(dtable, dout []float64, ids []int32, r, v, d int) error {
	if err := checkEmbedding("EmbeddingBackwardRef", len(dout), len(dtable), ids, r, v, d); err != nil {
		return err
	}
	for i := range r {
		for j := range d {
			dtable[int(ids[i])*d+j] += dout[i*d+j]
		}
	}
	return nil
}
