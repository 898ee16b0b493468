package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// The four norms behind one signature, so that every test runs on all of them.
type normKind struct {
	name          string
	gate, bias    bool // takes z (GatedRMSNorm), takes b (LayerNorm, GroupNorm)
	groups, saveM bool // G may exceed 1, saves mean
	fwd           func(out, mean, rstd, x, z, w, b []float32, r, d, g int, eps float32) error
	bwd           func(dx, dz, dw, db, dout, x, z, w, mean, rstd []float32, r, d, g int) error
	fwdRef        func(out, mean, rstd, x, z, w, b []float64, r, d, g int, eps float64) error
	bwdRef        func(dx, dz, dw, db, dout, x, z, w, mean, rstd []float64, r, d, g int) error
}

var normKinds = []normKind{
	{name: "RMSNorm",
		fwd: func(out, _, rstd, x, _, w, _ []float32, r, d, _ int, eps float32) error {
			return RMSNorm(out, rstd, x, w, r, d, eps)
		},
		bwd: func(dx, _, dw, _, dout, x, _, w, _, rstd []float32, r, d, _ int) error {
			return RMSNormBackward(dx, dw, dout, x, w, rstd, r, d)
		},
		fwdRef: func(out, _, rstd, x, _, w, _ []float64, r, d, _ int, eps float64) error {
			return RMSNormRef(out, rstd, x, w, r, d, eps)
		},
		bwdRef: func(dx, _, dw, _, dout, x, _, w, _, rstd []float64, r, d, _ int) error {
			return RMSNormBackwardRef(dx, dw, dout, x, w, rstd, r, d)
		}},
	{name: "GatedRMSNorm", gate: true, groups: true,
		fwd: func(out, _, rstd, x, z, w, _ []float32, r, d, g int, eps float32) error {
			return GatedRMSNorm(out, rstd, x, z, w, r, d, g, eps)
		},
		bwd: func(dx, dz, dw, _, dout, x, z, w, _, rstd []float32, r, d, g int) error {
			return GatedRMSNormBackward(dx, dz, dw, dout, x, z, w, rstd, r, d, g)
		},
		fwdRef: func(out, _, rstd, x, z, w, _ []float64, r, d, g int, eps float64) error {
			return GatedRMSNormRef(out, rstd, x, z, w, r, d, g, eps)
		},
		bwdRef: func(dx, dz, dw, _, dout, x, z, w, _, rstd []float64, r, d, g int) error {
			return GatedRMSNormBackwardRef(dx, dz, dw, dout, x, z, w, rstd, r, d, g)
		}},
	{name: "LayerNorm", bias: true, saveM: true,
		fwd: func(out, mean, rstd, x, _, w, b []float32, r, d, _ int, eps float32) error {
			return LayerNorm(out, mean, rstd, x, w, b, r, d, eps)
		},
		bwd: func(dx, _, dw, db, dout, x, _, w, mean, rstd []float32, r, d, _ int) error {
			return LayerNormBackward(dx, dw, db, dout, x, w, mean, rstd, r, d)
		},
		fwdRef: func(out, mean, rstd, x, _, w, b []float64, r, d, _ int, eps float64) error {
			return LayerNormRef(out, mean, rstd, x, w, b, r, d, eps)
		},
		bwdRef: func(dx, _, dw, db, dout, x, _, w, mean, rstd []float64, r, d, _ int) error {
			return LayerNormBackwardRef(dx, dw, db, dout, x, w, mean, rstd, r, d)
		}},
	{name: "GroupNorm", bias: true, groups: true, saveM: true,
		fwd: func(out, mean, rstd, x, _, w, b []float32, r, d, g int, eps float32) error {
			return GroupNorm(out, mean, rstd, x, w, b, r, d, g, eps)
		},
		bwd: func(dx, _, dw, db, dout, x, _, w, mean, rstd []float32, r, d, g int) error {
			return GroupNormBackward(dx, dw, db, dout, x, w, mean, rstd, r, d, g)
		},
		fwdRef: func(out, mean, rstd, x, _, w, b []float64, r, d, g int, eps float64) error {
			return GroupNormRef(out, mean, rstd, x, w, b, r, d, g, eps)
		},
		bwdRef: func(dx, _, dw, db, dout, x, _, w, mean, rstd []float64, r, d, g int) error {
			return GroupNormBackwardRef(dx, dw, db, dout, x, w, mean, rstd, r, d, g)
		}},
}

// normData is one random problem: inputs, the reference's outputs and gradients.
type normData struct {
	x, z, w, b, dout []float64
	out, mean, rstd  []float64
	dx, dz, dw, db   []float64
	dw0, db0         []float64 // initial parameter-gradient buffers (accumulation is tested)
	r, d, g          int
}

// optional returns make(n) when on, nil otherwise.
func optional(on bool, n int) []float64 {
	if !on {
		return nil
	}
	return make([]float64, n)
}

func newNormData(t *testing.T, k normKind, r, d, g int, offset float64) *normData {
	rng, _ := numtest.Rand(t)
	p := &normData{r: r, d: d, g: g}
	p.x = randn(rng, r*d, 1.5)
	for i := range p.x {
		p.x[i] = float64(float32(p.x[i] + offset))
	}
	if k.gate {
		p.z = randn(rng, r*d, 1.5)
	}
	p.w = randn(rng, d, 1)
	if k.bias {
		p.b = randn(rng, d, 1)
	}
	p.dout = randn(rng, r*d, 1)
	p.dw0 = randn(rng, d, 1)
	if k.bias {
		p.db0 = randn(rng, d, 1)
	}
	return p
}

func (p *normData) runRef(t *testing.T, k normKind, eps float64) {
	r, d, g := p.r, p.d, p.g
	p.out, p.rstd, p.mean = make([]float64, r*d), make([]float64, r*g), optional(k.saveM, r*g)
	must(t, k.fwdRef(p.out, p.mean, p.rstd, p.x, p.z, p.w, p.b, r, d, g, eps))
	p.dx, p.dz = make([]float64, r*d), optional(k.gate, r*d)
	p.dw, p.db = clone64(p.dw0), clone64(p.db0)
	if !k.bias {
		p.db = nil
	}
	must(t, k.bwdRef(p.dx, p.dz, p.dw, p.db, p.dout, p.x, p.z, p.w, p.mean, p.rstd, r, d, g))
}

func f32s(x []float64) []float32 {
	if x == nil {
		return nil
	}
	return numtest.F32s(x)
}

func TestNormsMatchReference(t *testing.T) {
	const eps = 1e-5
	sizes := [][3]int{{1, 1, 1}, {1, 7, 1}, {3, 33, 3}, {5, 12, 4}, {2, 15, 5}, {300, 65, 13}, {260, 96, 8}}
	for _, k := range normKinds {
		for _, sz := range sizes {
			r, d, g := sz[0], sz[1], sz[2]
			if !k.groups {
				g = 1
			}
			t.Run(fmt.Sprintf("%s/R=%d/D=%d/G=%d", k.name, r, d, g), func(t *testing.T) {
				offset := 0.0
				if k.saveM {
					offset = 3 // the mean must be removed accurately
				}
				p := newNormData(t, k, r, d, g, offset)
				p.runRef(t, k, eps)

				dg := d / g
				out, rstd := make([]float32, r*d), make([]float32, r*g)
				var mean []float32
				if k.saveM {
					mean = make([]float32, r*g)
				}
				x, z, w, b := f32s(p.x), f32s(p.z), f32s(p.w), f32s(p.b)
				must(t, k.fwd(out, mean, rstd, x, z, w, b, r, d, g, eps))
				tol := numtest.F32.Scaled(dg)
				numtest.Check(t, "out", out, p.out, tol)
				numtest.Check(t, "rstd", rstd, p.rstd, tol)
				if k.saveM {
					numtest.Check(t, "mean", mean, p.mean, tol)
				}

				dx := make([]float32, r*d)
				var dz []float32
				if k.gate {
					dz = make([]float32, r*d)
				}
				dw, db := f32s(p.dw0), f32s(p.db0)
				dout := f32s(p.dout)
				must(t, k.bwd(dx, dz, dw, db, dout, x, z, w, mean, rstd, r, d, g))
				// dx = rstd·(w·dy − x̂·mean(w·dy·x̂)) cancels when a group is small (D/G = 1 leaves
				// only eps·w·dy/(x²+eps)): its error follows the size of the terms, not of dx.
				terms := 0.0
				for i, v := range p.dout {
					terms = max(terms, math.Abs(v*p.w[i%d])*p.rstd[i/dg])
				}
				numtest.Check(t, "dx", dx, p.dx, numtest.Tol{Atol: tol.Atol * max(1, terms), Rtol: tol.Rtol})
				if k.gate {
					// dz = dy_y·x·σ(z)·(1 + z·(1 − σ(z))), dy_y ~ rstd·w·dy: cancels near z ≈ −1.28; scale by its terms.
					zterms := 0.0
					for i, v := range p.dout {
						zterms = max(zterms, math.Abs(v*p.x[i]*p.rstd[i/dg]*p.w[i%d])*(1+math.Abs(p.z[i])))
					}
					numtest.Check(t, "dz", dz, p.dz, numtest.Tol{Atol: tol.Atol * max(1, zterms), Rtol: tol.Rtol})
				}
				// dw, db sum R rows, each from a row reduction over D/G channels.
				ptol := numtest.F32.Scaled(r * dg)
				numtest.Check(t, "dw", dw, p.dw, ptol)
				if k.bias {
					numtest.Check(t, "db", db, p.db, ptol)
				}
			})
		}
	}
}

// TestNormsFiniteDifferences checks every reference backward, parameter gradients included.
func TestNormsFiniteDifferences(t *testing.T) {
	for _, k := range normKinds {
		for _, sz := range [][3]int{{1, 3, 1}, {2, 6, 2}, {3, 5, 5}} {
			r, d, g := sz[0], sz[1], sz[2]
			if !k.groups {
				g = 1
			}
			t.Run(fmt.Sprintf("%s/R=%d/D=%d/G=%d", k.name, r, d, g), func(t *testing.T) {
				const eps = 1e-3 // large enough to matter in the gradient
				p := newNormData(t, k, r, d, g, 0.5)
				clear(p.dw0) // accumulate from zero: the gradient itself
				if k.bias {
					clear(p.db0)
				}
				p.runRef(t, k, eps)
				out, rstd, mean := make([]float64, r*d), make([]float64, r*g), optional(k.saveM, r*g)
				loss := func() float64 {
					must(t, k.fwdRef(out, mean, rstd, p.x, p.z, p.w, p.b, r, d, g, eps))
					return numtest.Dot(out, p.dout)
				}
				gs := []grad{{"x", p.x, p.dx}, {"w", p.w, p.dw}}
				if k.gate {
					gs = append(gs, grad{"z", p.z, p.dz})
				}
				if k.bias {
					gs = append(gs, grad{"b", p.b, p.db})
				}
				fdCheck(t, k.name, loss, gs...)
			})
		}
	}
}

// TestNormOptionalBias: LayerNorm and GroupNorm without b equal the op with b = 0 and skip db.
func TestNormOptionalBias(t *testing.T) {
	rng, _ := numtest.Rand(t)
	const r, d, g = 3, 8, 2
	x, w, dout := numtest.F32s(randn(rng, r*d, 1)), numtest.F32s(randn(rng, d, 1)), numtest.F32s(randn(rng, r*d, 1))
	zero := make([]float32, d)
	out1, out2 := make([]float32, r*d), make([]float32, r*d)
	m, s := make([]float32, r*g), make([]float32, r*g)
	must(t, GroupNorm(out1, m, s, x, w, nil, r, d, g, 1e-5))
	must(t, GroupNorm(out2, m, s, x, w, zero, r, d, g, 1e-5))
	numtest.Check(t, "out", out1, out2, numtest.Tol{})
	dx1, dx2, dw1, dw2, db := make([]float32, r*d), make([]float32, r*d), make([]float32, d), make([]float32, d), make([]float32, d)
	must(t, GroupNormBackward(dx1, dw1, nil, dout, x, w, m, s, r, d, g))
	must(t, GroupNormBackward(dx2, dw2, db, dout, x, w, m, s, r, d, g))
	numtest.Check(t, "dx", dx1, dx2, numtest.Tol{})
	numtest.Check(t, "dw", dw1, dw2, numtest.Tol{})
}

// TestLayerNormLargeOffset: the two-pass variance keeps precision when |mean| ≫ spread.
func TestLayerNormLargeOffset(t *testing.T) {
	rng, _ := numtest.Rand(t)
	const r, d = 4, 64
	x64 := randn(rng, r*d, 0.1)
	for i := range x64 {
		x64[i] = float64(float32(x64[i] + 1000))
	}
	w64 := make([]float64, d)
	for i := range w64 {
		w64[i] = 1
	}
	want, m, s := make([]float64, r*d), make([]float64, r), make([]float64, r)
	must(t, LayerNormRef(want, m, s, x64, w64, nil, r, d, 1e-5))
	got, m32, s32 := make([]float32, r*d), make([]float32, r), make([]float32, r)
	must(t, LayerNorm(got, m32, s32, numtest.F32s(x64), numtest.F32s(w64), nil, r, d, 1e-5))
	// The mean itself rounds to float32 at 1000 (half-ulp 3e-5), an absolute error of 3e-4 in
	// (x − mean)·rstd after dividing by the spread 0.1: ~20× the base tolerance, inherent to float32.
	// A naive float32 sum of the row would be ~10× worse again.
	numtest.Check(t, "out", got, want, numtest.F32.Scaled(d).Times(30))
	for _, v := range got {
		if math.IsNaN(float64(v)) {
			t.Fatal("NaN")
		}
	}
}
