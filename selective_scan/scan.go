package selectivescan

// Mamba-1 selective scan, fast float32 CPU kernels.
//
// Glossary: B batch, L tokens, D channels, N state size, G groups of channels sharing Bm/Cm
// (channel d uses group d/(D/G)), Q chunk length (ScanDims.Chunk).
//
// Math, per batch b, channel d, token t (h is the N-vector state of (b, d)):
//
//	δ_t = softplus(Δ_t + Δbias)          (softplus(x) = x above 20; without Softplus, δ = Δ + Δbias)
//	h_t = exp(δ_t·A[d,:]) ⊙ h_{t−1} + δ_t·u_t·Bm_t      (h_{−1} = H0, or zero)
//	y_t = ⟨h_t, Cm_t⟩ + Dskip·u_t
//	out = y·silu(z)                       (when Z is given)
//
// CPU algorithm: tokens are walked in order (the recurrence is cheap and memory-friendly that
// way), channels in blocks: one (batch, channel block) is one task for internal/par, its states
// stay in L1 and every token reads one contiguous row slice of u, Δ, z.
// Training memory does not grow with L·D·N: the forward pass saves only the state at each chunk
// start, (B, ceil(L/Q), D, N); the backward pass walks chunks in reverse, recomputes a chunk's
// states and decays into a per-worker scratch (2·Q·Dblock·N floats, sized to stay in L2), then
// runs the reverse recurrence. Bm/Cm gradients sum over the channels of a group; they are
// accumulated in per-worker partial buffers and reduced in worker order (deterministic).

import (
	"fmt"
	"math"
	"sync"

	"github.com/hybridlab/hybrid/internal/par"
)

// ScanDefaultChunk is a good ScanDims.Chunk: the saved states cost 1/Q of a full state history
// and the backward scratch of a 32-channel block (2·Q·32·N floats at N=16) fits in L2.
const ScanDefaultChunk = 64

// ScanDims are the sizes of a selective scan. Chunk (Q) is the backward pass's recomputation
// length; it is needed (≥ 1) wherever states are saved or read back: ScanForward with saved ≠ nil,
// ScanSavedLen and ScanBackward.
type ScanDims struct{ B, L, D, N, G, Chunk int }

func (d ScanDims) String() string {
	return fmt.Sprintf("(B=%d L=%d D=%d N=%d G=%d Chunk=%d)", d.B, d.L, d.D, d.N, d.G, d.Chunk)
}

// ScanInputs are the float32 inputs of a scan. Nil optional fields are absent.
type ScanInputs struct {
	U         []float32 // (B, L, D) input
	Delta     []float32 // (B, L, D) raw step Δ (before bias and softplus)
	A         []float32 // (D, N) state matrix (negative for a decaying state)
	Bm        []float32 // (B, L, G, N) input map B
	Cm        []float32 // (B, L, G, N) output map C
	Dskip     []float32 // (D) skip term D, optional
	Z         []float32 // (B, L, D) gate, optional: out = y·silu(z)
	DeltaBias []float32 // (D) added to Δ before softplus, optional
	H0        []float32 // (B, D, N) initial state, optional (nil = zeros)
	Softplus  bool      // δ = softplus(Δ + bias) instead of Δ + bias
}

// ScanGrads are the gradient buffers of ScanBackward, with the shapes of the matching inputs.
// Nil fields are not wanted. DA, DDskip and DDeltaBias are parameter gradients and ACCUMULATE;
// the others are assigned.
type ScanGrads struct {
	DU, DDelta, DA, DBm, DCm, DDskip, DZ, DDeltaBias, DH0 []float32
}

// ScanSavedLen is the length of ScanForward's saved buffer: the states at chunk starts,
// (B, ceil(L/Q), D, N). It is 0 for invalid dims.
func ScanSavedLen(d ScanDims) int {
	if d.check("", true) != nil {
		return 0
	}
	return d.B * scanChunks(d) * d.D * d.N
}

func scanChunks(d ScanDims) int { return (d.L + d.Chunk - 1) / d.Chunk }

// ScanForward runs the scan: out (B, L, D) is assigned; hLast (B, D, N), the state after the last
// token, is written when not nil; saved (ScanSavedLen) receives what ScanBackward needs (the
// states at chunk starts) when not nil — pass nil for inference.
func ScanForward(out, hLast, saved []float32, in ScanInputs, d ScanDims) error {
	const op = "selectivescan.ScanForward"
	if err := d.check(op, saved != nil); err != nil {
		return err
	}
	if err := scanCheckInputs(op, in, d); err != nil {
		return err
	}
	if err := scanCheckBufs(op, d, scanArg("out", out, false, "B·L·D", d.B*d.L*d.D),
		scanArg("hLast", hLast, true, "B·D·N", d.B*d.D*d.N)); err != nil {
		return err
	}
	if saved != nil {
		if err := scanCheckBufs(op, d, scanArg("saved", saved, false, "ScanSavedLen = B·ceil(L/Chunk)·D·N", ScanSavedLen(d))); err != nil {
			return err
		}
	}
	scanForward(out, hLast, saved, in, d)
	return nil
}

// ScanStep advances a decode state by one token: state (B, D, N) is updated in place,
// y (B, D) is assigned. u, delta (B, D), bm, cm (B, G, N) and z (B, D, optional) are the token's
// inputs; in supplies A, Dskip, DeltaBias and Softplus (its other fields are ignored), d.L and
// d.Chunk are ignored. It equals one more token of ScanForward with H0 = state.
func ScanStep(state, y []float32, u, delta, bm, cm, z []float32, in ScanInputs, d ScanDims) error {
	const op = "selectivescan.ScanStep"
	d.L, d.Chunk = 1, 1
	if err := d.check(op, false); err != nil {
		return err
	}
	in.U, in.Delta, in.Bm, in.Cm, in.Z, in.H0 = u, delta, bm, cm, z, state
	if err := scanCheckStep(op, in, d); err != nil {
		return err
	}
	if err := scanCheckBufs(op, d, scanArg("y", y, false, "B·D", d.B*d.D)); err != nil {
		return err
	}
	scanForward(y, state, nil, in, d)
	return nil
}

// ScanBackward computes the gradients of a scan given dout (B, L, D), the gradient of out, and
// dhLast (B, D, N, optional), the gradient of the final state; saved is ScanForward's saved
// buffer for the same inputs and dims.
func ScanBackward(g ScanGrads, dout, dhLast []float32, in ScanInputs, saved []float32, d ScanDims) error {
	const op = "selectivescan.ScanBackward"
	if err := d.check(op, true); err != nil {
		return err
	}
	if err := scanCheckInputs(op, in, d); err != nil {
		return err
	}
	bld, bdn, blgn := d.B*d.L*d.D, d.B*d.D*d.N, d.B*d.L*d.G*d.N
	if err := scanCheckBufs(op, d,
		scanArg("dout", dout, false, "B·L·D", bld),
		scanArg("dhLast", dhLast, true, "B·D·N", bdn),
		scanArg("saved", saved, false, "ScanSavedLen = B·ceil(L/Chunk)·D·N", ScanSavedLen(d)),
		scanArg("DU", g.DU, true, "B·L·D", bld),
		scanArg("DDelta", g.DDelta, true, "B·L·D", bld),
		scanArg("DA", g.DA, true, "D·N", d.D*d.N),
		scanArg("DBm", g.DBm, true, "B·L·G·N", blgn),
		scanArg("DCm", g.DCm, true, "B·L·G·N", blgn),
		scanArg("DDskip", g.DDskip, true, "D", d.D),
		scanArg("DZ", g.DZ, true, "B·L·D", bld),
		scanArg("DDeltaBias", g.DDeltaBias, true, "D", d.D),
		scanArg("DH0", g.DH0, true, "B·D·N", bdn)); err != nil {
		return err
	}
	if g.DZ != nil && in.Z == nil {
		return fmt.Errorf("%s: DZ is given but Z is nil (no gate) %v", op, d)
	}
	if g.DDskip != nil && in.Dskip == nil {
		return fmt.Errorf("%s: DDskip is given but Dskip is nil %v", op, d)
	}
	scanBackward(g, dout, dhLast, in, saved, d)
	return nil
}

// ---- validation ----

// check validates the sizes; chunk says whether Chunk must be valid too.
func (d ScanDims) check(op string, chunk bool) error {
	switch {
	case d.B < 1 || d.L < 1 || d.D < 1 || d.N < 1 || d.G < 1:
		return fmt.Errorf("%s: sizes must be ≥ 1 %v", op, d)
	case d.D%d.G != 0:
		return fmt.Errorf("%s: D=%d is not divisible by G=%d %v", op, d.D, d.G, d)
	case chunk && d.Chunk < 1:
		return fmt.Errorf("%s: Chunk must be ≥ 1 to save or read states %v", op, d)
	}
	return nil
}

// scanBuf describes one slice argument for scanCheckBufs.
type scanBuf struct {
	name     string
	n        int
	isNil    bool
	optional bool
	formula  string
	want     int
}

func scanArg[T float32 | float64](name string, x []T, optional bool, formula string, want int) scanBuf {
	return scanBuf{name, len(x), x == nil, optional, formula, want}
}

func scanCheckBufs(op string, d fmt.Stringer, bufs ...scanBuf) error {
	for _, b := range bufs {
		if b.optional && b.isNil {
			continue
		}
		if b.n != b.want {
			return fmt.Errorf("%s: %s has length %d, want %s = %d %v", op, b.name, b.n, b.formula, b.want, d)
		}
	}
	return nil
}

func scanCheckInputs(op string, in ScanInputs, d ScanDims) error {
	bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
	return scanCheckBufs(op, d,
		scanArg("U", in.U, false, "B·L·D", bld),
		scanArg("Delta", in.Delta, false, "B·L·D", bld),
		scanArg("A", in.A, false, "D·N", d.D*d.N),
		scanArg("Bm", in.Bm, false, "B·L·G·N", blgn),
		scanArg("Cm", in.Cm, false, "B·L·G·N", blgn),
		scanArg("Dskip", in.Dskip, true, "D", d.D),
		scanArg("Z", in.Z, true, "B·L·D", bld),
		scanArg("DeltaBias", in.DeltaBias, true, "D", d.D),
		scanArg("H0", in.H0, true, "B·D·N", d.B*d.D*d.N))
}

func scanCheckStep(op string, in ScanInputs, d ScanDims) error {
	bd, bgn := d.B*d.D, d.B*d.G*d.N
	return scanCheckBufs(op, d,
		scanArg("state", in.H0, false, "B·D·N", d.B*d.D*d.N),
		scanArg("u", in.U, false, "B·D", bd),
		scanArg("delta", in.Delta, false, "B·D", bd),
		scanArg("bm", in.Bm, false, "B·G·N", bgn),
		scanArg("cm", in.Cm, false, "B·G·N", bgn),
		scanArg("z", in.Z, true, "B·D", bd),
		scanArg("A", in.A, false, "D·N", d.D*d.N),
		scanArg("Dskip", in.Dskip, true, "D", d.D),
		scanArg("DeltaBias", in.DeltaBias, true, "D", d.D))
}

// ---- elementary functions (inlinable float32) ----

// Exponential: with v = x·256/ln2 = k + f (k integer, |f| ≤ 1/2), e^x = 2^(k>>8)·2^((k&255)/256)·e^r,
// r = f·ln2/256; the middle factor comes from a table and e^r ≈ 1 + r + r²/2 (truncation below
// 4e-10). That is fewer and shorter-latency instructions than a degree-6 polynomial (fmath.Exp);
// relative error < 2.5e-7 for moderate |x| (the rounding of v adds |x|·6e-8).
const (
	scanL2e256 = 256 * 1.44269504088896341
	scanC1     = 0.69314718055994531 / 256 // r = f·C1
	scanC2     = scanC1 * scanC1 / 2
	scanMagic  = 12582912           // 1.5·2²³: adding it rounds a float32 to an integer in the low mantissa bits
	scanMagicU = 0x4B400000         // its bits
	scanVLo    = -87.3 * scanL2e256 // below, e^x would be denormal: saturate at ≈1.2e-38
	scanVHi    = 88 * scanL2e256    // above, e^x overflows float32: saturate at e^88
)

// scanExp2Tab[i] holds the bits of 2^(i/256).
var scanExp2Tab = func() (t [256]uint32) {
	for i := range t {
		t[i] = math.Float32bits(float32(math.Exp2(float64(i) / 256)))
	}
	return t
}()

// scanExpScaled sets dst[n] = e^(s·x[n]) for n < len(x) (dst may be x), saturating below −87.3
// (≈1.2e-38, no denormals) and above 88 (e^88); NaN gives NaN. Hot loops call it once per row:
// as a scalar function the body would be over the inlining budget. (Branches rather than
// min/max: Go's float min/max handle NaN and ±0 at a cost.)
func scanExpScaled(dst, x []float32, s float32) {
	dst = dst[:len(x)]
	s *= scanL2e256
	for n, xn := range x {
		v := s * xn
		if v < scanVLo {
			v = scanVLo
		}
		if v > scanVHi {
			v = scanVHi
		}
		t := v + scanMagic
		f := v - (t - scanMagic)               // exact
		kb := math.Float32bits(t) - scanMagicU // k in two's complement
		dst[n] = ((scanC2*f+scanC1)*f + 1) * math.Float32frombits(scanExp2Tab[uint8(kb)]+uint32(int32(kb)>>8)<<23)
	}
}

func scanAbs(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// ---- forward ----

// scanFwdBlock is the channel block of a forward task: wide enough for contiguous row reads, small
// enough that B·blocks gives every worker several tasks.
func scanFwdBlock(d ScanDims) int {
	blk := min(d.D, 64)
	for blk > 8 && d.B*((d.D+blk-1)/blk) < 4*par.Workers() {
		blk /= 2
	}
	return blk
}

func scanForward(out, hLast, saved []float32, in ScanInputs, d ScanDims) {
	B, L, D, N, G := d.B, d.L, d.D, d.N, d.G
	blk := scanFwdBlock(d)
	nblk := (D + blk - 1) / blk
	var nc int
	if saved != nil {
		nc = scanChunks(d)
	}
	par.For(B*nblk, 1, func(lo, hi int) {
		h := make([]float32, blk*N) // the task's states, (blk, N)
		tk := newScanTok(in, d, blk)
		for it := lo; it < hi; it++ {
			b, d0 := it/nblk, (it%nblk)*blk
			d1 := min(D, d0+blk)
			hs := h[:(d1-d0)*N]
			if in.H0 != nil {
				copy(hs, in.H0[(b*D+d0)*N:(b*D+d1)*N])
			} else {
				clear(hs)
			}
			tk.d0, tk.d1 = d0, d1
			for t := range L {
				if saved != nil && t%d.Chunk == 0 {
					o := ((b*nc+t/d.Chunk)*D + d0) * N
					copy(saved[o:o+len(hs)], hs)
				}
				row := (b*L + t) * D
				var z []float32
				if in.Z != nil {
					z = in.Z[row+d0 : row+d1]
				}
				gr := (b*L + t) * G * N
				tk.forward(hs, nil, nil, out[row+d0:row+d1], in.U[row+d0:row+d1], in.Delta[row+d0:row+d1], z,
					in.Bm[gr:gr+G*N], in.Cm[gr:gr+G*N])
			}
			if hLast != nil {
				copy(hLast[(b*D+d0)*N:(b*D+d1)*N], hs)
			}
		}
	})
}

// scanTok holds what stays fixed while a task walks tokens over channels [d0, d1), and the
// per-worker row scratch.
type scanTok struct {
	A, Dskip, bias []float32 // (D, N), (D) or nil, (D) or nil
	softplus       bool
	N, dpg         int // state size, channels per group
	d0, d1         int
	ea             []float32 // (N) the decays when they are not kept
	δ, dδ, gate    []float32 // (blk) rows: δ, dδ/dΔraw, silu(z) or sigmoid(z)
}

func newScanTok(in ScanInputs, d ScanDims, blk int) scanTok {
	return scanTok{A: in.A, Dskip: in.Dskip, bias: in.DeltaBias, softplus: in.Softplus, N: d.N, dpg: d.D / d.G,
		ea: make([]float32, d.N), δ: make([]float32, blk), dδ: make([]float32, blk), gate: make([]float32, blk)}
}

// steps fills k.δ (and k.dδ = dδ/dΔraw when grad) for the raw step row dr of channels [d0, d1):
// δ = softplus(dr + bias) = max(r, 0) + log1p(e^−|r|), with log1p(e) = 2·atanh(e/(2+e)) summed as
// a series (e ≤ 1: relative error ~1e-8 before rounding); δ = r above 20, as the Mamba kernels do.
func (k *scanTok) steps(dr []float32, grad bool) {
	nb := k.d1 - k.d0
	δs, es, dδs := k.δ[:nb], k.gate[:nb], k.dδ[:nb]
	copy(δs, dr[:nb])
	if k.bias != nil {
		scanAdd(δs, k.bias[k.d0:k.d1])
	}
	if !k.softplus {
		if grad {
			for j := range dδs {
				dδs[j] = 1
			}
		}
		return
	}
	if grad {
		scanSigmoidRow(dδs, δs) // dsoftplus/dr; it rounds to 1 above 20, where δ = r
	}
	for j, r := range δs {
		es[j] = -scanAbs(r)
	}
	scanExpScaled(es, es, 1)
	for j, r := range δs {
		e := es[j]
		x := e / (2 + e)
		x2 := x * x
		l := 2 * x * (1 + x2*(1.0/3+x2*(1.0/5+x2*(1.0/7+x2*(1.0/9+x2*(1.0/11+x2*(1.0/13)))))))
		l += 0.5 * (r + scanAbs(r)) // max(r, 0), branch-free
		if r > 20 {
			l = r
		}
		δs[j] = l
	}
}

// forward advances the states hs (d1−d0, N) by one token and writes y (d1−d0) (gated when z is
// given). u, dr, z are the token's rows for the block (d1−d0); bm, cm its (G, N) rows.
// With ab ≠ nil it also stores the decays exp(δ·A) in ab (d1−d0, N) and δ, dδ/dΔraw and the
// ungated y in aux (3, d1−d0), for the backward recomputation.
func (k *scanTok) forward(hs, ab, aux, y, u, dr, z, bm, cm []float32) {
	N := k.N
	nb := k.d1 - k.d0
	u, y = u[:nb], y[:nb]
	k.steps(dr, ab != nil)
	δs := k.δ[:nb]
	if ab != nil {
		copy(aux[:nb], δs)
		copy(aux[nb:2*nb], k.dδ[:nb])
	}
	for d := k.d0; d < k.d1; {
		g := d / k.dpg
		e := min(k.d1, (g+1)*k.dpg)
		bv := bm[g*N : g*N+N]
		cv := cm[g*N : g*N+N]
		for ; d < e; d++ {
			j := d - k.d0
			x, δ := u[j], δs[j]
			δx := δ * x
			a := k.A[d*N : d*N+N]
			h := hs[j*N : j*N+N]
			h, bv, cv := h[:len(a)], bv[:len(a)], cv[:len(a)]
			// Decays first (a call-free exp loop), then the recurrence.
			ea := k.ea
			if ab != nil {
				ea = ab[j*N : j*N+N]
			}
			scanExpScaled(ea, a, δ)
			ea = ea[:len(a)]
			var acc float32
			for n := range a {
				hn := ea[n]*h[n] + δx*bv[n]
				h[n] = hn
				acc += hn * cv[n]
			}
			if k.Dskip != nil {
				acc += k.Dskip[d] * x
			}
			y[j] = acc
		}
	}
	if ab != nil {
		copy(aux[2*nb:3*nb], y)
	}
	if z != nil {
		sig := k.gate[:nb]
		scanSigmoidRow(sig, z)
		z = z[:nb]
		for j, zz := range z {
			y[j] *= zz * sig[j]
		}
	}
}

// scanSigmoidRow sets sig[c] = sigmoid(v[c]) = 1/(1+e^−v) for c < len(v), branch-free (random
// signs would mispredict). No cancellation either way; below v ≈ −88 it saturates near 1e-38.
func scanSigmoidRow(sig, v []float32) {
	sig = sig[:len(v)]
	scanExpScaled(sig, v, -1)
	for c, e := range sig {
		sig[c] = 1 / (1 + e)
	}
}

// ---- backward ----

// scanBwdBlock is the channel block of a backward task: the chunk scratch 2·Q·blk·N floats
// stays within ~256 KiB (L2), and B·blocks gives every worker several tasks.
func scanBwdBlock(d ScanDims) int {
	blk := max(1, min(d.D, (256<<10)/(8*d.Chunk*d.N)))
	for blk > 4 && d.B*((d.D+blk-1)/blk) < 4*par.Workers() {
		blk /= 2
	}
	return blk
}

// scanPool recycles backward scratch (per-worker chunk states and partial gradients).
var scanPool sync.Pool

func scanGet(n int) []float32 {
	if p, ok := scanPool.Get().(*[]float32); ok && cap(*p) >= n {
		s := (*p)[:n]
		clear(s)
		return s
	}
	return make([]float32, n)
}

func scanPut(s []float32) { scanPool.Put(&s) }

// scanWorker is one backward worker's scratch and partial parameter / Bm / Cm gradients.
type scanWorker struct {
	hs, ab, aux []float32 // (Q+1, blk, N) states (row 0 = chunk start), (Q, blk, N) decays, (Q, 3, blk)
	carry       []float32 // (blk, N) dL/dh flowing backwards
	dA          []float32 // (D, N)
	dD, dBias   []float32 // (D)
	bLo         int       // first batch row of dB, dC
	dB, dC      []float32 // (bHi−bLo+1, L, G, N)
	junk        []float32 // (4·blk + G·N) sink for gradients not wanted
	tok         scanTok
}

func scanBackward(g ScanGrads, dout, dhLast []float32, in ScanInputs, saved []float32, d ScanDims) {
	B, L, D, N, G, Q := d.B, d.L, d.D, d.N, d.G, d.Chunk
	blk := scanBwdBlock(d)
	nblk := (D + blk - 1) / blk
	items := B * nblk
	nw := min(par.Workers(), items)
	ws := make([]scanWorker, nw)
	par.For(nw, 1, func(lo, hi int) {
		for w := lo; w < hi; w++ {
			iLo, iHi := w*items/nw, (w+1)*items/nw
			wk := &ws[w]
			wk.bLo = iLo / nblk
			nbRows := (iHi-1)/nblk - wk.bLo + 1
			wk.hs, wk.ab, wk.aux = scanGet((Q+1)*blk*N), scanGet(Q*blk*N), scanGet(Q*3*blk)
			wk.carry, wk.dA = scanGet(blk*N), scanGet(D*N)
			wk.dD, wk.dBias = scanGet(D), scanGet(D)
			wk.dB, wk.dC = scanGet(nbRows*L*G*N), scanGet(nbRows*L*G*N)
			wk.junk = scanGet(4*blk + G*N)
			wk.tok = newScanTok(in, d, blk)
			for it := iLo; it < iHi; it++ {
				b, d0 := it/nblk, (it%nblk)*blk
				wk.task(g, dout, dhLast, in, saved, d, b, d0, min(D, d0+blk))
			}
		}
	})
	// Reduce in worker order: deterministic for a given GOMAXPROCS.
	if g.DBm != nil {
		clear(g.DBm)
	}
	if g.DCm != nil {
		clear(g.DCm)
	}
	for w := range ws {
		wk := &ws[w]
		o := wk.bLo * L * G * N
		if g.DBm != nil {
			scanAdd(g.DBm[o:], wk.dB)
		}
		if g.DCm != nil {
			scanAdd(g.DCm[o:], wk.dC)
		}
		if g.DA != nil {
			scanAdd(g.DA, wk.dA)
		}
		if g.DDskip != nil {
			scanAdd(g.DDskip, wk.dD)
		}
		if g.DDeltaBias != nil {
			scanAdd(g.DDeltaBias, wk.dBias)
		}
		for _, s := range [][]float32{wk.hs, wk.ab, wk.aux, wk.carry, wk.dA, wk.dD, wk.dBias, wk.dB, wk.dC, wk.junk} {
			scanPut(s)
		}
	}
}

// scanAdd adds src into dst[:len(src)].
func scanAdd(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] += v
	}
}

// task runs the backward pass of batch b, channels [d0, d1).
func (wk *scanWorker) task(g ScanGrads, dout, dhLast []float32, in ScanInputs, saved []float32, d ScanDims, b, d0, d1 int) {
	L, D, N, G, Q := d.L, d.D, d.N, d.G, d.Chunk
	nb := d1 - d0
	bn := nb * N
	nc := scanChunks(d)
	tk := &wk.tok
	tk.d0, tk.d1 = d0, d1
	carry := wk.carry[:bn]
	if dhLast != nil {
		copy(carry, dhLast[(b*D+d0)*N:(b*D+d1)*N])
	} else {
		clear(carry)
	}
	junk := wk.junk
	for c := nc - 1; c >= 0; c-- {
		t0 := c * Q
		t1 := min(L, t0+Q)
		// Recompute the chunk: hs row i+1 is the state after token t0+i, row 0 the chunk start.
		so := ((b*nc+c)*D + d0) * N
		copy(wk.hs[:bn], saved[so:so+bn])
		for i := range t1 - t0 {
			t := t0 + i
			row := (b*L + t) * D
			var z []float32
			if in.Z != nil {
				z = in.Z[row+d0 : row+d1]
			}
			hs := wk.hs[(i+1)*bn : (i+2)*bn]
			copy(hs, wk.hs[i*bn:(i+1)*bn])
			gr := (b*L + t) * G * N
			tk.forward(hs, wk.ab[i*bn:(i+1)*bn], wk.aux[i*3*nb:(i+1)*3*nb], junk[:nb], in.U[row+d0:row+d1],
				in.Delta[row+d0:row+d1], z, in.Bm[gr:gr+G*N], in.Cm[gr:gr+G*N])
		}
		// Reverse recurrence over the chunk.
		for i := t1 - t0 - 1; i >= 0; i-- {
			t := t0 + i
			row := (b*L + t) * D
			gr := (b*L + t) * G * N
			pr := ((b-wk.bLo)*L + t) * G * N
			dB, dC := wk.dB[pr:pr+G*N], wk.dC[pr:pr+G*N]
			if g.DBm == nil {
				dB = junk[4*nb : 4*nb+G*N]
			}
			if g.DCm == nil {
				dC = junk[4*nb : 4*nb+G*N]
			}
			rows := scanRows{
				dout: dout[row+d0 : row+d1], u: in.U[row+d0 : row+d1],
				du: junk[nb : 2*nb], ddelta: junk[2*nb : 3*nb], dz: junk[3*nb : 4*nb],
				bm: in.Bm[gr : gr+G*N], cm: in.Cm[gr : gr+G*N], dB: dB, dC: dC,
				hPrev: wk.hs[i*bn : (i+1)*bn], h: wk.hs[(i+1)*bn : (i+2)*bn], ab: wk.ab[i*bn : (i+1)*bn],
				aux: wk.aux[i*3*nb : (i+1)*3*nb],
			}
			if in.Z != nil {
				rows.z = in.Z[row+d0 : row+d1]
			}
			if g.DU != nil {
				rows.du = g.DU[row+d0 : row+d1]
			}
			if g.DDelta != nil {
				rows.ddelta = g.DDelta[row+d0 : row+d1]
			}
			if g.DZ != nil {
				rows.dz = g.DZ[row+d0 : row+d1]
			}
			wk.reverse(tk, carry, &rows)
		}
	}
	if g.DH0 != nil {
		copy(g.DH0[(b*D+d0)*N:(b*D+d1)*N], carry)
	}
}

// scanRows are one token's rows for the reverse step of a channel block.
type scanRows struct {
	dout, u, z, du, ddelta, dz []float32 // (nb) block rows; z may be nil
	bm, cm, dB, dC             []float32 // (G, N)
	hPrev, h, ab               []float32 // (nb, N) state before and after the token, decays
	aux                        []float32 // (3, nb): δ, dδ/dΔraw, ungated y
}

// reverse takes one token back: with carry = dL/dh_t from later tokens on entry, it adds the
// token's own output gradient, accumulates every gradient and leaves dL/dh_{t−1} in carry.
func (wk *scanWorker) reverse(k *scanTok, carry []float32, r *scanRows) {
	N := k.N
	nb := k.d1 - k.d0
	dout, u, du, ddelta, dz := r.dout[:nb], r.u[:nb], r.du[:nb], r.ddelta[:nb], r.dz[:nb]
	dl, dsp, ys := r.aux[:nb], r.aux[nb:2*nb], r.aux[2*nb:3*nb]
	var sig []float32
	if r.z != nil {
		sig = k.gate[:nb]
		scanSigmoidRow(sig, r.z[:nb])
	}
	for d := k.d0; d < k.d1; {
		g := d / k.dpg
		e := min(k.d1, (g+1)*k.dpg)
		bv, cv := r.bm[g*N:g*N+N], r.cm[g*N:g*N+N]
		dB, dC := r.dB[g*N:g*N+N], r.dC[g*N:g*N+N]
		for ; d < e; d++ {
			j := d - k.d0
			x, δ := u[j], dl[j]
			dy := dout[j]
			if r.z != nil {
				zz, sg := r.z[j], sig[j]
				dz[j] = dy * ys[j] * sg * (1 + zz*(1-sg))
				dy *= zz * sg
			}
			var dux float32
			if k.Dskip != nil {
				wk.dD[d] += dy * x
				dux = dy * k.Dskip[d]
			}
			δx := δ * x
			a := k.A[d*N : d*N+N]
			dA := wk.dA[d*N : d*N+N]
			o := j * N
			ch, h, hp, ab := carry[o:o+N], r.h[o:o+N], r.hPrev[o:o+N], r.ab[o:o+N]
			dA, ch, h, hp, ab = dA[:len(a)], ch[:len(a)], h[:len(a)], hp[:len(a)], ab[:len(a)]
			bv, cv, dB, dC := bv[:len(a)], cv[:len(a)], dB[:len(a)], dC[:len(a)]
			var sB, sA float32
			for n, an := range a {
				dh := ch[n] + dy*cv[n]
				dC[n] += dy * h[n]
				q := dh * ab[n] * hp[n]
				dA[n] += δ * q
				sA += an * q
				dB[n] += dh * δx
				sB += dh * bv[n]
				ch[n] = ab[n] * dh
			}
			du[j] = dux + δ*sB
			dr := (sA + x*sB) * dsp[j]
			ddelta[j] = dr
			wk.dBias[d] += dr
		}
	}
}
