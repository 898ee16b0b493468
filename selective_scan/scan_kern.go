package selectivescan

// Per-token kernels of the selective scan over one channel block, in pure Go. They are the
// fallback of the AVX2/FMA versions (scan_amd64.s) and their oracle in the tests; both compute
// the same thing on the same layout.
//
// Layout (the "lane" layout): a block of nb channels is split into nv = ceil(nb/8) vectors of 8
// channels; padded rows are (W = 8·nv); per-channel state-like arrays are (nv, N, 8), element
// (channel 8v+l, state n) at (v·N + n)·8 + l. Pad lanes hold zeros (A = 0, u = 0, dout = 0), so
// they stay finite and add nothing to the sums over channels (dBm, dCm).
//
// at is A·log2(e) in the lane layout: decays are 2^(δ·at).

import "math"

const scanLanes = 8

// scanFwdTokGo advances one token: hout = 2^(δ·at)⊙hin + δ·u·Bm, y = Σ_n hout·Cm + dsk·u.
// ab (optional) receives the decays. hin may be hout.
func scanFwdTokGo(nv, N int, at, hin, hout, ab, dl, u, dsk, bm, cm, y []float32) {
	var t, e [scanLanes]float32
	for v := range nv {
		r := v * scanLanes
		δ, x, sk := dl[r:r+scanLanes], u[r:r+scanLanes], dsk[r:r+scanLanes]
		var acc, δx [scanLanes]float32
		for l := range scanLanes {
			acc[l] = sk[l] * x[l]
			δx[l] = δ[l] * x[l]
		}
		for n := range N {
			o := (v*N + n) * scanLanes
			a := at[o : o+scanLanes]
			for l := range scanLanes {
				t[l] = δ[l] * a[l]
			}
			scanExpScaled(e[:], t[:], math.Ln2)
			if ab != nil {
				copy(ab[o:o+scanLanes], e[:])
			}
			b, c := bm[n], cm[n]
			hi, ho := hin[o:o+scanLanes], hout[o:o+scanLanes]
			for l := range scanLanes {
				h := e[l]*hi[l] + δx[l]*b
				ho[l] = h
				acc[l] += h * c
			}
		}
		copy(y[r:r+scanLanes], acc[:])
	}
}

// scanBwdTokGo takes one token back. On entry carry = dL/dh_t from later tokens (without this
// token's output); on exit dL/dh_{t−1}. It accumulates dA (lane layout) and, per lane, dD += dy·u
// and dBias += dΔraw; it assigns du and dr = dΔraw; dbc (N, 2, 8) accumulates per-lane partial
// sums of dBm (row 0) and dCm (row 1) for scanReduceGo.
func scanBwdTokGo(nv, N int, at, hp, h, ab, carry, dA, dl, u, dy, dsp, dsk, bm, cm, dbc, du, dr, dD, dBias []float32) {
	for v := range nv {
		r := v * scanLanes
		for l := range scanLanes {
			δ, x, g := dl[r+l], u[r+l], dy[r+l]
			δx := δ * x
			var sA, sB float32
			for n := range N {
				o := (v*N+n)*scanLanes + l
				dh := carry[o] + g*cm[n]
				dbc[(2*n+1)*scanLanes+l] += g * h[o]
				c := ab[o] * dh
				carry[o] = c
				q := c * hp[o]
				dA[o] += δ * q
				sA += at[o] * q
				dbc[2*n*scanLanes+l] += dh * δx
				sB += dh * bm[n]
			}
			du[r+l] = g*dsk[r+l] + δ*sB
			ddr := (sA*math.Ln2 + x*sB) * dsp[r+l]
			dr[r+l] = ddr
			dD[r+l] += g * x
			dBias[r+l] += ddr
		}
	}
}

// scanReduceGo adds the lane sums of dbc (N, 2, 8) to dB[n] and dC[n] and clears dbc.
func scanReduceGo(N int, dB, dC, dbc []float32) {
	for n := range N {
		var sb, sc float32
		for l := range scanLanes {
			sb += dbc[2*n*scanLanes+l]
			sc += dbc[(2*n+1)*scanLanes+l]
		}
		dB[n] += sb
		dC[n] += sc
	}
	clear(dbc[:2*N*scanLanes])
}

// scanSoftplusGo sets dl = softplus(raw + bias) (= r above 20) and dsp = sigmoid(raw + bias),
// its derivative: δ = max(r, 0) + log1p(e^−|r|), with log1p(e) = 2·atanh(e/(2+e)) summed as a
// series (e ≤ 1: relative error ~1e-8 before rounding).
func scanSoftplusGo(dl, dsp, raw, bias []float32) {
	es := dsp[:len(dl)]
	for j := range dl {
		r := raw[j] + bias[j]
		dl[j] = r
		es[j] = -scanAbs(r)
	}
	scanExpScaled(es, es, 1)
	for j, r := range dl {
		e := es[j]
		x := e / (2 + e)
		x2 := x * x
		l := 2 * x * (1 + x2*(1.0/3+x2*(1.0/5+x2*(1.0/7+x2*(1.0/9+x2*(1.0/11+x2*(1.0/13)))))))
		l += 0.5 * (r + scanAbs(r)) // max(r, 0), branch-free
		s := 1 / (1 + e)            // sigmoid(|r|)
		if r < 0 {
			s = e * s
		}
		if r > 20 {
			l = r
		}
		dl[j], es[j] = l, s
	}
}

// scanGateGo sets out = y·z·sigmoid(z) (out may be y; len(z) is a multiple of 8).
func scanGateGo(out, y, z []float32) {
	var sig [scanLanes]float32
	for r := 0; r+scanLanes <= len(z); r += scanLanes {
		scanSigmoidRow(sig[:], z[r:r+scanLanes])
		for l, s := range sig {
			out[r+l] = y[r+l] * z[r+l] * s
		}
	}
}

// scanGateBwdGo sets dy = dout·z·σ(z) and dz = dout·ys·σ(z)·(1 + z·(1 − σ(z))), ys the ungated y.
func scanGateBwdGo(dy, dz, dout, ys, z []float32) {
	sig := dy[:len(z)]
	scanSigmoidRow(sig, z)
	for j, s := range sig {
		g, zz := dout[j], z[j]
		dz[j] = g * ys[j] * s * (1 + zz*(1-s))
		dy[j] = g * zz * s
	}
}

// scanSigmoidRow sets sig[c] = sigmoid(v[c]) = 1/(1+e^−v) for c < len(v), branch-free (random
// signs would mispredict). No cancellation either way; below v ≈ −88 it saturates near 1e-38.
func scanSigmoidRow(sig, v []float32) {
	sig = sig[:len(v)]
	scanExpScaled(sig, v, -1)
	for c, e := range sig {
		sig[c] = 1 / (1 + e)
	}
}

// ---- dispatch: AVX2/FMA assembly when available (scanUseAVX2), else the Go versions ----
//
// The assembly reads and writes whole vectors without bounds checks, so each wrapper first
// checks the lengths it will touch (a few comparisons per token row).

func scanFwdTok(nv, N int, at, hin, hout, ab, dl, u, dsk, bm, cm, y []float32) {
	sz, wc := nv*N*scanLanes, nv*scanLanes
	at, hin, hout, dl, u, dsk, bm, cm, y = at[:sz], hin[:sz], hout[:sz], dl[:wc], u[:wc], dsk[:wc], bm[:N], cm[:N], y[:wc]
	if ab != nil {
		ab = ab[:sz]
	}
	if !scanUseAVX2 {
		scanFwdTokGo(nv, N, at, hin, hout, ab, dl, u, dsk, bm, cm, y)
		return
	}
	var pab *float32
	if ab != nil {
		pab = &ab[0]
	}
	scanFwdTokAVX2(nv, N, &at[0], &hin[0], &hout[0], pab, &dl[0], &u[0], &dsk[0], &bm[0], &cm[0], &y[0])
}

func scanBwdTok(nv, N int, at, hp, h, ab, carry, dA, dl, u, dy, dsp, dsk, bm, cm, dbc, du, dr, dD, dBias []float32) {
	sz, wc := nv*N*scanLanes, nv*scanLanes
	at, hp, h, ab, carry, dA = at[:sz], hp[:sz], h[:sz], ab[:sz], carry[:sz], dA[:sz]
	dl, u, dy, dsp, dsk, du, dr, dD, dBias = dl[:wc], u[:wc], dy[:wc], dsp[:wc], dsk[:wc], du[:wc], dr[:wc], dD[:wc], dBias[:wc]
	bm, cm, dbc = bm[:N], cm[:N], dbc[:2*N*scanLanes]
	if !scanUseAVX2 {
		scanBwdTokGo(nv, N, at, hp, h, ab, carry, dA, dl, u, dy, dsp, dsk, bm, cm, dbc, du, dr, dD, dBias)
		return
	}
	scanBwdTokAVX2(nv, N, &at[0], &hp[0], &h[0], &ab[0], &carry[0], &dA[0], &dl[0], &u[0], &dy[0], &dsp[0], &dsk[0],
		&bm[0], &cm[0], &dbc[0], &du[0], &dr[0], &dD[0], &dBias[0])
}

func scanReduce(N int, dB, dC, dbc []float32) {
	dB, dC, dbc = dB[:N], dC[:N], dbc[:2*N*scanLanes]
	if !scanUseAVX2 {
		scanReduceGo(N, dB, dC, dbc)
		return
	}
	scanReduceAVX2(N, &dB[0], &dC[0], &dbc[0])
}

// The row kernels take rows whose length is a multiple of 8.

func scanSoftplus(dl, dsp, raw, bias []float32) {
	n := len(dl)
	dsp, raw, bias = dsp[:n], raw[:n], bias[:n]
	if !scanUseAVX2 {
		scanSoftplusGo(dl, dsp, raw, bias)
		return
	}
	scanSoftplusAVX2(n/scanLanes, &dl[0], &dsp[0], &raw[0], &bias[0])
}

func scanGate(out, y, z []float32) {
	n := len(z)
	out, y = out[:n], y[:n]
	if !scanUseAVX2 {
		scanGateGo(out, y, z)
		return
	}
	scanGateAVX2(n/scanLanes, &out[0], &y[0], &z[0])
}

func scanGateBwd(dy, dz, dout, ys, z []float32) {
	n := len(z)
	dy, dz, dout, ys = dy[:n], dz[:n], dout[:n], ys[:n]
	if !scanUseAVX2 {
		scanGateBwdGo(dy, dz, dout, ys, z)
		return
	}
	scanGateBwdAVX2(n/scanLanes, &dy[0], &dz[0], &dout[0], &ys[0], &z[0])
}
