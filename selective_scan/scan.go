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
// way), channels in blocks that never straddle a group; within a block the vector dimension is
// the channel: 8 channels per AVX2 vector, states in the lane layout (nv, N, 8) of scan_kern.go,
// so one token is nv·N independent vector updates with no horizontal sums (the per-token kernels
// are in scan_amd64.s, with Go versions as the fallback: -tags purego or another GOARCH).
// Forward tasks are (batch, channel block) for internal/par, blocks as wide as a row allows
// (contiguous row reads), states in L1.
// Training memory does not grow with L·D·N: the forward pass saves only the state at each chunk
// start, (B, ceil(L/Q), D, N); the backward pass walks chunks in reverse, recomputes a chunk's
// states and decays into a per-worker scratch (2·Q·W·N floats for a block of W channels, sized
// to stay in L2), then runs the reverse recurrence. A backward item (batch, range of blocks) takes
// all its blocks through one chunk before the previous chunk, so a chunk's rows are read as a few
// contiguous regions (prefetched during the recomputation). Bm/Cm gradients sum over the channels
// of a group; they are accumulated in per-worker partial buffers and reduced in worker order
// (deterministic).

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

// scanAdd adds src into dst[:len(src)].
func scanAdd(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] += v
	}
}

// scanPool recycles scratch (per-worker rows, chunk states and partial gradients).
var scanPool sync.Pool

// scanGet returns a zeroed slice of length n from the pool.
func scanGet(n int) []float32 {
	if p, ok := scanPool.Get().(*[]float32); ok && cap(*p) >= n {
		s := (*p)[:n]
		clear(s)
		return s
	}
	return make([]float32, n)
}

func scanPut(s []float32) { scanPool.Put(&s) }

// ---- blocks and the lane layout ----

// scanBlock is the channel block of a task, at most lim channels (lim a multiple of 8): blocks
// never straddle a group (a block reads one Bm/Cm row per token), are multiples of 8 channels
// unless a whole group is narrower, and B·G·blocks gives every worker several tasks.
func scanBlock(d ScanDims, lim int) int {
	dpg := d.D / d.G
	blk := min(dpg, lim)
	for blk > 8 && d.B*d.G*((dpg+blk-1)/blk) < 4*par.Workers() {
		blk = (blk/2 + 7) &^ 7
	}
	return blk
}

// scanTask maps a task index to batch b, group g and channels [d0, d1).
func scanTask(it int, d ScanDims, blk, nbg int) (b, g, d0, d1 int) {
	dpg := d.D / d.G
	b, r := it/(d.G*nbg), it%(d.G*nbg)
	g, j := r/nbg, r%nbg
	d0 = g*dpg + j*blk
	return b, g, d0, min((g+1)*dpg, d0+blk)
}

// scanWork is one worker's scratch for blocks of at most W (a multiple of 8) channels, in the
// lane layout of scan_kern.go. setBlock selects the current block: nb channels, nv vectors.
type scanWork struct {
	N, W, Q int
	d0, nb  int
	nv      int
	at      []float32 // (nv, N, 8) A·log2(e)
	dsk     []float32 // (W) Dskip, zeros when absent
	bias    []float32 // (W) DeltaBias, zeros when absent
	u, raw  []float32 // (W) padded input rows
	z, y    []float32 // (W)
	dl, dsp []float32 // (W) δ and dδ/dΔraw
	h       []float32 // (nv, N, 8) forward state
	// backward only
	hs, ab            []float32 // (Q+1, nv, N, 8) states (row 0 = chunk start), (Q, nv, N, 8) decays
	aux               []float32 // (Q, 3, W): δ, dδ/dΔraw, ungated y
	carry, dA         []float32 // (nv, N, 8) dL/dh flowing backwards, the block's dA
	dout, dy, dz      []float32 // (W)
	du, dr, dD, dBias []float32 // (W)
	dbc               []float32 // (N, 2, 8) lane partials of dBm, dCm
	junk              []float32 // (N) sink for dBm/dCm not wanted
	bufs, blkBufs     [][]float32
}

func newScanWork(d ScanDims, blk int, bwd bool) *scanWork {
	W := (blk + scanLanes - 1) &^ (scanLanes - 1)
	N, Q := d.N, d.Chunk
	w := &scanWork{N: N, W: W, Q: Q}
	get := func(n int) []float32 {
		s := scanGet(n)
		w.bufs = append(w.bufs, s)
		return s
	}
	w.at, w.dsk, w.bias = get(W*N), get(W), get(W)
	w.u, w.raw, w.z, w.y, w.dl, w.dsp = get(W), get(W), get(W), get(W), get(W), get(W)
	if !bwd {
		w.h = get(W * N)
		return w
	}
	w.hs, w.ab, w.aux = get((Q+1)*W*N), get(Q*W*N), get(Q*3*W)
	w.dout, w.dy, w.dz, w.du, w.dr = get(W), get(W), get(W), get(W), get(W)
	w.dbc, w.junk = get(2*scanLanes*N), get(N)
	return w
}

// use selects block p (backward): its channels and parameters.
func (w *scanWork) use(p *scanBlk) {
	w.d0, w.nb = p.d0, p.d1-p.d0
	w.nv = (w.nb + scanLanes - 1) / scanLanes
	w.at, w.dsk, w.bias = p.at, p.dsk, p.bias
}

// get returns a zeroed pooled slice that putBlocks returns.
func (w *scanWork) get(n int) []float32 {
	s := scanGet(n)
	w.blkBufs = append(w.blkBufs, s)
	return s
}

func (w *scanWork) putBlocks() {
	for _, s := range w.blkBufs {
		scanPut(s)
	}
	w.blkBufs = w.blkBufs[:0]
}

func (w *scanWork) free() {
	for _, s := range w.bufs {
		scanPut(s)
	}
	w.bufs = nil
}

// setBlock selects channels [d0, d1) and lays out their parameters into w.at, w.dsk, w.bias.
func (w *scanWork) setBlock(in ScanInputs, d0, d1 int) {
	w.d0, w.nb = d0, d1-d0
	w.nv = (w.nb + scanLanes - 1) / scanLanes
	scanLayout(w.at, w.dsk, w.bias, in, w.N, d0, d1)
}

// scanLayout writes A·log2(e) of channels [d0, d1) into at (nv, N, 8) and Dskip, DeltaBias into
// the padded rows dsk, bias (zeros when absent).
func scanLayout(at, dsk, bias []float32, in ScanInputs, N, d0, d1 int) {
	nb := d1 - d0
	nv := (nb + scanLanes - 1) / scanLanes
	wc := nv * scanLanes
	at = at[:wc*N]
	for v := range nv {
		for l := range scanLanes {
			c, o := v*scanLanes+l, v*N*scanLanes+l
			if c >= nb {
				for n := range N {
					at[o+n*scanLanes] = 0
				}
				continue
			}
			a := in.A[(d0+c)*N : (d0+c)*N+N]
			for n, x := range a {
				at[o+n*scanLanes] = x * math.Log2E
			}
		}
	}
	for _, p := range [2]struct{ dst, src []float32 }{{dsk, in.Dskip}, {bias, in.DeltaBias}} {
		clear(p.dst[:wc])
		if p.src != nil {
			copy(p.dst, p.src[d0:d1])
		}
	}
}

// loadLanes copies the block's states src (nb, N) into dst (nv, N, 8), zeroing pad lanes.
func (w *scanWork) loadLanes(dst, src []float32) {
	N := w.N
	dst = dst[:w.nv*N*scanLanes]
	for c := range w.nv * scanLanes {
		o := (c/scanLanes)*N*scanLanes + c%scanLanes
		if c >= w.nb {
			for n := range N {
				dst[o+n*scanLanes] = 0
			}
			continue
		}
		for n, x := range src[c*N : c*N+N] {
			dst[o+n*scanLanes] = x
		}
	}
}

// storeLanes copies the block's states src (nv, N, 8) into dst (nb, N).
func (w *scanWork) storeLanes(dst, src []float32) {
	N := w.N
	for c := range w.nb {
		o := (c/scanLanes)*N*scanLanes + c%scanLanes
		row := dst[c*N : c*N+N]
		for n := range row {
			row[n] = src[o+n*scanLanes]
		}
	}
}

// row returns the block's padded row of src at off (src[off:] directly when the block fills
// its vectors, else a copy in buf with zero pad lanes).
func (w *scanWork) row(buf, src []float32, off int) []float32 {
	wc := w.nv * scanLanes
	if w.nb == wc {
		return src[off : off+wc]
	}
	copy(buf, src[off:off+w.nb])
	clear(buf[w.nb:wc])
	return buf[:wc]
}

// orow returns where to write the block's output row of dst at off: dst itself when possible,
// else buf (flush copies it out). dst may be nil (output not wanted).
func (w *scanWork) orow(buf, dst []float32, off int) []float32 {
	wc := w.nv * scanLanes
	if dst != nil && w.nb == wc {
		return dst[off : off+wc]
	}
	return buf[:wc]
}

func (w *scanWork) flush(buf, dst []float32, off int) {
	if dst != nil && w.nb != w.nv*scanLanes {
		copy(dst[off:off+w.nb], buf[:w.nb])
	}
}

// scanAhead is how many tokens ahead the row walks prefetch: a block reads short row pieces a
// whole row (D floats) apart, a stride the hardware prefetchers do not follow across pages.
const scanAhead = 4

// prefetch asks for the block's row piece of src at off (nothing when src is nil or too short).
func (w *scanWork) prefetch(src []float32, off int) {
	if scanUseAVX2 && src != nil && off+w.nb <= len(src) {
		scanPrefetchAVX2(&src[off], w.nb)
	}
}

// steps fills δ and dδ/dΔraw for a raw step row.
func (w *scanWork) steps(dl, dsp, raw []float32, softplus bool) {
	if softplus {
		scanSoftplus(dl, dsp, raw, w.bias[:len(dl)])
		return
	}
	bias := w.bias[:len(dl)]
	for j := range dl {
		dl[j] = raw[j] + bias[j]
		dsp[j] = 1
	}
}

// ---- forward ----

// scanFwdLim is the widest forward block: a whole row of a typical D is read contiguously per
// token (narrow blocks read pieces a row apart, which the hardware prefetchers do not follow
// across pages); the states (512·N floats, 32 KiB at N=16) stay in L1/L2.
const scanFwdLim = 512

func scanForward(out, hLast, saved []float32, in ScanInputs, d ScanDims) {
	B, L, D, N, G := d.B, d.L, d.D, d.N, d.G
	blk := scanBlock(d, scanFwdLim)
	nbg := (D/G + blk - 1) / blk
	var nc int
	if saved != nil {
		nc = scanChunks(d)
	}
	par.For(B*G*nbg, 1, func(lo, hi int) {
		w := newScanWork(d, blk, false)
		defer w.free()
		for it := lo; it < hi; it++ {
			b, g, d0, d1 := scanTask(it, d, blk, nbg)
			w.setBlock(in, d0, d1)
			wc := w.nv * scanLanes
			h := w.h[:wc*N]
			if in.H0 != nil {
				w.loadLanes(h, in.H0[(b*D+d0)*N:(b*D+d1)*N])
			} else {
				clear(h)
			}
			dl, dsp := w.dl[:wc], w.dsp[:wc]
			for t := range L {
				if saved != nil && t%d.Chunk == 0 {
					o := ((b*nc+t/d.Chunk)*D + d0) * N
					w.storeLanes(saved[o:o+w.nb*N], h)
				}
				off := (b*L+t)*D + d0
				if t+scanAhead < L {
					po := off + scanAhead*D
					w.prefetch(in.Delta, po)
					w.prefetch(in.U, po)
					w.prefetch(in.Z, po)
					w.prefetch(out, po)
				}
				w.steps(dl, dsp, w.row(w.raw, in.Delta, off), in.Softplus)
				u := w.row(w.u, in.U, off)
				y := w.orow(w.y, out, off)
				gr := ((b*L+t)*G + g) * N
				scanFwdTok(w.nv, N, w.at, h, h, nil, dl, u, w.dsk, in.Bm[gr:gr+N], in.Cm[gr:gr+N], y)
				if in.Z != nil {
					scanGate(y, y, w.row(w.z, in.Z, off))
				}
				w.flush(y, out, off)
			}
			if hLast != nil {
				w.storeLanes(hLast[(b*D+d0)*N:(b*D+d1)*N], h)
			}
		}
	})
}

// ---- backward ----

// scanBwdLim is the widest backward block: the chunk scratch (2Q+1)·W·N floats stays within
// ~256 KiB (L2).
func scanBwdLim(d ScanDims) int {
	return max(scanLanes, ((256<<10)/(8*d.Chunk*d.N))&^(scanLanes-1))
}

// scanWorker is one backward worker's partial parameter and Bm / Cm gradients.
type scanWorker struct {
	dA        []float32 // (D, N)
	dD, dBias []float32 // (D)
	bLo       int       // first batch row of dB, dC
	dB, dC    []float32 // (bHi−bLo+1, L, G, N), nil when not wanted
}

// scanBlk is what a backward item keeps per channel block across chunks.
type scanBlk struct {
	d0, d1        int
	at, dsk, bias []float32 // parameters in the lane layout
	carry, dA     []float32 // (nv, N, 8)
	dD, dBias     []float32 // (W)
}

// scanBackward splits the work into items (b, range of channel blocks) and walks each item's
// chunks from the last, every block of the item through one chunk before the previous chunk:
// a chunk's rows (Q tokens × the item's channels) are then read as a few contiguous regions
// while the blocks' carries wait in their scratch, instead of one block at a time striding a
// whole row (D floats) per token through memory, which the prefetchers cannot follow.
func scanBackward(g ScanGrads, dout, dhLast []float32, in ScanInputs, saved []float32, d ScanDims) {
	B, L, D, N, G := d.B, d.L, d.D, d.N, d.G
	blk := scanBlock(d, scanBwdLim(d))
	nbg := (D/G + blk - 1) / blk
	nblk := G * nbg
	split := min(nblk, (2*par.Workers()+B-1)/B) // items per batch row
	items := B * split
	nw := min(par.Workers(), items)
	ws := make([]scanWorker, nw)
	par.For(nw, 1, func(lo, hi int) {
		for wi := lo; wi < hi; wi++ {
			iLo, iHi := wi*items/nw, (wi+1)*items/nw
			wk := &ws[wi]
			wk.bLo = iLo / split
			nbRows := (iHi-1)/split - wk.bLo + 1
			wk.dA, wk.dD, wk.dBias = scanGet(D*N), scanGet(D), scanGet(D)
			if g.DBm != nil {
				wk.dB = scanGet(nbRows * L * G * N)
			}
			if g.DCm != nil {
				wk.dC = scanGet(nbRows * L * G * N)
			}
			w := newScanWork(d, blk, true)
			for it := iLo; it < iHi; it++ {
				b, j := it/split, it%split
				wk.item(w, g, dout, dhLast, in, saved, d, b, j*nblk/split, (j+1)*nblk/split, blk, nbg)
			}
			w.free()
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
			scanPut(wk.dB)
		}
		if g.DCm != nil {
			scanAdd(g.DCm[o:], wk.dC)
			scanPut(wk.dC)
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
		for _, s := range [][]float32{wk.dA, wk.dD, wk.dBias} {
			scanPut(s)
		}
	}
}

// item runs the backward pass of batch b over channel blocks [j0, j1) (block j = block j%nbg of
// group j/nbg).
func (wk *scanWorker) item(w *scanWork, g ScanGrads, dout, dhLast []float32, in ScanInputs, saved []float32, d ScanDims, b, j0, j1, blk, nbg int) {
	D, N := d.D, d.N
	dpg := D / d.G
	W := w.W
	bs := make([]scanBlk, j1-j0)
	for k := range bs {
		j := j0 + k
		p := &bs[k]
		p.d0 = (j/nbg)*dpg + (j%nbg)*blk
		p.d1 = min((j/nbg+1)*dpg, p.d0+blk)
		p.at, p.dsk, p.bias, p.carry, p.dA = w.get(W*N), w.get(W), w.get(W), w.get(W*N), w.get(W*N)
		p.dD, p.dBias = w.get(W), w.get(W)
		scanLayout(p.at, p.dsk, p.bias, in, N, p.d0, p.d1)
		if dhLast != nil {
			w.use(p)
			w.loadLanes(p.carry, dhLast[(b*D+p.d0)*N:(b*D+p.d1)*N])
		}
	}
	for c := scanChunks(d) - 1; c >= 0; c-- {
		for k := range bs {
			p := &bs[k]
			w.use(p)
			wk.chunk(w, p, g, dout, in, saved, d, b, (j0+k)/nbg, c)
		}
	}
	for k := range bs {
		p := &bs[k]
		w.use(p)
		if g.DH0 != nil {
			w.storeLanes(g.DH0[(b*D+p.d0)*N:(b*D+p.d1)*N], p.carry)
		}
		// The block's parameter gradients into the worker's partials.
		for c := range w.nb {
			o := (c/scanLanes)*N*scanLanes + c%scanLanes
			row := wk.dA[(p.d0+c)*N : (p.d0+c)*N+N]
			for n := range row {
				row[n] += p.dA[o+n*scanLanes]
			}
			wk.dD[p.d0+c] += p.dD[c]
			wk.dBias[p.d0+c] += p.dBias[c]
		}
	}
	w.putBlocks()
}

// chunk runs the backward pass of chunk c for block p (batch b, group gi).
func (wk *scanWorker) chunk(w *scanWork, p *scanBlk, g ScanGrads, dout []float32, in ScanInputs, saved []float32, d ScanDims, b, gi, c int) {
	L, D, N, G, Q := d.L, d.D, d.N, d.G, d.Chunk
	nc := scanChunks(d)
	nv, nb, d0 := w.nv, w.nb, w.d0
	wc := nv * scanLanes
	sz := wc * N
	W := w.W
	t0 := c * Q
	t1 := min(L, t0+Q)
	// Recompute the chunk: hs row i+1 is the state after token t0+i, row 0 the chunk start.
	so := ((b*nc+c)*D + d0) * N
	w.loadLanes(w.hs[:sz], saved[so:so+nb*N])
	// The rows the reverse pass reads or writes, prefetched during the recomputation.
	pf := func(t int) {
		off := (b*L+t)*D + d0
		for _, s := range [...][]float32{in.Delta, in.U, in.Z, dout, g.DU, g.DDelta, g.DZ} {
			w.prefetch(s, off)
		}
	}
	for t := t0; t < min(t1, t0+scanAhead); t++ {
		pf(t)
	}
	for i := range t1 - t0 {
		t := t0 + i
		off := (b*L+t)*D + d0
		if t+scanAhead < t1 {
			pf(t + scanAhead)
		}
		ax := w.aux[i*3*W:]
		dl, dsp, ys := ax[:wc], ax[W:W+wc], ax[2*W:2*W+wc]
		w.steps(dl, dsp, w.row(w.raw, in.Delta, off), in.Softplus)
		gr := ((b*L+t)*G + gi) * N
		scanFwdTok(nv, N, w.at, w.hs[i*sz:(i+1)*sz], w.hs[(i+1)*sz:(i+2)*sz], w.ab[i*sz:(i+1)*sz],
			dl, w.row(w.u, in.U, off), w.dsk, in.Bm[gr:gr+N], in.Cm[gr:gr+N], ys)
	}
	// Reverse recurrence over the chunk.
	for i := t1 - t0 - 1; i >= 0; i-- {
		t := t0 + i
		off := (b*L+t)*D + d0
		ax := w.aux[i*3*W:]
		dl, dsp, ys := ax[:wc], ax[W:W+wc], ax[2*W:2*W+wc]
		dy := w.row(w.dout, dout, off)
		var dz []float32
		if in.Z != nil {
			dz = w.orow(w.dz, g.DZ, off)
			scanGateBwd(w.dy[:wc], dz, dy, ys, w.row(w.z, in.Z, off))
			dy = w.dy[:wc]
		}
		du, dr := w.orow(w.du, g.DU, off), w.orow(w.dr, g.DDelta, off)
		gr := ((b*L+t)*G + gi) * N
		scanBwdTok(nv, N, w.at, w.hs[i*sz:(i+1)*sz], w.hs[(i+1)*sz:(i+2)*sz], w.ab[i*sz:(i+1)*sz], p.carry, p.dA,
			dl, w.row(w.u, in.U, off), dy, dsp, w.dsk, in.Bm[gr:gr+N], in.Cm[gr:gr+N], w.dbc, du, dr, p.dD, p.dBias)
		pr := ((b-wk.bLo)*L+t)*G*N + gi*N
		dBr, dCr := w.junk, w.junk
		if wk.dB != nil {
			dBr = wk.dB[pr : pr+N]
		}
		if wk.dC != nil {
			dCr = wk.dC[pr : pr+N]
		}
		scanReduce(N, dBr, dCr, w.dbc)
		if in.Z != nil {
			w.flush(dz, g.DZ, off)
		}
		w.flush(du, g.DU, off)
		w.flush(dr, g.DDelta, off)
	}
}
