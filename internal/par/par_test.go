package par

import (
	"sync/atomic"
	"testing"
)

func TestForCoversOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 17, 1000} {
		for _, grain := range []int{0, 1, 5, 2000} {
			seen := make([]int32, n)
			For(n, grain, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&seen[i], 1)
				}
			})
			for i, s := range seen {
				if s != 1 {
					t.Fatalf("n=%d grain=%d: index %d visited %d times", n, grain, i, s)
				}
			}
		}
	}
}

func TestEachCoversOnce(t *testing.T) {
	for _, n := range []int{0, 1, 7, 100} {
		seen := make([]int32, n)
		Each(n, func(w, i int) { atomic.AddInt32(&seen[i], 1) })
		for i, s := range seen {
			if s != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, s)
			}
		}
	}
}
