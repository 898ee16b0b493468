// Package openblas makes OpenBLAS the float32 BLAS of the process when the shared library is
// installed, with no cgo: the library is opened at run time with purego. Everything but
// Sgemm falls through to gonum's pure-Go implementation, which is always there.
//
// One install step turns the fast path on (Debian/Ubuntu):
//
//	apt-get install libopenblas0
//
// Set HYBRID_BLAS=gonum to keep the pure-Go path even when OpenBLAS is present.
package openblas

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/hybridlab/hybrid/internal/par"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum's pure-Go BLAS with the level-3 products replaced by OpenBLAS.
type Implementation struct {
	gonum.Implementation
}

var _ blas.Float32 = Implementation{}

// CBLAS enum values.
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

var (
	loadOnce  sync.Once
	loadErr   error
	libName   string
	sgemm     func(order, ta, tb, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	sgemmF    uintptr // the Fortran sgemm_ (every argument by pointer), 0 when absent
	setThread func(n int32)
	getConfig func() string
)

// candidates are the names the library goes by across distributions.
var candidates = []string{"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libopenblas64_.so.0", "libopenblas.dylib"}

// Load opens OpenBLAS once; later calls return the first result.
func Load() error {
	loadOnce.Do(func() {
		// OpenBLAS sizes its thread pool when the library is opened; idle pool threads spin and
		// steal a core from Go's workers, so keep it at one unless the user asked otherwise.
		if os.Getenv("OPENBLAS_NUM_THREADS") == "" {
			os.Setenv("OPENBLAS_NUM_THREADS", "1")
		}
		var errs []error
		for _, name := range candidates {
			lib, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			purego.RegisterLibFunc(&sgemm, lib, "cblas_sgemm")
			if sym, err := purego.Dlsym(lib, "sgemm_"); err == nil && sym != 0 {
				sgemmF = sym
			}
			if sym, err := purego.Dlsym(lib, "openblas_set_num_threads"); err == nil && sym != 0 {
				purego.RegisterFunc(&setThread, sym)
			}
			if sym, err := purego.Dlsym(lib, "openblas_get_config"); err == nil && sym != 0 {
				purego.RegisterFunc(&getConfig, sym)
			}
			libName = name
			if setThread != nil {
				setThread(1) // parallelism belongs to the caller's goroutines (see Sgemm)
			}
			return
		}
		loadErr = fmt.Errorf("openblas: library not found (install libopenblas0): %w", errors.Join(errs...))
	})
	return loadErr
}

// Use loads OpenBLAS and installs it as the blas32 implementation, unless HYBRID_BLAS=gonum.
// It reports which implementation is in use.
func Use() (string, error) {
	if os.Getenv("HYBRID_BLAS") == "gonum" {
		return "gonum (HYBRID_BLAS=gonum)", nil
	}
	if err := Load(); err != nil {
		return "gonum", err
	}
	blas32.Use(Implementation{})
	return Name(), nil
}

// Name describes the loaded library, or "gonum" when none is loaded.
func Name() string {
	if sgemm == nil {
		return "gonum"
	}
	s := "openblas (" + libName + ")"
	if getConfig != nil {
		s = "openblas " + getConfig()
	}
	return s
}

// SetThreads sets OpenBLAS's own thread count (no-op when not loaded). Load sets it to 1.
func SetThreads(n int) {
	if setThread != nil {
		setThread(int32(n))
	}
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, as blas.Float32 does.
func (impl Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	// Let gonum validate arguments and handle degenerate cases, so errors read the same on both paths.
	if k == 0 || alpha == 0 || sgemm == nil || !validGemm(tA, tB, m, n, k, a, lda, b, ldb, c, ldc) {
		impl.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// OpenBLAS runs single-threaded (see Load); large products are split into row or column
	// blocks across goroutines here, so kernels that already run one GEMM per worker do not
	// oversubscribe the cores, and the project has one owner of parallelism: Go.
	w := par.Workers()
	if w == 1 || par.Busy() || float64(m)*float64(n)*float64(k) < parallelFlops {
		call(tA, tB, m, n, k, alpha, a, 0, lda, b, 0, ldb, beta, c, 0, ldc)
		return
	}
	if m >= n {
		par.For(m, max(16, m/(4*w)), func(lo, hi int) {
			ao := lo * lda // rows of op(A) are rows of A ...
			if tA != blas.NoTrans {
				ao = lo // ... or columns of A
			}
			call(tA, tB, hi-lo, n, k, alpha, a, ao, lda, b, 0, ldb, beta, c, lo*ldc, ldc)
		})
		return
	}
	par.For(n, max(16, n/(4*w)), func(lo, hi int) {
		bo := lo // columns of op(B) are columns of B ...
		if tB != blas.NoTrans {
			bo = lo * ldb // ... or rows of B
		}
		call(tA, tB, m, hi-lo, k, alpha, a, 0, lda, b, bo, ldb, beta, c, lo, ldc)
	})
}

// gemmArgs holds the by-pointer scalar arguments of one sgemm_ call. Integers are stored as
// int64: little-endian, so a 32-bit (LP64) or 64-bit (ILP64) BLAS reads the same value.
type gemmArgs struct {
	ta, tb                 [8]byte
	m, n, k, lda, ldb, ldc int64
	alpha, beta            float32
	pa, pb, pc             unsafe.Pointer // the matrices: held here, they are on the heap (escape analysis) and alive
	args                   [13]uintptr    // SyscallN's variadic slice, here so that it costs no allocation
}

// gemmPool recycles gemmArgs: calls come from several goroutines at once, and a pooled block is
// on the heap (it does not move while C reads it) yet costs no allocation per call.
var gemmPool = sync.Pool{New: func() any { return new(gemmArgs) }}

// call runs one row-major product on a[ao:], b[bo:], c[co:] through OpenBLAS. The Fortran sgemm_
// (all arguments by pointer, so purego.SyscallN passes them without reflection: no garbage per
// call) computes the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, which is the row-major C = op(A)·op(B).
// Without sgemm_ it uses cblas_sgemm through the registered closure (which allocates a little).
func call(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, ao, lda int, b []float32, bo, ldb int, beta float32, c []float32, co, ldc int) {
	if sgemmF == 0 {
		sgemm(cblasRowMajor, trans(tA), trans(tB), int32(m), int32(n), int32(k), alpha, &a[ao], int32(lda), &b[bo], int32(ldb), beta, &c[co], int32(ldc))
		return
	}
	p := gemmPool.Get().(*gemmArgs)
	p.ta[0], p.tb[0] = fortranTrans(tA), fortranTrans(tB)
	p.m, p.n, p.k, p.lda, p.ldb, p.ldc = int64(m), int64(n), int64(k), int64(lda), int64(ldb), int64(ldc)
	p.alpha, p.beta = alpha, beta
	p.pa, p.pb, p.pc = unsafe.Pointer(&a[ao]), unsafe.Pointer(&b[bo]), unsafe.Pointer(&c[co])
	p.args = [13]uintptr{
		uintptr(unsafe.Pointer(&p.tb[0])), uintptr(unsafe.Pointer(&p.ta[0])),
		uintptr(unsafe.Pointer(&p.n)), uintptr(unsafe.Pointer(&p.m)), uintptr(unsafe.Pointer(&p.k)),
		uintptr(unsafe.Pointer(&p.alpha)),
		uintptr(p.pb), uintptr(unsafe.Pointer(&p.ldb)),
		uintptr(p.pa), uintptr(unsafe.Pointer(&p.lda)),
		uintptr(unsafe.Pointer(&p.beta)),
		uintptr(p.pc), uintptr(unsafe.Pointer(&p.ldc)),
	}
	purego.SyscallN(sgemmF, p.args[:]...)
	runtime.KeepAlive(p)
	p.pa, p.pb, p.pc = nil, nil, nil // do not keep the matrices alive from the pool
	gemmPool.Put(p)
}

func fortranTrans(t blas.Transpose) byte {
	if t == blas.NoTrans {
		return 'N'
	}
	return 'T'
}

// parallelFlops is the multiply-add count above which a product is split across goroutines.
const parallelFlops = 1 << 21

func trans(t blas.Transpose) int32 {
	if t == blas.NoTrans {
		return cblasNoTrans
	}
	return cblasTrans
}

// validGemm checks strides and slice lengths exactly as a row-major GEMM reads them.
func validGemm(tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) bool {
	ar, ac := m, k
	if tA != blas.NoTrans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB != blas.NoTrans {
		br, bc = n, k
	}
	return lda >= max(1, ac) && ldb >= max(1, bc) && ldc >= max(1, n) &&
		len(a) >= lda*(ar-1)+ac && len(b) >= ldb*(br-1)+bc && len(c) >= ldc*(m-1)+n
}
