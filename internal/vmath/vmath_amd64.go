//go:build !purego

package vmath

// AVX2+FMA kernels (vmath_amd64.s) over nv ≥ 1 vectors of 8 float32; the wrappers in vmath.go
// check lengths and pass the first elements.

//go:noescape
func expAVX2(nv int, dst, x *float32)

//go:noescape
func sigmoidAVX2(nv int, dst, x *float32)

//go:noescape
func siluAVX2(nv int, dst, x *float32)

//go:noescape
func siluBwdAVX2(nv int, dx, dout, x *float32)

//go:noescape
func swigluAVX2(nv int, out, a, b *float32)

//go:noescape
func swigluBwdAVX2(nv int, da, db, dout, a, b *float32)

//go:noescape
func softplusAVX2(nv int, dst, x *float32)

//go:noescape
func softplusBwdAVX2(nv int, dx, dout, x *float32)

//go:noescape
func mulAddAVX2(nv int, dst, a, b *float32)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax uint32)

var useAVX2 = hasAVX2FMA()

func hasAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, c1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if c1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xgetbv()&6 != 6 { // the OS saves XMM and YMM state
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<5) != 0
}
