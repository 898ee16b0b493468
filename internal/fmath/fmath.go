// Package fmath has float32 elementary functions for kernel inner loops: faster than
// converting to float64 for math.Exp, and accurate to a few ulp over the range kernels use.
// For whole slices (activations, gates) use internal/vmath, which runs 8 lanes at a time.
package fmath

import "math"

const (
	ln2Hi = 0.693359375
	ln2Lo = -2.12194440e-4
	log2e = 1.44269504088896341
)

// Exp returns e**x in float32 arithmetic (relative error below 3e-7 for |x| < 87).
// It returns 0 below −87.3 (no denormals) and +Inf above 88.7; NaN stays NaN.
func Exp(x float32) float32 {
	if x != x {
		return x
	}
	if x < -87.33 {
		return 0
	}
	if x > 88.72 {
		return float32(math.Inf(1))
	}
	// x = k·ln2 + r, |r| ≤ ln2/2, then a degree-6 Taylor-like (Cephes expf) polynomial in r.
	// Round x·log2e to the nearest integer by adding and removing 1.5·2²³ (exact in float32).
	const magic = 12582912
	k := (x*log2e + magic) - magic
	r := x - k*ln2Hi - k*ln2Lo
	r2 := r * r
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r2 + r + 1
	ki := int32(k)
	if ki < -126 { // 2^k would be denormal: scale in two steps
		return y * math.Float32frombits(uint32(ki+127+64)<<23) * math.Float32frombits(uint32(127-64)<<23)
	}
	if ki > 127 {
		return y * math.Float32frombits(uint32(127+127)<<23) * math.Float32frombits(uint32(ki-127+127)<<23)
	}
	return y * math.Float32frombits(uint32(ki+127)<<23)
}

// Sigmoid returns 1/(1+e^−x), stable for large |x|.
func Sigmoid(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + Exp(-x))
	}
	e := Exp(x)
	return e / (1 + e)
}

// Softplus returns log(1+e^x), returning x itself above 20 as the Mamba kernels do.
func Softplus(x float32) float32 {
	if x > 20 {
		return x
	}
	return float32(math.Log1p(float64(Exp(x))))
}

// SiLU returns x·sigmoid(x).
func SiLU(x float32) float32 { return x * Sigmoid(x) }
