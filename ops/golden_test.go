package ops

import (
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// Golden vectors from PyTorch (testdata/gen_golden_ops.py, float64 autograd). The float64
// references must agree to F64 tolerance, the float32 kernels to F32 tolerance on float32-rounded
// inputs (torch saw the unrounded ones, well inside F32).

func TestGoldenEmbedding(t *testing.T) {
	g := loadGolden(t, "embedding")
	r, v, d := g.I(t, "R"), g.I(t, "V"), g.I(t, "D")
	ids, table, cot := int32s(g.T(t, "ids")), g.T(t, "table"), g.T(t, "cot")
	out, dt := make([]float64, r*d), make([]float64, v*d)
	must(t, EmbeddingRef(out, ids, table, r, v, d))
	must(t, EmbeddingBackwardRef(dt, cot, ids, r, v, d))
	numtest.Check(t, "ref out", out, g.T(t, "out"), numtest.F64)
	numtest.Check(t, "ref dtable", dt, g.T(t, "dtable"), numtest.F64)
	out32, dt32 := make([]float32, r*d), make([]float32, v*d)
	must(t, Embedding(out32, ids, f32s(table), r, v, d))
	must(t, EmbeddingBackward(dt32, f32s(cot), ids, r, v, d))
	numtest.Check(t, "out", out32, g.T(t, "out"), numtest.F32)
	numtest.Check(t, "dtable", dt32, g.T(t, "dtable"), numtest.F32.Scaled(r))
}

func TestGoldenLinear(t *testing.T) {
	g := loadGolden(t, "linear")
	r, in, out := g.I(t, "R"), g.I(t, "In"), g.I(t, "Out")
	x, w, b, cot := g.T(t, "x"), g.T(t, "w"), g.T(t, "bias"), g.T(t, "cot")
	y, dx, dw, db := make([]float64, r*out), make([]float64, r*in), make([]float64, out*in), make([]float64, out)
	must(t, LinearRef(y, x, w, b, r, in, out))
	must(t, LinearBackwardRef(dx, dw, db, cot, x, w, r, in, out))
	for name, got := range map[string][]float64{"y": y, "dx": dx, "dw": dw, "dbias": db} {
		numtest.Check(t, "ref "+name, got, g.T(t, name), numtest.F64)
	}
	y32, dx32, dw32, db32 := make([]float32, r*out), make([]float32, r*in), make([]float32, out*in), make([]float32, out)
	must(t, Linear(y32, f32s(x), f32s(w), f32s(b), r, in, out))
	must(t, LinearBackward(dx32, dw32, db32, f32s(cot), f32s(x), f32s(w), r, in, out))
	tol := numtest.F32.Scaled(max(in, out, r))
	for name, got := range map[string][]float32{"y": y32, "dx": dx32, "dw": dw32, "dbias": db32} {
		numtest.Check(t, name, got, g.T(t, name), tol)
	}
}

func TestGoldenNorms(t *testing.T) {
	g := loadGolden(t, "norms")
	eps := g.Shapes["eps"]
	for _, c := range []struct {
		prefix string
		kind   normKind
	}{{"rms", normKinds[0]}, {"grms", normKinds[1]}, {"ln", normKinds[2]}, {"gn", normKinds[3]}} {
		t.Run(c.kind.name, func(t *testing.T) {
			k, p := c.kind, c.prefix+"_"
			r, d, gr := g.I(t, p+"R"), g.I(t, p+"D"), 1
			if k.groups {
				gr = g.I(t, p+"G")
			}
			nd := &normData{r: r, d: d, g: gr, x: g.T(t, p+"x"), w: g.T(t, p+"w"), dout: g.T(t, p+"cot"),
				dw0: make([]float64, d)}
			if k.gate {
				nd.z = g.T(t, p+"z")
			}
			if k.bias {
				nd.b, nd.db0 = g.T(t, p+"b"), make([]float64, d)
			}
			nd.runRef(t, k, eps)
			numtest.Check(t, "ref out", nd.out, g.T(t, p+"out"), numtest.F64)
			numtest.Check(t, "ref dx", nd.dx, g.T(t, p+"dx"), numtest.F64)
			numtest.Check(t, "ref dw", nd.dw, g.T(t, p+"dw"), numtest.F64)
			if k.gate {
				numtest.Check(t, "ref dz", nd.dz, g.T(t, p+"dz"), numtest.F64)
			}
			if k.bias {
				numtest.Check(t, "ref db", nd.db, g.T(t, p+"db"), numtest.F64)
			}

			out, rstd, mean := make([]float32, r*d), make([]float32, r*gr), []float32(nil)
			if k.saveM {
				mean = make([]float32, r*gr)
			}
			x, z, w, b := f32s(nd.x), f32s(nd.z), f32s(nd.w), f32s(nd.b)
			must(t, k.fwd(out, mean, rstd, x, z, w, b, r, d, gr, float32(eps)))
			dx, dz, dw, db := make([]float32, r*d), []float32(nil), make([]float32, d), []float32(nil)
			if k.gate {
				dz = make([]float32, r*d)
			}
			if k.bias {
				db = make([]float32, d)
			}
			must(t, k.bwd(dx, dz, dw, db, f32s(nd.dout), x, z, w, mean, rstd, r, d, gr))
			tol := numtest.F32.Scaled(d)
			numtest.Check(t, "out", out, g.T(t, p+"out"), tol)
			numtest.Check(t, "dx", dx, g.T(t, p+"dx"), tol)
			numtest.Check(t, "dw", dw, g.T(t, p+"dw"), numtest.F32.Scaled(r*d))
			if k.gate {
				numtest.Check(t, "dz", dz, g.T(t, p+"dz"), tol)
			}
			if k.bias {
				numtest.Check(t, "db", db, g.T(t, p+"db"), numtest.F32.Scaled(r))
			}
		})
	}
}

func TestGoldenElementwise(t *testing.T) {
	g := loadGolden(t, "elementwise")
	n := g.I(t, "N")
	x := g.T(t, "x")
	for _, op := range unaries {
		name := map[string]string{"SiLU": "silu", "Softplus": "softplus"}[op.name]
		cot := g.T(t, name+"_cot")
		out, dx := make([]float64, n), make([]float64, n)
		must(t, op.fwdRef(out, x, n))
		must(t, op.bwdRef(dx, cot, x, n))
		numtest.Check(t, op.name+" ref", out, g.T(t, name), numtest.F64)
		numtest.Check(t, op.name+" ref dx", dx, g.T(t, name+"_dx"), numtest.F64)
		out32, dx32 := make([]float32, n), make([]float32, n)
		must(t, op.fwd(out32, f32s(x), n))
		must(t, op.bwd(dx32, f32s(cot), f32s(x), n))
		numtest.Check(t, op.name, out32, g.T(t, name), numtest.F32)
		numtest.Check(t, op.name+" dx", dx32, g.T(t, name+"_dx"), numtest.F32)
	}
	a, b, cot := g.T(t, "a"), g.T(t, "b"), g.T(t, "swiglu_cot")
	out, da, db := make([]float64, n), make([]float64, n), make([]float64, n)
	must(t, SwiGLURef(out, a, b, n))
	must(t, SwiGLUBackwardRef(da, db, cot, a, b, n))
	numtest.Check(t, "SwiGLU ref", out, g.T(t, "swiglu"), numtest.F64)
	numtest.Check(t, "SwiGLU ref da", da, g.T(t, "swiglu_da"), numtest.F64)
	numtest.Check(t, "SwiGLU ref db", db, g.T(t, "swiglu_db"), numtest.F64)
	out32, da32, db32 := make([]float32, n), make([]float32, n), make([]float32, n)
	must(t, SwiGLU(out32, f32s(a), f32s(b), n))
	must(t, SwiGLUBackward(da32, db32, f32s(cot), f32s(a), f32s(b), n))
	numtest.Check(t, "SwiGLU", out32, g.T(t, "swiglu"), numtest.F32)
	numtest.Check(t, "SwiGLU da", da32, g.T(t, "swiglu_da"), numtest.F32)
	numtest.Check(t, "SwiGLU db", db32, g.T(t, "swiglu_db"), numtest.F32)
}

func TestGoldenCrossEntropy(t *testing.T) {
	g := loadGolden(t, "cross_entropy")
	r, v, ignore := g.I(t, "R"), g.I(t, "V"), int32(g.I(t, "ignore"))
	logits, targets := g.T(t, "logits"), int32s(g.T(t, "targets"))
	wantLoss, wantDL := g.T(t, "loss"), g.T(t, "dlogits")
	wantLSE := g.T(t, "lse")
	for i, tg := range targets { // our lse is 0 on ignored rows
		if tg == ignore {
			wantLSE[i] = 0
		}
	}
	lse := make([]float64, r)
	loss, _, err := CrossEntropyRef(lse, logits, targets, r, v, ignore)
	must(t, err)
	dl := make([]float64, r*v)
	must(t, CrossEntropyBackwardRef(dl, 1, logits, targets, lse, r, v, ignore))
	numtest.Check(t, "ref loss", []float64{loss}, wantLoss, numtest.F64)
	numtest.Check(t, "ref lse", lse, wantLSE, numtest.F64)
	numtest.Check(t, "ref dlogits", dl, wantDL, numtest.F64)

	lse32 := make([]float32, r)
	l32, _, err := CrossEntropy(lse32, f32s(logits), targets, r, v, ignore)
	must(t, err)
	dl32 := make([]float32, r*v)
	must(t, CrossEntropyBackward(dl32, 1, f32s(logits), targets, lse32, r, v, ignore))
	tol := numtest.F32.Scaled(v)
	numtest.Check(t, "loss", []float64{l32}, wantLoss, tol)
	numtest.Check(t, "lse", lse32, wantLSE, tol)
	numtest.Check(t, "dlogits", dl32, wantDL, tol)
}

func TestGoldenAdamW(t *testing.T) {
	g := loadGolden(t, "adamw")
	n := g.I(t, "N")
	c := AdamWConfig{LR: g.Shapes["lr"], Beta1: g.Shapes["beta1"], Beta2: g.Shapes["beta2"], Eps: g.Shapes["eps"],
		WeightDecay: g.Shapes["weight_decay"]}
	p, m, v := g.T(t, "p0"), make([]float64, n), make([]float64, n)
	p32, m32, v32 := f32s(p), make([]float32, n), make([]float32, n)
	for step, gname := range []string{"g1", "g2"} {
		gr := g.T(t, gname)
		must(t, AdamWRef(p, m, v, gr, n, step+1, c))
		must(t, AdamW(p32, m32, v32, f32s(gr), n, step+1, c))
		s := string(rune('1' + step))
		numtest.Check(t, "ref p"+s, p, g.T(t, "p"+s), numtest.F64)
		numtest.Check(t, "ref m"+s, m, g.T(t, "m"+s), numtest.F64)
		numtest.Check(t, "ref v"+s, v, g.T(t, "v"+s), numtest.F64)
		numtest.Check(t, "p"+s, p32, g.T(t, "p"+s), numtest.F32)
		numtest.Check(t, "m"+s, m32, g.T(t, "m"+s), numtest.F32)
		numtest.Check(t, "v"+s, v32, g.T(t, "v"+s), numtest.F32)
	}
}

func TestGoldenClip(t *testing.T) {
	g := loadGolden(t, "clip")
	a, b := f32s(g.T(t, "ga")), f32s(g.T(t, "gb"))
	norm, err := ClipGradNorm(g.Shapes["max_norm"], a, b)
	must(t, err)
	numtest.Check(t, "norm", []float64{norm}, g.T(t, "norm"), numtest.F32)
	numtest.Check(t, "a", a, g.T(t, "ca"), numtest.F32)
	numtest.Check(t, "b", b, g.T(t, "cb"), numtest.F32)
}
