//go:build !purego

package attention

// AVX2+FMA versions of the softmax row kernels (softmax_amd64.s), used when the CPU and OS
// support them; build with -tags purego to use the Go versions only.

//go:noescape
func expSubAVX2(x []float32, m float32) float32

//go:noescape
func rowMaxAVX2(x []float32) float32

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
	if xgetbv()&6 != 6 { // OS saves XMM and YMM state
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<5) != 0
}
