//go:build !amd64 || purego

package selectivescan

// Without the assembly (other architectures, or -tags purego) the scan uses the Go kernels.

var scanUseAVX2 = false

func scanFwdTokAVX2(nv, n int, at, hin, hout, ab, dl, u, dsk, bm, cm, y *float32) {
	panic("unreachable")
}

func scanBwdTokAVX2(nv, n int, at, hp, h, ab, carry, dA, dl, u, dy, dsp, dsk, bm, cm, dbc, du, dr, dD, dBias *float32) {
	panic("unreachable")
}

func scanReduceAVX2(n int, dB, dC, dbc *float32) { panic("unreachable") }

func scanSoftplusAVX2(nv int, dl, dsp, raw, bias *float32) { panic("unreachable") }

func scanGateAVX2(nv int, out, y, z *float32) { panic("unreachable") }

func scanGateBwdAVX2(nv int, dy, dz, dout, ys, z *float32) { panic("unreachable") }

func scanPrefetchAVX2(p *float32, n int) {}
