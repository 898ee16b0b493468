package ops

import (
	"math"

	"github.com/hybridlab/hybrid/internal/fmath"
)

// Shapes: R rows (scored positions), V vocabulary.
// Saved for backward: lse (R), the log-sum-exp of each row (0 for ignored rows).

func checkCE(op, outName string, out int, lse, logits int, targets []int32, r, v int, ignore int32) error {
	c := newCheck(op, size{"R", r}, size{"V", v})
	c.positive()
	if out >= 0 {
		c.length(outName, out, "R·V", r*v)
	}
	c.length("logits", logits, "R·V", r*v)
	c.length("targets", len(targets), "R", r)
	c.length("lse", lse, "R", r)
	if c.err == nil {
		for i, t := range targets {
			if t != ignore && (t < 0 || int(t) >= v) {
				c.fail("targets[%d] = %d out of range [0, V) and not the ignore index %d", i, t, ignore)
				break
			}
		}
	}
	return c.err
}

// CrossEntropy computes the mean over scored rows of −log softmax(logits[r])[targets[r]]; rows whose
// target is ignore (e.g. −1, padding) are not scored. It returns the loss and the number of scored
// rows; with none, loss is 0 and count 0. Stable for any finite logits (max subtracted).
//
//	lse     (R)     saved: log Σ_v exp(logits[r, v]), 0 for ignored rows
//	logits  (R, V)
//	targets (R)     in [0, V) or ignore
func CrossEntropy(lse, logits []float32, targets []int32, r, v int, ignore int32) (loss float64, count int, err error) {
	if err := checkCE("CrossEntropy", "", -1, len(lse), len(logits), targets, r, v, ignore); err != nil {
		return 0, 0, err
	}
	k := chunks(r, v)
	sums := make([]float64, k)
	forChunks(r, k, func(ci, lo, hi int) {
		s := 0.0
		for i := lo; i < hi; i++ {
			t := targets[i]
			if t == ignore {
				lse[i] = 0
				continue
			}
			row := logits[i*v : (i+1)*v]
			m, e := maxSumExp(row)
			ls := math.Log(float64(e))
			lse[i] = float32(float64(m) + ls)
			s += float64(m) - float64(row[t]) + ls // in float64: no rounding of lse at large logits
		}
		sums[ci] = s
	})
	for _, t := range targets {
		if t != ignore {
			count++
		}
	}
	if count == 0 {
		return 0, 0, nil
	}
	for _, s := range sums {
		loss += s
	}
	return loss / float64(count), count, nil
}

// maxSumExp returns m = max(row) and Σ exp(row − m), so that log Σ exp(row) = m + log(Σ).
func maxSumExp(row []float32) (m, sum float32) {
	m = row[0]
	for _, x := range row[1:] {
		if x > m {
			m = x
		}
	}
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(row); i += 2 {
		s0 += fmath.Exp(row[i] - m)
		s1 += fmath.Exp(row[i+1] - m)
	}
	if i < len(row) {
		s0 += fmath.Exp(row[i] - m)
	}
	return m, s0 + s1
}

// CrossEntropyBackward writes dlogits = dloss·(softmax(logits) − onehot(target))/count for scored rows
// and 0 for ignored rows, count being the number of scored rows (the loss is a mean). dlogits may be
// logits itself (in place, saving an (R, V) buffer).
//
//	dlogits (R, V)  assigned
//	dloss   scalar  gradient of the mean loss
//	logits  (R, V)
//	targets (R)
//	lse     (R)     from CrossEntropy
func CrossEntropyBackward(dlogits []float32, dloss float32, logits []float32, targets []int32, lse []float32, r, v int, ignore int32) error {
	if err := checkCE("CrossEntropyBackward", "dlogits", len(dlogits), len(lse), len(logits), targets, r, v, ignore); err != nil {
		return err
	}
	count := 0
	for _, t := range targets {
		if t != ignore {
			count++
		}
	}
	scale := float32(0)
	if count > 0 {
		scale = dloss / float32(count)
	}
	forChunks(r, chunks(r, v), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			d := dlogits[i*v : (i+1)*v]
			t := targets[i]
			if t == ignore {
				clear(d)
				continue
			}
			row, l := logits[i*v:(i+1)*v], lse[i]
			d = d[:len(row)]
			for j, x := range row {
				d[j] = fmath.Exp(x-l) * scale
			}
			d[t] -= scale
		}
	})
	return nil
}

// CrossEntropyFused is CrossEntropy and CrossEntropyBackward in one pass over the logits, for a
// training step whose dloss is known before the forward (1, or 1/micro-batches): it computes each
// exponential once instead of twice and reads the logits once. Results equal the two-call path up
// to rounding. dlogits may be logits itself.
//
//	dlogits (R, V)  assigned, as CrossEntropyBackward
//	lse     (R)     as CrossEntropy
//	dloss   scalar
//	logits  (R, V)
//	targets (R)     in [0, V) or ignore
func CrossEntropyFused(dlogits, lse []float32, dloss float32, logits []float32, targets []int32, r, v int, ignore int32) (loss float64, count int, err error) {
	if err := checkCE("CrossEntropyFused", "dlogits", len(dlogits), len(lse), len(logits), targets, r, v, ignore); err != nil {
		return 0, 0, err
	}
	for _, t := range targets {
		if t != ignore {
			count++
		}
	}
	if count == 0 { // nothing scored: zero gradient, zero loss
		clear(dlogits)
		clear(lse)
		return 0, 0, nil
	}
	scale := dloss / float32(count)
	k := chunks(r, v)
	sums := make([]float64, k)
	forChunks(r, k, func(ci, lo, hi int) {
		s := 0.0
		for i := lo; i < hi; i++ {
			d := dlogits[i*v : (i+1)*v]
			t := targets[i]
			if t == ignore {
				lse[i] = 0
				clear(d)
				continue
			}
			row := logits[i*v : (i+1)*v]
			d = d[:len(row)]
			m, xt := row[0], row[t] // xt before d (maybe row) is overwritten
			for _, x := range row[1:] {
				m = max(m, x)
			}
			var e float32
			for j, x := range row { // stage exp(x − m) in d
				p := fmath.Exp(x - m)
				d[j] = p
				e += p
			}
			ls := math.Log(float64(e))
			lse[i] = float32(float64(m) + ls)
			s += float64(m) - float64(xt) + ls
			f := scale / e
			for j := range d {
				d[j] *= f
			}
			d[t] -= scale
		}
		sums[ci] = s
	})
	for _, s := range sums {
		loss += s
	}
	return loss / float64(count), count, nil
}

// CrossEntropyRef is the float64 reference of CrossEntropy.
func CrossEntropyRef(lse, logits []float64, targets []int32, r, v int, ignore int32) (loss float64, count int, err error) {
	if err := checkCE("CrossEntropyRef", "", -1, len(lse), len(logits), targets, r, v, ignore); err != nil {
		return 0, 0, err
	}
	for i := range r {
		t := targets[i]
		if t == ignore {
			lse[i] = 0
			continue
		}
		row := logits[i*v : (i+1)*v]
		m := math.Inf(-1)
		for _, x := range row {
			m = math.Max(m, x)
		}
		s := 0.0
		for _, x := range row {
			s += math.Exp(x - m)
		}
		lse[i] = m + math.Log(s)
		loss += lse[i] - row[t]
		count++
	}
	if count == 0 {
		return 0, 0, nil
	}
	return loss / float64(count), count, nil
}

// CrossEntropyBackwardRef is the float64 reference of CrossEntropyBackward.
func CrossEntropyBackwardRef(dlogits []float64, dloss float64, logits []float64, targets []int32, lse []float64, r, v int, ignore int32) error {
	if err := checkCE("CrossEntropyBackwardRef", "dlogits", len(dlogits), len(lse), len(logits), targets, r, v, ignore); err != nil {
		return err
	}
	count := 0
	for _, t := range targets {
		if t != ignore {
			count++
		}
	}
	for i := range r {
		for j := range v {
			dlogits[i*v+j] = 0
			if targets[i] == ignore {
				continue
			}
			p := math.Exp(logits[i*v+j] - lse[i])
			if j == int(targets[i]) {
				p--
			}
			dlogits[i*v+j] = p * dloss / float64(count)
		}
	}
	return nil
}
