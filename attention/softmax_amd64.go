//go:build !purego

package attention

import "github.com/hybridlab/hybrid/internal/vmath"

// AVX2+FMA versions of the softmax row kernels (softmax_amd64.s), used when the CPU and OS
// support them; build with -tags purego to use the Go versions only.

//go:noescape
func expSubAVX2(x []float32, m float32) float32

//go:noescape
func rowMaxAVX2(x []float32) float32

// useAVX2 follows internal/vmath's detection (AVX2 and FMA present and enabled by the OS).
var useAVX2 = vmath.Accelerated()
