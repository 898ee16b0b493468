//go:build cudaemu && !cuda

package cuda

// The CPU emulator device (build tag cudaemu, cgo, a C++20 compiler): the kernel sources compiled
// for the host (emu_k_*.cc) run on one OS thread per CUDA thread, device memory is host memory,
// cuBLAS is a plain column-major loop. It runs the real kernels and the real backend code, so
//
//	go test -tags cudaemu ./kernels/cuda/
//
// checks every kernel's math against the float64 references (the shared conformance suite)
// on a machine without a GPU. It registers the backend "cuda-emu". Slow; small shapes only.

/*
#cgo CXXFLAGS: -std=c++20 -DHYBRID_EMU -O1 -Wno-unknown-pragmas -Wno-unused-function -Wno-unused-variable
#cgo LDFLAGS: -pthread -lstdc++
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
int emu_launch(const char *name, int gx, int gy, int gz, int bx, int by, int bz, int shmem, const uint64_t *args, char *err, int errlen);
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/hybridlab/hybrid/kernels"
)

func init() {
	kernels.Register("cuda-emu", func() (kernels.Backend, error) { return NewEmu(), nil })
}

// NewEmu returns the backend on the CPU emulator.
func NewEmu() *Backend { return newBackend(&emuDevice{live: map[devPtr]int{}}) }

type emuDevice struct{ live map[devPtr]int }

func hostPtr(p devPtr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

func (e *emuDevice) name() string { return "CPU emulator (kernels compiled for the host)" }
func (e *emuDevice) enter() error { return nil }
func (e *emuDevice) exit()        {}
func (e *emuDevice) sync() error  { return nil }

func (e *emuDevice) alloc(bytes int) (devPtr, error) {
	p := C.calloc(C.size_t(bytes+16), 1)
	if p == nil {
		return 0, errors.New("out of host memory")
	}
	d := devPtr(uintptr(p))
	e.live[d] = bytes
	return d, nil
}

func (e *emuDevice) free(p devPtr) error {
	if _, ok := e.live[p]; !ok {
		return fmt.Errorf("free of %#x: not allocated", p)
	}
	delete(e.live, p)
	C.free(hostPtr(p))
	return nil
}

func (e *emuDevice) memset32(p devPtr, v uint32, n int) error {
	s := unsafe.Slice((*uint32)(hostPtr(p)), n)
	for i := range s {
		s[i] = v
	}
	return nil
}

func (e *emuDevice) htod(dst devPtr, src unsafe.Pointer, bytes int) error {
	C.memmove(hostPtr(dst), src, C.size_t(bytes))
	return nil
}

func (e *emuDevice) dtoh(dst unsafe.Pointer, src devPtr, bytes int) error {
	C.memmove(dst, hostPtr(src), C.size_t(bytes))
	return nil
}

func (e *emuDevice) dtod(dst, src devPtr, bytes int) error {
	C.memmove(hostPtr(dst), hostPtr(src), C.size_t(bytes))
	return nil
}

func (e *emuDevice) launch(k string, grid, block dim3, shmem int, args []uint64, _ string) error {
	ck := C.CString(k)
	defer C.free(unsafe.Pointer(ck))
	var errBuf [256]C.char
	a := (*C.uint64_t)(C.calloc(C.size_t(len(args)+1), 8))
	defer C.free(unsafe.Pointer(a))
	copy(unsafe.Slice((*uint64)(unsafe.Pointer(a)), len(args)), args)
	if C.emu_launch(ck, C.int(grid.x), C.int(grid.y), C.int(grid.z), C.int(block.x), C.int(block.y), C.int(block.z),
		C.int(shmem), a, &errBuf[0], C.int(len(errBuf))) != 0 {
		return errors.New(C.GoString(&errBuf[0]))
	}
	return nil
}

// sgemm is column-major C = α·op(A)·op(B) + β·C in float64 accumulation.
func (e *emuDevice) sgemm(tA, tB bool, m, n, k int, alpha float32, a devPtr, lda int, b devPtr, ldb int, beta float32, c devPtr, ldc int) error {
	at := func(p devPtr, ld, i, j int, tr bool) float32 { // op(M)[i, j]
		if tr {
			i, j = j, i
		}
		return *(*float32)(hostPtr(p + devPtr(4*(j*ld+i))))
	}
	for j := range n {
		for i := range m {
			s := 0.0
			for l := range k {
				s += float64(at(a, lda, i, l, tA)) * float64(at(b, ldb, l, j, tB))
			}
			cp := (*float32)(hostPtr(c + devPtr(4*(j*ldc+i))))
			v := alpha * float32(s)
			if beta != 0 {
				v += beta * *cp
			}
			*cp = v
		}
	}
	return nil
}
