package attention

// Row kernels of the online softmax. They run once per score (the GEMMs run 4·Dh flops per
// score in the forward), so they are written flat: no calls, no per-element function values.
//
// Glossary: n a tile row length (Bk keys); m a running row maximum or a saved log-sum-exp.

import (
	"math"
)

var negInf = float32(math.Inf(-1))

// rowMax returns the largest element of x (−Inf for masked rows).
func rowMax(x []float32) float32 {
	if useAVX2 && len(x) >= 8 {
		n := len(x) &^ 7
		return max(rowMaxAVX2(x[:n]), rowMaxGo(x[n:]))
	}
	return rowMaxGo(x)
}

// expSub overwrites x with exp(x − m) and returns the sum. Elements more than 87 below m
// (and −Inf, the mask) become exactly 0.
func expSub(x []float32, m float32) float32 {
	if useAVX2 && len(x) >= 8 {
		n := len(x) &^ 7
		return expSubAVX2(x[:n], m) + expSubGo(x[n:], m)
	}
	return expSubGo(x, m)
}

func rowMaxGo(x []float32) float32 {
	m0, m1 := negInf, negInf
	j := 0
	for ; j+1 < len(x); j += 2 {
		if x[j] > m0 {
			m0 = x[j]
		}
		if x[j+1] > m1 {
			m1 = x[j+1]
		}
	}
	if j < len(x) && x[j] > m0 {
		m0 = x[j]
	}
	return max(m0, m1)
}

// expSubGo is expSub in Go: fmath.Exp (Cephes expf, relative error below
// 3e-7) specialised to arguments ≤ ~0: no NaN or overflow branches, and 2^k built from the bits
// of the rounding constant.
func expSubGo(x []float32, m float32) float32 {
	const (
		ln2Hi = 0.693359375
		ln2Lo = -2.12194440e-4
		log2e = 1.44269504088896341
		magic = 12582912 // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits
	)
	var sum float32
	for j, v := range x {
		t := v - m
		if t < -87.33 {
			x[j] = 0
			continue
		}
		t = min(t, 88) // keeps k ≤ 127
		kf := t*log2e + magic
		kb := math.Float32bits(kf)
		k := kf - magic
		r := t - k*ln2Hi - k*ln2Lo
		r2 := r * r
		p := float32(1.9875691500e-4)
		p = p*r + 1.3981999507e-3
		p = p*r + 8.3334519073e-3
		p = p*r + 4.1665795894e-2
		p = p*r + 1.6666665459e-1
		p = p*r + 5.0000001201e-1
		y := p*r2 + r + 1
		// The low bits of kb hold k + 2²² (magic's mantissa); 2^k has exponent bits k+127.
		e := y * math.Float32frombits((kb-0x400000+127)<<23)
		x[j] = e
		sum += e
	}
	return sum
}

// expOne is exp(t) for a single scalar in the same arithmetic (t ≤ 0 or −Inf).
func expOne(t float32) float32 {
	var b [1]float32
	b[0] = t
	expSubGo(b[:], 0)
	return b[0]
}
