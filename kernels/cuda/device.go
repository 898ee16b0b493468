package cuda

// The device seam: everything the backend needs from a GPU, as a small interface. The cuda-tagged
// file cu.go implements it on gorgonia.org/cu (driver API, primary context, cuBLAS); the rest of
// the package (validation, launch geometry, scratch, the Ops) is plain Go that builds and is
// tested without CUDA, against a recording fake (backend_test.go).

import (
	"fmt"
	"math"
	"unsafe"
)

// devPtr is a device address (CUdeviceptr).
type devPtr uintptr

// dim3 is a launch grid or block size.
type dim3 struct{ x, y, z int }

// device is one GPU with a current context, loaded kernels and a BLAS handle. Calls happen between
// enter and exit on one locked OS thread (the backend serialises them); launches are asynchronous
// on the default stream, copies to the host synchronise.
type device interface {
	name() string
	enter() error
	exit()
	alloc(bytes int) (devPtr, error)
	free(p devPtr) error
	memset32(p devPtr, v uint32, n int) error
	htod(dst devPtr, src unsafe.Pointer, bytes int) error
	dtoh(dst unsafe.Pointer, src devPtr, bytes int) error
	dtod(dst, src devPtr, bytes int) error
	// launch runs kernel k; args are the kernel's parameters, each widened to 64 bits
	// (int → int32 bits, float32 → its bits, pointers as addresses); sig has one letter per
	// parameter: p pointer, l 64-bit int, i 32-bit int, f float32 (checked against the PTX
	// by the tests).
	launch(k string, grid, block dim3, shmem int, args []uint64, sig string) error
	// sgemm is column-major cublasSgemm.
	sgemm(tA, tB bool, m, n, k int, alpha float32, a devPtr, lda int, b devPtr, ldb int, beta float32, c devPtr, ldc int) error
	sync() error
}

// kernelArgs widens Go values to kernel parameters: int and int32 → 32-bit int, bool → 32-bit
// 0/1, float32 → float bits, int64 → 64-bit (the kernels' i64 sizes), devPtr → address.
func kernelArgs(args ...any) ([]uint64, string, error) {
	out := make([]uint64, len(args))
	sig := make([]byte, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case int:
			if v < math.MinInt32 || v > math.MaxInt32 {
				return nil, "", fmt.Errorf("kernel argument %d = %d does not fit in int32", i, v)
			}
			out[i], sig[i] = uint64(uint32(int32(v))), 'i'
		case int32:
			out[i], sig[i] = uint64(uint32(v)), 'i'
		case bool:
			sig[i] = 'i'
			if v {
				out[i] = 1
			}
		case float32:
			out[i], sig[i] = uint64(math.Float32bits(v)), 'f'
		case int64:
			out[i], sig[i] = uint64(v), 'l'
		case devPtr:
			out[i], sig[i] = uint64(v), 'p'
		default:
			return nil, "", fmt.Errorf("kernel argument %d has unsupported type %T", i, a)
		}
	}
	return out, string(sig), nil
}

// ptrOf is the address of a non-empty host slice's first element.
func ptrOf(s []float32) unsafe.Pointer { return unsafe.Pointer(&s[0]) }
