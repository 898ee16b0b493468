// Package vmath has vectorised float32 elementwise functions over slices for kernel inner loops:
// e^x, the logistic sigmoid, SiLU, SwiGLU and softplus, with their backward passes. On amd64 with
// AVX2 and FMA (detected at start; build with -tags purego to disable) whole vectors of 8 run in
// assembly; the rest, and every element on other machines, runs the Go versions in this file,
// which use the same algorithm.
//
// Accuracy: relative error within a few ulp (below 1e-6) of the float64 functions over the whole
// float32 range, except where the result is denormal. Exp saturates to +Inf above ln(MaxFloat32)
// ≈ 88.72 and to 0 below ≈ −103.97 (denormals in between); NaN stays NaN everywhere; ±Inf inputs
// give the limits (σ(−Inf) = 0, σ(+Inf) = 1).
//
// Every function writes its outputs over the length of its first input (len(x), len(a)), and
// panics (bounds) when an output or another input is shorter. An output may be the same slice as
// an input (in place), but must not partially overlap it.
package vmath

import "math"

const (
	log2e = 1.44269504088896341
	ln2Hi = 0.693145751953125 // 15 significant bits: k·ln2Hi is exact for |k| < 512
	ln2Lo = 1.428606765330187e-06
	ln2   = 0.693147180559945309
	magic = 12582912 // 1.5·2²³: adding and removing it rounds to an integer (ties to even)
)

// Exp sets dst[i] = e^x[i].
func Exp(dst, x []float32) {
	dst = dst[:len(x)]
	i := 0
	if nv := len(x) / 8; useAVX2 && nv > 0 {
		expAVX2(nv, &dst[0], &x[0])
		i = 8 * nv
	}
	for ; i < len(x); i++ {
		dst[i] = exp32(x[i])
	}
}

// Sigmoid sets dst[i] = σ(x[i]) = 1/(1 + e^−x[i]).
func Sigmoid(dst, x []float32) {
	dst = dst[:len(x)]
	i := 0
	if nv := len(x) / 8; useAVX2 && nv > 0 {
		sigmoidAVX2(nv, &dst[0], &x[0])
		i = 8 * nv
	}
	for ; i < len(x); i++ {
		dst[i] = sigmoid32(x[i])
	}
}

// SiLU sets dst[i] = x[i]·σ(x[i]); SiLU(x, x) works in place.
func SiLU(dst, x []float32) {
	dst = dst[:len(x)]
	i := 0
	if nv := len(x) / 8; useAVX2 && nv > 0 {
		siluAVX2(nv, &dst[0], &x[0])
		i = 8 * nv
	}
	for ; i < len(x); i++ {
		dst[i] = x[i] * sigmoid32(x[i])
	}
}

// SiLUBackward sets dx[i] = dout[i]·σ(x[i])·(1 + x[i]·(1 − σ(x[i]))).
func SiLUBackward(dx, dout, x []float32) {
	dx, dout = dx[:len(x)], dout[:len(x)]
	i := 0
	if nv := len(x) / 8; useAVX2 && nv > 0 {
		siluBwdAVX2(nv, &dx[0], &dout[0], &x[0])
		i = 8 * nv
	}
	for ; i < len(x); i++ {
		v := x[i]
		s, c := sigmoid2(v)
		dx[i] = dout[i] * (s * (1 + v*c))
	}
}

// SwiGLU sets out[i] = silu(a[i])·b[i] (a the gate).
func SwiGLU(out, a, b []float32) {
	out, b = out[:len(a)], b[:len(a)]
	i := 0
	if nv := len(a) / 8; useAVX2 && nv > 0 {
		swigluAVX2(nv, &out[0], &a[0], &b[0])
		i = 8 * nv
	}
	for ; i < len(a); i++ {
		v := a[i]
		out[i] = v * sigmoid32(v) * b[i]
	}
}

// SwiGLUBackward sets da[i] = dout[i]·b[i]·silu′(a[i]) and db[i] = dout[i]·silu(a[i]).
func SwiGLUBackward(da, db, dout, a, b []float32) {
	da, db, dout, b = da[:len(a)], db[:len(a)], dout[:len(a)], b[:len(a)]
	i := 0
	if nv := len(a) / 8; useAVX2 && nv > 0 {
		swigluBwdAVX2(nv, &da[0], &db[0], &dout[0], &a[0], &b[0])
		i = 8 * nv
	}
	for ; i < len(a); i++ {
		v, g := a[i], dout[i]
		s, c := sigmoid2(v)
		da[i] = (1 + v*c) * (g * b[i] * s)
		db[i] = g * v * s
	}
}

// Softplus sets dst[i] = log(1 + e^x[i]), and x[i] itself above 20 (PyTorch's threshold, as
// Mamba's Δ uses).
func Softplus(dst, x []float32) {
	dst = dst[:len(x)]
	i := 0
	if nv := len(x) / 8; useAVX2 && nv > 0 {
		softplusAVX2(nv, &dst[0], &x[0])
		i = 8 * nv
	}
	for ; i < len(x); i++ {
		dst[i] = softplus32(x[i])
	}
}

// SoftplusBackward sets dx[i] = dout[i]·σ(x[i]), and dout[i] above 20.
func SoftplusBackward(dx, dout, x []float32) {
	dx, dout = dx[:len(x)], dout[:len(x)]
	i := 0
	if nv := len(x) / 8; useAVX2 && nv > 0 {
		softplusBwdAVX2(nv, &dx[0], &dout[0], &x[0])
		i = 8 * nv
	}
	for ; i < len(x); i++ {
		if x[i] > 20 {
			dx[i] = dout[i]
		} else {
			dx[i] = dout[i] * sigmoid32(x[i])
		}
	}
}

// Accelerated reports whether the vector (assembly) versions run: callers that would otherwise
// group several elementwise passes into one Go loop can pick per-pass vector calls instead.
func Accelerated() bool { return useAVX2 }

// MulAdd sets dst[i] += a[i]·b[i] (fused, one rounding, in the vector part).
func MulAdd(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	i := 0
	if nv := len(a) / 8; useAVX2 && nv > 0 {
		mulAddAVX2(nv, &dst[0], &a[0], &b[0])
		i = 8 * nv
	}
	for ; i < len(a); i++ {
		dst[i] += a[i] * b[i]
	}
}

// exp32 is e^x: x = k·ln2 + r, |r| ≤ ln2/2, e^r by Cephes' expf polynomial, then 2^k applied as
// two normal factors so that underflow and overflow round as one IEEE multiplication would.
func exp32(x float32) float32 {
	if x != x {
		return x
	}
	x = min(max(x, -104), 89)
	k := (x*log2e + magic) - magic
	r := x - k*ln2Hi
	r -= k * ln2Lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := (p*(r*r) + r) + 1
	ki := int32(k)
	k1 := ki >> 1
	return y * math.Float32frombits(uint32(k1+127)<<23) * math.Float32frombits(uint32(ki-k1+127)<<23)
}

// sigmoid32 is σ(x) from e = e^−|x|: 1/(1+e) for x ≥ 0 and e/(1+e) for x < 0.
func sigmoid32(x float32) float32 {
	e := exp32(-abs32(x))
	r := 1 / (1 + e)
	if math.Float32bits(x)>>31 != 0 {
		return e * r
	}
	return r
}

// sigmoid2 returns σ(x) and 1 − σ(x) = σ(−x), both without cancellation.
func sigmoid2(x float32) (s, c float32) {
	e := exp32(-abs32(x))
	r := 1 / (1 + e)
	if math.Float32bits(x)>>31 != 0 {
		return e * r, r
	}
	return r, e * r
}

// softplus32 is max(x, 0) + log1p(e^−|x|), and x above 20.
func softplus32(x float32) float32 {
	if x > 20 {
		return x
	}
	return max(x, 0) + log1p01(exp32(-abs32(x)))
}

// log1p01 is log(1+t) for 0 ≤ t ≤ 1 as 2·atanh(s), s = t/(t+2), or for t > √2−1 as
// ln2 + 2·atanh(s), s = (t−1)/(t+3) (the log of (1+t)/2), so |s| ≤ 0.172 and a short odd series
// suffices (truncation below 1e-9 relative).
func log1p01(t float32) float32 {
	var s, add float32
	if t > math.Sqrt2-1 {
		s, add = (t-1)/((t+2)+1), ln2
	} else {
		s = t / (t + 2)
	}
	s2 := s * s
	p := ((float32(1.0/9)*s2+1.0/7)*s2+1.0/5)*s2 + 1.0/3
	p = (s*s2)*p + s
	return (p + p) + add
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }
