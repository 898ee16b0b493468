// Package cpu is the CPU backend: buffers are Go slices, ops are the kernel packages' float32
// code (goroutine-parallel), matrix products go through the gonum BLAS interface. At start-up
// it installs OpenBLAS as that BLAS when the shared library is present (see kernels/openblas),
// and otherwise keeps gonum's pure-Go implementation.
package cpu

import (
	"fmt"

	"github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/internal/par"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/kernels/openblas"
	"github.com/hybridlab/hybrid/ops"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
)

// Buf is a CPU buffer.
type Buf struct{ data []float32 }

// Len is the element count.
func (b *Buf) Len() int { return len(b.data) }

// Host is the backing slice.
func (b *Buf) Host() []float32 { return b.data }

// Wrap makes a buffer of an existing slice (no copy).
func Wrap(data []float32) *Buf { return &Buf{data: data} }

// Backend is the CPU backend.
type Backend struct{ blas string }

var _ kernels.Backend = (*Backend)(nil)

// New returns the CPU backend, installing OpenBLAS when available.
func New() *Backend {
	name, err := openblas.Use()
	if err != nil {
		name = "gonum (pure Go; install libopenblas0 for the fast path)"
	}
	return &Backend{blas: name}
}

func init() {
	kernels.Register("cpu", func() (kernels.Backend, error) { return New(), nil })
}

// Name describes the backend and its BLAS.
func (be *Backend) Name() string { return "cpu, BLAS: " + be.blas }

// BLAS names the BLAS in use.
func (be *Backend) BLAS() string { return be.blas }

// s unwraps a buffer; nil stays nil. A buffer from another backend is a programmer error.
func s(b kernels.Buffer) []float32 {
	if b == nil {
		return nil
	}
	cb, ok := b.(*Buf)
	if !ok {
		panic(fmt.Sprintf("cpu: buffer of type %T does not belong to the CPU backend", b))
	}
	if cb == nil {
		return nil
	}
	return cb.data
}

// Alloc returns a zeroed buffer.
func (be *Backend) Alloc(n int) kernels.Buffer { return &Buf{data: make([]float32, n)} }

func (be *Backend) Upload(dst kernels.Buffer, src []float32) error {
	d := s(dst)
	if len(d) != len(src) {
		return fmt.Errorf("cpu.Upload: %d values into a buffer of %d", len(src), len(d))
	}
	copy(d, src)
	return nil
}

func (be *Backend) Download(dst []float32, src kernels.Buffer) error {
	sv := s(src)
	if len(dst) != len(sv) {
		return fmt.Errorf("cpu.Download: buffer of %d into %d values", len(sv), len(dst))
	}
	copy(dst, sv)
	return nil
}

func (be *Backend) Fill(dst kernels.Buffer, v float32) {
	d := s(dst)
	if v == 0 {
		clear(d)
		return
	}
	for i := range d {
		d[i] = v
	}
}

func (be *Backend) CopyRows(dst kernels.Buffer, dCols, dOff int, src kernels.Buffer, sCols, sOff, rows, n int, accumulate bool) error {
	d, sv := s(dst), s(src)
	if rows < 0 || n < 0 || dOff < 0 || sOff < 0 || dOff+n > dCols || sOff+n > sCols || rows*dCols > len(d) || rows*sCols > len(sv) {
		return fmt.Errorf("cpu.CopyRows: %d rows × %d columns from (%d cols, offset %d, len %d) into (%d cols, offset %d, len %d) out of range",
			rows, n, sCols, sOff, len(sv), dCols, dOff, len(d))
	}
	par.For(rows, 256, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dr := d[r*dCols+dOff : r*dCols+dOff+n]
			sr := sv[r*sCols+sOff : r*sCols+sOff+n]
			if !accumulate {
				copy(dr, sr)
				continue
			}
			for i, v := range sr {
				dr[i] += v
			}
		}
	})
	return nil
}

func (be *Backend) Axpby(dst kernels.Buffer, a float32, x kernels.Buffer, b float32, y kernels.Buffer) error {
	d, xv, yv := s(dst), s(x), s(y)
	if len(xv) != len(d) || len(yv) != len(d) {
		return fmt.Errorf("cpu.Axpby: lengths dst %d, x %d, y %d differ", len(d), len(xv), len(yv))
	}
	par.For(len(d), 1<<14, func(lo, hi int) {
		dd, xx, yy := d[lo:hi], xv[lo:hi], yv[lo:hi]
		xx, yy = xx[:len(dd)], yy[:len(dd)]
		switch {
		case a == 1 && b == 1: // the tape's gradient accumulation
			for i := range dd {
				dd[i] = xx[i] + yy[i]
			}
		case a == 1 && b == 0 && &xx[0] == &yy[0]: // the tape's copy (0·x is dropped: x is y)
			if &dd[0] != &xx[0] {
				copy(dd, xx)
			}
		default:
			for i := range dd {
				dd[i] = a*xx[i] + b*yy[i]
			}
		}
	})
	return nil
}

func (be *Backend) Mul(dst, x, y kernels.Buffer) error {
	d, xv, yv := s(dst), s(x), s(y)
	if len(xv) != len(d) || len(yv) != len(d) {
		return fmt.Errorf("cpu.Mul: lengths dst %d, x %d, y %d differ", len(d), len(xv), len(yv))
	}
	par.For(len(d), 1<<14, func(lo, hi int) {
		dd, xx, yy := d[lo:hi], xv[lo:hi], yv[lo:hi]
		for i := range dd {
			dd[i] = xx[i] * yy[i]
		}
	})
	return nil
}

func (be *Backend) SumSquares(x kernels.Buffer) (float64, error) {
	sum := 0.0
	for _, v := range s(x) {
		sum += float64(v) * float64(v)
	}
	return sum, nil
}

func (be *Backend) MatMul(c, a, b kernels.Buffer, transA, transB bool, m, n, k int, accumulate bool) error {
	return ops.MatMul(s(c), s(a), s(b), transA, transB, m, n, k, accumulate)
}

func (be *Backend) Linear(y, x, w, bias kernels.Buffer, r, in, out int) error {
	return ops.Linear(s(y), s(x), s(w), s(bias), r, in, out)
}

func (be *Backend) LinearBackward(dx, dw, dbias, dy, x, w kernels.Buffer, r, in, out int) error {
	return ops.LinearBackward(s(dx), s(dw), s(dbias), s(dy), s(x), s(w), r, in, out)
}

func (be *Backend) Embedding(out kernels.Buffer, ids []int32, table kernels.Buffer, r, v, d int) error {
	return ops.Embedding(s(out), ids, s(table), r, v, d)
}

func (be *Backend) EmbeddingBackward(dtable, dout kernels.Buffer, ids []int32, r, v, d int) error {
	return ops.EmbeddingBackward(s(dtable), s(dout), ids, r, v, d)
}

func (be *Backend) RMSNorm(out, rstd, x, w kernels.Buffer, r, d int, eps float32) error {
	return ops.RMSNorm(s(out), s(rstd), s(x), s(w), r, d, eps)
}

func (be *Backend) RMSNormBackward(dx, dw, dout, x, w, rstd kernels.Buffer, r, d int) error {
	return ops.RMSNormBackward(s(dx), s(dw), s(dout), s(x), s(w), s(rstd), r, d)
}

func (be *Backend) GatedRMSNorm(out, rstd, x, z, w kernels.Buffer, r, d, g int, eps float32) error {
	return ops.GatedRMSNorm(s(out), s(rstd), s(x), s(z), s(w), r, d, g, eps)
}

func (be *Backend) GatedRMSNormBackward(dx, dz, dw, dout, x, z, w, rstd kernels.Buffer, r, d, g int) error {
	return ops.GatedRMSNormBackward(s(dx), s(dz), s(dw), s(dout), s(x), s(z), s(w), s(rstd), r, d, g)
}

func (be *Backend) LayerNorm(out, mean, rstd, x, w, b kernels.Buffer, r, d int, eps float32) error {
	return ops.LayerNorm(s(out), s(mean), s(rstd), s(x), s(w), s(b), r, d, eps)
}

func (be *Backend) LayerNormBackward(dx, dw, db, dout, x, w, mean, rstd kernels.Buffer, r, d int) error {
	return ops.LayerNormBackward(s(dx), s(dw), s(db), s(dout), s(x), s(w), s(mean), s(rstd), r, d)
}

func (be *Backend) GroupNorm(out, mean, rstd, x, w, b kernels.Buffer, r, d, g int, eps float32) error {
	return ops.GroupNorm(s(out), s(mean), s(rstd), s(x), s(w), s(b), r, d, g, eps)
}

func (be *Backend) GroupNormBackward(dx, dw, db, dout, x, w, mean, rstd kernels.Buffer, r, d, g int) error {
	return ops.GroupNormBackward(s(dx), s(dw), s(db), s(dout), s(x), s(w), s(mean), s(rstd), r, d, g)
}

func (be *Backend) Activate(f kernels.Unary, out, x kernels.Buffer) error {
	switch f {
	case kernels.SiLU:
		return ops.SiLU(s(out), s(x), x.Len())
	case kernels.Softplus:
		return ops.Softplus(s(out), s(x), x.Len())
	}
	return kernels.Unsupported("cpu", fmt.Sprintf("Activate(%v)", f))
}

func (be *Backend) ActivateBackward(f kernels.Unary, dx, dout, x kernels.Buffer) error {
	switch f {
	case kernels.SiLU:
		return ops.SiLUBackward(s(dx), s(dout), s(x), x.Len())
	case kernels.Softplus:
		return ops.SoftplusBackward(s(dx), s(dout), s(x), x.Len())
	}
	return kernels.Unsupported("cpu", fmt.Sprintf("ActivateBackward(%v)", f))
}

func (be *Backend) SwiGLU(out, a, b kernels.Buffer) error {
	return ops.SwiGLU(s(out), s(a), s(b), a.Len())
}

func (be *Backend) SwiGLUBackward(da, db, dout, a, b kernels.Buffer) error {
	return ops.SwiGLUBackward(s(da), s(db), s(dout), s(a), s(b), a.Len())
}

func (be *Backend) CrossEntropy(lse, logits kernels.Buffer, targets []int32, r, v int, ignore int32) (float64, int, error) {
	return ops.CrossEntropy(s(lse), s(logits), targets, r, v, ignore)
}

func (be *Backend) CrossEntropyBackward(dlogits kernels.Buffer, dloss float32, logits kernels.Buffer, targets []int32, lse kernels.Buffer, r, v int, ignore int32) error {
	return ops.CrossEntropyBackward(s(dlogits), dloss, s(logits), targets, s(lse), r, v, ignore)
}

func (be *Backend) Conv1D(out, stateOut, x, w, bias, state0 kernels.Buffer, silu bool, d selectivescan.ConvDims) error {
	return selectivescan.Conv1DForward(s(out), s(stateOut), s(x), s(w), s(bias), s(state0), silu, d)
}

func (be *Backend) Conv1DBackward(dx, dw, dbias, dstate0, dout, dstateOut, x, w, bias, state0 kernels.Buffer, silu bool, d selectivescan.ConvDims) error {
	return selectivescan.Conv1DBackward(s(dx), s(dw), s(dbias), s(dstate0), s(dout), s(dstateOut), s(x), s(w), s(bias), s(state0), silu, d)
}

func (be *Backend) Conv1DStep(state, y, x, w, bias kernels.Buffer, silu bool, d selectivescan.ConvDims) error {
	return selectivescan.Conv1DStep(s(state), s(y), s(x), s(w), s(bias), silu, d)
}

func scanIn(a kernels.ScanArgs) selectivescan.ScanInputs {
	return selectivescan.ScanInputs{U: s(a.U), Delta: s(a.Delta), A: s(a.A), Bm: s(a.Bm), Cm: s(a.Cm), Dskip: s(a.Dskip),
		Z: s(a.Z), DeltaBias: s(a.DeltaBias), H0: s(a.H0), Softplus: a.Softplus}
}

func (be *Backend) ScanSavedLen(d selectivescan.ScanDims) int { return selectivescan.ScanSavedLen(d) }

func (be *Backend) Scan(out, hLast, saved kernels.Buffer, in kernels.ScanArgs) error {
	return selectivescan.ScanForward(s(out), s(hLast), s(saved), scanIn(in), in.Dims)
}

func (be *Backend) ScanBackward(g kernels.ScanGrads, dout, dhLast kernels.Buffer, in kernels.ScanArgs, saved kernels.Buffer) error {
	sg := selectivescan.ScanGrads{DU: s(g.DU), DDelta: s(g.DDelta), DA: s(g.DA), DBm: s(g.DBm), DCm: s(g.DCm),
		DDskip: s(g.DDskip), DZ: s(g.DZ), DDeltaBias: s(g.DDeltaBias), DH0: s(g.DH0)}
	return selectivescan.ScanBackward(sg, s(dout), s(dhLast), scanIn(in), s(saved), in.Dims)
}

func (be *Backend) ScanStep(state, y, u, delta, bm, cm, z kernels.Buffer, in kernels.ScanArgs) error {
	return selectivescan.ScanStep(s(state), s(y), s(u), s(delta), s(bm), s(cm), s(z), scanIn(in), in.Dims)
}

func ssdIn(a kernels.SSDArgs) selectivescan.SSDInputs {
	return selectivescan.SSDInputs{X: s(a.X), Dt: s(a.Dt), DtBias: s(a.DtBias), A: s(a.A), Bm: s(a.Bm), Cm: s(a.Cm),
		Dskip: s(a.Dskip), H0: s(a.H0)}
}

func (be *Backend) SSDSavedLen(d selectivescan.SSDDims) int { return selectivescan.SSDSavedLen(d) }

func (be *Backend) SSD(y, hLast, saved kernels.Buffer, in kernels.SSDArgs) error {
	return selectivescan.SSDForward(s(y), s(hLast), s(saved), ssdIn(in), in.Dims)
}

func (be *Backend) SSDBackward(g kernels.SSDGrads, dy, dhLast kernels.Buffer, in kernels.SSDArgs, saved kernels.Buffer) error {
	sg := selectivescan.SSDGrads{DX: s(g.DX), DDt: s(g.DDt), DDtBias: s(g.DDtBias), DA: s(g.DA), DBm: s(g.DBm), DCm: s(g.DCm),
		DDskip: s(g.DDskip), DH0: s(g.DH0)}
	return selectivescan.SSDBackward(sg, s(dy), s(dhLast), ssdIn(in), s(saved), in.Dims)
}

func (be *Backend) SSDStep(state, y, x, dt, bm, cm kernels.Buffer, in kernels.SSDArgs) error {
	return selectivescan.SSDStep(s(state), s(y), s(x), s(dt), s(bm), s(cm), ssdIn(in), in.Dims)
}

func (be *Backend) Attention(o, lse, q, k, v kernels.Buffer, d attention.Dims) error {
	return attention.Forward(s(o), s(lse), s(q), s(k), s(v), d)
}

func (be *Backend) AttentionBackward(dq, dk, dv, do, q, k, v, o, lse kernels.Buffer, d attention.Dims) error {
	return attention.Backward(s(dq), s(dk), s(dv), s(do), s(q), s(k), s(v), s(o), s(lse), d)
}

func (be *Backend) RoPE(out, x kernels.Buffer, pos0 int, theta float64, d attention.RoPEDims) error {
	return attention.RoPE(s(out), s(x), pos0, theta, d)
}

func (be *Backend) RoPEBackward(dx, dout kernels.Buffer, pos0 int, theta float64, d attention.RoPEDims) error {
	return attention.RoPEBackward(s(dx), s(dout), pos0, theta, d)
}

func (be *Backend) AdamW(p, m, v, g kernels.Buffer, step int, c ops.AdamWConfig) error {
	return ops.AdamW(s(p), s(m), s(v), s(g), p.Len(), step, c)
}
