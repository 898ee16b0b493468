// Package par runs loops over index ranges on all cores. Kernels split their outermost
// independent dimension (batch×heads, batch×channel blocks) with For.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// active counts loops currently fanned out across goroutines.
var active atomic.Int32

// Busy reports whether a For or Each is running on several goroutines right now. Code that
// could split its own work (a large GEMM) stays serial inside such a loop, so the cores are
// not oversubscribed by nested fan-out.
func Busy() bool { return active.Load() > 0 }

// Workers is the number of goroutines For uses; it follows GOMAXPROCS.
func Workers() int { return runtime.GOMAXPROCS(0) }

// For calls fn on disjoint ranges [lo, hi) covering [0, n), at most Workers() at a time,
// each range at least grain long (grain < 1 means 1). It runs inline when there is one range.
func For(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	w := min(Workers(), (n+grain-1)/grain)
	if w <= 1 {
		fn(0, n)
		return
	}
	active.Add(1)
	defer active.Add(-1)
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := i*n/w, (i+1)*n/w
		if lo == hi {
			continue
		}
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// Each calls fn(i) for every i in [0, n), balancing items across workers dynamically;
// use it when items have uneven cost (causal attention rows, ragged chunks).
func Each(n int, fn func(worker, i int)) {
	if n <= 0 {
		return
	}
	w := min(Workers(), n)
	if w <= 1 {
		for i := range n {
			fn(0, i)
		}
		return
	}
	active.Add(1)
	defer active.Add(-1)
	var next sync.Mutex
	k := 0
	var wg sync.WaitGroup
	for wi := range w {
		wg.Go(func() {
			for {
				next.Lock()
				i := k
				k++
				next.Unlock()
				if i >= n {
					return
				}
				fn(wi, i)
			}
		})
	}
	wg.Wait()
}
