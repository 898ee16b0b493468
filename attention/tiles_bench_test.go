package attention

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestTileSweep times the forward at Dh=64 over several tile shapes, interleaved so that
// machine noise hits all of them alike. Run with HYBRID_TILE_SWEEP=1 (it is slow).
func TestTileSweep(t *testing.T) {
	if os.Getenv("HYBRID_TILE_SWEEP") == "" {
		t.Skip("set HYBRID_TILE_SWEEP=1")
	}
	b := &testing.B{}
	benchSetup(b)
	orig := fwdTileSizes
	defer func() { fwdTileSizes = orig }()
	cfgs := [][2]int{{64, 128}, {128, 256}, {128, 512}, {256, 256}, {256, 512}, {512, 512}}
	for _, dh := range []int{64, 128} {
		l := 2048
		bb := 4
		if dh == 128 {
			l, bb = 1024, 2
		}
		d := Dims{B: bb, L: l, S: l, H: 4, HKV: 4, Dh: dh, Causal: true}
		x := newBenchBufs(d)
		best := make([]time.Duration, len(cfgs))
		for round := 0; round < 12; round++ {
			for i, c := range cfgs {
				fwdTileSizes = func(Dims) (int, int) { return c[0], c[1] }
				st := time.Now()
				x.fwd(b, d)
				if el := time.Since(st); best[i] == 0 || el < best[i] {
					best[i] = el
				}
			}
		}
		for i, c := range cfgs {
			fmt.Printf("Dh=%d %dx%d: %v  %.1f GFLOP/s\n", dh, c[0], c[1], best[i], d.flops()/best[i].Seconds()/1e9)
		}
	}
}

// TestBwdTileSweep is TestTileSweep for the backward.
func TestBwdTileSweep(t *testing.T) {
	if os.Getenv("HYBRID_TILE_SWEEP") == "" {
		t.Skip("set HYBRID_TILE_SWEEP=1")
	}
	b := &testing.B{}
	benchSetup(b)
	orig := bwdTileSizes
	defer func() { bwdTileSizes = orig }()
	cfgs := [][2]int{{64, 128}, {64, 256}, {128, 256}, {256, 256}, {64, 512}, {128, 512}}
	for _, dh := range []int{64, 128} {
		l, bb := 2048, 4
		if dh == 128 {
			l, bb = 1024, 2
		}
		d := Dims{B: bb, L: l, S: l, H: 4, HKV: 4, Dh: dh, Causal: true}
		x := newBenchBufs(d)
		x.fwd(b, d)
		best := make([]time.Duration, len(cfgs))
		for round := 0; round < 6; round++ {
			for i, c := range cfgs {
				bwdTileSizes = func(Dims) (int, int) { return c[0], c[1] }
				st := time.Now()
				x.bwd(b, d)
				if el := time.Since(st); best[i] == 0 || el < best[i] {
					best[i] = el
				}
			}
		}
		for i, c := range cfgs {
			fmt.Printf("bwd Dh=%d %dx%d: %v  %.1f GFLOP/s\n", dh, c[0], c[1], best[i], 2.5*d.flops()/best[i].Seconds()/1e9)
		}
	}
}
