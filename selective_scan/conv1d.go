package selectivescan

// Causal depthwise conv1d (the short convolution before the scan), token-major.
//
// Glossary: B batch, L tokens, D channels, W taps per channel (usually 2–4).
//
// With xpad the input preceded by the W−1 previous inputs (state0, or zeros):
//
//	pre[b,t,d] = bias[d] + Σ_k w[d,k]·xpad[b, t−(W−1)+k, d]
//	out        = silu(pre) when silu is set, else pre
//
// The final state (B, W−1, D) is the last W−1 entries of xpad (oldest first), the decode cache.
// The kernels work on rows of D contiguous channels with the weights transposed to (W, D), and
// split (batch, token block) tasks over the workers; the conv is memory-bound (W flops per byte).

import (
	"fmt"
	"math"

	"github.com/hybridlab/hybrid/internal/par"
	"github.com/hybridlab/hybrid/internal/vmath"
)

// ConvDims are the sizes of a causal conv1d.
type ConvDims struct{ B, L, D, W int }

func (d ConvDims) String() string { return fmt.Sprintf("(B=%d L=%d D=%d W=%d)", d.B, d.L, d.D, d.W) }

func (d ConvDims) check(op string) error {
	if d.B < 1 || d.L < 1 || d.D < 1 || d.W < 1 {
		return fmt.Errorf("%s: sizes must be ≥ 1 %v", op, d)
	}
	return nil
}

func convCheckParams[T float32 | float64](op string, w, bias, state0 []T, d ConvDims) error {
	return scanCheckBufs(op, d,
		scanArg("w", w, false, "D·W", d.D*d.W),
		scanArg("bias", bias, true, "D", d.D),
		scanArg("state0", state0, true, "B·(W−1)·D", d.B*(d.W-1)*d.D))
}

// Conv1DForward computes out (B, L, D) from x (B, L, D), w (D, W), bias (D, optional) and state0
// (B, W−1, D, optional: the W−1 inputs before x, nil = zeros), applying SiLU when silu is set.
// stateOut (B, W−1, D, optional) receives the last W−1 inputs; it may be the same slice as state0.
// Nothing needs saving for Conv1DBackward beyond the inputs.
func Conv1DForward(out, stateOut []float32, x, w, bias, state0 []float32, silu bool, d ConvDims) error {
	const op = "selectivescan.Conv1DForward"
	if err := d.check(op); err != nil {
		return err
	}
	bld := d.B * d.L * d.D
	if err := scanCheckBufs(op, d, scanArg("out", out, false, "B·L·D", bld),
		scanArg("stateOut", stateOut, true, "B·(W−1)·D", d.B*(d.W-1)*d.D),
		scanArg("x", x, false, "B·L·D", bld)); err != nil {
		return err
	}
	if err := convCheckParams(op, w, bias, state0, d); err != nil {
		return err
	}
	convForward(out, stateOut, x, w, bias, state0, silu, d)
	return nil
}

// Conv1DStep runs one decode token: y (B, D) from x (B, D) and state (B, W−1, D), which is then
// shifted to hold the last W−1 inputs. d.L is ignored.
func Conv1DStep(state, y, x, w, bias []float32, silu bool, d ConvDims) error {
	const op = "selectivescan.Conv1DStep"
	d.L = 1
	if err := d.check(op); err != nil {
		return err
	}
	if err := scanCheckBufs(op, d, scanArg("state", state, false, "B·(W−1)·D", d.B*(d.W-1)*d.D),
		scanArg("y", y, false, "B·D", d.B*d.D), scanArg("x", x, false, "B·D", d.B*d.D)); err != nil {
		return err
	}
	if err := convCheckParams(op, w, bias, nil, d); err != nil {
		return err
	}
	convForward(y, state, x, w, bias, state, silu, d)
	return nil
}

// Conv1DBackward computes the gradients of Conv1DForward given dout (B, L, D) and dstateOut
// (B, W−1, D, optional, the gradient of stateOut): dx (B, L, D) and dstate0 (B, W−1, D) are
// assigned, dw (D, W) and dbias (D) accumulate; nil gradients are not wanted.
func Conv1DBackward(dx, dw, dbias, dstate0 []float32, dout, dstateOut []float32, x, w, bias, state0 []float32, silu bool, d ConvDims) error {
	const op = "selectivescan.Conv1DBackward"
	if err := d.check(op); err != nil {
		return err
	}
	bld, bsd := d.B*d.L*d.D, d.B*(d.W-1)*d.D
	if err := scanCheckBufs(op, d,
		scanArg("dx", dx, true, "B·L·D", bld),
		scanArg("dw", dw, true, "D·W", d.D*d.W),
		scanArg("dbias", dbias, true, "D", d.D),
		scanArg("dstate0", dstate0, true, "B·(W−1)·D", bsd),
		scanArg("dout", dout, false, "B·L·D", bld),
		scanArg("dstateOut", dstateOut, true, "B·(W−1)·D", bsd),
		scanArg("x", x, false, "B·L·D", bld)); err != nil {
		return err
	}
	if err := convCheckParams(op, w, bias, state0, d); err != nil {
		return err
	}
	convBackward(dx, dw, dbias, dstate0, dout, dstateOut, x, w, bias, state0, silu, d)
	return nil
}

// convTokBlock is the token block of one task: enough tasks for every worker.
func convTokBlock(d ConvDims) int {
	tb := 256
	for tb > 8 && d.B*((d.L+tb-1)/tb) < 4*par.Workers() {
		tb /= 2
	}
	return min(tb, d.L)
}

// convTranspose returns w (D, W) as (W, D), so each tap is a contiguous row.
func convTranspose(w []float32, D, W int) []float32 {
	wt := make([]float32, W*D)
	for c := range D {
		for k := range W {
			wt[k*D+c] = w[c*W+k]
		}
	}
	return wt
}

// convRow returns row p of xpad for batch b: x's row p ≥ 0, a state0 row for p < 0, or nil (zeros).
func convRow(x, state0 []float32, b, p int, d ConvDims) []float32 {
	D := d.D
	if p >= 0 {
		o := (b*d.L + p) * D
		return x[o : o+D]
	}
	if state0 == nil {
		return nil
	}
	o := (b*(d.W-1) + d.W - 1 + p) * D
	return state0[o : o+D]
}

// convPre writes the pre-activation row t of batch b into dst (D). Up to four taps are summed in
// one pass (one store per element instead of one per tap); missing rows (zero padding) are skipped.
func convPre(dst, wt, x, bias, state0 []float32, b, t int, d ConvDims) {
	D, W := d.D, d.W
	dst = dst[:D]
	if bias != nil {
		copy(dst, bias[:D])
	} else {
		clear(dst)
	}
	var ws, xs [4][]float32
	n := 0
	vec := vmath.Accelerated()
	flush := func() {
		if vec { // one vector FMA pass per tap beats one scalar pass for four taps
			for i := range n {
				vmath.MulAdd(dst, ws[i][:len(dst)], xs[i][:len(dst)])
			}
			n = 0
			return
		}
		switch n {
		case 1:
			w0, x0 := ws[0][:len(dst)], xs[0][:len(dst)]
			for c := range dst {
				dst[c] += w0[c] * x0[c]
			}
		case 2:
			w0, x0, w1, x1 := ws[0][:len(dst)], xs[0][:len(dst)], ws[1][:len(dst)], xs[1][:len(dst)]
			for c := range dst {
				dst[c] += w0[c]*x0[c] + w1[c]*x1[c]
			}
		case 3:
			w0, x0, w1, x1 := ws[0][:len(dst)], xs[0][:len(dst)], ws[1][:len(dst)], xs[1][:len(dst)]
			w2, x2 := ws[2][:len(dst)], xs[2][:len(dst)]
			for c := range dst {
				dst[c] += w0[c]*x0[c] + w1[c]*x1[c] + w2[c]*x2[c]
			}
		case 4:
			w0, x0, w1, x1 := ws[0][:len(dst)], xs[0][:len(dst)], ws[1][:len(dst)], xs[1][:len(dst)]
			w2, x2, w3, x3 := ws[2][:len(dst)], xs[2][:len(dst)], ws[3][:len(dst)], xs[3][:len(dst)]
			for c := range dst {
				dst[c] += w0[c]*x0[c] + w1[c]*x1[c] + w2[c]*x2[c] + w3[c]*x3[c]
			}
		}
		n = 0
	}
	for k := range W {
		src := convRow(x, state0, b, t-(W-1)+k, d)
		if src == nil {
			continue
		}
		ws[n], xs[n] = wt[k*D:k*D+D], src
		if n++; n == 4 {
			flush()
		}
	}
	flush()
}

func convForward(out, stateOut, x, w, bias, state0 []float32, silu bool, d ConvDims) {
	B, L, D, W := d.B, d.L, d.D, d.W
	wt := convTranspose(w, D, W)
	tb := convTokBlock(d)
	nt := (L + tb - 1) / tb
	par.For(B*nt, 1, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			b, t0 := it/nt, (it%nt)*tb
			for t := t0; t < min(L, t0+tb); t++ {
				o := (b*L + t) * D
				row := out[o : o+D]
				convPre(row, wt, x, bias, state0, b, t, d)
				if silu {
					vmath.SiLU(row, row)
				}
			}
		}
	})
	if stateOut == nil {
		return
	}
	// Increasing j reads state0 rows j+L > j before they are overwritten when stateOut is state0.
	for b := range B {
		for j := range W - 1 {
			o := (b*(W-1) + j) * D
			if src := convRow(x, state0, b, L-(W-1)+j, d); src != nil {
				copy(stateOut[o:o+D], src)
			} else {
				clear(stateOut[o : o+D])
			}
		}
	}
}

// convWorker is one backward worker's scratch and partial parameter gradients.
type convWorker struct {
	dpre   []float32 // (tb+W−1, D) gradient of the pre-activation for a token block and W−1 rows after
	dwt    []float32 // (W, D) partial dw, transposed
	dbias  []float32 // (D)
	lo, hi int       // task range
}

func convBackward(dx, dw, dbias, dstate0 []float32, dout, dstateOut, x, w, bias, state0 []float32, silu bool, d ConvDims) {
	B, L, D, W := d.B, d.L, d.D, d.W
	wt := convTranspose(w, D, W)
	tb := convTokBlock(d)
	nt := (L + tb - 1) / tb
	items := B * nt
	nw := min(par.Workers(), items)
	ws := make([]convWorker, nw)
	// dpreRow fills dst (D) with dL/dpre at row p of batch b (zero outside [0, L)).
	dpreRow := func(dst []float32, b, p int) {
		if p < 0 || p >= L {
			clear(dst)
			return
		}
		o := (b*L + p) * D
		g := dout[o : o+D]
		if !silu {
			copy(dst, g)
			return
		}
		convPre(dst, wt, x, bias, state0, b, p, d)
		vmath.SiLUBackward(dst, g, dst) // in place: dst holds the pre-activation
	}
	// dxpadRow writes into dst (D) the gradient of xpad row p of batch b, reading dL/dpre rows
	// p..p+W−1 from rows(q) (q is a token index).
	dxpadRow := func(dst []float32, b, p int, rows func(q int) []float32) {
		clear(dst)
		dst = dst[:D]
		for k := range W {
			q := p + (W - 1) - k
			if q < 0 || q >= L {
				continue
			}
			vmath.MulAdd(dst, wt[k*D:k*D+len(dst)], rows(q)[:len(dst)])
		}
		if j := p - (L - (W - 1)); dstateOut != nil && j >= 0 {
			o := (b*(W-1) + j) * D
			scanAdd(dst, dstateOut[o:o+D])
		}
	}
	par.For(nw, 1, func(wlo, whi int) {
		for wi := wlo; wi < whi; wi++ {
			wk := &ws[wi]
			wk.lo, wk.hi = wi*items/nw, (wi+1)*items/nw
			wk.dpre, wk.dwt, wk.dbias = make([]float32, (tb+W-1)*D), make([]float32, W*D), make([]float32, D)
			for it := wk.lo; it < wk.hi; it++ {
				b, t0 := it/nt, (it%nt)*tb
				t1 := min(L, t0+tb)
				for q := t0; q < min(L, t1+W-1); q++ {
					dpreRow(wk.dpre[(q-t0)*D:(q-t0+1)*D], b, q)
				}
				rows := func(q int) []float32 { return wk.dpre[(q-t0)*D : (q-t0+1)*D] }
				for t := t0; t < t1; t++ {
					g := rows(t)
					scanAdd(wk.dbias, g)
					for k := range W {
						src := convRow(x, state0, b, t-(W-1)+k, d)
						if src == nil {
							continue
						}
						vmath.MulAdd(wk.dwt[k*D:k*D+len(g)], g, src[:len(g)])
					}
					if dx != nil {
						o := (b*L + t) * D
						dxpadRow(dx[o:o+D], b, t, rows)
					}
				}
			}
		}
	})
	for i := range ws {
		wk := &ws[i]
		if dbias != nil {
			scanAdd(dbias, wk.dbias)
		}
		if dw != nil {
			for c := range D {
				for k := range W {
					dw[c*W+k] += wk.dwt[k*D+c]
				}
			}
		}
	}
	if dstate0 == nil || W == 1 {
		return
	}
	// dstate0 row j is xpad row p = j−(W−1); it reads dL/dpre rows 0..W−2 only.
	nr := min(L, W-1)
	buf := make([]float32, nr*D)
	for b := range B {
		for q := range nr {
			dpreRow(buf[q*D:(q+1)*D], b, q)
		}
		for j := range W - 1 {
			o := (b*(W-1) + j) * D
			dxpadRow(dstate0[o:o+D], b, j-(W-1), func(q int) []float32 { return buf[q*D : (q+1)*D] })
		}
	}
}

// ---- float64 reference ----

// convRefPad returns xpad[b, p, c] in float64.
func convRefPad(x, state0 []float64, b, p, c int, d ConvDims) float64 {
	if p >= 0 {
		return x[(b*d.L+p)*d.D+c]
	}
	if state0 == nil {
		return 0
	}
	return state0[(b*(d.W-1)+d.W-1+p)*d.D+c]
}

// Conv1DRef is the float64 reference of Conv1DForward.
func Conv1DRef(out, stateOut []float64, x, w, bias, state0 []float64, silu bool, d ConvDims) error {
	const op = "selectivescan.Conv1DRef"
	if err := d.check(op); err != nil {
		return err
	}
	bld := d.B * d.L * d.D
	if err := scanCheckBufs(op, d, scanArg("out", out, false, "B·L·D", bld),
		scanArg("stateOut", stateOut, true, "B·(W−1)·D", d.B*(d.W-1)*d.D),
		scanArg("x", x, false, "B·L·D", bld)); err != nil {
		return err
	}
	if err := convCheckParams(op, w, bias, state0, d); err != nil {
		return err
	}
	B, L, D, W := d.B, d.L, d.D, d.W
	so := make([]float64, B*(W-1)*D) // stateOut may alias state0: build it aside
	for b := range B {
		for c := range D {
			for t := range L {
				v := 0.0
				if bias != nil {
					v = bias[c]
				}
				for k := range W {
					v += w[c*W+k] * convRefPad(x, state0, b, t-(W-1)+k, c, d)
				}
				if silu {
					v /= 1 + math.Exp(-v)
				}
				out[(b*L+t)*D+c] = v
			}
			for j := range W - 1 {
				so[(b*(W-1)+j)*D+c] = convRefPad(x, state0, b, L-(W-1)+j, c, d)
			}
		}
	}
	if stateOut != nil {
		copy(stateOut, so)
	}
	return nil
}

// Conv1DRefBackward is the float64 reference of Conv1DBackward.
func Conv1DRefBackward(dx, dw, dbias, dstate0 []float64, dout, dstateOut []float64, x, w, bias, state0 []float64, silu bool, d ConvDims) error {
	const op = "selectivescan.Conv1DRefBackward"
	if err := d.check(op); err != nil {
		return err
	}
	bld, bsd := d.B*d.L*d.D, d.B*(d.W-1)*d.D
	if err := scanCheckBufs(op, d,
		scanArg("dx", dx, true, "B·L·D", bld),
		scanArg("dw", dw, true, "D·W", d.D*d.W),
		scanArg("dbias", dbias, true, "D", d.D),
		scanArg("dstate0", dstate0, true, "B·(W−1)·D", bsd),
		scanArg("dout", dout, false, "B·L·D", bld),
		scanArg("dstateOut", dstateOut, true, "B·(W−1)·D", bsd),
		scanArg("x", x, false, "B·L·D", bld)); err != nil {
		return err
	}
	if err := convCheckParams(op, w, bias, state0, d); err != nil {
		return err
	}
	B, L, D, W := d.B, d.L, d.D, d.W
	clear(dx)
	clear(dstate0)
	// dxpad[p] for p in [−(W−1), L): index p+W−1.
	dxp := make([]float64, L+W-1)
	for b := range B {
		for c := range D {
			clear(dxp)
			for t := range L {
				v := 0.0
				if bias != nil {
					v = bias[c]
				}
				for k := range W {
					v += w[c*W+k] * convRefPad(x, state0, b, t-(W-1)+k, c, d)
				}
				g := dout[(b*L+t)*D+c]
				if silu {
					s := 1 / (1 + math.Exp(-v))
					g *= s * (1 + v*(1-s))
				}
				if dbias != nil {
					dbias[c] += g
				}
				for k := range W {
					p := t - (W - 1) + k
					if dw != nil {
						dw[c*W+k] += g * convRefPad(x, state0, b, p, c, d)
					}
					dxp[p+W-1] += g * w[c*W+k]
				}
			}
			if dstateOut != nil {
				for j := range W - 1 {
					dxp[L+j] += dstateOut[(b*(W-1)+j)*D+c]
				}
			}
			for t := range L {
				if dx != nil {
					dx[(b*L+t)*D+c] = dxp[t+W-1]
				}
			}
			for j := range W - 1 {
				if dstate0 != nil {
					dstate0[(b*(W-1)+j)*D+c] = dxp[j]
				}
			}
		}
	}
	return nil
}
