package selectivescan

// Float64 reference of the selective scan: plain sequential loops over (b, d, t) that keep every
// state, written straight from the math (see scan.go). It is the oracle of the tests, not fast.
//
// Glossary: B batch, L tokens, D channels, N state size, G groups (channel d uses group d/(D/G)).

import (
	"fmt"
	"math"
)

// ScanInputs64 are ScanInputs in float64, same shapes and meaning.
type ScanInputs64 struct {
	U, Delta  []float64 // (B, L, D)
	A         []float64 // (D, N)
	Bm, Cm    []float64 // (B, L, G, N)
	Dskip     []float64 // (D), optional
	Z         []float64 // (B, L, D), optional
	DeltaBias []float64 // (D), optional
	H0        []float64 // (B, D, N), optional
	Softplus  bool
}

// ScanGrads64 are ScanGrads in float64 (nil = not wanted; DA, DDskip, DDeltaBias accumulate).
type ScanGrads64 struct {
	DU, DDelta, DA, DBm, DCm, DDskip, DZ, DDeltaBias, DH0 []float64
}

func scanCheckInputs64(op string, in ScanInputs64, d ScanDims) error {
	if err := d.check(op, false); err != nil {
		return err
	}
	bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
	return scanCheckBufs(op, d,
		scanArg("U", in.U, false, "B·L·D", bld),
		scanArg("Delta", in.Delta, false, "B·L·D", bld),
		scanArg("A", in.A, false, "D·N", d.D*d.N),
		scanArg("Bm", in.Bm, false, "B·L·G·N", blgn),
		scanArg("Cm", in.Cm, false, "B·L·G·N", blgn),
		scanArg("Dskip", in.Dskip, true, "D", d.D),
		scanArg("Z", in.Z, true, "B·L·D", bld),
		scanArg("DeltaBias", in.DeltaBias, true, "D", d.D),
		scanArg("H0", in.H0, true, "B·D·N", d.B*d.D*d.N))
}

// scanRefDelta returns δ and dδ/dΔraw for the raw step r (bias already added).
func scanRefDelta(r float64, softplus bool) (δ, dδ float64) {
	if !softplus || r > 20 {
		return r, 1
	}
	return math.Log1p(math.Exp(r)), 1 / (1 + math.Exp(-r))
}

func scanRefSigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// scanRefChannel runs the recurrence of channel (b, d) and returns the states hs ((L+1)·N, row 0
// = h_{−1}), δ and dδ/dΔraw per token and the ungated y per token.
func scanRefChannel(in ScanInputs64, d ScanDims, b, c int) (hs, δs, dδs, ys []float64) {
	L, D, N, G := d.L, d.D, d.N, d.G
	g := c / (D / G)
	hs = make([]float64, (L+1)*N)
	δs, dδs, ys = make([]float64, L), make([]float64, L), make([]float64, L)
	if in.H0 != nil {
		copy(hs[:N], in.H0[(b*D+c)*N:(b*D+c+1)*N])
	}
	for t := range L {
		i := (b*L+t)*D + c
		r := in.Delta[i]
		if in.DeltaBias != nil {
			r += in.DeltaBias[c]
		}
		δ, dδ := scanRefDelta(r, in.Softplus)
		δs[t], dδs[t] = δ, dδ
		x := in.U[i]
		bc := ((b*L+t)*G + g) * N
		y := 0.0
		for n := range N {
			h := math.Exp(δ*in.A[c*N+n])*hs[t*N+n] + δ*x*in.Bm[bc+n]
			hs[(t+1)*N+n] = h
			y += h * in.Cm[bc+n]
		}
		if in.Dskip != nil {
			y += in.Dskip[c] * x
		}
		ys[t] = y
	}
	return hs, δs, dδs, ys
}

// ScanRef is the float64 reference of ScanForward: out (B, L, D), hLast (B, D, N, optional).
func ScanRef(out, hLast []float64, in ScanInputs64, d ScanDims) error {
	const op = "selectivescan.ScanRef"
	if err := scanCheckInputs64(op, in, d); err != nil {
		return err
	}
	if err := scanCheckBufs(op, d, scanArg("out", out, false, "B·L·D", d.B*d.L*d.D),
		scanArg("hLast", hLast, true, "B·D·N", d.B*d.D*d.N)); err != nil {
		return err
	}
	L, D, N := d.L, d.D, d.N
	for b := range d.B {
		for c := range D {
			hs, _, _, ys := scanRefChannel(in, d, b, c)
			for t := range L {
				i := (b*L+t)*D + c
				y := ys[t]
				if in.Z != nil {
					y *= in.Z[i] * scanRefSigmoid(in.Z[i])
				}
				out[i] = y
			}
			if hLast != nil {
				copy(hLast[(b*D+c)*N:(b*D+c+1)*N], hs[L*N:])
			}
		}
	}
	return nil
}

// ScanRefBackward is the float64 reference of ScanBackward (it recomputes everything from in).
func ScanRefBackward(g ScanGrads64, dout, dhLast []float64, in ScanInputs64, d ScanDims) error {
	const op = "selectivescan.ScanRefBackward"
	if err := scanCheckInputs64(op, in, d); err != nil {
		return err
	}
	bld, bdn, blgn := d.B*d.L*d.D, d.B*d.D*d.N, d.B*d.L*d.G*d.N
	if err := scanCheckBufs(op, d,
		scanArg("dout", dout, false, "B·L·D", bld),
		scanArg("dhLast", dhLast, true, "B·D·N", bdn),
		scanArg("DU", g.DU, true, "B·L·D", bld),
		scanArg("DDelta", g.DDelta, true, "B·L·D", bld),
		scanArg("DA", g.DA, true, "D·N", d.D*d.N),
		scanArg("DBm", g.DBm, true, "B·L·G·N", blgn),
		scanArg("DCm", g.DCm, true, "B·L·G·N", blgn),
		scanArg("DDskip", g.DDskip, true, "D", d.D),
		scanArg("DZ", g.DZ, true, "B·L·D", bld),
		scanArg("DDeltaBias", g.DDeltaBias, true, "D", d.D),
		scanArg("DH0", g.DH0, true, "B·D·N", bdn)); err != nil {
		return err
	}
	if (g.DZ != nil && in.Z == nil) || (g.DDskip != nil && in.Dskip == nil) {
		return fmt.Errorf("%s: DZ or DDskip given for an absent Z or Dskip %v", op, d)
	}
	L, D, N, G := d.L, d.D, d.N, d.G
	// Assigned gradients start at zero; dBm and dCm sum over the channels of a group.
	for _, s := range [][]float64{g.DU, g.DDelta, g.DBm, g.DCm, g.DZ, g.DH0} {
		clear(s)
	}
	dh := make([]float64, N)
	for b := range d.B {
		for c := range D {
			gi := c / (D / G)
			hs, δs, dδs, ys := scanRefChannel(in, d, b, c)
			clear(dh)
			if dhLast != nil {
				copy(dh, dhLast[(b*D+c)*N:(b*D+c+1)*N])
			}
			for t := L - 1; t >= 0; t-- {
				i := (b*L+t)*D + c
				bc := ((b*L+t)*G + gi) * N
				x, δ := in.U[i], δs[t]
				dy := dout[i]
				if in.Z != nil {
					z := in.Z[i]
					s := scanRefSigmoid(z)
					if g.DZ != nil {
						g.DZ[i] = dout[i] * ys[t] * s * (1 + z*(1-s))
					}
					dy *= z * s
				}
				du, dδ := 0.0, 0.0
				if in.Dskip != nil {
					du += dy * in.Dskip[c]
					if g.DDskip != nil {
						g.DDskip[c] += dy * x
					}
				}
				for n := range N {
					if g.DCm != nil {
						g.DCm[bc+n] += dy * hs[(t+1)*N+n]
					}
					dh[n] += dy * in.Cm[bc+n]
					a := math.Exp(δ * in.A[c*N+n])
					hp := hs[t*N+n]
					// h = a·hp + δ·x·B with a = exp(δ·A)
					if g.DA != nil {
						g.DA[c*N+n] += dh[n] * hp * a * δ
					}
					dδ += dh[n] * (hp*a*in.A[c*N+n] + x*in.Bm[bc+n])
					du += dh[n] * δ * in.Bm[bc+n]
					if g.DBm != nil {
						g.DBm[bc+n] += dh[n] * δ * x
					}
					dh[n] *= a
				}
				dr := dδ * dδs[t]
				if g.DU != nil {
					g.DU[i] = du
				}
				if g.DDelta != nil {
					g.DDelta[i] = dr
				}
				if g.DDeltaBias != nil {
					g.DDeltaBias[c] += dr
				}
			}
			if g.DH0 != nil {
				copy(g.DH0[(b*D+c)*N:(b*D+c+1)*N], dh)
			}
		}
	}
	return nil
}
