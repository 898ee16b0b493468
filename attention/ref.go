package attention

// Float64 references (the oracles): the definitional math with the full L×S score matrix per
// (batch, head), in plain loops. Same shapes and glossary as flash.go.

import "math"

// refProbs returns the softmax probabilities (L×S, masked entries 0) of batch b, head h and
// each row's log-sum-exp.
func refProbs(q, k []float64, b, h int, d Dims) (p, lse []float64) {
	scale := float64(d.scale())
	g := h / d.rep()
	p = make([]float64, d.L*d.S)
	lse = make([]float64, d.L)
	for i := range d.L {
		row := p[i*d.S : (i+1)*d.S]
		qi := q[((b*d.L+i)*d.H+h)*d.Dh:][:d.Dh]
		m := math.Inf(-1)
		for j := range d.S {
			if !d.visible(d.S-d.L+i, j) {
				row[j] = math.Inf(-1)
				continue
			}
			kj := k[((b*d.S+j)*d.HKV+g)*d.Dh:][:d.Dh]
			s := 0.0
			for c := range qi {
				s += qi[c] * kj[c]
			}
			row[j] = s * scale
			m = math.Max(m, row[j])
		}
		sum := 0.0
		for j := range row {
			row[j] = math.Exp(row[j] - m)
			sum += row[j]
		}
		for j := range row {
			row[j] /= sum
		}
		lse[i] = m + math.Log(sum)
	}
	return p, lse
}

// Ref is Forward in float64: o (B, L, H, Dh) and lse (B, H, L) assigned.
func Ref(o, lse []float64, q, k, v []float64, d Dims) error {
	if err := checkAll("Ref", d,
		map[string][]float64{"o": o, "q": q}, map[string][]float64{"k": k, "v": v},
		map[string][]float64{"lse": lse}); err != nil {
		return err
	}
	g0 := d.rep()
	for b := range d.B {
		for h := range d.H {
			p, ls := refProbs(q, k, b, h, d)
			copy(lse[(b*d.H+h)*d.L:], ls)
			for i := range d.L {
				oi := o[((b*d.L+i)*d.H+h)*d.Dh:][:d.Dh]
				clear(oi)
				for j, pij := range p[i*d.S : (i+1)*d.S] {
					vj := v[((b*d.S+j)*d.HKV+h/g0)*d.Dh:][:d.Dh]
					for c := range oi {
						oi[c] += pij * vj[c]
					}
				}
			}
		}
	}
	return nil
}

// RefBackward is Backward in float64, from the definitional chain rule through the full
// softmax (it needs no saved tensors): dq, dk, dv assigned.
func RefBackward(dq, dk, dv []float64, do, q, k, v []float64, d Dims) error {
	if err := checkAll("RefBackward", d,
		map[string][]float64{"dq": dq, "do": do, "q": q},
		map[string][]float64{"dk": dk, "dv": dv, "k": k, "v": v}, nil); err != nil {
		return err
	}
	scale := float64(d.scale())
	clear(dq)
	clear(dk)
	clear(dv)
	dp := make([]float64, d.S)
	for b := range d.B {
		for h := range d.H {
			g := h / d.rep()
			p, _ := refProbs(q, k, b, h, d)
			for i := range d.L {
				off := ((b*d.L+i)*d.H + h) * d.Dh
				doi, qi, dqi := do[off:][:d.Dh], q[off:][:d.Dh], dq[off:][:d.Dh]
				pi := p[i*d.S : (i+1)*d.S]
				delta := 0.0
				for j := range d.S {
					vj := v[((b*d.S+j)*d.HKV+g)*d.Dh:][:d.Dh]
					s := 0.0
					for c := range doi {
						s += doi[c] * vj[c]
					}
					dp[j] = s
					delta += pi[j] * s
				}
				for j := range d.S {
					koff := ((b*d.S+j)*d.HKV + g) * d.Dh
					kj, dkj, dvj := k[koff:][:d.Dh], dk[koff:][:d.Dh], dv[koff:][:d.Dh]
					ds := pi[j] * (dp[j] - delta) * scale
					for c := range doi {
						dvj[c] += pi[j] * doi[c]
						dqi[c] += ds * kj[c]
						dkj[c] += ds * qi[c]
					}
				}
			}
		}
	}
	return nil
}
