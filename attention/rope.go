package attention

// Rotary position embeddings (RoPE), "rotate_half" pairing as in Llama/NeoX: within each head
// the pair (i, i+Dh/2) is rotated by the angle pos·θ^(−2i/Dh).
//
// Glossary: B batch, L tokens, H heads, Dh head dim (even), pos0 the position of token 0.

import (
	"fmt"
	"math"

	"github.com/hybridlab/hybrid/internal/par"
)

// RoPEDims are the sizes of a (B, L, H, Dh) tensor to rotate.
type RoPEDims struct{ B, L, H, Dh int }

func (d RoPEDims) check(op string, out, x int, pos0 int, theta float64) error {
	if d.B <= 0 || d.L <= 0 || d.H <= 0 || d.Dh <= 0 || d.Dh%2 != 0 {
		return fmt.Errorf("attention.%s: sizes B=%d L=%d H=%d Dh=%d, want > 0 and Dh even", op, d.B, d.L, d.H, d.Dh)
	}
	if pos0 < 0 || !(theta > 0) || math.IsInf(theta, 0) {
		return fmt.Errorf("attention.%s: pos0 = %d, theta = %v, want pos0 ≥ 0 and theta > 0 finite", op, pos0, theta)
	}
	n := d.B * d.L * d.H * d.Dh
	for _, a := range []struct {
		name string
		len  int
	}{{"out", out}, {"x", x}} {
		if a.len != n {
			return fmt.Errorf("attention.%s: %s has length %d, want B·L·H·Dh = %d (B=%d L=%d H=%d Dh=%d)", op, a.name, a.len, n, d.B, d.L, d.H, d.Dh)
		}
	}
	return nil
}

// ropeTable returns cos and sin of the L×Dh/2 angles, computed in float64 so large positions
// keep their accuracy.
func ropeTable(l, dh, pos0 int, theta float64) (cos, sin []float32) {
	half := dh / 2
	cos, sin = make([]float32, l*half), make([]float32, l*half)
	for i := range half {
		f := math.Pow(theta, -2*float64(i)/float64(dh))
		for t := range l {
			s, c := math.Sincos(float64(pos0+t) * f)
			cos[t*half+i], sin[t*half+i] = float32(c), float32(s)
		}
	}
	return cos, sin
}

func rope(out, x []float32, pos0 int, theta float64, d RoPEDims, sign float32) {
	cos, sin := ropeTable(d.L, d.Dh, pos0, theta)
	half := d.Dh / 2
	par.For(d.B*d.L, 64, func(lo, hi int) {
		for bt := lo; bt < hi; bt++ {
			t := bt % d.L
			c, s := cos[t*half:(t+1)*half], sin[t*half:(t+1)*half]
			for h := range d.H {
				off := (bt*d.H + h) * d.Dh
				x1, x2 := x[off:off+half], x[off+half:off+d.Dh]
				o1, o2 := out[off:off+half], out[off+half:off+d.Dh]
				for i := range half {
					a, b, si := x1[i], x2[i], sign*s[i]
					o1[i] = a*c[i] - b*si
					o2[i] = b*c[i] + a*si
				}
			}
		}
	})
}

// RoPE rotates x into out, token t at position pos0+t. out may be x itself (in place).
//
//	out (B, L, H, Dh)
//	x   (B, L, H, Dh)
func RoPE(out, x []float32, pos0 int, theta float64, d RoPEDims) error {
	if err := d.check("RoPE", len(out), len(x), pos0, theta); err != nil {
		return err
	}
	rope(out, x, pos0, theta, d, 1)
	return nil
}

// RoPEBackward is the gradient of RoPE: the inverse (transposed) rotation. dx may be dout itself.
//
//	dx   (B, L, H, Dh) out, assigned
//	dout (B, L, H, Dh)
func RoPEBackward(dx, dout []float32, pos0 int, theta float64, d RoPEDims) error {
	if err := d.check("RoPEBackward", len(dx), len(dout), pos0, theta); err != nil {
		return err
	}
	rope(dx, dout, pos0, theta, d, -1)
	return nil
}

// RoPERef is RoPE in float64 (out must not alias x).
func RoPERef(out, x []float64, pos0 int, theta float64, d RoPEDims) error {
	if err := d.check("RoPERef", len(out), len(x), pos0, theta); err != nil {
		return err
	}
	half := d.Dh / 2
	for bt := range d.B * d.L {
		pos := float64(pos0 + bt%d.L)
		for h := range d.H {
			off := (bt*d.H + h) * d.Dh
			for i := range half {
				ang := pos * math.Pow(theta, -2*float64(i)/float64(d.Dh))
				a, b := x[off+i], x[off+half+i]
				out[off+i] = a*math.Cos(ang) - b*math.Sin(ang)
				out[off+half+i] = b*math.Cos(ang) + a*math.Sin(ang)
			}
		}
	}
	return nil
}
