package cuda

// Sequence ops: Mamba-1 scan, Mamba-2 SSD, attention, RoPE, and decode against a KV cache.

import (
	"fmt"
	"math"

	"github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/kernels"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
)

// ---- Mamba-1 selective scan ----

func scanCheckDims(c *check, d selectivescan.ScanDims, chunk bool) {
	c.positive("B, L, D, N, G", d.B, d.L, d.D, d.N, d.G)
	switch {
	case c.err != nil:
	case d.D%d.G != 0:
		c.fail("D=%d is not divisible by G=%d", d.D, d.G)
	case chunk && d.Chunk < 1:
		c.fail("Chunk must be ≥ 1 to save or read states")
	case d.N > maxScanN:
		c.fail("N=%d is above the CUDA scan's limit %d", d.N, maxScanN)
	}
}

// Scan, ScanBackward and ScanStep take U, Delta, Bm, Cm, Z, out, dout, DU, DDelta, DZ, DBm, DCm
// (and the step's u, delta, bm, cm, z, y) in float32, bfloat16 or float16 storage, all the same
// (AllocStorage); A, Dskip, DeltaBias, states and parameter gradients are float32.
func (be *Backend) scanCheckInputs(c *check, in kernels.ScanArgs, d selectivescan.ScanDims) {
	bld, blgn := d.B*d.L*d.D, d.B*d.L*d.G*d.N
	c.sbuf("U", be, in.U, false, "B·L·D", bld)
	c.sbuf("Delta", be, in.Delta, false, "B·L·D", bld)
	c.buf("A", be, in.A, false, "D·N", d.D*d.N)
	c.sbuf("Bm", be, in.Bm, false, "B·L·G·N", blgn)
	c.sbuf("Cm", be, in.Cm, false, "B·L·G·N", blgn)
	c.buf("Dskip", be, in.Dskip, true, "D", d.D)
	c.sbuf("Z", be, in.Z, true, "B·L·D", bld)
	c.buf("DeltaBias", be, in.DeltaBias, true, "D", d.D)
	c.buf("H0", be, in.H0, true, "B·D·N", d.B*d.D*d.N)
}

// scanGeom: a channel is a segment of S lanes (S = min(32, next power of two ≥ N)); 128-thread
// blocks hold 128/S channels.
func scanGeom(d selectivescan.ScanDims) (dim3, dim3) {
	s := 1
	for s < d.N && s < 32 {
		s <<= 1
	}
	per := 128 / s
	return dim3{(d.B*d.D + per - 1) / per, 1, 1}, dim3{128, 1, 1}
}

// ScanSavedLen is the CPU's length: the states at chunk starts, (B, ⌈L/Q⌉, D, N).
func (be *Backend) ScanSavedLen(d selectivescan.ScanDims) int { return selectivescan.ScanSavedLen(d) }

func (be *Backend) Scan(out, hLast, saved kernels.Buffer, in kernels.ScanArgs) error {
	d := in.Dims
	c := newCheck("cuda.Scan", d.String())
	scanCheckDims(c, d, saved != nil)
	be.scanCheckInputs(c, in, d)
	c.sbuf("out", be, out, false, "B·L·D", d.B*d.L*d.D)
	c.buf("hLast", be, hLast, true, "B·D·N", d.B*d.D*d.N)
	if saved != nil && c.err == nil {
		c.buf("saved", be, saved, false, "ScanSavedLen = B·ceil(L/Chunk)·D·N", selectivescan.ScanSavedLen(d))
	}
	if c.err != nil {
		return c.err
	}
	chunk := max(d.Chunk, 1)
	g, b := scanGeom(d)
	sfx := c.storage().suffix()
	return be.call(func() error {
		return be.launch("scan_fwd"+sfx, g, b, 0, be.ptr(out), be.ptr(hLast), be.ptr(saved), be.ptr(in.U), be.ptr(in.Delta), be.ptr(in.A),
			be.ptr(in.Bm), be.ptr(in.Cm), be.ptr(in.Dskip), be.ptr(in.Z), be.ptr(in.DeltaBias), be.ptr(in.H0), in.Softplus,
			d.B, d.L, d.D, d.N, d.G, chunk)
	})
}

func (be *Backend) ScanBackward(gr kernels.ScanGrads, dout, dhLast kernels.Buffer, in kernels.ScanArgs, saved kernels.Buffer) error {
	d := in.Dims
	c := newCheck("cuda.ScanBackward", d.String())
	scanCheckDims(c, d, true)
	be.scanCheckInputs(c, in, d)
	bld, bdn, blgn := d.B*d.L*d.D, d.B*d.D*d.N, d.B*d.L*d.G*d.N
	c.sbuf("dout", be, dout, false, "B·L·D", bld)
	c.buf("dhLast", be, dhLast, true, "B·D·N", bdn)
	if c.err == nil {
		c.buf("saved", be, saved, false, "ScanSavedLen = B·ceil(L/Chunk)·D·N", selectivescan.ScanSavedLen(d))
	}
	c.sbuf("DU", be, gr.DU, true, "B·L·D", bld)
	c.sbuf("DDelta", be, gr.DDelta, true, "B·L·D", bld)
	c.buf("DA", be, gr.DA, true, "D·N", d.D*d.N)
	c.sbuf("DBm", be, gr.DBm, true, "B·L·G·N", blgn)
	c.sbuf("DCm", be, gr.DCm, true, "B·L·G·N", blgn)
	c.buf("DDskip", be, gr.DDskip, true, "D", d.D)
	c.sbuf("DZ", be, gr.DZ, true, "B·L·D", bld)
	c.buf("DDeltaBias", be, gr.DDeltaBias, true, "D", d.D)
	c.buf("DH0", be, gr.DH0, true, "B·D·N", bdn)
	if c.err == nil && gr.DZ != nil && in.Z == nil {
		c.fail("DZ is given but Z is nil (no gate)")
	}
	if c.err == nil && gr.DDskip != nil && in.Dskip == nil {
		c.fail("DDskip is given but Dskip is nil")
	}
	if c.err != nil {
		return c.err
	}
	g, b := scanGeom(d)
	st := c.storage()
	return be.call(func() error {
		// dBm and dCm are assigned but summed over the channels of a group by float atomics: zeroed
		// first, and accumulated in float32 scratch when stored in 16 bits.
		pb, pc := be.ptr(gr.DBm), be.ptr(gr.DCm)
		var err error
		if st != F32 && pb != 0 {
			if pb, err = be.scr("scan.dB", blgn); err != nil {
				return err
			}
		}
		if st != F32 && pc != 0 {
			if pc, err = be.scr("scan.dC", blgn); err != nil {
				return err
			}
		}
		if err := be.zero(pb, blgn); err != nil {
			return err
		}
		if err := be.zero(pc, blgn); err != nil {
			return err
		}
		if err := be.launch("scan_bwd"+st.suffix(), g, b, 0, be.ptr(gr.DU), be.ptr(gr.DDelta), be.ptr(gr.DA), pb, pc,
			be.ptr(gr.DDskip), be.ptr(gr.DZ), be.ptr(gr.DDeltaBias), be.ptr(gr.DH0), be.ptr(dout), be.ptr(dhLast), be.ptr(saved),
			be.ptr(in.U), be.ptr(in.Delta), be.ptr(in.A), be.ptr(in.Bm), be.ptr(in.Cm), be.ptr(in.Dskip), be.ptr(in.Z),
			be.ptr(in.DeltaBias), in.Softplus, d.B, d.L, d.D, d.N, d.G, d.Chunk); err != nil {
			return err
		}
		if st == F32 {
			return nil
		}
		if gr.DBm != nil {
			if err := be.convert(be.ptr(gr.DBm), st, pb, F32, blgn); err != nil {
				return err
			}
		}
		if gr.DCm != nil {
			return be.convert(be.ptr(gr.DCm), st, pc, F32, blgn)
		}
		return nil
	})
}

// ScanStep is one more token of Scan with H0 = state (updated in place); y (B, D).
func (be *Backend) ScanStep(state, y, u, delta, bm, cm, z kernels.Buffer, in kernels.ScanArgs) error {
	d := in.Dims
	d.L, d.Chunk = 1, 1
	c := newCheck("cuda.ScanStep", d.String())
	scanCheckDims(c, d, false)
	bd, bgn := d.B*d.D, d.B*d.G*d.N
	c.buf("state", be, state, false, "B·D·N", d.B*d.D*d.N)
	c.sbuf("y", be, y, false, "B·D", bd)
	c.sbuf("u", be, u, false, "B·D", bd)
	c.sbuf("delta", be, delta, false, "B·D", bd)
	c.sbuf("bm", be, bm, false, "B·G·N", bgn)
	c.sbuf("cm", be, cm, false, "B·G·N", bgn)
	c.sbuf("z", be, z, true, "B·D", bd)
	c.buf("A", be, in.A, false, "D·N", d.D*d.N)
	c.buf("Dskip", be, in.Dskip, true, "D", d.D)
	c.buf("DeltaBias", be, in.DeltaBias, true, "D", d.D)
	if c.err != nil {
		return c.err
	}
	g, b := scanGeom(d)
	sfx := c.storage().suffix()
	return be.call(func() error {
		// Each lane reads its state entries before it writes them, so H0 = hLast = state is safe.
		return be.launch("scan_fwd"+sfx, g, b, 0, be.ptr(y), be.ptr(state), devPtr(0), be.ptr(u), be.ptr(delta), be.ptr(in.A),
			be.ptr(bm), be.ptr(cm), be.ptr(in.Dskip), be.ptr(z), be.ptr(in.DeltaBias), be.ptr(state), in.Softplus,
			d.B, 1, d.D, d.N, d.G, 1)
	})
}

// ---- Mamba-2 SSD ----

func ssdDimStr(d selectivescan.SSDDims) string {
	return fmt.Sprintf("(B=%d L=%d H=%d P=%d G=%d N=%d Chunk=%d)", d.B, d.L, d.H, d.P, d.G, d.N, d.Chunk)
}

func ssdCheckDims(c *check, d selectivescan.SSDDims, step bool) {
	if step {
		c.positive("B, H, P, G, N", d.B, d.H, d.P, d.G, d.N)
	} else {
		c.positive("B, L, H, P, G, N, Chunk", d.B, d.L, d.H, d.P, d.G, d.N, d.Chunk)
	}
	switch {
	case c.err != nil:
	case d.H%d.G != 0:
		c.fail("heads H=%d not divisible by groups G=%d", d.H, d.G)
	case !step && d.Chunk > maxSSDQ:
		c.fail("Chunk=%d is above the CUDA SSD's limit %d", d.Chunk, maxSSDQ)
	}
}

func (be *Backend) ssdCheckInputs(c *check, in kernels.SSDArgs, d selectivescan.SSDDims) {
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	c.sbuf("X", be, in.X, false, "B·L·H·P", B*L*H*P)
	c.buf("Dt", be, in.Dt, false, "B·L·H", B*L*H)
	c.buf("DtBias", be, in.DtBias, true, "H", H)
	c.buf("A", be, in.A, false, "H", H)
	c.sbuf("Bm", be, in.Bm, false, "B·L·G·N", B*L*G*N)
	c.sbuf("Cm", be, in.Cm, false, "B·L·G·N", B*L*G*N)
	c.buf("Dskip", be, in.Dskip, true, "H", H)
	c.buf("H0", be, in.H0, true, "B·H·P·N", B*H*P*N)
}

// SSD and SSDBackward take X, Bm, Cm, y, dy, DX, DBm, DCm in float32, bfloat16 or float16 storage
// (all the same; AllocStorage), computing in float32; the other tensors are float32.

// SSDSavedLen is the CPU's length, B·⌈L/Q⌉·H·P·N (laid out (B, nC, H, P, N) here).
func (be *Backend) SSDSavedLen(d selectivescan.SSDDims) int { return selectivescan.SSDSavedLen(d) }

// ssdPrep launches the per-chunk Δ, cumulative decays and C·Bᵀ (shared by forward and backward).
func (be *Backend) ssdPrep(in kernels.SSDArgs, d selectivescan.SSDDims, nC int, sfx string) (dt, acum, cb devPtr, err error) {
	n := d.B * d.L * d.H
	if dt, err = be.scr("ssd.dt", n); err != nil {
		return
	}
	if acum, err = be.scr("ssd.acum", n); err != nil {
		return
	}
	if cb, err = be.scr("ssd.cb", d.B*nC*d.G*d.Chunk*d.Chunk); err != nil {
		return
	}
	sz := []any{d.B, d.L, d.H, d.P, d.G, d.N, d.Chunk}
	if err = be.launchFlat("ssd_prep", d.B*nC*d.H, append([]any{dt, acum, be.ptr(in.Dt), be.ptr(in.DtBias), be.ptr(in.A)}, sz...)...); err != nil {
		return
	}
	err = be.launch("ssd_cb"+sfx, dim3{nC, d.G, d.B}, dim3{256, 1, 1}, 0, append([]any{cb, be.ptr(in.Bm), be.ptr(in.Cm)}, sz...)...)
	return
}

func (be *Backend) SSD(y, hLast, saved kernels.Buffer, in kernels.SSDArgs) error {
	d := in.Dims
	c := newCheck("cuda.SSD", ssdDimStr(d))
	ssdCheckDims(c, d, false)
	be.ssdCheckInputs(c, in, d)
	c.sbuf("y", be, y, false, "B·L·H·P", d.B*d.L*d.H*d.P)
	c.buf("hLast", be, hLast, true, "B·H·P·N", d.B*d.H*d.P*d.N)
	c.buf("saved", be, saved, true, "B·⌈L/Chunk⌉·H·N·P", selectivescan.SSDSavedLen(d))
	if c.err != nil {
		return c.err
	}
	nC := (d.L + d.Chunk - 1) / d.Chunk
	sz := []any{d.B, d.L, d.H, d.P, d.G, d.N, d.Chunk}
	blk := dim3{128, 1, 1}
	sfx := c.storage().suffix()
	return be.call(func() error {
		dt, acum, cb, err := be.ssdPrep(in, d, nC, sfx)
		if err != nil {
			return err
		}
		nst := d.B * nC * d.H * d.P * d.N
		sloc, err := be.scr("ssd.sloc", nst)
		if err != nil {
			return err
		}
		states := be.ptr(saved)
		if states == 0 {
			if states, err = be.scr("ssd.states", nst); err != nil {
				return err
			}
		}
		if err := be.launch("ssd_chunk_state"+sfx, dim3{nC, d.H, d.B}, blk, 0,
			append([]any{sloc, be.ptr(in.X), be.ptr(in.Bm), dt, acum}, sz...)...); err != nil {
			return err
		}
		if err := be.launch("ssd_state_pass", dim3{d.H, d.B, 1}, blk, 0,
			append([]any{states, be.ptr(hLast), sloc, be.ptr(in.H0), acum}, sz...)...); err != nil {
			return err
		}
		return be.launch("ssd_chunk_out"+sfx, dim3{nC, d.H, d.B}, blk, 0,
			append([]any{be.ptr(y), be.ptr(in.X), be.ptr(in.Cm), cb, states, dt, acum, be.ptr(in.Dskip)}, sz...)...)
	})
}

func (be *Backend) SSDBackward(gr kernels.SSDGrads, dy, dhLast kernels.Buffer, in kernels.SSDArgs, saved kernels.Buffer) error {
	d := in.Dims
	c := newCheck("cuda.SSDBackward", ssdDimStr(d))
	ssdCheckDims(c, d, false)
	be.ssdCheckInputs(c, in, d)
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	c.sbuf("dy", be, dy, false, "B·L·H·P", B*L*H*P)
	c.buf("dhLast", be, dhLast, true, "B·H·P·N", B*H*P*N)
	c.buf("saved", be, saved, false, "B·⌈L/Chunk⌉·H·N·P", selectivescan.SSDSavedLen(d))
	c.sbuf("DX", be, gr.DX, true, "B·L·H·P", B*L*H*P)
	c.buf("DDt", be, gr.DDt, true, "B·L·H", B*L*H)
	c.buf("DDtBias", be, gr.DDtBias, true, "H", H)
	c.buf("DA", be, gr.DA, true, "H", H)
	c.sbuf("DBm", be, gr.DBm, true, "B·L·G·N", B*L*G*N)
	c.sbuf("DCm", be, gr.DCm, true, "B·L·G·N", B*L*G*N)
	c.buf("DDskip", be, gr.DDskip, true, "H", H)
	c.buf("DH0", be, gr.DH0, true, "B·H·P·N", B*H*P*N)
	if c.err != nil {
		return c.err
	}
	nC := (L + d.Chunk - 1) / d.Chunk
	sz := []any{B, L, H, P, G, N, d.Chunk}
	blk := dim3{128, 1, 1}
	sfx := c.storage().suffix()
	return be.call(func() error {
		dt, acum, cb, err := be.ssdPrep(in, d, nC, sfx)
		if err != nil {
			return err
		}
		nst := B * nC * H * P * N
		dsloc, err := be.scr("ssd.sloc", nst)
		if err != nil {
			return err
		}
		dsend, err := be.scr("ssd.dsend", nst)
		if err != nil {
			return err
		}
		part, err := be.scr("ssd.part", B*nC*3*H)
		if err != nil {
			return err
		}
		if err := be.launch("ssd_dstate_local"+sfx, dim3{nC, H, B}, blk, 0,
			append([]any{dsloc, be.ptr(dy), be.ptr(in.Cm), acum}, sz...)...); err != nil {
			return err
		}
		if err := be.launch("ssd_dstate_pass", dim3{H, B, 1}, blk, 0,
			append([]any{dsend, be.ptr(gr.DH0), dsloc, be.ptr(dhLast), acum}, sz...)...); err != nil {
			return err
		}
		if err := be.launch("ssd_bwd_x"+sfx, dim3{nC, H, B}, blk, 3*4*d.Chunk,
			append([]any{be.ptr(gr.DX), be.ptr(gr.DDt), part, be.ptr(dy), be.ptr(in.X), be.ptr(in.Bm), be.ptr(in.Cm), cb,
				be.ptr(saved), dsend, dt, acum, be.ptr(in.Dt), be.ptr(in.DtBias), be.ptr(in.A), be.ptr(in.Dskip)}, sz...)...); err != nil {
			return err
		}
		if gr.DBm != nil || gr.DCm != nil {
			// ssd_bwd_x has read C·Bᵀ (stream order), so its scratch now takes dCB.
			if err := be.launch("ssd_dcb"+sfx, dim3{nC, G, B}, dim3{256, 1, 1}, 0,
				append([]any{cb, be.ptr(dy), be.ptr(in.X), dt, acum}, sz...)...); err != nil {
				return err
			}
			if err := be.launch("ssd_bwd_bc"+sfx, dim3{nC, G, B}, blk, 0,
				append([]any{be.ptr(gr.DBm), be.ptr(gr.DCm), cb, be.ptr(dy), be.ptr(in.X), be.ptr(in.Bm), be.ptr(in.Cm),
					be.ptr(saved), dsend, dt, acum}, sz...)...); err != nil {
				return err
			}
		}
		rows := B * nC
		if err := be.colSumAcc(be.ptr(gr.DA), part, rows, H, 3*H); err != nil {
			return err
		}
		if err := be.colSumAcc(be.ptr(gr.DDtBias), offset(part, H), rows, H, 3*H); err != nil {
			return err
		}
		return be.colSumAcc(be.ptr(gr.DDskip), offset(part, 2*H), rows, H, 3*H)
	})
}

func (be *Backend) SSDStep(state, y, x, dt, bm, cm kernels.Buffer, in kernels.SSDArgs) error {
	d := in.Dims
	c := newCheck("cuda.SSDStep", ssdDimStr(d))
	ssdCheckDims(c, d, true)
	B, H, P, G, N := d.B, d.H, d.P, d.G, d.N
	c.buf("state", be, state, false, "B·H·P·N", B*H*P*N)
	c.buf("y", be, y, false, "B·H·P", B*H*P)
	c.buf("x", be, x, false, "B·H·P", B*H*P)
	c.buf("dt", be, dt, false, "B·H", B*H)
	c.buf("bm", be, bm, false, "B·G·N", B*G*N)
	c.buf("cm", be, cm, false, "B·G·N", B*G*N)
	c.buf("A", be, in.A, false, "H", H)
	c.buf("DtBias", be, in.DtBias, true, "H", H)
	c.buf("Dskip", be, in.Dskip, true, "H", H)
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		return be.launchFlat("ssd_step", B*H*P, be.ptr(state), be.ptr(y), be.ptr(x), be.ptr(dt), be.ptr(bm), be.ptr(cm),
			be.ptr(in.A), be.ptr(in.DtBias), be.ptr(in.Dskip), B, H, P, G, N)
	})
}

// ---- attention ----

func attCheck(c *check, d attention.Dims) {
	c.positive("B, L, S, H, HKV, Dh", d.B, d.L, d.S, d.H, d.HKV, d.Dh)
	switch {
	case c.err != nil:
	case d.H%d.HKV != 0:
		c.fail("H = %d is not a multiple of HKV = %d", d.H, d.HKV)
	case d.Window < 0 || d.Sinks < 0:
		c.fail("Window = %d and Sinks = %d, want ≥ 0", d.Window, d.Sinks)
	case (d.Causal || d.Window > 0) && d.S < d.L:
		c.fail("S = %d < L = %d with a causal or windowed mask (queries are the last L of S positions)", d.S, d.L)
	case math.IsNaN(float64(d.Scale)) || math.IsInf(float64(d.Scale), 0):
		c.fail("Scale = %v is not finite", d.Scale)
	case d.Dh > maxHeadDim:
		c.fail("Dh = %d is above the CUDA kernels' limit %d", d.Dh, maxHeadDim)
	}
}

func attScale(d attention.Dims) float32 {
	if d.Scale != 0 {
		return d.Scale
	}
	return float32(1 / math.Sqrt(float64(d.Dh)))
}

func attArgs(d attention.Dims) []any {
	return []any{d.B, d.L, d.S, d.H, d.HKV, d.Dh, d.Causal, d.Window, d.Sinks, attScale(d)}
}

// Attention and AttentionBackward take q, k, v, o, do, dq, dk, dv in float32, bfloat16 or float16
// storage (all the same; AllocStorage), computing in float32; lse is float32.
func (be *Backend) Attention(o, lse, q, k, v kernels.Buffer, d attention.Dims) error {
	c := newCheck("cuda.Attention", "("+d.String()+")")
	attCheck(c, d)
	nq, nkv := d.B*d.L*d.H*d.Dh, d.B*d.S*d.HKV*d.Dh
	c.sbuf("o", be, o, false, "B·L·H·Dh", nq)
	c.buf("lse", be, lse, false, "B·H·L", d.B*d.H*d.L)
	c.sbuf("q", be, q, false, "B·L·H·Dh", nq)
	c.sbuf("k", be, k, false, "B·S·HKV·Dh", nkv)
	c.sbuf("v", be, v, false, "B·S·HKV·Dh", nkv)
	if c.err != nil {
		return c.err
	}
	sfx := c.storage().suffix()
	return be.call(func() error {
		return be.launch("attn_fwd"+sfx, dim3{(d.L + 3) / 4, d.H, d.B}, dim3{128, 1, 1}, 4*4*d.Dh,
			append([]any{be.ptr(o), be.ptr(lse), be.ptr(q), be.ptr(k), be.ptr(v)}, attArgs(d)...)...)
	})
}

func (be *Backend) AttentionBackward(dq, dk, dv, do, q, k, v, o, lse kernels.Buffer, d attention.Dims) error {
	c := newCheck("cuda.AttentionBackward", "("+d.String()+")")
	attCheck(c, d)
	nq, nkv := d.B*d.L*d.H*d.Dh, d.B*d.S*d.HKV*d.Dh
	c.sbuf("dq", be, dq, true, "B·L·H·Dh", nq)
	c.sbuf("dk", be, dk, true, "B·S·HKV·Dh", nkv)
	c.sbuf("dv", be, dv, true, "B·S·HKV·Dh", nkv)
	c.sbuf("do", be, do, false, "B·L·H·Dh", nq)
	c.sbuf("q", be, q, false, "B·L·H·Dh", nq)
	c.sbuf("k", be, k, false, "B·S·HKV·Dh", nkv)
	c.sbuf("v", be, v, false, "B·S·HKV·Dh", nkv)
	c.sbuf("o", be, o, false, "B·L·H·Dh", nq)
	c.buf("lse", be, lse, false, "B·H·L", d.B*d.H*d.L)
	if c.err != nil {
		return c.err
	}
	st := c.storage()
	sfx := st.suffix()
	return be.call(func() error {
		delta, err := be.scr("attn.delta", d.B*d.H*d.L)
		if err != nil {
			return err
		}
		g, b := warpRows(d.B * d.L * d.H)
		if err := be.launch("attn_delta"+sfx, g, b, 0, delta, be.ptr(do), be.ptr(o), d.B, d.L, d.H, d.Dh); err != nil {
			return err
		}
		if dq != nil {
			if err := be.launch("attn_bwd_dq"+sfx, dim3{(d.L + 3) / 4, d.H, d.B}, dim3{128, 1, 1}, 2*4*4*d.Dh,
				append([]any{be.ptr(dq), be.ptr(do), be.ptr(q), be.ptr(k), be.ptr(v), be.ptr(lse), delta}, attArgs(d)...)...); err != nil {
				return err
			}
		}
		if dk == nil && dv == nil {
			return nil
		}
		pk, pv := be.ptr(dk), be.ptr(dv)
		if pk == 0 || pv == 0 { // the kernel writes both
			tmp, err := be.scr("attn.dkv", (nkv*st.bytes()+3)/4)
			if err != nil {
				return err
			}
			if pk == 0 {
				pk = tmp
			} else {
				pv = tmp
			}
		}
		return be.launch("attn_bwd_dkv"+sfx, dim3{(d.S + 3) / 4, d.HKV, d.B}, dim3{128, 1, 1}, 2*4*4*d.Dh,
			append([]any{pk, pv, be.ptr(do), be.ptr(q), be.ptr(k), be.ptr(v), be.ptr(lse), delta}, attArgs(d)...)...)
	})
}

// ---- RoPE ----

// ropeTable is attention's table: cos and sin of the L×Dh/2 angles, in float64.
func ropeTable(l, dh, pos0 int, theta float64) []float32 {
	half := dh / 2
	t := make([]float32, 2*l*half) // cos (L, half) then sin (L, half)
	for i := range half {
		f := math.Pow(theta, -2*float64(i)/float64(dh))
		for p := range l {
			s, c := math.Sincos(float64(pos0+p) * f)
			t[p*half+i], t[l*half+p*half+i] = float32(c), float32(s)
		}
	}
	return t
}

func (be *Backend) rope(op string, out, x kernels.Buffer, pos0 int, theta float64, d attention.RoPEDims, sign float32) error {
	c := newCheck(op, fmt.Sprintf("(B=%d L=%d H=%d Dh=%d)", d.B, d.L, d.H, d.Dh))
	c.positive("B, L, H, Dh", d.B, d.L, d.H, d.Dh)
	if c.err == nil && d.Dh%2 != 0 {
		c.fail("Dh = %d, want even", d.Dh)
	}
	if c.err == nil && (pos0 < 0 || !(theta > 0) || math.IsInf(theta, 0)) {
		c.fail("pos0 = %d, theta = %v, want pos0 ≥ 0 and theta > 0 finite", pos0, theta)
	}
	n := d.B * d.L * d.H * d.Dh
	c.buf("out", be, out, false, "B·L·H·Dh", n)
	c.buf("x", be, x, false, "B·L·H·Dh", n)
	if c.err != nil {
		return c.err
	}
	tab := ropeTable(d.L, d.Dh, pos0, theta)
	return be.call(func() error {
		tp, err := be.scr("rope.table", len(tab))
		if err != nil {
			return err
		}
		if err := be.dev.htod(tp, ptrOf(tab), 4*len(tab)); err != nil {
			return err
		}
		half := d.L * d.Dh / 2
		return be.launchFlat("rope_f32", n/2, be.ptr(out), be.ptr(x), tp, offset(tp, half), d.B, d.L, d.H, d.Dh, sign)
	})
}

func (be *Backend) RoPE(out, x kernels.Buffer, pos0 int, theta float64, d attention.RoPEDims) error {
	return be.rope("cuda.RoPE", out, x, pos0, theta, d, 1)
}

func (be *Backend) RoPEBackward(dx, dout kernels.Buffer, pos0 int, theta float64, d attention.RoPEDims) error {
	return be.rope("cuda.RoPEBackward", dx, dout, pos0, theta, d, -1)
}

// ---- KV-cache decode (beyond kernels.Ops) ----

// KVCache is attention.KVCache on the device: K and V (B, slots, HKV, Dh), a ring of Sinks+Window
// slots with a window.
type KVCache struct {
	be    *Backend
	d     attention.CacheDims
	slots int
	n     int
	K, V  *Buf
}

// NewKVCache allocates an empty device cache.
func (be *Backend) NewKVCache(d attention.CacheDims) (*KVCache, error) {
	if d.B <= 0 || d.HKV <= 0 || d.Dh <= 0 || d.Window < 0 || d.Sinks < 0 || (d.Window == 0 && d.Cap <= 0) || d.Dh > maxHeadDim {
		return nil, fmt.Errorf("cuda.NewKVCache: sizes B=%d Cap=%d HKV=%d Dh=%d Window=%d Sinks=%d, want B, HKV, Dh > 0 (Dh ≤ %d), Window, Sinks ≥ 0 and Cap > 0 without a window",
			d.B, d.Cap, d.HKV, d.Dh, d.Window, d.Sinks, maxHeadDim)
	}
	slots := d.Cap
	if d.Window > 0 {
		slots = d.Sinks + d.Window
	}
	n := d.B * slots * d.HKV * d.Dh
	return &KVCache{be: be, d: d, slots: slots, K: be.Alloc(n).(*Buf), V: be.Alloc(n).(*Buf)}, nil
}

// Len is the number of tokens appended.
func (c *KVCache) Len() int { return c.n }

// Append adds T tokens per batch row: k, v (B, T, HKV, Dh).
func (c *KVCache) Append(k, v kernels.Buffer, t int) error {
	d, be := c.d, c.be
	ch := newCheck("cuda.KVCache.Append", fmt.Sprintf("(B=%d T=%d HKV=%d Dh=%d)", d.B, t, d.HKV, d.Dh))
	ch.positive("T", t)
	want := d.B * t * d.HKV * d.Dh
	ch.buf("k", be, k, false, "B·T·HKV·Dh", want)
	ch.buf("v", be, v, false, "B·T·HKV·Dh", want)
	if ch.err == nil && d.Window == 0 && c.n+t > d.Cap {
		ch.fail("%d + T=%d tokens exceed Cap = %d", c.n, t, d.Cap)
	}
	if ch.err != nil {
		return ch.err
	}
	err := be.call(func() error {
		return be.launchFlat("kv_append", want, c.K.p, c.V.p, be.ptr(k), be.ptr(v), d.B, t, d.HKV, d.Dh, c.slots, c.n, d.Window, d.Sinks)
	})
	if err == nil {
		c.n += t
	}
	return err
}

// Decode attends one query per batch row (at position Len()−1) to the cache: o, q (B, H, Dh).
func (c *KVCache) Decode(o, q kernels.Buffer, dd attention.DecodeDims) error {
	d, be := c.d, c.be
	ch := newCheck("cuda.KVCache.Decode", fmt.Sprintf("(B=%d H=%d HKV=%d Dh=%d)", d.B, dd.H, d.HKV, d.Dh))
	if dd.H <= 0 || dd.H%d.HKV != 0 {
		ch.fail("H = %d, want a positive multiple of HKV = %d", dd.H, d.HKV)
	}
	if s := float64(dd.Scale); math.IsNaN(s) || math.IsInf(s, 0) {
		ch.fail("Scale = %v is not finite", dd.Scale)
	}
	if c.n == 0 {
		ch.fail("the cache is empty (append the token's key and value first)")
	}
	n := d.B * dd.H * d.Dh
	ch.buf("o", be, o, false, "B·H·Dh", n)
	ch.buf("q", be, q, false, "B·H·Dh", n)
	if ch.err != nil {
		return ch.err
	}
	scale := attScale(attention.Dims{Dh: d.Dh, Scale: dd.Scale})
	filled := min(c.n, c.slots)
	g, b := warpRows(d.B * dd.H)
	return be.call(func() error {
		return be.launch("attn_decode", g, b, 4*4*d.Dh, be.ptr(o), be.ptr(q), c.K.p, c.V.p, d.B, dd.H, d.HKV, d.Dh, c.slots, filled, scale)
	})
}
