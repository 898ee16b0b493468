package ops

import (
	"math"

	"github.com/hybridlab/hybrid/internal/vmath"
)

// Shapes: R rows, D channels, G groups of D/G consecutive channels (G = 1 for RMSNorm and LayerNorm).
// Saved for backward: rstd (R·G) for the RMS norms, mean and rstd (R·G) for LayerNorm/GroupNorm.

// checkNorm validates a norm call; forward calls (fwd) also check eps.
func checkNorm(op string, r, d, g int, eps float64, fwd bool, args ...arg) error {
	c := newCheck(op, size{"R", r}, size{"D", d}, size{"G", g})
	if g == 1 {
		c.n = 2 // no G in messages of the ungrouped norms
	}
	c.positive()
	c.divides("G", g, "D", d)
	if fwd {
		c.atLeast("eps", eps, 0, true)
	}
	for _, a := range args {
		var formula string
		var want int
		switch a.kind | 0x20 { // lower case
		case 'x':
			formula, want = "R·D", r*d
		case 'w':
			formula, want = "D", d
		case 's':
			formula, want = "R·G", r*g
			if g == 1 {
				formula = "R"
			}
		}
		if a.kind >= 'a' {
			c.length(a.name, a.n, formula, want)
		} else {
			c.optLength(a.name, a.n, formula, want)
		}
	}
	return c.err
}

// RMSNorm computes out = x / sqrt(mean(x²) + eps) · w per row.
//
//	out  (R, D)  output
//	rstd (R)     saved: 1/sqrt(mean(x²) + eps)
//	x    (R, D)
//	w    (D)
func RMSNorm(out, rstd, x, w []float32, r, d int, eps float32) error {
	if err := checkNorm("RMSNorm", r, d, 1, float64(eps), true, arg{"out", len(out), 'x'}, arg{"rstd", len(rstd), 's'},
		arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'}); err != nil {
		return err
	}
	rmsForward(out, rstd, x, nil, w, r, d, 1, eps)
	return nil
}

// RMSNormBackward computes dx (assigned) and accumulates dw.
//
//	dx   (R, D)
//	dw   (D)     accumulated
//	dout (R, D)
//	x    (R, D)
//	w    (D)
//	rstd (R)     from RMSNorm
func RMSNormBackward(dx, dw, dout, x, w, rstd []float32, r, d int) error {
	if err := checkNorm("RMSNormBackward", r, d, 1, 0, false, arg{"dx", len(dx), 'x'}, arg{"dw", len(dw), 'w'},
		arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'}, arg{"rstd", len(rstd), 's'}); err != nil {
		return err
	}
	rmsBackward(dx, nil, dw, dout, x, nil, w, rstd, r, d, 1)
	return nil
}

// GatedRMSNorm is Mamba-2's RMSNormGated with norm_before_gate=False:
// y = x·silu(z), out = y / sqrt(mean_group(y²) + eps) · w, the mean taken over each group of D/G
// channels of a row.
//
//	out  (R, D)  output
//	rstd (R, G)  saved: 1/sqrt(mean_group(y²) + eps)
//	x    (R, D)
//	z    (R, D)  gate
//	w    (D)
func GatedRMSNorm(out, rstd, x, z, w []float32, r, d, g int, eps float32) error {
	if err := checkNorm("GatedRMSNorm", r, d, g, float64(eps), true, arg{"out", len(out), 'x'}, arg{"rstd", len(rstd), 's'},
		arg{"x", len(x), 'x'}, arg{"z", len(z), 'x'}, arg{"w", len(w), 'w'}); err != nil {
		return err
	}
	rmsForward(out, rstd, x, z, w, r, d, g, eps)
	return nil
}

// GatedRMSNormBackward computes dx, dz (assigned) and accumulates dw.
//
//	dx, dz (R, D)
//	dw     (D)     accumulated
//	dout   (R, D)
//	x, z   (R, D)
//	w      (D)
//	rstd   (R, G)  from GatedRMSNorm
func GatedRMSNormBackward(dx, dz, dw, dout, x, z, w, rstd []float32, r, d, g int) error {
	if err := checkNorm("GatedRMSNormBackward", r, d, g, 0, false, arg{"dx", len(dx), 'x'}, arg{"dz", len(dz), 'x'},
		arg{"dw", len(dw), 'w'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}, arg{"z", len(z), 'x'},
		arg{"w", len(w), 'w'}, arg{"rstd", len(rstd), 's'}); err != nil {
		return err
	}
	rmsBackward(dx, dz, dw, dout, x, z, w, rstd, r, d, g)
	return nil
}

// sumSq returns Σ v² with four accumulators (instruction-level parallelism).
func sumSq(v []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(v); i += 4 {
		a, b, c, e := v[i], v[i+1], v[i+2], v[i+3]
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += e * e
	}
	for ; i < len(v); i++ {
		s0 += v[i] * v[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func rstdOf(meanSq float32, eps float32) float32 {
	return float32(1 / math.Sqrt(float64(meanSq)+float64(eps)))
}

// rmsForward is RMSNorm over groups, gated by silu(z) when z is not nil.
func rmsForward(out, rstd, x, z, w []float32, r, d, g int, eps float32) {
	dg := d / g
	forChunks(r, chunks(r, d), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			xr, or := x[i*d:(i+1)*d], out[i*d:(i+1)*d]
			yr := xr
			if z != nil { // y = x·silu(z), staged in out
				zr := z[i*d : (i+1)*d]
				zr = zr[:len(xr)]
				or = or[:len(xr)]
				vmath.SwiGLU(or, zr, xr)
				yr = or
			}
			for q := range g {
				ys, os, ws := yr[q*dg:(q+1)*dg], or[q*dg:(q+1)*dg], w[q*dg:(q+1)*dg]
				os, ws = os[:len(ys)], ws[:len(ys)]
				rs := rstdOf(sumSq(ys)/float32(dg), eps)
				rstd[i*g+q] = rs
				for j, v := range ys {
					os[j] = v * rs * ws[j]
				}
			}
		}
	})
}

// rmsBackward is the backward of rmsForward. With y the normalised input (x or x·silu(z)),
// ŷ = y·rstd and gw = dout·w: dy = rstd·(gw − ŷ·mean_group(gw·ŷ)), dw += Σ dout·ŷ,
// and through the gate dx = dy·silu(z), dz = dy·x·σ(z)·(1 + z·(1 − σ(z))).
func rmsBackward(dx, dz, dw, dout, x, z, w, rstd []float32, r, d, g int) {
	dg := d / g
	k := chunks(r, d)
	p := partials(dw, k)
	forChunks(r, k, func(ci, lo, hi int) {
		acc := acc(p, dw, ci)
		for i := lo; i < hi; i++ {
			xr, gr, dxr := x[i*d:(i+1)*d], dout[i*d:(i+1)*d], dx[i*d:(i+1)*d]
			yr := xr
			var zr, dzr []float32
			if z != nil { // stage σ(z) in dz and y = x·z·σ(z) in dx
				zr, dzr = z[i*d:(i+1)*d], dz[i*d:(i+1)*d]
				zr, dzr, dxr = zr[:len(xr)], dzr[:len(xr)], dxr[:len(xr)]
				vmath.Sigmoid(dzr, zr)
				for j, v := range xr {
					dxr[j] = v * zr[j] * dzr[j]
				}
				yr = dxr
			}
			for q := range g {
				ys, gs, ws, as := yr[q*dg:(q+1)*dg], gr[q*dg:(q+1)*dg], w[q*dg:(q+1)*dg], acc[q*dg:(q+1)*dg]
				ds := dxr[q*dg : (q+1)*dg]
				gs, ws, as, ds = gs[:len(ys)], ws[:len(ys)], as[:len(ys)], ds[:len(ys)]
				rs := rstd[i*g+q]
				c := rs * rs * rs * dot3(gs, ws, ys) / float32(dg)
				// ds may alias ys (gated): each element is read before it is written.
				for j, y := range ys {
					as[j] += gs[j] * y * rs
					ds[j] = rs*gs[j]*ws[j] - c*y
				}
			}
			if z != nil { // through the gate
				for j, dy := range dxr {
					sg, zv := dzr[j], zr[j]
					dxr[j] = dy * zv * sg
					dzr[j] = dy * xr[j] * sg * (1 + zv*(1-sg))
				}
			}
		}
	})
	reduce(p)
}

// dot3 returns Σ a·b·c with four accumulators.
func dot3(a, b, c []float32) float32 {
	b, c = b[:len(a)], c[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i] * c[i]
		s1 += a[i+1] * b[i+1] * c[i+1]
		s2 += a[i+2] * b[i+2] * c[i+2]
		s3 += a[i+3] * b[i+3] * c[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i] * c[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// LayerNorm computes out = (x − mean)/sqrt(var + eps)·w + b per row (biased variance), as
// torch.nn.functional.layer_norm over the last axis.
//
//	out        (R, D)  output
//	mean, rstd (R)     saved
//	x          (R, D)
//	w          (D)
//	b          (D) or nil
func LayerNorm(out, mean, rstd, x, w, b []float32, r, d int, eps float32) error {
	if err := checkNorm("LayerNorm", r, d, 1, float64(eps), true, arg{"out", len(out), 'x'}, arg{"mean", len(mean), 's'},
		arg{"rstd", len(rstd), 's'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'}, arg{"b", len(b), 'W'}); err != nil {
		return err
	}
	normForward(out, mean, rstd, x, w, b, r, d, 1, eps)
	return nil
}

// LayerNormBackward computes dx (assigned) and accumulates dw and db (db may be nil).
//
//	dx         (R, D)
//	dw, db     (D)  accumulated
//	dout, x    (R, D)
//	w          (D)
//	mean, rstd (R)  from LayerNorm
func LayerNormBackward(dx, dw, db, dout, x, w, mean, rstd []float32, r, d int) error {
	if err := checkNorm("LayerNormBackward", r, d, 1, 0, false, arg{"dx", len(dx), 'x'}, arg{"dw", len(dw), 'w'},
		arg{"db", len(db), 'W'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'},
		arg{"mean", len(mean), 's'}, arg{"rstd", len(rstd), 's'}); err != nil {
		return err
	}
	normBackward(dx, dw, db, dout, x, w, mean, rstd, r, d, 1)
	return nil
}

// GroupNorm normalises each group of D/G channels of every row (token) separately, with
// per-channel w and b: torch.nn.functional.group_norm on the rows viewed as (N=R, C=D).
//
//	out        (R, D)  output
//	mean, rstd (R, G)  saved
//	x          (R, D)
//	w          (D)
//	b          (D) or nil
func GroupNorm(out, mean, rstd, x, w, b []float32, r, d, g int, eps float32) error {
	if err := checkNorm("GroupNorm", r, d, g, float64(eps), true, arg{"out", len(out), 'x'}, arg{"mean", len(mean), 's'},
		arg{"rstd", len(rstd), 's'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'}, arg{"b", len(b), 'W'}); err != nil {
		return err
	}
	normForward(out, mean, rstd, x, w, b, r, d, g, eps)
	return nil
}

// GroupNormBackward computes dx (assigned) and accumulates dw and db (db may be nil).
//
//	dx         (R, D)
//	dw, db     (D)     accumulated
//	dout, x    (R, D)
//	w          (D)
//	mean, rstd (R, G)  from GroupNorm
func GroupNormBackward(dx, dw, db, dout, x, w, mean, rstd []float32, r, d, g int) error {
	if err := checkNorm("GroupNormBackward", r, d, g, 0, false, arg{"dx", len(dx), 'x'}, arg{"dw", len(dw), 'w'},
		arg{"db", len(db), 'W'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'},
		arg{"mean", len(mean), 's'}, arg{"rstd", len(rstd), 's'}); err != nil {
		return err
	}
	normBackward(dx, dw, db, dout, x, w, mean, rstd, r, d, g)
	return nil
}

// normForward is LayerNorm over groups (shifted mean, then two-pass variance: stable for offsets ≫ spread).
func normForward(out, mean, rstd, x, w, b []float32, r, d, g int, eps float32) {
	dg := d / g
	forChunks(r, chunks(r, d), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			for q := range g {
				o := i*d + q*dg
				xs, os := x[o:o+dg], out[o:o+dg]
				// Sum x − x₀ (exact for values near x₀), so a large common offset costs no precision.
				var s float32
				x0 := xs[0]
				for _, v := range xs {
					s += v - x0
				}
				m := x0 + s/float32(dg)
				var ss float32
				for _, v := range xs {
					ss += (v - m) * (v - m)
				}
				rs := rstdOf(ss/float32(dg), eps)
				mean[i*g+q], rstd[i*g+q] = m, rs
				ws := w[q*dg : (q+1)*dg]
				os, ws = os[:len(xs)], ws[:len(xs)]
				if len(b) > 0 {
					bs := b[q*dg : (q+1)*dg]
					bs = bs[:len(xs)]
					for j, v := range xs {
						os[j] = (v-m)*rs*ws[j] + bs[j]
					}
				} else {
					for j, v := range xs {
						os[j] = (v - m) * rs * ws[j]
					}
				}
			}
		}
	})
}

// normBackward: with x̂ = (x − mean)·rstd and gw = dout·w,
// dx = rstd·(gw − mean_group(gw) − x̂·mean_group(gw·x̂)), dw += Σ dout·x̂, db += Σ dout.
func normBackward(dx, dw, db, dout, x, w, mean, rstd []float32, r, d, g int) {
	dg := d / g
	k := chunks(r, d)
	pw, pb := partials(dw, k), partials(db, k)
	forChunks(r, k, func(ci, lo, hi int) {
		aw, ab := acc(pw, dw, ci), acc(pb, db, ci)
		for i := lo; i < hi; i++ {
			for q := range g {
				o := i*d + q*dg
				xs, gs, dxs := x[o:o+dg], dout[o:o+dg], dx[o:o+dg]
				ws, aws := w[q*dg:(q+1)*dg], aw[q*dg:(q+1)*dg]
				gs, dxs, ws, aws = gs[:len(xs)], dxs[:len(xs)], ws[:len(xs)], aws[:len(xs)]
				m, rs := mean[i*g+q], rstd[i*g+q]
				var s1, s2 float32
				for j, v := range xs {
					gw := gs[j] * ws[j]
					s1 += gw
					s2 += gw * (v - m) * rs
				}
				s1 /= float32(dg)
				s2 /= float32(dg)
				for j, v := range xs {
					xh := (v - m) * rs
					aws[j] += gs[j] * xh
					dxs[j] = rs * (gs[j]*ws[j] - s1 - xh*s2)
				}
				if ab != nil {
					abs := ab[q*dg : (q+1)*dg]
					for j, v := range gs {
						abs[j] += v
					}
				}
			}
		}
	})
	reduce(pw)
	reduce(pb)
}
