package selectivescan

import (
	"math"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// TestScanAsmMatchesGo runs the whole forward and backward with the assembly kernels and with
// the Go kernels (scan_kern.go) on the same inputs at awkward sizes: D and D/G not multiples of
// 8 (padded lanes), N not a multiple of 8, L = 1, blocks narrower than a group, several blocks
// per group. Both are float32; they differ only by the exponential and summation order, so the
// tolerance is the float32 one against the reference. Under -tags purego (or off amd64) there
// is no assembly and the test is skipped.
func TestScanAsmMatchesGo(t *testing.T) {
	if !scanUseAVX2 {
		t.Skip("no AVX2/FMA assembly in this build")
	}
	r, _ := numtest.Rand(t)
	for _, c := range []struct {
		d ScanDims
		o scanOpts
	}{
		{ScanDims{B: 1, L: 1, D: 13, N: 5, G: 1, Chunk: 4}, scanAll},
		{ScanDims{B: 2, L: 1, D: 8, N: 16, G: 1, Chunk: 1}, scanAll},
		{ScanDims{B: 2, L: 37, D: 13, N: 7, G: 1, Chunk: 8}, scanAll},
		{ScanDims{B: 1, L: 20, D: 20, N: 9, G: 2, Chunk: 6}, scanOpts{z: true, softplus: true, dhLast: true}},
		{ScanDims{B: 3, L: 19, D: 24, N: 3, G: 3, Chunk: 5}, scanOpts{dskip: true, bias: true, h0: true}},
		{ScanDims{B: 1, L: 40, D: 150, N: 16, G: 1, Chunk: 16}, scanAll},
		{ScanDims{B: 2, L: 9, D: 1, N: 1, G: 1, Chunk: 2}, scanAll},
		{ScanDims{B: 1, L: 33, D: 1030, N: 2, G: 2, Chunk: 8}, scanOpts{z: true, softplus: true, bias: true}},
	} {
		t.Run(scanName(c.d, c.o), func(t *testing.T) {
			d := c.d
			in64 := scanGen(r, d, c.o)
			in := scanTo32(in64)
			bld, blgn, bdn := d.B*d.L*d.D, d.B*d.L*d.G*d.N, d.B*d.D*d.N
			dout64 := numtest.Round32(numtest.Normal(r, bld, 1))
			dout := numtest.F32s(dout64)
			var dhLast64 []float64
			if c.o.dhLast {
				dhLast64 = numtest.Round32(numtest.Normal(r, bdn, 1))
			}
			dhLast := scanF32(dhLast64)
			wantG := scanRefGrads(t, in64, d, dout64, dhLast64)
			wantOut, wantH := make([]float64, bld), make([]float64, bdn)
			if err := ScanRef(wantOut, wantH, in64, d); err != nil {
				t.Fatal(err)
			}
			run := func(asm bool) (out, hLast []float32, g ScanGrads) {
				defer func(u bool) { scanUseAVX2 = u }(scanUseAVX2)
				scanUseAVX2 = asm
				out, hLast, saved := make([]float32, bld), make([]float32, bdn), make([]float32, ScanSavedLen(d))
				if err := ScanForward(out, hLast, saved, in, d); err != nil {
					t.Fatal(err)
				}
				g = ScanGrads{DU: make([]float32, bld), DDelta: make([]float32, bld), DA: make([]float32, d.D*d.N),
					DBm: make([]float32, blgn), DCm: make([]float32, blgn), DDeltaBias: make([]float32, d.D), DH0: make([]float32, bdn)}
				if in.Z != nil {
					g.DZ = make([]float32, bld)
				}
				if in.Dskip != nil {
					g.DDskip = make([]float32, d.D)
				}
				if err := ScanBackward(g, dout, dhLast, in, saved, d); err != nil {
					t.Fatal(err)
				}
				return out, hLast, g
			}
			// Both paths against the float64 reference: two float32 paths that each round their
			// own way may differ from each other by up to twice the reference tolerance.
			tol := scanTol(d)
			tolT := numtest.F32.Scaled(d.B * d.L * d.N) // parameter gradients sum over batch and tokens
			tolG := tol.Times(math.Sqrt(float64(d.D / d.G)))
			for _, asm := range []bool{true, false} {
				out, hLast, g := run(asm)
				path := map[bool]string{true: "asm ", false: "go "}[asm]
				for _, p := range []struct {
					name string
					got  []float32
					want []float64
					tol  numtest.Tol
				}{
					{"out", out, wantOut, tol}, {"hLast", hLast, wantH, tol},
					{"dU", g.DU, wantG.DU, tol}, {"dDelta", g.DDelta, wantG.DDelta, tol}, {"dZ", g.DZ, wantG.DZ, tol},
					{"dH0", g.DH0, wantG.DH0, tol}, {"dBm", g.DBm, wantG.DBm, tolG}, {"dCm", g.DCm, wantG.DCm, tolG},
					{"dA", g.DA, wantG.DA, tolT}, {"dDskip", g.DDskip, wantG.DDskip, tolT}, {"dDeltaBias", g.DDeltaBias, wantG.DDeltaBias, tolT},
				} {
					numtest.Check(t, path+p.name, p.got, p.want, p.tol)
				}
			}
		})
	}
}

// TestScanAsmRowKernels compares the row kernels (softplus, gates) and the exponential inside
// the token kernel with the Go versions over wide argument ranges, including saturation.
func TestScanAsmRowKernels(t *testing.T) {
	if !scanUseAVX2 {
		t.Skip("no AVX2/FMA assembly in this build")
	}
	const n = 4096
	raw, bias, z, y := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range raw {
		raw[i] = -120 + 240*float32(i)/n // through both softplus branches and the r > 20 cut
		z[i] = -100 + 200*float32((i*37)%n)/n
		y[i] = float32(i%7) - 3
	}
	// Relative 3e-6 (a few float32 roundings), absolute 1e-6 for the gate gradient's cancellation
	// in 1 + z·(1 − σ(z)) near z ≈ −1.28; the decays span 1e-38..1e38, so no absolute floor there.
	rowTol, expTol := numtest.Tol{Atol: 1e-6, Rtol: 3e-6}, numtest.Tol{Atol: 1e-37, Rtol: 1e-6}
	two := func(name string, tol numtest.Tol, f func(asm bool) [][]float32) {
		defer func(u bool) { scanUseAVX2 = u }(scanUseAVX2)
		got := f(true)
		scanUseAVX2 = false
		want := f(false)
		for i := range got {
			numtest.Check(t, name, got[i], numtest.F64s(want[i]), tol)
		}
	}
	two("softplus", rowTol, func(bool) [][]float32 {
		dl, dsp := make([]float32, n), make([]float32, n)
		scanSoftplus(dl, dsp, raw, bias)
		return [][]float32{dl, dsp}
	})
	two("gate", rowTol, func(bool) [][]float32 {
		out := make([]float32, n)
		scanGate(out, y, z)
		return [][]float32{out}
	})
	two("gateBwd", rowTol, func(bool) [][]float32 {
		dy, dz := make([]float32, n), make([]float32, n)
		scanGateBwd(dy, dz, y, raw, z)
		return [][]float32{dy, dz}
	})
	// Decays 2^(δ·at) through the token kernel: h = 1, Bm = 0, so hout = the decay.
	two("decay", expTol, func(bool) [][]float32 {
		const N = 16
		nv := n / N / scanLanes
		at, h, ab := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range at {
			at[i] = -130 + 256*float32(i)/n // up to 126: the Go and assembly saturations differ above
			h[i] = 1
		}
		dl, u, dsk, yy := make([]float32, nv*scanLanes), make([]float32, nv*scanLanes), make([]float32, nv*scanLanes), make([]float32, nv*scanLanes)
		for i := range dl {
			dl[i] = 1
		}
		scanFwdTok(nv, N, at, h, h, ab, dl, u, dsk, make([]float32, N), make([]float32, N), yy)
		return [][]float32{ab, h}
	})
}
