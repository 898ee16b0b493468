// Package tensor is float32 tensors on a backend with reverse-mode automatic differentiation.
//
// A Tape records coarse, fused ops (matmul, the scans, attention, norms), each with its own
// backward pass, and owns the activation memory of one step: buffers come from a pool keyed by
// size and go back to it on Reset, so a training step after the first allocates nothing new
// from the Go heap for its activations and gradients.
//
// Errors are sticky, as in bufio.Scanner: the first failing op records its error on the tape,
// later ops return placeholders without running, and Err (or Backward) reports it. Model code
// reads as a straight line of ops and checks once.
package tensor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hybridlab/hybrid/kernels"
)

// Tensor is a shaped view of a backend buffer, with an optional gradient.
type Tensor struct {
	shape []int
	buf   kernels.Buffer
	grad  kernels.Buffer
	// param tensors own their buffers (they survive Reset) and always collect gradients.
	param bool
	// needsGrad is true when a gradient must flow into this tensor: it is a parameter or was
	// computed from one.
	needsGrad bool
	name      string
}

// Shape returns the tensor's dimensions (do not modify).
func (t *Tensor) Shape() []int { return t.shape }

// Size is the number of elements.
func (t *Tensor) Size() int { return numel(t.shape) }

// Buf is the tensor's storage.
func (t *Tensor) Buf() kernels.Buffer { return t.buf }

// Grad is the accumulated gradient, or nil when none has flowed in.
func (t *Tensor) Grad() kernels.Buffer { return t.grad }

// Name is the tensor's name (parameters are named; activations carry their op's name).
func (t *Tensor) Name() string { return t.name }

// Dim returns dimension i, counting from the end when i < 0.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Rows is the product of all dimensions but the last: the row count of a token-major tensor.
func (t *Tensor) Rows() int { return t.Size() / max(t.Dim(-1), 1) }

func (t *Tensor) String() string {
	return fmt.Sprintf("%s%v", t.name, t.shape)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func shapeStr(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// NewParam allocates a named parameter on backend be, filled from host data (nil = zeros).
// Parameters own their storage and gradient; tapes never release them.
func NewParam(be kernels.Backend, name string, data []float32, shape ...int) (*Tensor, error) {
	n := numel(shape)
	if n <= 0 {
		return nil, fmt.Errorf("tensor.NewParam %s: shape %s has no elements", name, shapeStr(shape))
	}
	t := &Tensor{shape: append([]int(nil), shape...), buf: be.Alloc(n), param: true, needsGrad: true, name: name}
	if data != nil {
		if len(data) != n {
			return nil, fmt.Errorf("tensor.NewParam %s: %d values for shape %s", name, len(data), shapeStr(shape))
		}
		if err := be.Upload(t.buf, data); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ZeroGrad clears a parameter's gradient (allocating it on first use).
func (t *Tensor) ZeroGrad(be kernels.Backend) {
	if t.grad == nil {
		t.grad = be.Alloc(t.Size())
		return
	}
	be.Fill(t.grad, 0)
}

// node is one recorded op: its backward reads the output gradient and accumulates into the
// inputs' gradients.
type node struct {
	name     string
	out      *Tensor
	backward func(dout kernels.Buffer) error
}

// Tape records ops on one backend and runs them backwards.
type Tape struct {
	be     kernels.Backend
	nodes  []node
	noGrad bool
	err    error

	free  map[int][]kernels.Buffer // pooled buffers by length
	owned []kernels.Buffer         // handed out since the last Reset
	// recycled holds buffers of owned that went back to free before Reset (activation gradients
	// once consumed by Backward), so that they are listed in owned only once.
	recycled map[kernels.Buffer]bool
	// Stats on pool use, for tests and the efficiency report.
	allocs, reuses int
}

// NewTape returns an empty tape on backend be.
func NewTape(be kernels.Backend) *Tape {
	return &Tape{be: be, free: map[int][]kernels.Buffer{}, recycled: map[kernels.Buffer]bool{}}
}

// Backend is the tape's backend.
func (tp *Tape) Backend() kernels.Backend { return tp.be }

// SetNoGrad turns recording off (evaluation): ops run forward only and save nothing.
func (tp *Tape) SetNoGrad(on bool) { tp.noGrad = on }

// NoGrad reports whether recording is off.
func (tp *Tape) NoGrad() bool { return tp.noGrad }

// Err returns the first error any op hit since the last Reset.
func (tp *Tape) Err() error { return tp.err }

// Fail records err (the first one wins) and returns it. Layers built on the tape use it for
// their own validation errors.
func (tp *Tape) Fail(err error) error {
	if tp.err == nil && err != nil {
		tp.err = err
	}
	return tp.err
}

// PoolStats reports how many buffers the pool allocated fresh and how many it reused.
func (tp *Tape) PoolStats() (allocs, reuses int) { return tp.allocs, tp.reuses }

// Reset forgets the recorded ops and returns every activation and gradient buffer to the pool.
// Parameters and their gradients are untouched.
func (tp *Tape) Reset() {
	for _, b := range tp.owned {
		if !tp.recycled[b] {
			tp.free[b.Len()] = append(tp.free[b.Len()], b)
		}
	}
	tp.owned = tp.owned[:0]
	clear(tp.recycled)
	clear(tp.nodes)
	tp.nodes = tp.nodes[:0]
	tp.err = nil
}

// get returns a pooled buffer of n elements with undefined contents.
func (tp *Tape) get(n int) kernels.Buffer {
	var b kernels.Buffer
	if l := tp.free[n]; len(l) > 0 {
		b = l[len(l)-1]
		tp.free[n] = l[:len(l)-1]
		tp.reuses++
		if tp.recycled[b] { // still listed in owned
			delete(tp.recycled, b)
			return b
		}
	} else {
		b = tp.be.Alloc(n)
		tp.allocs++
	}
	tp.owned = append(tp.owned, b)
	return b
}

// release returns b, handed out by get since the last Reset and no longer used, to the pool
// early, so that later gets of the same step reuse it.
func (tp *Tape) release(b kernels.Buffer) {
	tp.recycled[b] = true
	tp.free[b.Len()] = append(tp.free[b.Len()], b)
}

// getZero returns a pooled, zero-filled buffer.
func (tp *Tape) getZero(n int) kernels.Buffer {
	b := tp.get(n)
	tp.be.Fill(b, 0)
	return b
}

// Scratch returns a pooled buffer of n elements that lives until Reset (for an op's saved state).
func (tp *Tape) Scratch(n int) kernels.Buffer { return tp.get(max(n, 1)) }

// New returns an activation tensor from the pool, contents undefined.
func (tp *Tape) New(name string, shape ...int) *Tensor {
	return &Tensor{shape: append([]int(nil), shape...), buf: tp.get(max(numel(shape), 1)), name: name}
}

// Constant uploads host data as an activation that needs no gradient (inputs, masks).
func (tp *Tape) Constant(name string, data []float32, shape ...int) *Tensor {
	t := tp.New(name, shape...)
	if tp.err != nil {
		return t
	}
	if len(data) != numel(shape) {
		tp.Fail(fmt.Errorf("tensor.Constant %s: %d values for shape %s", name, len(data), shapeStr(shape)))
		return t
	}
	tp.Fail(tp.be.Upload(t.buf, data))
	return t
}

// record registers out as produced by an op whose inputs are ins. backward is kept only when
// recording is on and some input needs a gradient.
func (tp *Tape) record(name string, out *Tensor, backward func(dout kernels.Buffer) error, ins ...*Tensor) {
	if tp.noGrad {
		return
	}
	for _, in := range ins {
		if in != nil && in.needsGrad {
			out.needsGrad = true
			break
		}
	}
	if out.needsGrad {
		tp.nodes = append(tp.nodes, node{name: name, out: out, backward: backward})
	}
}

// accumulate returns where an op's backward should write the gradient for x, and a function to
// call afterwards. Kernels assign activation gradients; when x already holds a gradient from
// another consumer (a residual stream feeds many ops), the new one goes to scratch and is added.
func (tp *Tape) accumulate(x *Tensor) (kernels.Buffer, func() error) {
	if x == nil || !x.needsGrad {
		return nil, func() error { return nil }
	}
	if x.grad == nil {
		if x.param { // parameters keep their gradient across steps; ZeroGrad clears it
			x.grad = tp.be.Alloc(x.Size())
		} else {
			x.grad = tp.get(x.Size())
			return x.grad, func() error { return nil }
		}
	}
	tmp := tp.get(x.Size())
	return tmp, func() error {
		err := tp.be.Axpby(x.grad, 1, x.grad, 1, tmp)
		tp.release(tmp)
		return err
	}
}

// addGrad adds coef·dy to x's gradient (x may be nil or need none). Without one yet, x takes dy
// itself when coef is 1 and from (the op's output, whose gradient dy is) is given: dy is then
// x's, and from no longer holds it (Backward does not release it); the caller must not touch dy
// after. Otherwise it is added in place, with no scratch buffer.
func (tp *Tape) addGrad(x *Tensor, coef float32, dy kernels.Buffer, from *Tensor) error {
	if x == nil || !x.needsGrad {
		return nil
	}
	if x.grad == nil {
		switch {
		case x.param: // parameters keep their gradient across steps; ZeroGrad clears it
			x.grad = tp.be.Alloc(x.Size())
		case coef == 1 && from != nil && from.grad == dy:
			x.grad, from.grad = dy, nil
			return nil
		default:
			x.grad = tp.get(x.Size())
			return tp.be.Axpby(x.grad, coef, dy, 0, dy)
		}
	}
	return tp.be.Axpby(x.grad, 1, x.grad, coef, dy)
}

// paramGrad returns the gradient buffer of a parameter-like input for kernels that accumulate
// (+=) parameter gradients, or nil when x needs none.
func (tp *Tape) paramGrad(x *Tensor) kernels.Buffer {
	if x == nil || !x.needsGrad {
		return nil
	}
	if x.grad == nil {
		if x.param {
			x.grad = tp.be.Alloc(x.Size())
		} else {
			x.grad = tp.getZero(x.Size())
		}
	}
	return x.grad
}

// Backward runs the recorded ops in reverse from a scalar loss, whose gradient is seeded with 1
// (or with seed when given, for a non-scalar output). Parameter gradients accumulate into the
// parameters' Grad buffers.
func (tp *Tape) Backward(loss *Tensor, seed ...float32) error {
	if tp.err != nil {
		return tp.err
	}
	if tp.noGrad {
		return errors.New("tensor.Backward: tape is in no-grad mode")
	}
	if !loss.needsGrad {
		return fmt.Errorf("tensor.Backward: %s does not depend on any parameter", loss)
	}
	if loss.grad == nil {
		loss.grad = tp.get(loss.Size())
	}
	switch {
	case len(seed) == loss.Size():
		tp.Fail(tp.be.Upload(loss.grad, seed))
	case len(seed) == 0 && loss.Size() == 1:
		tp.be.Fill(loss.grad, 1)
	default:
		return tp.Fail(fmt.Errorf("tensor.Backward: %s needs a seed of %d values, got %d", loss, loss.Size(), len(seed)))
	}
	for i := len(tp.nodes) - 1; i >= 0; i-- {
		n := tp.nodes[i]
		if n.out.grad == nil {
			continue // nothing downstream used this output
		}
		if err := n.backward(n.out.grad); err != nil {
			return tp.Fail(fmt.Errorf("backward of %s: %w", n.name, err))
		}
		// Every consumer of n.out comes later on the tape and has run: its gradient is spent.
		// Returning it to the pool now lets earlier layers reuse it, so the step's peak memory
		// holds the activations and only a few layers' gradients rather than all of them.
		if n.out != loss && !n.out.param && n.out.grad != nil {
			tp.release(n.out.grad)
			n.out.grad = nil
		}
	}
	return tp.err
}
