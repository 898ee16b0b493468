// Package kernels is the backend seam: tensor storage lives in a Buffer owned by a Backend,
// and every op the layers need is a Backend method. The CPU backend (kernels/cpu) is always
// present; the CUDA backend registers itself when built with -tags cuda and a device is found.
// Layers above this package never see where the numbers live, so a model moves between
// backends without code changes.
//
// Conventions follow the kernel packages: outputs first, then inputs, then saved tensors,
// then sizes; parameter gradients accumulate, activation gradients are assigned.
// A backend that lacks an op returns an error wrapping ErrUnsupported rather than panicking.
package kernels

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
)

// ErrUnsupported is wrapped by errors for ops a backend does not implement.
var ErrUnsupported = errors.New("op not supported by this backend")

// Buffer is float32 storage owned by a backend.
type Buffer interface {
	Len() int
}

// Backend owns memory and runs ops on it.
type Backend interface {
	Name() string
	Memory
	Ops
}

// Memory allocates and moves data.
type Memory interface {
	// Alloc returns a zero-filled buffer of n float32s.
	Alloc(n int) Buffer
	// Upload copies host data into dst (len(src) == dst.Len()).
	Upload(dst Buffer, src []float32) error
	// Download copies src into host memory (len(dst) == src.Len()).
	Download(dst []float32, src Buffer) error
	// Fill sets every element of dst to v.
	Fill(dst Buffer, v float32)
	// CopyRows copies an n-column block from each of rows rows: dst[r, dOff:dOff+n] = src[r, sOff:sOff+n],
	// with row strides dCols and sCols. Splitting and concatenating along the last axis use it.
	CopyRows(dst Buffer, dCols, dOff int, src Buffer, sCols, sOff, rows, n int, accumulate bool) error
}

// Host returns the host slice behind b when the backend stores it in host memory (the CPU
// backend), for code that must read values cheaply (metrics, sampling).
func Host(b Buffer) ([]float32, bool) {
	if h, ok := b.(interface{ Host() []float32 }); ok {
		return h.Host(), true
	}
	return nil, false
}

// Factory creates a backend, or says why it cannot (no device found).
type Factory func() (Backend, error)

var (
	mu        sync.Mutex
	factories = map[string]Factory{}
	instances = map[string]Backend{}
)

// Register makes a backend available by name. Backends call it from init.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	factories[name] = f
}

// Names lists the registered backends.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	var ns []string
	for n := range factories {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Get returns the named backend, creating it once.
func Get(name string) (Backend, error) {
	mu.Lock()
	defer mu.Unlock()
	if b, ok := instances[name]; ok {
		return b, nil
	}
	f, ok := factories[name]
	if !ok {
		var ns []string
		for n := range factories {
			ns = append(ns, n)
		}
		sort.Strings(ns)
		if name == "cuda" {
			return nil, fmt.Errorf("kernels: backend %q is not built in (rebuild with -tags cuda); available: %v", name, ns)
		}
		return nil, fmt.Errorf("kernels: unknown backend %q; available: %v", name, ns)
	}
	b, err := f()
	if err != nil {
		return nil, fmt.Errorf("kernels: backend %q: %w", name, err)
	}
	instances[name] = b
	return b, nil
}

// Default returns the backend named by HYBRID_BACKEND, or "cpu".
func Default() (Backend, error) {
	name := os.Getenv("HYBRID_BACKEND")
	if name == "" {
		name = "cpu"
	}
	return Get(name)
}

// Unsupported returns an error for an op a backend lacks.
func Unsupported(backend, op string) error {
	return fmt.Errorf("%s: %s: %w", backend, op, ErrUnsupported)
}
