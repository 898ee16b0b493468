package ops

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// randn returns n normal values scaled by s, rounded to float32 so that the float64 reference and
// the float32 kernel see the same inputs.
func randn(r *rand.Rand, n int, s float64) []float64 {
	return numtest.Round32(numtest.Normal(r, n, s))
}

// grad is one input of a finite-difference check with its analytic gradient.
type grad struct {
	name string
	x    []float64 // perturbed in place
	g    []float64 // analytic gradient of loss with respect to x
}

// fdCheck compares each analytic gradient with the central finite difference of loss (h = 1e-5).
func fdCheck(t *testing.T, op string, loss func() float64, gs ...grad) {
	t.Helper()
	for _, g := range gs {
		numtest.Check(t, op+" FD d"+g.name, g.g, numtest.NumGrad(loss, g.x, 1e-5), numtest.GradTol)
	}
}

// clone64 copies a float64 slice.
func clone64(x []float64) []float64 { return append([]float64(nil), x...) }

// golden is one file written by testdata/gen_golden_ops.py.
type golden struct {
	Shapes  map[string]float64 `json:"shapes"`
	Tensors map[string]struct {
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
	} `json:"tensors"`
}

func loadGolden(t *testing.T, name string) *golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden_"+name+".json"))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 ops/testdata/gen_golden_ops.py)", err)
	}
	var g golden
	must(t, json.Unmarshal(b, &g))
	return &g
}

// T returns a tensor's data; missing names fail the test.
func (g *golden) T(t *testing.T, name string) []float64 {
	t.Helper()
	v, ok := g.Tensors[name]
	if !ok {
		t.Fatalf("golden tensor %q missing", name)
	}
	return clone64(v.Data)
}

// I returns an integer size.
func (g *golden) I(t *testing.T, name string) int {
	t.Helper()
	v, ok := g.Shapes[name]
	if !ok {
		t.Fatalf("golden shape %q missing", name)
	}
	return int(v)
}

func int32s(x []float64) []int32 {
	y := make([]int32, len(x))
	for i, v := range x {
		y[i] = int32(v)
	}
	return y
}
