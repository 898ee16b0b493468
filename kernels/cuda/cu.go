//go:build cuda

package cuda

// The device on gorgonia.org/cu (CUDA driver API) and gorgonia.org/cu/blas (cuBLAS). We use the
// device's primary context (cuDevicePrimaryCtxRetain), never cuCtxCreate, whose signature changed
// in CUDA 13 (see compat/cuda13_compat.h for building gorgonia.org/cu itself there).
//
// Note: gorgonia.org/cu calls cuInit in its package init and exits the process when it fails
// (no driver, or a driver without any device). A binary built with -tags cuda therefore needs
// the driver library at link time and a working driver at start; New reports "no CUDA device
// found" when cuInit succeeds but no device is visible.

import (
	"embed"
	"fmt"
	"os"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/hybridlab/hybrid/kernels"
	"gonum.org/v1/gonum/blas"
	"gorgonia.org/cu"
	cublas "gorgonia.org/cu/blas"
)

//go:embed ptx/*.ptx
var ptxFS embed.FS

func init() {
	kernels.Register("cuda", func() (kernels.Backend, error) { return New() })
}

// New opens device HYBRID_CUDA_DEVICE (default 0) and loads the kernels for its architecture.
func New() (*Backend, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("%w (cuDeviceGetCount: %v)", errNoDevice, err)
	}
	if n == 0 {
		return nil, errNoDevice
	}
	ord := 0
	if s := os.Getenv("HYBRID_CUDA_DEVICE"); s != "" {
		if ord, err = strconv.Atoi(s); err != nil || ord < 0 || ord >= n {
			return nil, fmt.Errorf("cuda: HYBRID_CUDA_DEVICE=%q, want an ordinal in [0, %d)", s, n)
		}
	}
	// The context is current per OS thread: keep this goroutine on one while loading.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d, err := openDevice(ord)
	if err != nil {
		return nil, err
	}
	return newBackend(d), nil
}

type cuDevice struct {
	dev   cu.Device
	ctx   cu.CUContext
	desc  string
	fns   map[string]cu.Function
	blas  *cublas.Standard
	major int
	minor int
}

var entryRE = regexp.MustCompile(`(?m)^\.(?:visible )?\.entry ([A-Za-z_][A-Za-z0-9_]*)\(`)

func openDevice(ord int) (*cuDevice, error) {
	dev, err := cu.GetDevice(ord)
	if err != nil {
		return nil, fmt.Errorf("cuda: device %d: %w", ord, err)
	}
	major, minor, err := dev.ComputeCapability()
	if err != nil {
		return nil, fmt.Errorf("cuda: device %d compute capability: %w", ord, err)
	}
	if major < 8 {
		return nil, fmt.Errorf("cuda: device %d has compute capability %d.%d; the kernels need 8.0 or newer", ord, major, minor)
	}
	name, _ := dev.Name()
	ctx, err := dev.RetainPrimaryCtx()
	if err != nil {
		return nil, fmt.Errorf("cuda: device %d primary context: %w", ord, err)
	}
	d := &cuDevice{dev: dev, ctx: ctx, fns: map[string]cu.Function{}, major: major, minor: minor}
	d.desc = fmt.Sprintf("%s (sm_%d%d)", name, major, minor)
	if err := d.enter(); err != nil {
		return nil, err
	}
	arch := "sm80"
	if major >= 9 {
		arch = "sm90"
	}
	files, err := ptxFS.ReadDir("ptx")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), "_"+arch+".ptx") {
			continue
		}
		src, err := ptxFS.ReadFile(path.Join("ptx", f.Name()))
		if err != nil {
			return nil, err
		}
		mod, err := cu.LoadData(string(src))
		if err != nil {
			return nil, fmt.Errorf("cuda: loading %s: %w", f.Name(), err)
		}
		for _, m := range entryRE.FindAllStringSubmatch(string(src), -1) {
			fn, err := mod.Function(m[1])
			if err != nil {
				return nil, fmt.Errorf("cuda: kernel %s in %s: %w", m[1], f.Name(), err)
			}
			d.fns[m[1]] = fn
		}
	}
	if len(d.fns) == 0 {
		return nil, fmt.Errorf("cuda: no %s kernels embedded (run go generate ./kernels/cuda)", arch)
	}
	if d.blas, err = newBLAS(); err != nil {
		return nil, err
	}
	d.desc += ", BLAS: cuBLAS"
	return d, nil
}

// newBLAS creates the cuBLAS handle (cublas.New panics on failure).
func newBLAS() (b *cublas.Standard, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cuda: cublasCreate: %v", r)
		}
	}()
	return cublas.New(), nil
}

func (d *cuDevice) name() string { return d.desc }

func (d *cuDevice) enter() error {
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return fmt.Errorf("cuda: cuCtxSetCurrent: %w", err)
	}
	return nil
}

func (d *cuDevice) exit() {}

func (d *cuDevice) alloc(bytes int) (devPtr, error) {
	p, err := cu.MemAlloc(int64(bytes))
	return devPtr(p), err
}

func (d *cuDevice) free(p devPtr) error { return cu.MemFree(cu.DevicePtr(p)) }

func (d *cuDevice) memset32(p devPtr, v uint32, n int) error {
	return cu.MemsetD32(cu.DevicePtr(p), v, int64(n))
}

func (d *cuDevice) htod(dst devPtr, src unsafe.Pointer, bytes int) error {
	return cu.MemcpyHtoD(cu.DevicePtr(dst), src, int64(bytes))
}

func (d *cuDevice) dtoh(dst unsafe.Pointer, src devPtr, bytes int) error {
	return cu.MemcpyDtoH(dst, cu.DevicePtr(src), int64(bytes))
}

func (d *cuDevice) dtod(dst, src devPtr, bytes int) error {
	return cu.MemcpyDtoD(cu.DevicePtr(dst), cu.DevicePtr(src), int64(bytes))
}

func (d *cuDevice) launch(k string, grid, block dim3, shmem int, args []uint64, _ string) error {
	fn, ok := d.fns[k]
	if !ok {
		return fmt.Errorf("kernel %s is not in the embedded PTX", k)
	}
	ps := make([]unsafe.Pointer, len(args))
	for i := range args {
		ps[i] = unsafe.Pointer(&args[i])
	}
	return fn.Launch(grid.x, grid.y, grid.z, block.x, block.y, block.z, shmem, cu.NoStream, ps)
}

// devSlice views device memory as a []float32 for cuBLAS's Go signature; it is never read on the host.
func devSlice(p devPtr) []float32 {
	return unsafe.Slice((*float32)(*(*unsafe.Pointer)(unsafe.Pointer(&p))), 1)
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

func (d *cuDevice) sgemm(tA, tB bool, m, n, k int, alpha float32, a devPtr, lda int, b devPtr, ldb int, beta float32, c devPtr, ldc int) error {
	d.blas.Sgemm(trans(tA), trans(tB), m, n, k, alpha, devSlice(a), lda, devSlice(b), ldb, beta, devSlice(c), ldc)
	if err := d.blas.Err(); err != nil {
		return fmt.Errorf("cublasSgemm(m=%d n=%d k=%d): %w", m, n, k, err)
	}
	return nil
}

func (d *cuDevice) sync() error { return cu.Synchronize() }
