package selectivescan

// Float64 sequential references for the Mamba-2 SSD (the oracle for ssd.go): plain loops over
// the recurrence, token by token, no chunks.
//
// Glossary: B batch, L length, H heads, P head dim, G groups (head h reads group h/(H/G)),
// N state size. Shapes are those of SSDForward; the float64 inputs mirror SSDInputs.

import (
	"fmt"
	"math"
)

// SSDInputs64 are SSDInputs in float64 (same shapes; DtBias, Dskip, H0 may be nil).
type SSDInputs64 struct {
	X      []float64 // (B, L, H, P)
	Dt     []float64 // (B, L, H) raw step sizes
	DtBias []float64 // (H) or nil
	A      []float64 // (H)
	Bm, Cm []float64 // (B, L, G, N)
	Dskip  []float64 // (H) or nil
	H0     []float64 // (B, H, P, N) or nil
}

// SSDGrads64 are SSDGrads in float64, same conventions: DDtBias, DA and DDskip ACCUMULATE,
// the others are ASSIGNED; nil fields are skipped.
type SSDGrads64 struct {
	DX, DDt, DDtBias, DA, DBm, DCm, DDskip, DH0 []float64
}

func ssdRefSoftplus(x float64) float64 {
	if x > 20 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

func ssdRefDelta(in SSDInputs64, d SSDDims, b, t, h int) (dt, raw float64) {
	raw = in.Dt[(b*d.L+t)*d.H+h]
	if in.DtBias != nil {
		raw += in.DtBias[h]
	}
	return ssdRefSoftplus(raw), raw
}

// SSDRef runs the recurrence S_t = exp(Δ_t·A_h)·S_{t−1} + Δ_t·x_t⊗B_t, y_t = S_t·C_t + D_h·x_t.
// y (B, L, H, P); hLast (B, H, P, N) or nil. d.Chunk is ignored.
func SSDRef(y, hLast []float64, in SSDInputs64, d SSDDims) error {
	const op = "selectivescan.SSDRef"
	if err := ssdCheck64(op, in, d); err != nil {
		return err
	}
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	if err := ssdCheckArgs(op, d, []ssdArg{
		ssdA("y", y, B*L*H*P, "B·L·H·P", false),
		ssdA("hLast", hLast, B*H*P*N, "B·H·P·N", true),
	}); err != nil {
		return err
	}
	hpg := H / G
	S := make([]float64, P*N)
	for b := range B {
		for h := range H {
			g := h / hpg
			clear(S)
			if in.H0 != nil {
				copy(S, in.H0[(b*H+h)*P*N:(b*H+h+1)*P*N])
			}
			for t := range L {
				dt, _ := ssdRefDelta(in, d, b, t, h)
				alpha := math.Exp(dt * in.A[h])
				x := in.X[((b*L+t)*H+h)*P:]
				bt := in.Bm[((b*L+t)*G+g)*N:]
				ct := in.Cm[((b*L+t)*G+g)*N:]
				for p := range P {
					s := 0.0
					for n := range N {
						v := alpha*S[p*N+n] + dt*x[p]*bt[n]
						S[p*N+n] = v
						s += v * ct[n]
					}
					if in.Dskip != nil {
						s += in.Dskip[h] * x[p]
					}
					y[((b*L+t)*H+h)*P+p] = s
				}
			}
			if hLast != nil {
				copy(hLast[(b*H+h)*P*N:], S)
			}
		}
	}
	return nil
}

// SSDRefBackward is reverse-mode differentiation of SSDRef written out by hand, storing every
// state. dy (B, L, H, P); dhLast (B, H, P, N) or nil. Nil fields of g are skipped.
func SSDRefBackward(g SSDGrads64, dy, dhLast []float64, in SSDInputs64, d SSDDims) error {
	const op = "selectivescan.SSDRefBackward"
	if err := ssdCheck64(op, in, d); err != nil {
		return err
	}
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	if err := ssdCheckArgs(op, d, []ssdArg{
		ssdA("dy", dy, B*L*H*P, "B·L·H·P", false),
		ssdA("dhLast", dhLast, B*H*P*N, "B·H·P·N", true),
		ssdA("DX", g.DX, B*L*H*P, "B·L·H·P", true),
		ssdA("DDt", g.DDt, B*L*H, "B·L·H", true),
		ssdA("DDtBias", g.DDtBias, H, "H", true),
		ssdA("DA", g.DA, H, "H", true),
		ssdA("DBm", g.DBm, B*L*G*N, "B·L·G·N", true),
		ssdA("DCm", g.DCm, B*L*G*N, "B·L·G·N", true),
		ssdA("DDskip", g.DDskip, H, "H", true),
		ssdA("DH0", g.DH0, B*H*P*N, "B·H·P·N", true),
	}); err != nil {
		return err
	}
	hpg := H / G
	for _, s := range [][]float64{g.DX, g.DBm, g.DCm} { // assigned, summed into below
		clear(s)
	}
	states := make([]float64, (L+1)*P*N) // states[t+1] = S_t, states[0] = S_{−1} = H0
	dS := make([]float64, P*N)
	for b := range B {
		for h := range H {
			grp := h / hpg
			clear(states[:P*N])
			if in.H0 != nil {
				copy(states, in.H0[(b*H+h)*P*N:(b*H+h+1)*P*N])
			}
			for t := range L {
				dt, _ := ssdRefDelta(in, d, b, t, h)
				alpha := math.Exp(dt * in.A[h])
				x := in.X[((b*L+t)*H+h)*P:]
				bt := in.Bm[((b*L+t)*G+grp)*N:]
				prev, cur := states[t*P*N:], states[(t+1)*P*N:]
				for p := range P {
					for n := range N {
						cur[p*N+n] = alpha*prev[p*N+n] + dt*x[p]*bt[n]
					}
				}
			}
			clear(dS)
			if dhLast != nil {
				copy(dS, dhLast[(b*H+h)*P*N:(b*H+h+1)*P*N])
			}
			for t := L - 1; t >= 0; t-- {
				dt, raw := ssdRefDelta(in, d, b, t, h)
				alpha := math.Exp(dt * in.A[h])
				xi := ((b*L+t)*H + h) * P
				bi := ((b*L+t)*G + grp) * N
				x, bt, ct, gy := in.X[xi:xi+P], in.Bm[bi:bi+N], in.Cm[bi:bi+N], dy[xi:xi+P]
				prev, cur := states[t*P*N:], states[(t+1)*P*N:]
				// y_t = S_t·C_t + D·x_t
				for p := range P {
					for n := range N {
						dS[p*N+n] += gy[p] * ct[n]
						if g.DCm != nil {
							g.DCm[bi+n] += gy[p] * cur[p*N+n]
						}
					}
					if g.DDskip != nil { // the gradient at Dskip = 0 when it is nil, like DtBias
						g.DDskip[h] += gy[p] * x[p]
					}
					if in.Dskip != nil && g.DX != nil {
						g.DX[xi+p] += in.Dskip[h] * gy[p]
					}
				}
				// S_t = α·S_{t−1} + Δ·x⊗B
				dAlpha, dDt := 0.0, 0.0
				for p := range P {
					for n := range N {
						ds := dS[p*N+n]
						dAlpha += ds * prev[p*N+n]
						dDt += ds * x[p] * bt[n]
						if g.DX != nil {
							g.DX[xi+p] += dt * ds * bt[n]
						}
						if g.DBm != nil {
							g.DBm[bi+n] += dt * ds * x[p]
						}
						dS[p*N+n] = alpha * ds
					}
				}
				dDt += dAlpha * alpha * in.A[h]
				if g.DA != nil {
					g.DA[h] += dAlpha * alpha * dt
				}
				dRaw := dDt // softplus'(x) = sigmoid(x), and 1 above the threshold
				if raw <= 20 {
					dRaw *= 1 / (1 + math.Exp(-raw))
				}
				if g.DDt != nil {
					g.DDt[(b*L+t)*H+h] = dRaw
				}
				if g.DDtBias != nil {
					g.DDtBias[h] += dRaw
				}
			}
			if g.DH0 != nil {
				copy(g.DH0[(b*H+h)*P*N:], dS)
			}
		}
	}
	return nil
}

func ssdCheck64(op string, in SSDInputs64, d SSDDims) error {
	if err := ssdDimsErr(op, d, true); err != nil {
		return err
	}
	if d.L < 1 {
		return fmt.Errorf("%s: sizes must be positive (L=%d)", op, d.L)
	}
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	return ssdCheckArgs(op, d, []ssdArg{
		ssdA("X", in.X, B*L*H*P, "B·L·H·P", false),
		ssdA("Dt", in.Dt, B*L*H, "B·L·H", false),
		ssdA("DtBias", in.DtBias, H, "H", true),
		ssdA("A", in.A, H, "H", false),
		ssdA("Bm", in.Bm, B*L*G*N, "B·L·G·N", false),
		ssdA("Cm", in.Cm, B*L*G*N, "B·L·G·N", false),
		ssdA("Dskip", in.Dskip, H, "H", true),
		ssdA("H0", in.H0, B*H*P*N, "B·H·P·N", true),
	})
}
