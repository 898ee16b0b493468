// Package cuda is the CUDA backend of package kernels (build tag cuda): device buffers, the
// kernels of kernels/*.cu (compiled to PTX with clang-16, embedded, loaded with cuModuleLoadData
// for the device's architecture), and matrix products through cuBLAS behind gonum's blas.Float32.
//
// Layouts and semantics are those of the CPU kernels (selective_scan, attention, ops): token-major
// (B, L, D) activations, (B, L, G, N) B/C maps, outputs first, parameter gradients accumulate,
// activation gradients are assigned. The saved buffers of Scan and SSD have the CPU's lengths;
// SSD's is laid out (B, nC, H, P, N) here (the CPU uses (B, nC, H, N, P)), so saved buffers do
// not move between backends.
//
// Without the cuda tag the package holds only the device-independent part (validation, launch
// geometry, scratch management) and registers nothing; with it, cu.go registers "cuda".
package cuda

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/ops"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
)

// Limits of the kernels (compile-time sizes in the .cu sources).
const (
	maxScanN   = 256  // scan.cu SCAN_MAXNPL·32
	maxConvW   = 16   // conv1d.cu CONV_MAXW
	maxHeadDim = 256  // attention.cu ATT_MAXC·32
	maxSSDQ    = 2048 // ssd_bwd_x keeps 3·Q floats in shared memory
)

// Storage is how a buffer stores its elements. Every op computes in float32; SSD and attention
// also read and write bf16 or fp16 activations (see those methods), the other ops take F32 only.
type Storage int

const (
	F32  Storage = iota // float32
	BF16                // bfloat16, round to nearest even
	F16                 // IEEE half, round to nearest even
)

func (s Storage) String() string { return [...]string{"float32", "bfloat16", "float16"}[s] }

// suffix is the kernel-name suffix of the storage variant.
func (s Storage) suffix() string { return [...]string{"", "_bf16", "_f16"}[s] }

func (s Storage) bytes() int {
	if s == F32 {
		return 4
	}
	return 2
}

// Buf is a buffer in device memory (float32 unless allocated with AllocStorage).
type Buf struct {
	be      *Backend
	p       devPtr
	n       int
	st      Storage
	cleanup runtime.Cleanup
}

// Len is the element count.
func (b *Buf) Len() int { return b.n }

// Storage is the element storage.
func (b *Buf) Storage() Storage { return b.st }

// Free releases the device memory now (otherwise it is released after the buffer is collected).
func (b *Buf) Free() {
	if b == nil || b.p == 0 {
		return
	}
	b.cleanup.Stop()
	b.be.release(b.p)
	b.p, b.n = 0, 0
}

// Backend runs the ops on one device.
type Backend struct {
	dev     device
	mu      sync.Mutex
	pending []devPtr          // buffers collected by the GC, freed at the next call
	pmu     sync.Mutex        // guards pending (cleanups run on their own goroutine)
	scratch map[string]devPtr // grow-only per-purpose scratch
	scrLen  map[string]int
	debug   bool // HYBRID_CUDA_SYNC=1: synchronise after every launch, naming the failing kernel
}

var _ kernels.Backend = (*Backend)(nil)

func newBackend(dev device) *Backend {
	return &Backend{dev: dev, scratch: map[string]devPtr{}, scrLen: map[string]int{}, debug: os.Getenv("HYBRID_CUDA_SYNC") == "1"}
}

// Name describes the device.
func (be *Backend) Name() string { return "cuda, " + be.dev.name() }

// call runs f with the device's context current on a locked OS thread, one call at a time.
func (be *Backend) call(f func() error) error {
	be.mu.Lock()
	defer be.mu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := be.dev.enter(); err != nil {
		return err
	}
	defer be.dev.exit()
	be.pmu.Lock()
	pend := be.pending
	be.pending = nil
	be.pmu.Unlock()
	if len(pend) > 0 {
		if err := be.dev.sync(); err != nil { // queued kernels may still read them
			return err
		}
	}
	for _, p := range pend {
		if err := be.dev.free(p); err != nil {
			return err
		}
	}
	return f()
}

// must turns a device failure in a method without an error result into a panic naming it.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

func (be *Backend) release(p devPtr) {
	be.pmu.Lock()
	be.pending = append(be.pending, p)
	be.pmu.Unlock()
}

// Sync waits for all queued work and returns the first asynchronous kernel error.
func (be *Backend) Sync() error { return be.call(be.dev.sync) }

// Alloc returns a zero-filled device buffer of n float32s; it panics when the device is out of
// memory (as make would on the host).
func (be *Backend) Alloc(n int) kernels.Buffer { return be.AllocStorage(n, F32) }

// AllocStorage returns a zero-filled device buffer of n elements stored as s.
func (be *Backend) AllocStorage(n int, s Storage) *Buf {
	if n < 0 || s < F32 || s > F16 {
		panic(fmt.Sprintf("cuda.Alloc: length %d, storage %d", n, s))
	}
	b := &Buf{be: be, n: n, st: s}
	if n == 0 {
		return b
	}
	words := (n*s.bytes() + 3) / 4
	must(be.call(func() error {
		p, err := be.dev.alloc(4 * words)
		if err != nil {
			return fmt.Errorf("cuda.Alloc: %d %v (%d bytes): %w", n, s, 4*words, err)
		}
		b.p = p
		return be.dev.memset32(p, 0, words)
	}))
	b.cleanup = runtime.AddCleanup(b, func(p devPtr) { be.release(p) }, b.p)
	return b
}

// ptr unwraps a buffer of this backend (nil stays 0).
func (be *Backend) ptr(b kernels.Buffer) devPtr {
	if b == nil {
		return 0
	}
	cb, ok := b.(*Buf)
	if !ok || cb == nil {
		return 0
	}
	return cb.p
}

// offset returns p advanced by n float32s.
func offset(p devPtr, n int) devPtr { return p + devPtr(4*n) }

// Upload copies host float32s into dst (16-bit buffers round on the device).
func (be *Backend) Upload(dst kernels.Buffer, src []float32) error {
	c := newCheck("cuda.Upload", "")
	st := c.anyBuf("dst", be, dst, false, "len(src)", len(src))
	if c.err != nil {
		return c.err
	}
	if len(src) == 0 {
		return nil
	}
	return be.call(func() error {
		if st == F32 {
			return be.dev.htod(be.ptr(dst), unsafe.Pointer(&src[0]), 4*len(src))
		}
		tmp, err := be.scr("convert", len(src))
		if err != nil {
			return err
		}
		if err := be.dev.htod(tmp, unsafe.Pointer(&src[0]), 4*len(src)); err != nil {
			return err
		}
		return be.convert(be.ptr(dst), st, tmp, F32, len(src))
	})
}

// Download copies src into host float32s (16-bit buffers widen on the device).
func (be *Backend) Download(dst []float32, src kernels.Buffer) error {
	c := newCheck("cuda.Download", "")
	st := c.anyBuf("src", be, src, false, "len(dst)", len(dst))
	if c.err != nil {
		return c.err
	}
	if len(dst) == 0 {
		return nil
	}
	return be.call(func() error {
		p := be.ptr(src)
		if st != F32 {
			tmp, err := be.scr("convert", len(dst))
			if err != nil {
				return err
			}
			if err := be.convert(tmp, F32, p, st, len(dst)); err != nil {
				return err
			}
			p = tmp
		}
		return be.dev.dtoh(unsafe.Pointer(&dst[0]), p, 4*len(dst))
	})
}

// convert copies n elements between storages (inside call).
func (be *Backend) convert(dst devPtr, ds Storage, src devPtr, ss Storage, n int) error {
	switch {
	case ds == ss:
		return be.dev.dtod(dst, src, n*ds.bytes())
	case ss == F32:
		return be.launchFlat("f32_to"+ds.suffix(), n, dst, src, int64(n))
	case ds == F32:
		return be.launchFlat(map[Storage]string{BF16: "bf16", F16: "f16"}[ss]+"_to_f32", n, dst, src, int64(n))
	}
	tmp, err := be.scr("convert2", n)
	if err != nil {
		return err
	}
	if err := be.convert(tmp, F32, src, ss, n); err != nil {
		return err
	}
	return be.convert(dst, ds, tmp, F32, n)
}

// Convert copies src into dst, converting the storage (equal lengths).
func (be *Backend) Convert(dst, src kernels.Buffer) error {
	c := newCheck("cuda.Convert", "")
	ss := c.anyBuf("src", be, src, false, "", -1)
	var ds Storage
	if c.err == nil {
		ds = c.anyBuf("dst", be, dst, false, "len(src)", src.Len())
	}
	if c.err != nil {
		return c.err
	}
	return be.call(func() error { return be.convert(be.ptr(dst), ds, be.ptr(src), ss, src.Len()) })
}

func (be *Backend) Fill(dst kernels.Buffer, v float32) {
	c := newCheck("cuda.Fill", "")
	st := c.anyBuf("dst", be, dst, false, "", -1)
	must(c.err)
	n := dst.Len()
	if n == 0 {
		return
	}
	must(be.call(func() error {
		if st == F32 {
			return be.dev.memset32(be.ptr(dst), math.Float32bits(v), n)
		}
		tmp, err := be.scr("convert", n)
		if err != nil {
			return err
		}
		if err := be.dev.memset32(tmp, math.Float32bits(v), n); err != nil {
			return err
		}
		return be.convert(be.ptr(dst), st, tmp, F32, n)
	}))
}

// ---- scratch, launches ----

// scr returns a device scratch of at least n float32s (or bytes/4) for one purpose; it stays
// valid until the next scr call with the same key. Calls inside one op use distinct keys.
func (be *Backend) scr(key string, n int) (devPtr, error) {
	if n <= 0 {
		n = 1
	}
	if be.scrLen[key] >= n {
		return be.scratch[key], nil
	}
	if old := be.scratch[key]; old != 0 {
		if err := be.dev.sync(); err != nil { // queued kernels may still use it
			return 0, err
		}
		if err := be.dev.free(old); err != nil {
			return 0, err
		}
		delete(be.scratch, key)
		delete(be.scrLen, key)
	}
	p, err := be.dev.alloc(4 * n)
	if err != nil {
		return 0, fmt.Errorf("cuda: scratch %q of %d floats: %w", key, n, err)
	}
	be.scratch[key], be.scrLen[key] = p, n
	return p, nil
}

func (be *Backend) zero(p devPtr, n int) error {
	if p == 0 || n == 0 {
		return nil
	}
	return be.dev.memset32(p, 0, n)
}

// launch runs kernel k (inside call).
func (be *Backend) launch(k string, grid, block dim3, shmem int, args ...any) error {
	a, sig, err := kernelArgs(args...)
	if err != nil {
		return fmt.Errorf("cuda: kernel %s: %w", k, err)
	}
	for _, g := range []int{grid.x, grid.y, grid.z} {
		if g < 1 {
			return nil // empty launch: nothing to do
		}
	}
	if grid.y > 65535 || grid.z > 65535 || grid.x > math.MaxInt32 {
		return fmt.Errorf("cuda: kernel %s: grid %v exceeds the device limits", k, grid)
	}
	if err := be.dev.launch(k, grid, block, shmem, a, sig); err != nil {
		return fmt.Errorf("cuda: kernel %s (grid %v, block %v, shared %d B): %w", k, grid, block, shmem, err)
	}
	if be.debug {
		if err := be.dev.sync(); err != nil {
			return fmt.Errorf("cuda: kernel %s failed: %w", k, err)
		}
	}
	return nil
}

// flat is the geometry of a grid-stride loop over n elements.
func flat(n int) (dim3, dim3) {
	const bs = 256
	g := (n + bs - 1) / bs
	g = max(1, min(g, 1<<16))
	return dim3{g, 1, 1}, dim3{bs, 1, 1}
}

// launchFlat launches an elementwise kernel over n elements.
func (be *Backend) launchFlat(k string, n int, args ...any) error {
	if n == 0 {
		return nil
	}
	g, b := flat(n)
	return be.launch(k, g, b, 0, args...)
}

// colSumAcc adds the column sums of src (rows × cols, row stride ld) to dst (cols).
func (be *Backend) colSumAcc(dst, src devPtr, rows, cols, ld int) error {
	if dst == 0 || rows == 0 || cols == 0 {
		return nil
	}
	return be.launch("col_sum_acc", dim3{(cols + 31) / 32, 1, 1}, dim3{32, 8, 1}, 0, dst, src, rows, cols, ld)
}

// warpRows is the geometry of a one-warp-per-row kernel over n rows (4 warps per block).
func warpRows(n int) (dim3, dim3) { return dim3{(n + 3) / 4, 1, 1}, dim3{128, 1, 1} }

// upInts copies host int32s into a scratch.
func (be *Backend) upInts(key string, v []int32) (devPtr, error) {
	p, err := be.scr(key, len(v))
	if err != nil || len(v) == 0 {
		return p, err
	}
	return p, be.dev.htod(p, unsafe.Pointer(&v[0]), 4*len(v))
}

// ---- validation ----

// check collects the first error of an op, in the CPU backend's wording:
// "cuda.Scan: U has length 10, want B·L·D = 12 (B=1 L=3 ...)".
type check struct {
	op, dims string
	err      error
	st       *Storage // the storage of the op's activation buffers (sbuf), once one is seen
}

func newCheck(op, dims string) *check { return &check{op: op, dims: dims} }

func (c *check) fail(format string, a ...any) {
	if c.err == nil {
		msg := fmt.Sprintf(format, a...)
		if c.dims != "" {
			msg += " " + c.dims
		}
		c.err = fmt.Errorf("%s: %s", c.op, msg)
	}
}

// buf checks that b is a float32 buffer of be with length want (want < 0: any); a nil b passes
// when optional.
func (c *check) buf(name string, be *Backend, b kernels.Buffer, optional bool, formula string, want int) {
	if st := c.anyBuf(name, be, b, optional, formula, want); c.err == nil && b != nil && st != F32 {
		c.fail("%s is stored as %v; this op takes float32 buffers", name, st)
	}
}

// sbuf is buf for the activation buffers of ops with 16-bit variants: any storage, but the same
// for all of them.
func (c *check) sbuf(name string, be *Backend, b kernels.Buffer, optional bool, formula string, want int) {
	st := c.anyBuf(name, be, b, optional, formula, want)
	if c.err != nil || b == nil {
		return
	}
	if c.st == nil {
		c.st = &st
	} else if *c.st != st {
		c.fail("%s is stored as %v, the op's other activations as %v", name, st, *c.st)
	}
}

// storage is the activations' storage (F32 when none was checked).
func (c *check) storage() Storage {
	if c.st == nil {
		return F32
	}
	return *c.st
}

// anyBuf checks ownership and length and returns the buffer's storage.
func (c *check) anyBuf(name string, be *Backend, b kernels.Buffer, optional bool, formula string, want int) Storage {
	if c.err != nil {
		return F32
	}
	if b == nil {
		if !optional {
			c.fail("%s is nil (required)", name)
		}
		return F32
	}
	cb, ok := b.(*Buf)
	if !ok || cb == nil {
		c.fail("%s is a %T, not a buffer of the CUDA backend", name, b)
		return F32
	}
	if cb.be != be {
		c.fail("%s belongs to another CUDA backend", name)
		return F32
	}
	if cb.n > 0 && cb.p == 0 {
		c.fail("%s was freed", name)
		return F32
	}
	if want >= 0 && cb.n != want {
		c.fail("%s has length %d, want %s = %d", name, cb.n, formula, want)
	}
	return cb.st
}

func (c *check) positive(names string, v ...int) {
	for _, x := range v {
		if x < 1 {
			c.fail("sizes %s must be ≥ 1 (got %v)", names, v)
			return
		}
	}
}

func (c *check) ids(name string, ids []int32, r, v int, ignore *int32) {
	if c.err != nil {
		return
	}
	if len(ids) != r {
		c.fail("%s has length %d, want R = %d", name, len(ids), r)
		return
	}
	for i, t := range ids {
		if ignore != nil && t == *ignore {
			continue
		}
		if t < 0 || int(t) >= v {
			c.fail("%s[%d] = %d out of range [0, V=%d)", name, i, t, v)
			return
		}
	}
}

var errNoDevice = errors.New("no CUDA device found")

// ---- memory ops ----

func (be *Backend) CopyRows(dst kernels.Buffer, dCols, dOff int, src kernels.Buffer, sCols, sOff, rows, n int, accumulate bool) error {
	c := newCheck("cuda.CopyRows", "")
	c.buf("dst", be, dst, false, "", -1)
	c.buf("src", be, src, false, "", -1)
	if c.err != nil {
		return c.err
	}
	if rows < 0 || n < 0 || dOff < 0 || sOff < 0 || dOff+n > dCols || sOff+n > sCols || rows*dCols > dst.Len() || rows*sCols > src.Len() {
		return fmt.Errorf("cuda.CopyRows: %d rows × %d columns from (%d cols, offset %d, len %d) into (%d cols, offset %d, len %d) out of range",
			rows, n, sCols, sOff, src.Len(), dCols, dOff, dst.Len())
	}
	return be.call(func() error {
		return be.launchFlat("copy_rows", rows*n, be.ptr(dst), dCols, dOff, be.ptr(src), sCols, sOff, rows, n, accumulate)
	})
}

func (be *Backend) same3(op string, d, x, y kernels.Buffer) error {
	c := newCheck(op, "")
	c.buf("dst", be, d, false, "", -1)
	c.buf("x", be, x, false, "len(dst)", d.Len())
	c.buf("y", be, y, false, "len(dst)", d.Len())
	return c.err
}

func (be *Backend) Axpby(dst kernels.Buffer, a float32, x kernels.Buffer, b float32, y kernels.Buffer) error {
	if err := be.same3("cuda.Axpby", dst, x, y); err != nil {
		return err
	}
	return be.call(func() error {
		return be.launchFlat("axpby_f32", dst.Len(), be.ptr(dst), a, be.ptr(x), b, be.ptr(y), int64(dst.Len()))
	})
}

func (be *Backend) Mul(dst, x, y kernels.Buffer) error {
	if err := be.same3("cuda.Mul", dst, x, y); err != nil {
		return err
	}
	return be.call(func() error {
		return be.launchFlat("mul_f32", dst.Len(), be.ptr(dst), be.ptr(x), be.ptr(y), int64(dst.Len()))
	})
}

func (be *Backend) SumSquares(x kernels.Buffer) (float64, error) {
	c := newCheck("cuda.SumSquares", "")
	c.buf("x", be, x, false, "", -1)
	if c.err != nil || x.Len() == 0 {
		return 0, c.err
	}
	g, b := flat(x.Len())
	g.x = min(g.x, 1024)
	part := make([]float64, g.x)
	err := be.call(func() error {
		p, err := be.scr("sumsq", 2*g.x)
		if err != nil {
			return err
		}
		if err := be.launch("sumsq_partial", g, b, 0, p, be.ptr(x), int64(x.Len())); err != nil {
			return err
		}
		return be.dev.dtoh(unsafe.Pointer(&part[0]), p, 8*len(part))
	})
	sum := 0.0
	for _, v := range part {
		sum += v
	}
	return sum, err
}

// ---- matrix products (cuBLAS) ----

// sgemmRM is the row-major C (m×n) = α·op(A)·op(B) + β·C through column-major cuBLAS:
// Cᵀ = op(B)ᵀ·op(A)ᵀ, so B and A swap places and m, n swap.
func (be *Backend) sgemmRM(c, a, b devPtr, transA, transB bool, m, n, k int, alpha, beta float32) error {
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	return be.dev.sgemm(transB, transA, n, m, k, alpha, b, ldb, a, lda, beta, c, n)
}

func (be *Backend) MatMul(c, a, b kernels.Buffer, transA, transB bool, m, n, k int, accumulate bool) error {
	ch := newCheck("cuda.MatMul", fmt.Sprintf("(M=%d N=%d K=%d)", m, n, k))
	ch.positive("M, N, K", m, n, k)
	ch.buf("c", be, c, false, "M·N", m*n)
	ch.buf("a", be, a, false, "M·K", m*k)
	ch.buf("b", be, b, false, "K·N", k*n)
	if ch.err != nil {
		return ch.err
	}
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	return be.call(func() error { return be.sgemmRM(be.ptr(c), be.ptr(a), be.ptr(b), transA, transB, m, n, k, 1, beta) })
}

func (be *Backend) Linear(y, x, w, bias kernels.Buffer, r, in, out int) error {
	c := newCheck("cuda.Linear", fmt.Sprintf("(R=%d In=%d Out=%d)", r, in, out))
	c.positive("R, In, Out", r, in, out)
	c.buf("y", be, y, false, "R·Out", r*out)
	c.buf("x", be, x, false, "R·In", r*in)
	c.buf("w", be, w, false, "Out·In", out*in)
	c.buf("bias", be, bias, true, "Out", out)
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		if err := be.sgemmRM(be.ptr(y), be.ptr(x), be.ptr(w), false, true, r, out, in, 1, 0); err != nil {
			return err
		}
		if bias == nil {
			return nil
		}
		return be.launchFlat("add_bias_rows", r*out, be.ptr(y), be.ptr(bias), r, out)
	})
}

func (be *Backend) LinearBackward(dx, dw, dbias, dy, x, w kernels.Buffer, r, in, out int) error {
	c := newCheck("cuda.LinearBackward", fmt.Sprintf("(R=%d In=%d Out=%d)", r, in, out))
	c.positive("R, In, Out", r, in, out)
	c.buf("dx", be, dx, true, "R·In", r*in)
	c.buf("dw", be, dw, false, "Out·In", out*in)
	c.buf("dbias", be, dbias, true, "Out", out)
	c.buf("dy", be, dy, false, "R·Out", r*out)
	c.buf("x", be, x, false, "R·In", r*in)
	c.buf("w", be, w, false, "Out·In", out*in)
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		if dx != nil {
			if err := be.sgemmRM(be.ptr(dx), be.ptr(dy), be.ptr(w), false, false, r, in, out, 1, 0); err != nil {
				return err
			}
		}
		if err := be.sgemmRM(be.ptr(dw), be.ptr(dy), be.ptr(x), true, false, out, in, r, 1, 1); err != nil {
			return err
		}
		return be.colSumAcc(be.ptr(dbias), be.ptr(dy), r, out, out)
	})
}

func (be *Backend) Embedding(out kernels.Buffer, ids []int32, table kernels.Buffer, r, v, d int) error {
	c := newCheck("cuda.Embedding", fmt.Sprintf("(R=%d V=%d D=%d)", r, v, d))
	c.positive("R, V, D", r, v, d)
	c.buf("out", be, out, false, "R·D", r*d)
	c.buf("table", be, table, false, "V·D", v*d)
	c.ids("ids", ids, r, v, nil)
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		p, err := be.upInts("ids", ids)
		if err != nil {
			return err
		}
		return be.launchFlat("embedding_fwd", r*d, be.ptr(out), p, be.ptr(table), r, d)
	})
}

func (be *Backend) EmbeddingBackward(dtable, dout kernels.Buffer, ids []int32, r, v, d int) error {
	c := newCheck("cuda.EmbeddingBackward", fmt.Sprintf("(R=%d V=%d D=%d)", r, v, d))
	c.positive("R, V, D", r, v, d)
	c.buf("dtable", be, dtable, false, "V·D", v*d)
	c.buf("dout", be, dout, false, "R·D", r*d)
	c.ids("ids", ids, r, v, nil)
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		p, err := be.upInts("ids", ids)
		if err != nil {
			return err
		}
		return be.launchFlat("embedding_bwd", r*d, be.ptr(dtable), be.ptr(dout), p, r, d)
	})
}

// ---- norms ----

func normCheck(op string, r, d, g int) *check {
	c := newCheck(op, fmt.Sprintf("(R=%d D=%d G=%d)", r, d, g))
	c.positive("R, D, G", r, d, g)
	if c.err == nil && d%g != 0 {
		c.fail("D=%d is not divisible by G=%d", d, g)
	}
	return c
}

func (be *Backend) rms(op string, out, rstd, x, z, w kernels.Buffer, r, d, g int, eps float32) error {
	c := normCheck(op, r, d, g)
	c.buf("out", be, out, false, "R·D", r*d)
	c.buf("rstd", be, rstd, false, "R·G", r*g)
	c.buf("x", be, x, false, "R·D", r*d)
	c.buf("z", be, z, true, "R·D", r*d)
	c.buf("w", be, w, false, "D", d)
	if c.err == nil && !(eps >= 0) {
		c.fail("eps = %v, want ≥ 0", eps)
	}
	if c.err != nil {
		return c.err
	}
	gr, bl := warpRows(r * g)
	return be.call(func() error {
		return be.launch("rms_fwd", gr, bl, 0, be.ptr(out), be.ptr(rstd), be.ptr(x), be.ptr(z), be.ptr(w), r, d, g, eps)
	})
}

func (be *Backend) rmsBack(op string, dx, dz, dw, dout, x, z, w, rstd kernels.Buffer, r, d, g int) error {
	c := normCheck(op, r, d, g)
	c.buf("dx", be, dx, true, "R·D", r*d)
	if z != nil {
		c.buf("dz", be, dz, true, "R·D", r*d)
	}
	c.buf("dw", be, dw, true, "D", d)
	c.buf("dout", be, dout, false, "R·D", r*d)
	c.buf("x", be, x, false, "R·D", r*d)
	c.buf("z", be, z, true, "R·D", r*d)
	c.buf("w", be, w, false, "D", d)
	c.buf("rstd", be, rstd, false, "R·G", r*g)
	if c.err != nil {
		return c.err
	}
	gr, bl := warpRows(r * g)
	return be.call(func() error {
		var part devPtr
		if dw != nil {
			var err error
			if part, err = be.scr("norm.dw", r*d); err != nil {
				return err
			}
		}
		if err := be.launch("rms_bwd", gr, bl, 0, be.ptr(dx), be.ptr(dz), part, be.ptr(dout), be.ptr(x), be.ptr(z),
			be.ptr(w), be.ptr(rstd), r, d, g); err != nil {
			return err
		}
		return be.colSumAcc(be.ptr(dw), part, r, d, d)
	})
}

func (be *Backend) RMSNorm(out, rstd, x, w kernels.Buffer, r, d int, eps float32) error {
	return be.rms("cuda.RMSNorm", out, rstd, x, nil, w, r, d, 1, eps)
}

func (be *Backend) RMSNormBackward(dx, dw, dout, x, w, rstd kernels.Buffer, r, d int) error {
	return be.rmsBack("cuda.RMSNormBackward", dx, nil, dw, dout, x, nil, w, rstd, r, d, 1)
}

func (be *Backend) GatedRMSNorm(out, rstd, x, z, w kernels.Buffer, r, d, g int, eps float32) error {
	if z == nil {
		return fmt.Errorf("cuda.GatedRMSNorm: z is nil (required)")
	}
	return be.rms("cuda.GatedRMSNorm", out, rstd, x, z, w, r, d, g, eps)
}

func (be *Backend) GatedRMSNormBackward(dx, dz, dw, dout, x, z, w, rstd kernels.Buffer, r, d, g int) error {
	if z == nil {
		return fmt.Errorf("cuda.GatedRMSNormBackward: z is nil (required)")
	}
	return be.rmsBack("cuda.GatedRMSNormBackward", dx, dz, dw, dout, x, z, w, rstd, r, d, g)
}

func (be *Backend) norm(op string, out, mean, rstd, x, w, b kernels.Buffer, r, d, g int, eps float32) error {
	c := normCheck(op, r, d, g)
	c.buf("out", be, out, false, "R·D", r*d)
	c.buf("mean", be, mean, false, "R·G", r*g)
	c.buf("rstd", be, rstd, false, "R·G", r*g)
	c.buf("x", be, x, false, "R·D", r*d)
	c.buf("w", be, w, false, "D", d)
	c.buf("b", be, b, true, "D", d)
	if c.err == nil && !(eps >= 0) {
		c.fail("eps = %v, want ≥ 0", eps)
	}
	if c.err != nil {
		return c.err
	}
	gr, bl := warpRows(r * g)
	return be.call(func() error {
		return be.launch("norm_fwd", gr, bl, 0, be.ptr(out), be.ptr(mean), be.ptr(rstd), be.ptr(x), be.ptr(w), be.ptr(b), r, d, g, eps)
	})
}

func (be *Backend) normBack(op string, dx, dw, db, dout, x, w, mean, rstd kernels.Buffer, r, d, g int) error {
	c := normCheck(op, r, d, g)
	c.buf("dx", be, dx, true, "R·D", r*d)
	c.buf("dw", be, dw, true, "D", d)
	c.buf("db", be, db, true, "D", d)
	c.buf("dout", be, dout, false, "R·D", r*d)
	c.buf("x", be, x, false, "R·D", r*d)
	c.buf("w", be, w, false, "D", d)
	c.buf("mean", be, mean, false, "R·G", r*g)
	c.buf("rstd", be, rstd, false, "R·G", r*g)
	if c.err != nil {
		return c.err
	}
	gr, bl := warpRows(r * g)
	return be.call(func() error {
		var part devPtr
		if dw != nil {
			var err error
			if part, err = be.scr("norm.dw", r*d); err != nil {
				return err
			}
		}
		if err := be.launch("norm_bwd", gr, bl, 0, be.ptr(dx), part, be.ptr(dout), be.ptr(x), be.ptr(w), be.ptr(mean),
			be.ptr(rstd), r, d, g); err != nil {
			return err
		}
		if err := be.colSumAcc(be.ptr(dw), part, r, d, d); err != nil {
			return err
		}
		return be.colSumAcc(be.ptr(db), be.ptr(dout), r, d, d)
	})
}

func (be *Backend) LayerNorm(out, mean, rstd, x, w, b kernels.Buffer, r, d int, eps float32) error {
	return be.norm("cuda.LayerNorm", out, mean, rstd, x, w, b, r, d, 1, eps)
}

func (be *Backend) LayerNormBackward(dx, dw, db, dout, x, w, mean, rstd kernels.Buffer, r, d int) error {
	return be.normBack("cuda.LayerNormBackward", dx, dw, db, dout, x, w, mean, rstd, r, d, 1)
}

func (be *Backend) GroupNorm(out, mean, rstd, x, w, b kernels.Buffer, r, d, g int, eps float32) error {
	return be.norm("cuda.GroupNorm", out, mean, rstd, x, w, b, r, d, g, eps)
}

func (be *Backend) GroupNormBackward(dx, dw, db, dout, x, w, mean, rstd kernels.Buffer, r, d, g int) error {
	return be.normBack("cuda.GroupNormBackward", dx, dw, db, dout, x, w, mean, rstd, r, d, g)
}

// ---- activations ----

func (be *Backend) Activate(f kernels.Unary, out, x kernels.Buffer) error {
	k := map[kernels.Unary]string{kernels.SiLU: "silu_fwd", kernels.Softplus: "softplus_fwd"}[f]
	if k == "" {
		return kernels.Unsupported("cuda", fmt.Sprintf("Activate(%v)", f))
	}
	c := newCheck("cuda.Activate("+f.String()+")", "")
	c.buf("x", be, x, false, "", -1)
	if c.err == nil {
		c.buf("out", be, out, false, "len(x)", x.Len())
	}
	if c.err != nil {
		return c.err
	}
	return be.call(func() error { return be.launchFlat(k, x.Len(), be.ptr(out), be.ptr(x), int64(x.Len())) })
}

func (be *Backend) ActivateBackward(f kernels.Unary, dx, dout, x kernels.Buffer) error {
	k := map[kernels.Unary]string{kernels.SiLU: "silu_bwd", kernels.Softplus: "softplus_bwd"}[f]
	if k == "" {
		return kernels.Unsupported("cuda", fmt.Sprintf("ActivateBackward(%v)", f))
	}
	c := newCheck("cuda.ActivateBackward("+f.String()+")", "")
	c.buf("x", be, x, false, "", -1)
	if c.err == nil {
		c.buf("dx", be, dx, false, "len(x)", x.Len())
		c.buf("dout", be, dout, false, "len(x)", x.Len())
	}
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		return be.launchFlat(k, x.Len(), be.ptr(dx), be.ptr(dout), be.ptr(x), int64(x.Len()))
	})
}

func (be *Backend) SwiGLU(out, a, b kernels.Buffer) error {
	c := newCheck("cuda.SwiGLU", "")
	c.buf("a", be, a, false, "", -1)
	if c.err == nil {
		c.buf("out", be, out, false, "len(a)", a.Len())
		c.buf("b", be, b, false, "len(a)", a.Len())
	}
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		return be.launchFlat("swiglu_fwd", a.Len(), be.ptr(out), be.ptr(a), be.ptr(b), int64(a.Len()))
	})
}

func (be *Backend) SwiGLUBackward(da, db, dout, a, b kernels.Buffer) error {
	c := newCheck("cuda.SwiGLUBackward", "")
	c.buf("a", be, a, false, "", -1)
	if c.err == nil {
		n := a.Len()
		c.buf("da", be, da, false, "len(a)", n)
		c.buf("db", be, db, false, "len(a)", n)
		c.buf("dout", be, dout, false, "len(a)", n)
		c.buf("b", be, b, false, "len(a)", n)
	}
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		return be.launchFlat("swiglu_bwd", a.Len(), be.ptr(da), be.ptr(db), be.ptr(dout), be.ptr(a), be.ptr(b), int64(a.Len()))
	})
}

// ---- cross-entropy ----

func (be *Backend) ceCheck(op string, dlogits, lse, logits kernels.Buffer, targets []int32, r, v int, ignore int32) (int, error) {
	c := newCheck(op, fmt.Sprintf("(R=%d V=%d)", r, v))
	c.positive("R, V", r, v)
	if op == "cuda.CrossEntropyBackward" {
		c.buf("dlogits", be, dlogits, false, "R·V", r*v)
	}
	c.buf("lse", be, lse, false, "R", r)
	c.buf("logits", be, logits, false, "R·V", r*v)
	c.ids("targets", targets, r, v, &ignore)
	count := 0
	for _, t := range targets {
		if t != ignore {
			count++
		}
	}
	return count, c.err
}

func (be *Backend) CrossEntropy(lse, logits kernels.Buffer, targets []int32, r, v int, ignore int32) (float64, int, error) {
	count, err := be.ceCheck("cuda.CrossEntropy", nil, lse, logits, targets, r, v, ignore)
	if err != nil {
		return 0, 0, err
	}
	rowloss := make([]float32, r)
	err = be.call(func() error {
		tp, err := be.upInts("targets", targets)
		if err != nil {
			return err
		}
		rl, err := be.scr("ce.rowloss", r)
		if err != nil {
			return err
		}
		if err := be.launch("ce_fwd", dim3{r, 1, 1}, dim3{256, 1, 1}, 0, be.ptr(lse), rl, be.ptr(logits), tp, r, v, ignore); err != nil {
			return err
		}
		return be.dev.dtoh(unsafe.Pointer(&rowloss[0]), rl, 4*r)
	})
	if err != nil || count == 0 {
		return 0, 0, err
	}
	sum := 0.0
	for _, l := range rowloss {
		sum += float64(l)
	}
	return sum / float64(count), count, nil
}

func (be *Backend) CrossEntropyBackward(dlogits kernels.Buffer, dloss float32, logits kernels.Buffer, targets []int32, lse kernels.Buffer, r, v int, ignore int32) error {
	count, err := be.ceCheck("cuda.CrossEntropyBackward", dlogits, lse, logits, targets, r, v, ignore)
	if err != nil {
		return err
	}
	scale := float32(0)
	if count > 0 {
		scale = float32(float64(dloss) / float64(count))
	}
	return be.call(func() error {
		tp, err := be.upInts("targets", targets)
		if err != nil {
			return err
		}
		return be.launch("ce_bwd", dim3{r, 1, 1}, dim3{256, 1, 1}, 0, be.ptr(dlogits), be.ptr(logits), tp, be.ptr(lse), r, v, ignore, scale)
	})
}

// ---- AdamW ----

func (be *Backend) AdamW(p, m, v, g kernels.Buffer, step int, c ops.AdamWConfig) error {
	ch := newCheck("cuda.AdamW", "")
	ch.buf("p", be, p, false, "", -1)
	if ch.err == nil {
		n := p.Len()
		ch.buf("m", be, m, false, "len(p)", n)
		ch.buf("v", be, v, false, "len(p)", n)
		ch.buf("g", be, g, false, "len(p)", n)
	}
	if ch.err == nil && step < 1 {
		ch.fail("step = %d, want ≥ 1 (1 for the first step)", step)
	}
	if ch.err == nil && (!(c.LR >= 0) || !(c.Beta1 >= 0) || !(c.Beta1 < 1) || !(c.Beta2 >= 0) || !(c.Beta2 < 1) || !(c.Eps > 0) || !(c.WeightDecay >= 0)) {
		ch.fail("config %+v: want LR, WeightDecay ≥ 0, 0 ≤ Beta1, Beta2 < 1, Eps > 0", c)
	}
	if ch.err != nil {
		return ch.err
	}
	decay := float32(1 - c.LR*c.WeightDecay)
	stepSize := float32(c.LR / (1 - math.Pow(c.Beta1, float64(step))))
	invBC2 := float32(1 / math.Sqrt(1-math.Pow(c.Beta2, float64(step))))
	n := p.Len()
	return be.call(func() error {
		return be.launchFlat("adamw_f32", n, be.ptr(p), be.ptr(m), be.ptr(v), be.ptr(g), int64(n), float32(c.Beta1), float32(c.Beta2),
			decay, stepSize, invBC2, float32(c.Eps))
	})
}

// ---- causal conv1d ----

func (be *Backend) convCheck(op string, d selectivescan.ConvDims) *check {
	c := newCheck(op, d.String())
	c.positive("B, L, D, W", d.B, d.L, d.D, d.W)
	if c.err == nil && d.W > maxConvW {
		c.fail("W=%d is above the CUDA kernels' limit %d", d.W, maxConvW)
	}
	return c
}

// convForward runs the conv and writes the new state through a scratch (stateOut may alias state0).
func (be *Backend) convForward(out, stateOut, x, w, bias, state0 devPtr, silu bool, d selectivescan.ConvDims) error {
	ns := d.B * (d.W - 1) * d.D
	var tmp devPtr
	if stateOut != 0 && ns > 0 {
		var err error
		if tmp, err = be.scr("conv.state", ns); err != nil {
			return err
		}
		if err := be.launchFlat("conv_state", ns, tmp, x, state0, d.B, d.L, d.D, d.W); err != nil {
			return err
		}
	}
	if err := be.launchFlat("conv_fwd", d.B*d.L*d.D, out, x, w, bias, state0, silu, d.B, d.L, d.D, d.W); err != nil {
		return err
	}
	if tmp != 0 {
		return be.dev.dtod(stateOut, tmp, 4*ns)
	}
	return nil
}

func (be *Backend) Conv1D(out, stateOut, x, w, bias, state0 kernels.Buffer, silu bool, d selectivescan.ConvDims) error {
	c := be.convCheck("cuda.Conv1D", d)
	bld, bsd := d.B*d.L*d.D, d.B*(d.W-1)*d.D
	c.buf("out", be, out, false, "B·L·D", bld)
	c.buf("stateOut", be, stateOut, true, "B·(W−1)·D", bsd)
	c.buf("x", be, x, false, "B·L·D", bld)
	c.buf("w", be, w, false, "D·W", d.D*d.W)
	c.buf("bias", be, bias, true, "D", d.D)
	c.buf("state0", be, state0, true, "B·(W−1)·D", bsd)
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		return be.convForward(be.ptr(out), be.ptr(stateOut), be.ptr(x), be.ptr(w), be.ptr(bias), be.ptr(state0), silu, d)
	})
}

func (be *Backend) Conv1DStep(state, y, x, w, bias kernels.Buffer, silu bool, d selectivescan.ConvDims) error {
	d.L = 1
	c := be.convCheck("cuda.Conv1DStep", d)
	c.buf("state", be, state, false, "B·(W−1)·D", d.B*(d.W-1)*d.D)
	c.buf("y", be, y, false, "B·D", d.B*d.D)
	c.buf("x", be, x, false, "B·D", d.B*d.D)
	c.buf("w", be, w, false, "D·W", d.D*d.W)
	c.buf("bias", be, bias, true, "D", d.D)
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		return be.convForward(be.ptr(y), be.ptr(state), be.ptr(x), be.ptr(w), be.ptr(bias), be.ptr(state), silu, d)
	})
}

func (be *Backend) Conv1DBackward(dx, dw, dbias, dstate0, dout, dstateOut, x, w, bias, state0 kernels.Buffer, silu bool, d selectivescan.ConvDims) error {
	c := be.convCheck("cuda.Conv1DBackward", d)
	bld, bsd := d.B*d.L*d.D, d.B*(d.W-1)*d.D
	c.buf("dx", be, dx, true, "B·L·D", bld)
	c.buf("dw", be, dw, true, "D·W", d.D*d.W)
	c.buf("dbias", be, dbias, true, "D", d.D)
	c.buf("dstate0", be, dstate0, true, "B·(W−1)·D", bsd)
	c.buf("dout", be, dout, false, "B·L·D", bld)
	c.buf("dstateOut", be, dstateOut, true, "B·(W−1)·D", bsd)
	c.buf("x", be, x, false, "B·L·D", bld)
	c.buf("w", be, w, false, "D·W", d.D*d.W)
	c.buf("bias", be, bias, true, "D", d.D)
	c.buf("state0", be, state0, true, "B·(W−1)·D", bsd)
	if c.err != nil {
		return c.err
	}
	return be.call(func() error {
		dpre, err := be.scr("conv.dpre", bld)
		if err != nil {
			return err
		}
		pw, pb, ps0, pso := be.ptr(w), be.ptr(bias), be.ptr(state0), be.ptr(dstateOut)
		if err := be.launchFlat("conv_dpre", bld, dpre, be.ptr(dout), be.ptr(x), pw, pb, ps0, silu, d.B, d.L, d.D, d.W); err != nil {
			return err
		}
		if dx != nil {
			if err := be.launchFlat("conv_dx", bld, be.ptr(dx), dpre, pso, pw, d.B, d.L, d.D, d.W); err != nil {
				return err
			}
		}
		if dstate0 != nil && bsd > 0 {
			if err := be.launchFlat("conv_ds0", bsd, be.ptr(dstate0), dpre, pso, pw, d.B, d.L, d.D, d.W); err != nil {
				return err
			}
		}
		if dw == nil && dbias == nil {
			return nil
		}
		stripes := max(1, min((d.B*d.L+63)/64, 256))
		ld := d.D * (d.W + 1)
		part, err := be.scr("conv.part", stripes*ld)
		if err != nil {
			return err
		}
		if err := be.launch("conv_dw_partial", dim3{(d.D + 31) / 32, stripes, 1}, dim3{32, 8, 1}, 0, part, dpre, be.ptr(x), ps0,
			d.B, d.L, d.D, d.W); err != nil {
			return err
		}
		if err := be.colSumAcc(be.ptr(dw), part, stripes, d.D*d.W, ld); err != nil {
			return err
		}
		return be.colSumAcc(be.ptr(dbias), offset(part, d.D*d.W), stripes, d.D, ld)
	})
}
