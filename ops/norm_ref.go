package ops

import "math"

// Float64 references of the norms: plain loops, same shapes and argument order as the float32
// kernels, eps in float64.

func sigmoid64(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// RMSNormRef is the float64 reference of RMSNorm.
func RMSNormRef(out, rstd, x, w []float64, r, d int, eps float64) error {
	if err := checkNorm("RMSNormRef", r, d, 1, eps, true, arg{"out", len(out), 'x'}, arg{"rstd", len(rstd), 's'},
		arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'}); err != nil {
		return err
	}
	rmsForwardRef(out, rstd, x, nil, w, r, d, 1, eps)
	return nil
}

// RMSNormBackwardRef is the float64 reference of RMSNormBackward.
func RMSNormBackwardRef(dx, dw, dout, x, w, rstd []float64, r, d int) error {
	if err := checkNorm("RMSNormBackwardRef", r, d, 1, 0, false, arg{"dx", len(dx), 'x'}, arg{"dw", len(dw), 'w'},
		arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'}, arg{"rstd", len(rstd), 's'}); err != nil {
		return err
	}
	rmsBackwardRef(dx, nil, dw, dout, x, nil, w, rstd, r, d, 1)
	return nil
}

// GatedRMSNormRef is the float64 reference of GatedRMSNorm.
func GatedRMSNormRef(out, rstd, x, z, w []float64, r, d, g int, eps float64) error {
	if err := checkNorm("GatedRMSNormRef", r, d, g, eps, true, arg{"out", len(out), 'x'}, arg{"rstd", len(rstd), 's'},
		arg{"x", len(x), 'x'}, arg{"z", len(z), 'x'}, arg{"w", len(w), 'w'}); err != nil {
		return err
	}
	rmsForwardRef(out, rstd, x, z, w, r, d, g, eps)
	return nil
}

// GatedRMSNormBackwardRef is the float64 reference of GatedRMSNormBackward.
func GatedRMSNormBackwardRef(dx, dz, dw, dout, x, z, w, rstd []float64, r, d, g int) error {
	if err := checkNorm("GatedRMSNormBackwardRef", r, d, g, 0, false, arg{"dx", len(dx), 'x'}, arg{"dz", len(dz), 'x'},
		arg{"dw", len(dw), 'w'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}, arg{"z", len(z), 'x'},
		arg{"w", len(w), 'w'}, arg{"rstd", len(rstd), 's'}); err != nil {
		return err
	}
	rmsBackwardRef(dx, dz, dw, dout, x, z, w, rstd, r, d, g)
	return nil
}

// gatedInput returns y = x·silu(z) (or x when z is nil) at index i.
func gatedInput(x, z []float64, i int) float64 {
	if z == nil {
		return x[i]
	}
	return x[i] * z[i] * sigmoid64(z[i])
}

func rmsForwardRef(out, rstd, x, z, w []float64, r, d, g int, eps float64) {
	dg := d / g
	for i := range r {
		for q := range g {
			o := i*d + q*dg
			ss := 0.0
			for j := range dg {
				y := gatedInput(x, z, o+j)
				ss += y * y
			}
			rs := 1 / math.Sqrt(ss/float64(dg)+eps)
			rstd[i*g+q] = rs
			for j := range dg {
				out[o+j] = gatedInput(x, z, o+j) * rs * w[q*dg+j]
			}
		}
	}
}

func rmsBackwardRef(dx, dz, dw, dout, x, z, w, rstd []float64, r, d, g int) {
	dg := d / g
	for i := range r {
		for q := range g {
			o := i*d + q*dg
			rs := rstd[i*g+q]
			// out_j = y_j·rs·w_j with rs = (Σy²/dg + eps)^(−1/2), so ∂rs/∂y_k = −rs³·y_k/dg.
			s := 0.0
			for j := range dg {
				s += dout[o+j] * w[q*dg+j] * gatedInput(x, z, o+j)
			}
			for j := range dg {
				y := gatedInput(x, z, o+j)
				dw[q*dg+j] += dout[o+j] * y * rs
				dy := dout[o+j]*w[q*dg+j]*rs - rs*rs*rs*y*s/float64(dg)
				if z == nil {
					dx[o+j] = dy
					continue
				}
				zv, xv := z[o+j], x[o+j]
				sg := sigmoid64(zv)
				dx[o+j] = dy * zv * sg
				dz[o+j] = dy * xv * (sg + zv*sg*(1-sg))
			}
		}
	}
}

// LayerNormRef is the float64 reference of LayerNorm.
func LayerNormRef(out, mean, rstd, x, w, b []float64, r, d int, eps float64) error {
	if err := checkNorm("LayerNormRef", r, d, 1, eps, true, arg{"out", len(out), 'x'}, arg{"mean", len(mean), 's'},
		arg{"rstd", len(rstd), 's'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'}, arg{"b", len(b), 'W'}); err != nil {
		return err
	}
	normForwardRef(out, mean, rstd, x, w, b, r, d, 1, eps)
	return nil
}

// LayerNormBackwardRef is the float64 reference of LayerNormBackward.
func LayerNormBackwardRef(dx, dw, db, dout, x, w, mean, rstd []float64, r, d int) error {
	if err := checkNorm("LayerNormBackwardRef", r, d, 1, 0, false, arg{"dx", len(dx), 'x'}, arg{"dw", len(dw), 'w'},
		arg{"db", len(db), 'W'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'},
		arg{"mean", len(mean), 's'}, arg{"rstd", len(rstd), 's'}); err != nil {
		return err
	}
	normBackwardRef(dx, dw, db, dout, x, w, mean, rstd, r, d, 1)
	return nil
}

// GroupNormRef is the float64 reference of GroupNorm.
func GroupNormRef(out, mean, rstd, x, w, b []float64, r, d, g int, eps float64) error {
	if err := checkNorm("GroupNormRef", r, d, g, eps, true, arg{"out", len(out), 'x'}, arg{"mean", len(mean), 's'},
		arg{"rstd", len(rstd), 's'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'}, arg{"b", len(b), 'W'}); err != nil {
		return err
	}
	normForwardRef(out, mean, rstd, x, w, b, r, d, g, eps)
	return nil
}

// GroupNormBackwardRef is the float64 reference of GroupNormBackward.
func GroupNormBackwardRef(dx, dw, db, dout, x, w, mean, rstd []float64, r, d, g int) error {
	if err := checkNorm("GroupNormBackwardRef", r, d, g, 0, false, arg{"dx", len(dx), 'x'}, arg{"dw", len(dw), 'w'},
		arg{"db", len(db), 'W'}, arg{"dout", len(dout), 'x'}, arg{"x", len(x), 'x'}, arg{"w", len(w), 'w'},
		arg{"mean", len(mean), 's'}, arg{"rstd", len(rstd), 's'}); err != nil {
		return err
	}
	normBackwardRef(dx, dw, db, dout, x, w, mean, rstd, r, d, g)
	return nil
}

func normForwardRef(out, mean, rstd, x, w, b []float64, r, d, g int, eps float64) {
	dg := d / g
	for i := range r {
		for q := range g {
			o := i*d + q*dg
			m := 0.0
			for j := range dg {
				m += x[o+j]
			}
			m /= float64(dg)
			v := 0.0
			for j := range dg {
				v += (x[o+j] - m) * (x[o+j] - m)
			}
			rs := 1 / math.Sqrt(v/float64(dg)+eps)
			mean[i*g+q], rstd[i*g+q] = m, rs
			for j := range dg {
				out[o+j] = (x[o+j] - m) * rs * w[q*dg+j]
				if len(b) > 0 {
					out[o+j] += b[q*dg+j]
				}
			}
		}
	}
}

func normBackwardRef(dx, dw, db, dout, x, w, mean, rstd []float64, r, d, g int) {
	dg := d / g
	n := float64(dg)
	for i := range r {
		for q := range g {
			o := i*d + q*dg
			m, rs := mean[i*g+q], rstd[i*g+q]
			s1, s2 := 0.0, 0.0
			for j := range dg {
				gw := dout[o+j] * w[q*dg+j]
				s1 += gw
				s2 += gw * (x[o+j] - m) * rs
			}
			for j := range dg {
				xh := (x[o+j] - m) * rs
				dw[q*dg+j] += dout[o+j] * xh
				if len(db) > 0 {
					db[q*dg+j] += dout[o+j]
				}
				dx[o+j] = rs * (dout[o+j]*w[q*dg+j] - s1/n - xh*s2/n)
			}
		}
	}
}
