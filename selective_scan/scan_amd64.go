//go:build !purego

package selectivescan

import "github.com/hybridlab/hybrid/internal/vmath"

// AVX2+FMA versions of the scan's per-token kernels (scan_amd64.s), used when the CPU and OS
// support them; build with -tags purego to use the Go versions (scan_kern.go) only. The
// arguments are the first elements of slices whose lengths the wrappers in scan_kern.go check.

//go:noescape
func scanFwdTokAVX2(nv, n int, at, hin, hout, ab, dl, u, dsk, bm, cm, y *float32)

//go:noescape
func scanBwdTokAVX2(nv, n int, at, hp, h, ab, carry, dA, dl, u, dy, dsp, dsk, bm, cm, dbc, du, dr, dD, dBias *float32)

//go:noescape
func scanReduceAVX2(n int, dB, dC, dbc *float32)

//go:noescape
func scanSoftplusAVX2(nv int, dl, dsp, raw, bias *float32)

//go:noescape
func scanGateAVX2(nv int, out, y, z *float32)

//go:noescape
func scanGateBwdAVX2(nv int, dy, dz, dout, ys, z *float32)

// scanUseAVX2 selects the assembly (AVX2 and FMA present and enabled by the OS, as
// internal/vmath detects them); tests switch it off to compare with the Go kernels.
var scanUseAVX2 = vmath.Accelerated()

//go:noescape
func scanPrefetchAVX2(p *float32, n int)
