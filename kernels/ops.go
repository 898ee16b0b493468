package kernels

import (
	"github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/ops"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
)

// Unary names an elementwise activation.
type Unary int

const (
	SiLU Unary = iota
	Softplus
)

func (u Unary) String() string { return [...]string{"silu", "softplus"}[u] }

// ScanArgs are the inputs of a Mamba-1 selective scan on a backend; shapes as in
// selectivescan.ScanInputs. Nil optional buffers are absent.
type ScanArgs struct {
	U, Delta, A, Bm, Cm, Dskip, Z, DeltaBias, H0 Buffer
	Softplus                                     bool
	Dims                                         selectivescan.ScanDims
}

// ScanGrads are ScanBackward's outputs; nil = not wanted. DA, DDskip and DDeltaBias accumulate.
type ScanGrads struct {
	DU, DDelta, DA, DBm, DCm, DDskip, DZ, DDeltaBias, DH0 Buffer
}

// SSDArgs are the inputs of a Mamba-2 SSD on a backend; shapes as in selectivescan.SSDInputs.
type SSDArgs struct {
	X, Dt, DtBias, A, Bm, Cm, Dskip, H0 Buffer
	Dims                                selectivescan.SSDDims
}

// SSDGrads are SSDBackward's outputs; nil = not wanted. DDtBias, DA and DDskip accumulate.
type SSDGrads struct {
	DX, DDt, DDtBias, DA, DBm, DCm, DDskip, DH0 Buffer
}

// Ops is every op the layers use. Shapes and semantics are those of the kernel packages
// (ops, selectivescan, attention); rows R = B·L of token-major activations.
type Ops interface {
	// Axpby sets dst = a·x + b·y (dst may alias x or y).
	Axpby(dst Buffer, a float32, x Buffer, b float32, y Buffer) error
	// Mul sets dst = x ⊙ y.
	Mul(dst, x, y Buffer) error
	// SumSquares returns Σ x² in float64 (gradient norms).
	SumSquares(x Buffer) (float64, error)

	MatMul(c, a, b Buffer, transA, transB bool, m, n, k int, accumulate bool) error
	Linear(y, x, w, bias Buffer, r, in, out int) error
	LinearBackward(dx, dw, dbias, dy, x, w Buffer, r, in, out int) error
	Embedding(out Buffer, ids []int32, table Buffer, r, v, d int) error
	EmbeddingBackward(dtable, dout Buffer, ids []int32, r, v, d int) error

	RMSNorm(out, rstd, x, w Buffer, r, d int, eps float32) error
	RMSNormBackward(dx, dw, dout, x, w, rstd Buffer, r, d int) error
	GatedRMSNorm(out, rstd, x, z, w Buffer, r, d, g int, eps float32) error
	GatedRMSNormBackward(dx, dz, dw, dout, x, z, w, rstd Buffer, r, d, g int) error
	LayerNorm(out, mean, rstd, x, w, b Buffer, r, d int, eps float32) error
	LayerNormBackward(dx, dw, db, dout, x, w, mean, rstd Buffer, r, d int) error
	GroupNorm(out, mean, rstd, x, w, b Buffer, r, d, g int, eps float32) error
	GroupNormBackward(dx, dw, db, dout, x, w, mean, rstd Buffer, r, d, g int) error

	Activate(f Unary, out, x Buffer) error
	ActivateBackward(f Unary, dx, dout, x Buffer) error
	SwiGLU(out, a, b Buffer) error
	SwiGLUBackward(da, db, dout, a, b Buffer) error

	// CrossEntropy returns the mean loss over scored rows (targets ≠ ignore) and their count.
	CrossEntropy(lse, logits Buffer, targets []int32, r, v int, ignore int32) (float64, int, error)
	CrossEntropyBackward(dlogits Buffer, dloss float32, logits Buffer, targets []int32, lse Buffer, r, v int, ignore int32) error

	Conv1D(out, stateOut, x, w, bias, state0 Buffer, silu bool, d selectivescan.ConvDims) error
	Conv1DBackward(dx, dw, dbias, dstate0, dout, dstateOut, x, w, bias, state0 Buffer, silu bool, d selectivescan.ConvDims) error
	Conv1DStep(state, y, x, w, bias Buffer, silu bool, d selectivescan.ConvDims) error

	ScanSavedLen(d selectivescan.ScanDims) int
	Scan(out, hLast, saved Buffer, in ScanArgs) error
	ScanBackward(g ScanGrads, dout, dhLast Buffer, in ScanArgs, saved Buffer) error
	ScanStep(state, y, u, delta, bm, cm, z Buffer, in ScanArgs) error

	SSDSavedLen(d selectivescan.SSDDims) int
	SSD(y, hLast, saved Buffer, in SSDArgs) error
	SSDBackward(g SSDGrads, dy, dhLast Buffer, in SSDArgs, saved Buffer) error
	SSDStep(state, y, x, dt, bm, cm Buffer, in SSDArgs) error

	Attention(o, lse, q, k, v Buffer, d attention.Dims) error
	AttentionBackward(dq, dk, dv, do, q, k, v, o, lse Buffer, d attention.Dims) error
	// RoPE rotates (B, L, H, Dh) at positions pos0…; out may alias x.
	RoPE(out, x Buffer, pos0 int, theta float64, d attention.RoPEDims) error
	RoPEBackward(dx, dout Buffer, pos0 int, theta float64, d attention.RoPEDims) error

	AdamW(p, m, v, g Buffer, step int, c ops.AdamWConfig) error
}
