package tensor

import (
	"fmt"

	"github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/kernels"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
)

// dead is what an op returns once the tape has failed: a one-element placeholder.
func (tp *Tape) dead() *Tensor { return &Tensor{shape: []int{1}, buf: tp.get(1), name: "failed"} }

// failf records a shape error for op and returns a placeholder.
func (tp *Tape) failf(op, format string, args ...any) *Tensor {
	tp.Fail(fmt.Errorf("tensor.%s: "+format, append([]any{op}, args...)...))
	return tp.dead()
}

// withLast returns shape with its last dimension replaced by n.
func withLast(shape []int, n int) []int {
	s := append([]int(nil), shape...)
	s[len(s)-1] = n
	return s
}

// grad returns where a kernel must write (or accumulate) the gradient of x; kernels that
// cannot skip a gradient get scratch when x needs none.
func (tp *Tape) gradOrScratch(x *Tensor) kernels.Buffer {
	if g := tp.paramGrad(x); g != nil {
		return g
	}
	return tp.getZero(x.Size())
}

func bufOf(t *Tensor) kernels.Buffer {
	if t == nil {
		return nil
	}
	return t.buf
}

// sameShape reports whether a and b have equal shapes.
func sameShape(a, b *Tensor) bool {
	if len(a.shape) != len(b.shape) {
		return false
	}
	for i := range a.shape {
		if a.shape[i] != b.shape[i] {
			return false
		}
	}
	return true
}

// Reshape returns a view of x with a new shape of the same size (no copy). Gradients flow
// through the shared storage's gradient.
func (tp *Tape) Reshape(x *Tensor, shape ...int) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	if numel(shape) != x.Size() {
		return tp.failf("Reshape", "cannot view %s as %s", shapeStr(x.shape), shapeStr(shape))
	}
	y := &Tensor{shape: append([]int(nil), shape...), buf: x.buf, name: x.name}
	tp.record("reshape", y, func(dy kernels.Buffer) error {
		return tp.addGrad(x, 1, dy, y)
	}, x)
	return y
}

// Linear is y = x·Wᵀ + b: x (..., In), W (Out, In), b (Out) or nil → y (..., Out).
func (tp *Tape) Linear(x, w, b *Tensor) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	r, in := x.Rows(), x.Dim(-1)
	if len(w.shape) != 2 || w.shape[1] != in {
		return tp.failf("Linear", "x %s has %d features but W is %s (want (Out, %d))", shapeStr(x.shape), in, shapeStr(w.shape), in)
	}
	out := w.shape[0]
	if b != nil && b.Size() != out {
		return tp.failf("Linear", "bias %s for %d outputs", shapeStr(b.shape), out)
	}
	y := tp.New("linear", withLast(x.shape, out)...)
	tp.Fail(tp.be.Linear(y.buf, x.buf, w.buf, bufOf(b), r, in, out))
	tp.record("linear", y, func(dy kernels.Buffer) error {
		dx, done := tp.accumulate(x)
		if err := tp.be.LinearBackward(dx, tp.gradOrScratch(w), tp.paramGrad(b), dy, x.buf, w.buf, r, in, out); err != nil {
			return err
		}
		return done()
	}, x, w, b)
	return y
}

// Embedding looks up rows of table (V, D) for ids (any shape) → (ids..., D).
func (tp *Tape) Embedding(ids []int32, table *Tensor, shape ...int) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	if len(table.shape) != 2 {
		return tp.failf("Embedding", "table %s is not (V, D)", shapeStr(table.shape))
	}
	if numel(shape) != len(ids) {
		return tp.failf("Embedding", "%d ids for shape %s", len(ids), shapeStr(shape))
	}
	v, d := table.shape[0], table.shape[1]
	out := tp.New("embedding", append(append([]int(nil), shape...), d)...)
	tp.Fail(tp.be.Embedding(out.buf, ids, table.buf, len(ids), v, d))
	tp.record("embedding", out, func(dy kernels.Buffer) error {
		return tp.be.EmbeddingBackward(tp.gradOrScratch(table), dy, ids, len(ids), v, d)
	}, table)
	return out
}

// RMSNorm normalises each row of x (..., D) by its root mean square and scales by w (D).
func (tp *Tape) RMSNorm(x, w *Tensor, eps float32) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	r, d := x.Rows(), x.Dim(-1)
	if w.Size() != d {
		return tp.failf("RMSNorm", "weight %s for rows of %d", shapeStr(w.shape), d)
	}
	out, rstd := tp.New("rmsnorm", x.shape...), tp.Scratch(r)
	tp.Fail(tp.be.RMSNorm(out.buf, rstd, x.buf, w.buf, r, d, eps))
	tp.record("rmsnorm", out, func(dy kernels.Buffer) error {
		dx, done := tp.accumulate(x)
		if dx == nil {
			dx = tp.get(x.Size())
		}
		if err := tp.be.RMSNormBackward(dx, tp.gradOrScratch(w), dy, x.buf, w.buf, rstd, r, d); err != nil {
			return err
		}
		return done()
	}, x, w)
	return out
}

// GatedRMSNorm is Mamba-2's output norm: RMSNorm over g groups of (x ⊙ silu(z)), scaled by w.
func (tp *Tape) GatedRMSNorm(x, z, w *Tensor, groups int, eps float32) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	r, d := x.Rows(), x.Dim(-1)
	if !sameShape(x, z) || w.Size() != d {
		return tp.failf("GatedRMSNorm", "x %s, z %s, weight %s", shapeStr(x.shape), shapeStr(z.shape), shapeStr(w.shape))
	}
	out, rstd := tp.New("gatednorm", x.shape...), tp.Scratch(r*groups)
	tp.Fail(tp.be.GatedRMSNorm(out.buf, rstd, x.buf, z.buf, w.buf, r, d, groups, eps))
	tp.record("gatednorm", out, func(dy kernels.Buffer) error {
		dx, doneX := tp.accumulate(x)
		dz, doneZ := tp.accumulate(z)
		if dx == nil {
			dx = tp.get(x.Size())
		}
		if dz == nil {
			dz = tp.get(z.Size())
		}
		if err := tp.be.GatedRMSNormBackward(dx, dz, tp.gradOrScratch(w), dy, x.buf, z.buf, w.buf, rstd, r, d, groups); err != nil {
			return err
		}
		if err := doneX(); err != nil {
			return err
		}
		return doneZ()
	}, x, z, w)
	return out
}

// LayerNorm normalises rows of x (..., D) to zero mean and unit variance, then w·x + b.
func (tp *Tape) LayerNorm(x, w, b *Tensor, eps float32) *Tensor {
	return tp.groupNorm("LayerNorm", x, w, b, 1, eps)
}

// GroupNorm normalises each of g channel groups of every row of x (..., D) separately
// (per-token GroupNorm, as the intra-layer hybrid normalises its branches), then w·x + b.
func (tp *Tape) GroupNorm(x, w, b *Tensor, groups int, eps float32) *Tensor {
	return tp.groupNorm("GroupNorm", x, w, b, groups, eps)
}

func (tp *Tape) groupNorm(op string, x, w, b *Tensor, g int, eps float32) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	r, d := x.Rows(), x.Dim(-1)
	if w.Size() != d || b.Size() != d {
		return tp.failf(op, "weight %s and bias %s for rows of %d", shapeStr(w.shape), shapeStr(b.shape), d)
	}
	out, mean, rstd := tp.New("norm", x.shape...), tp.Scratch(r*g), tp.Scratch(r*g)
	if g == 1 {
		tp.Fail(tp.be.LayerNorm(out.buf, mean, rstd, x.buf, w.buf, b.buf, r, d, eps))
	} else {
		tp.Fail(tp.be.GroupNorm(out.buf, mean, rstd, x.buf, w.buf, b.buf, r, d, g, eps))
	}
	tp.record(op, out, func(dy kernels.Buffer) error {
		dx, done := tp.accumulate(x)
		if dx == nil {
			dx = tp.get(x.Size())
		}
		var err error
		if g == 1 {
			err = tp.be.LayerNormBackward(dx, tp.gradOrScratch(w), tp.gradOrScratch(b), dy, x.buf, w.buf, mean, rstd, r, d)
		} else {
			err = tp.be.GroupNormBackward(dx, tp.gradOrScratch(w), tp.gradOrScratch(b), dy, x.buf, w.buf, mean, rstd, r, d, g)
		}
		if err != nil {
			return err
		}
		return done()
	}, x, w, b)
	return out
}

// SiLU is x·sigmoid(x), elementwise.
func (tp *Tape) SiLU(x *Tensor) *Tensor { return tp.activate(kernels.SiLU, x) }

// Softplus is log(1 + eˣ), elementwise.
func (tp *Tape) Softplus(x *Tensor) *Tensor { return tp.activate(kernels.Softplus, x) }

func (tp *Tape) activate(f kernels.Unary, x *Tensor) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	out := tp.New(f.String(), x.shape...)
	tp.Fail(tp.be.Activate(f, out.buf, x.buf))
	tp.record(f.String(), out, func(dy kernels.Buffer) error {
		dx, done := tp.accumulate(x)
		if err := tp.be.ActivateBackward(f, dx, dy, x.buf); err != nil {
			return err
		}
		return done()
	}, x)
	return out
}

// SwiGLU is silu(a) ⊙ b for a gate a and an up projection b of the same shape.
func (tp *Tape) SwiGLU(a, b *Tensor) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	if !sameShape(a, b) {
		return tp.failf("SwiGLU", "gate %s and up %s differ", shapeStr(a.shape), shapeStr(b.shape))
	}
	out := tp.New("swiglu", a.shape...)
	tp.Fail(tp.be.SwiGLU(out.buf, a.buf, b.buf))
	tp.record("swiglu", out, func(dy kernels.Buffer) error {
		da, doneA := tp.accumulate(a)
		db, doneB := tp.accumulate(b)
		if da == nil {
			da = tp.get(a.Size())
		}
		if db == nil {
			db = tp.get(b.Size())
		}
		if err := tp.be.SwiGLUBackward(da, db, dy, a.buf, b.buf); err != nil {
			return err
		}
		if err := doneA(); err != nil {
			return err
		}
		return doneB()
	}, a, b)
	return out
}

// Add is a + b (residual connections).
func (tp *Tape) Add(a, b *Tensor) *Tensor { return tp.axpby("Add", 1, a, 1, b) }

// Sub is a − b (the intra-layer hybrid's "diff" fusion).
func (tp *Tape) Sub(a, b *Tensor) *Tensor { return tp.axpby("Sub", 1, a, -1, b) }

// Scale is s·x.
func (tp *Tape) Scale(x *Tensor, s float32) *Tensor { return tp.axpby("Scale", s, x, 0, x) }

func (tp *Tape) axpby(op string, alpha float32, a *Tensor, beta float32, b *Tensor) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	if !sameShape(a, b) {
		return tp.failf(op, "shapes %s and %s differ", shapeStr(a.shape), shapeStr(b.shape))
	}
	out := tp.New(op, a.shape...)
	tp.Fail(tp.be.Axpby(out.buf, alpha, a.buf, beta, b.buf))
	ins := []*Tensor{a, b}
	if beta == 0 {
		ins = ins[:1]
	}
	tp.record(op, out, func(dy kernels.Buffer) error {
		// b first: a may take dy over (addGrad), which must come last.
		for i := len(ins) - 1; i >= 0; i-- {
			coef, from := alpha, out
			if i == 1 {
				coef, from = beta, nil
			}
			if err := tp.addGrad(ins[i], coef, dy, from); err != nil {
				return err
			}
		}
		return nil
	}, ins...)
	return out
}

// Mul is a ⊙ b elementwise (learned branch scales, gates).
func (tp *Tape) Mul(a, b *Tensor) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	if !sameShape(a, b) {
		return tp.failf("Mul", "shapes %s and %s differ", shapeStr(a.shape), shapeStr(b.shape))
	}
	out := tp.New("mul", a.shape...)
	tp.Fail(tp.be.Mul(out.buf, a.buf, b.buf))
	tp.record("mul", out, func(dy kernels.Buffer) error {
		for _, p := range [][2]*Tensor{{a, b}, {b, a}} {
			dx, done := tp.accumulate(p[0])
			if dx == nil {
				continue
			}
			if err := tp.be.Mul(dx, dy, p[1].buf); err != nil {
				return err
			}
			if err := done(); err != nil {
				return err
			}
		}
		return nil
	}, a, b)
	return out
}

// Split cuts the last axis of x into pieces of the given widths (the Mamba in_proj output
// into z, x, B, C, Δ). Each piece is a copy; gradients are scattered back.
func (tp *Tape) Split(x *Tensor, widths ...int) []*Tensor {
	outs := make([]*Tensor, len(widths))
	if tp.err != nil {
		for i := range outs {
			outs[i] = tp.dead()
		}
		return outs
	}
	total := 0
	for _, w := range widths {
		total += w
	}
	if total != x.Dim(-1) {
		tp.failf("Split", "widths %v sum to %d, x %s has %d", widths, total, shapeStr(x.shape), x.Dim(-1))
		for i := range outs {
			outs[i] = tp.dead()
		}
		return outs
	}
	r, cols, off := x.Rows(), x.Dim(-1), 0
	// fresh: x's gradient was started by this split's backward, so pieces copy into it rather than
	// add. The pieces' nodes are adjacent on the tape and every consumer of every piece comes after
	// them, so when the first of them runs backward each piece's gradient is final: the buffer is
	// zeroed then only when some piece has none.
	var fresh, started bool
	for i, w := range widths {
		out := tp.New("split", withLast(x.shape, w)...)
		tp.Fail(tp.be.CopyRows(out.buf, w, 0, x.buf, cols, off, r, w, false))
		o := off
		outs[i] = out
		tp.record("split", out, func(dy kernels.Buffer) error {
			if !x.needsGrad {
				return nil
			}
			if !started {
				started = true
				switch {
				case x.grad != nil:
				case x.param:
					x.grad = tp.be.Alloc(x.Size())
				default:
					x.grad = tp.get(x.Size())
					fresh = true
					for _, p := range outs {
						if p.grad == nil { // some columns get no gradient: zero all (rare)
							tp.be.Fill(x.grad, 0)
							break
						}
					}
				}
			}
			return tp.be.CopyRows(x.grad, cols, o, dy, w, 0, r, w, !fresh)
		}, x)
		off += w
	}
	return outs
}

// Concat joins tensors along the last axis.
func (tp *Tape) Concat(xs ...*Tensor) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	r, total := xs[0].Rows(), 0
	for _, x := range xs {
		if x.Rows() != r {
			return tp.failf("Concat", "row counts differ: %s and %s", shapeStr(xs[0].shape), shapeStr(x.shape))
		}
		total += x.Dim(-1)
	}
	out := tp.New("concat", withLast(xs[0].shape, total)...)
	off := 0
	offs := make([]int, len(xs))
	for i, x := range xs {
		offs[i] = off
		tp.Fail(tp.be.CopyRows(out.buf, total, off, x.buf, x.Dim(-1), 0, r, x.Dim(-1), false))
		off += x.Dim(-1)
	}
	tp.record("concat", out, func(dy kernels.Buffer) error {
		for i, x := range xs {
			dx, done := tp.accumulate(x)
			if dx == nil {
				continue
			}
			if err := tp.be.CopyRows(dx, x.Dim(-1), 0, dy, total, offs[i], r, x.Dim(-1), false); err != nil {
				return err
			}
			if err := done(); err != nil {
				return err
			}
		}
		return nil
	}, xs...)
	return out
}

// CrossEntropy is the mean over scored rows of −log softmax(logits)[target], fused with the
// log-softmax; rows whose target is ignore are not scored. logits (..., V), targets one per row.
// It returns a scalar tensor (the loss) and the number of scored rows.
func (tp *Tape) CrossEntropy(logits *Tensor, targets []int32, ignore int32) (*Tensor, int) {
	if tp.err != nil {
		return tp.dead(), 0
	}
	r, v := logits.Rows(), logits.Dim(-1)
	if len(targets) != r {
		return tp.failf("CrossEntropy", "%d targets for %d rows of logits %s", len(targets), r, shapeStr(logits.shape)), 0
	}
	lse := tp.Scratch(r)
	loss, count, err := tp.be.CrossEntropy(lse, logits.buf, targets, r, v, ignore)
	tp.Fail(err)
	out := tp.New("loss", 1)
	tp.Fail(tp.be.Upload(out.buf, []float32{float32(loss)}))
	tp.record("crossentropy", out, func(dy kernels.Buffer) error {
		seed := make([]float32, 1)
		if err := tp.be.Download(seed, dy); err != nil {
			return err
		}
		dl, done := tp.accumulate(logits)
		if err := tp.be.CrossEntropyBackward(dl, seed[0], logits.buf, targets, lse, r, v, ignore); err != nil {
			return err
		}
		return done()
	}, logits)
	return out, count
}

// Conv1D is the causal depthwise convolution of x (B, L, D) with w (D, W) and bias (D) or nil,
// with optional SiLU.
func (tp *Tape) Conv1D(x, w, bias *Tensor, silu bool) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	if len(x.shape) != 3 || len(w.shape) != 2 || w.shape[0] != x.shape[2] {
		return tp.failf("Conv1D", "x %s must be (B, L, D) and w %s (D, W)", shapeStr(x.shape), shapeStr(w.shape))
	}
	d := selectivescan.ConvDims{B: x.shape[0], L: x.shape[1], D: x.shape[2], W: w.shape[1]}
	out := tp.New("conv1d", x.shape...)
	tp.Fail(tp.be.Conv1D(out.buf, nil, x.buf, w.buf, bufOf(bias), nil, silu, d))
	tp.record("conv1d", out, func(dy kernels.Buffer) error {
		dx, done := tp.accumulate(x)
		if dx == nil {
			dx = tp.get(x.Size())
		}
		var db kernels.Buffer
		if bias != nil {
			db = tp.gradOrScratch(bias)
		}
		if err := tp.be.Conv1DBackward(dx, tp.gradOrScratch(w), db, nil, dy, nil, x.buf, w.buf, bufOf(bias), nil, silu, d); err != nil {
			return err
		}
		return done()
	}, x, w, bias)
	return out
}

// ScanInputs are the tensors of a Mamba-1 selective scan (shapes as selectivescan.ScanInputs;
// Dskip, Z, DeltaBias may be nil).
type ScanInputs struct {
	U, Delta, A, Bm, Cm, Dskip, Z, DeltaBias *Tensor
	Softplus                                 bool
	Groups, Chunk                            int
}

// SelectiveScan runs the Mamba-1 scan: u, Δ (B, L, D), A (D, N), B, C (B, L, G, N) → (B, L, D).
// Only chunk-start states are saved; the backward pass recomputes inside chunks.
func (tp *Tape) SelectiveScan(in ScanInputs) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	u, a := in.U, in.A
	if len(u.shape) != 3 || len(a.shape) != 2 {
		return tp.failf("SelectiveScan", "u %s must be (B, L, D) and A %s (D, N)", shapeStr(u.shape), shapeStr(a.shape))
	}
	d := selectivescan.ScanDims{B: u.shape[0], L: u.shape[1], D: u.shape[2], N: a.shape[1], G: in.Groups, Chunk: in.Chunk}
	args := kernels.ScanArgs{U: u.buf, Delta: in.Delta.buf, A: a.buf, Bm: in.Bm.buf, Cm: in.Cm.buf, Dskip: bufOf(in.Dskip),
		Z: bufOf(in.Z), DeltaBias: bufOf(in.DeltaBias), Softplus: in.Softplus, Dims: d}
	out := tp.New("scan", u.shape...)
	var saved kernels.Buffer
	if !tp.noGrad {
		saved = tp.Scratch(tp.be.ScanSavedLen(d))
	}
	tp.Fail(tp.be.Scan(out.buf, nil, saved, args))
	tp.record("scan", out, func(dy kernels.Buffer) error {
		g := kernels.ScanGrads{DA: tp.paramGrad(a), DDskip: tp.paramGrad(in.Dskip), DDeltaBias: tp.paramGrad(in.DeltaBias)}
		var dones []func() error
		for _, p := range []struct {
			dst *kernels.Buffer
			x   *Tensor
		}{{&g.DU, u}, {&g.DDelta, in.Delta}, {&g.DBm, in.Bm}, {&g.DCm, in.Cm}, {&g.DZ, in.Z}} {
			if p.x == nil {
				continue
			}
			b, done := tp.accumulate(p.x)
			*p.dst = b
			dones = append(dones, done)
		}
		if err := tp.be.ScanBackward(g, dy, nil, args, saved); err != nil {
			return err
		}
		for _, done := range dones {
			if err := done(); err != nil {
				return err
			}
		}
		return nil
	}, u, in.Delta, a, in.Bm, in.Cm, in.Dskip, in.Z, in.DeltaBias)
	return out
}

// SSDInputs are the tensors of a Mamba-2 SSD (shapes as selectivescan.SSDInputs; DtBias and
// Dskip may be nil).
type SSDInputs struct {
	X, Dt, DtBias, A, Bm, Cm, Dskip *Tensor
	Chunk                           int
}

// SSD runs the chunked Mamba-2 state-space dual: X (B, L, H, P), Δ (B, L, H), A (H),
// B, C (B, L, G, N) → Y (B, L, H, P).
func (tp *Tape) SSD(in SSDInputs) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	x, bm := in.X, in.Bm
	if len(x.shape) != 4 || len(bm.shape) != 4 {
		return tp.failf("SSD", "X %s must be (B, L, H, P) and B %s (B, L, G, N)", shapeStr(x.shape), shapeStr(bm.shape))
	}
	d := selectivescan.SSDDims{B: x.shape[0], L: x.shape[1], H: x.shape[2], P: x.shape[3], G: bm.shape[2], N: bm.shape[3], Chunk: in.Chunk}
	args := kernels.SSDArgs{X: x.buf, Dt: in.Dt.buf, DtBias: bufOf(in.DtBias), A: in.A.buf, Bm: bm.buf, Cm: in.Cm.buf, Dskip: bufOf(in.Dskip), Dims: d}
	y := tp.New("ssd", x.shape...)
	var saved kernels.Buffer
	if !tp.noGrad {
		saved = tp.Scratch(tp.be.SSDSavedLen(d))
	}
	tp.Fail(tp.be.SSD(y.buf, nil, saved, args))
	tp.record("ssd", y, func(dy kernels.Buffer) error {
		g := kernels.SSDGrads{DA: tp.paramGrad(in.A), DDskip: tp.paramGrad(in.Dskip), DDtBias: tp.paramGrad(in.DtBias)}
		var dones []func() error
		for _, p := range []struct {
			dst *kernels.Buffer
			x   *Tensor
		}{{&g.DX, x}, {&g.DDt, in.Dt}, {&g.DBm, bm}, {&g.DCm, in.Cm}} {
			b, done := tp.accumulate(p.x)
			*p.dst = b
			dones = append(dones, done)
		}
		if err := tp.be.SSDBackward(g, dy, nil, args, saved); err != nil {
			return err
		}
		for _, done := range dones {
			if err := done(); err != nil {
				return err
			}
		}
		return nil
	}, x, in.Dt, in.DtBias, in.A, bm, in.Cm, in.Dskip)
	return y
}

// AttentionOptions are the mask and scale of an attention call (see attention.Dims).
type AttentionOptions struct {
	Causal        bool
	Window, Sinks int
	Scale         float32
}

// Attention is flash attention: q (B, L, H, Dh), k, v (B, S, HKV, Dh) → (B, L, H, Dh).
// Only the log-sum-exp per row is saved; the backward pass recomputes probabilities.
func (tp *Tape) Attention(q, k, v *Tensor, opt AttentionOptions) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	if len(q.shape) != 4 || len(k.shape) != 4 || !sameShape(k, v) {
		return tp.failf("Attention", "q %s must be (B, L, H, Dh) and k %s, v %s (B, S, HKV, Dh)", shapeStr(q.shape), shapeStr(k.shape), shapeStr(v.shape))
	}
	d := attention.Dims{B: q.shape[0], L: q.shape[1], S: k.shape[1], H: q.shape[2], HKV: k.shape[2], Dh: q.shape[3],
		Causal: opt.Causal, Window: opt.Window, Sinks: opt.Sinks, Scale: opt.Scale}
	o, lse := tp.New("attention", q.shape...), tp.Scratch(d.B*d.H*d.L)
	tp.Fail(tp.be.Attention(o.buf, lse, q.buf, k.buf, v.buf, d))
	tp.record("attention", o, func(do kernels.Buffer) error {
		var bufs [3]kernels.Buffer
		var dones [3]func() error
		for i, x := range []*Tensor{q, k, v} {
			bufs[i], dones[i] = tp.accumulate(x)
			if bufs[i] == nil {
				bufs[i] = tp.get(x.Size())
			}
		}
		if err := tp.be.AttentionBackward(bufs[0], bufs[1], bufs[2], do, q.buf, k.buf, v.buf, o.buf, lse, d); err != nil {
			return err
		}
		for _, done := range dones {
			if err := done(); err != nil {
				return err
			}
		}
		return nil
	}, q, k, v)
	return o
}

// RoPE applies rotary position embeddings to x (B, L, H, Dh) for positions pos0 … pos0+L−1
// with base θ, rotating the pairs (i, i+Dh/2).
func (tp *Tape) RoPE(x *Tensor, pos0 int, theta float64) *Tensor {
	if tp.err != nil {
		return tp.dead()
	}
	if len(x.shape) != 4 {
		return tp.failf("RoPE", "x %s must be (B, L, H, Dh)", shapeStr(x.shape))
	}
	d := attention.RoPEDims{B: x.shape[0], L: x.shape[1], H: x.shape[2], Dh: x.shape[3]}
	out := tp.New("rope", x.shape...)
	tp.Fail(tp.be.RoPE(out.buf, x.buf, pos0, theta, d))
	tp.record("rope", out, func(dy kernels.Buffer) error {
		dx, done := tp.accumulate(x)
		if err := tp.be.RoPEBackward(dx, dy, pos0, theta, d); err != nil {
			return err
		}
		return done()
	}, x)
	return out
}
