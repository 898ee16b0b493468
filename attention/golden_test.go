package attention

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
)

// golden is one file written by testdata/gen_golden_attn.py (torch float64, definitional math).
// Shapes are numbers, except causal (a bool, read as 0 or 1).
type golden struct {
	Shapes  map[string]float64
	Tensors map[string]struct {
		Shape []int
		Data  []float64
	}
}

func loadGolden(t *testing.T, name string) golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Shapes  map[string]any
		Tensors json.RawMessage
	}
	g := golden{Shapes: map[string]float64{}}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw.Tensors, &g.Tensors); err != nil {
		t.Fatal(err)
	}
	for k, v := range raw.Shapes {
		switch x := v.(type) {
		case bool:
			if x {
				g.Shapes[k] = 1
			}
		case float64:
			g.Shapes[k] = x
		}
	}
	return g
}

func (g golden) t(name string) []float64 { return g.Tensors[name].Data }

func TestGoldenAttention(t *testing.T) {
	for _, name := range []string{"gqa_causal", "window_sinks", "cross", "prefill_window"} {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, "golden_attn_"+name+".json")
			s := func(k string) int { return int(g.Shapes[k]) }
			d := Dims{B: s("B"), L: s("L"), S: s("S"), H: s("H"), HKV: s("HKV"), Dh: s("Dh"),
				Causal: g.Shapes["causal"] != 0, Window: s("window"), Sinks: s("sinks"), Scale: float32(g.Shapes["scale"])}
			q, k, v, do := numtest.F32s(g.t("q")), numtest.F32s(g.t("k")), numtest.F32s(g.t("v")), numtest.F32s(g.t("do"))
			o, lse := make([]float32, len(q)), make([]float32, d.B*d.H*d.L)
			if err := Forward(o, lse, q, k, v, d); err != nil {
				t.Fatal(err)
			}
			tol := numtest.F32.Scaled(d.Dh + d.S + d.L*d.rep())
			numtest.Check(t, "o", o, g.t("o"), tol)
			numtest.Check(t, "lse", lse, g.t("lse"), tol)
			dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
			if err := Backward(dq, dk, dv, do, q, k, v, o, lse, d); err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "dq", dq, g.t("dq"), tol)
			numtest.Check(t, "dk", dk, g.t("dk"), tol)
			numtest.Check(t, "dv", dv, g.t("dv"), tol)
			// The float64 reference agrees to float64 precision.
			ro, rl := make([]float64, len(q)), make([]float64, len(lse))
			if err := Ref(ro, rl, g.t("q"), g.t("k"), g.t("v"), d); err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "ref o", ro, g.t("o"), numtest.F64)
			numtest.Check(t, "ref lse", rl, g.t("lse"), numtest.F64)
			rq, rk, rv := make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
			if err := RefBackward(rq, rk, rv, g.t("do"), g.t("q"), g.t("k"), g.t("v"), d); err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "ref dq", rq, g.t("dq"), numtest.F64)
			numtest.Check(t, "ref dk", rk, g.t("dk"), numtest.F64)
			numtest.Check(t, "ref dv", rv, g.t("dv"), numtest.F64)
		})
	}
}

func TestGoldenRoPE(t *testing.T) {
	g := loadGolden(t, "golden_rope.json")
	s := func(k string) int { return int(g.Shapes[k]) }
	d := RoPEDims{B: s("B"), L: s("L"), H: s("H"), Dh: s("Dh")}
	pos0, theta := s("pos0"), g.Shapes["theta"]
	out := make([]float32, len(g.t("x")))
	if err := RoPE(out, numtest.F32s(g.t("x")), pos0, theta, d); err != nil {
		t.Fatal(err)
	}
	numtest.Check(t, "out", out, g.t("out"), numtest.F32.Scaled(2))
	dx := make([]float32, len(out))
	if err := RoPEBackward(dx, numtest.F32s(g.t("g")), pos0, theta, d); err != nil {
		t.Fatal(err)
	}
	numtest.Check(t, "dx", dx, g.t("dx"), numtest.F32.Scaled(2))
	ro := make([]float64, len(out))
	if err := RoPERef(ro, g.t("x"), pos0, theta, d); err != nil {
		t.Fatal(err)
	}
	numtest.Check(t, "ref out", ro, g.t("out"), numtest.F64)
}
