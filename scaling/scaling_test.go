package scaling

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/results"
)

// chinchilla is the Besiroglu et al. (2024) refit of Hoffmann et al.'s approach 3
// ("Chinchilla Scaling: A replication attempt", arXiv:2404.10102, eq. 4).
var chinchilla = Law{E: 1.8172, A: 482.01, B: 2085.43, Alpha: 0.3478, Beta: 0.3658}

func logspace(lo, hi float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = lo * math.Pow(hi/lo, float64(i)/float64(n-1))
	}
	return out
}

// gridPoints evaluates law on an N × D grid with multiplicative noise of relative size sd
// (0: exact), C = 6ND.
func gridPoints(law Law, ns, ds []float64, sd float64, r *rand.Rand) []Point {
	var ps []Point
	for _, n := range ns {
		for _, d := range ds {
			l := law.Loss(n, d)
			if sd > 0 {
				l *= math.Exp(sd * r.NormFloat64())
			}
			ps = append(ps, Point{Run: "g", Family: "transformer", N: n, D: d, C: 6 * n * d, Loss: l})
		}
	}
	return ps
}

func checkLaw(t *testing.T, got, want Law, tol map[string]float64) {
	t.Helper()
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"E", got.E, want.E}, {"A", got.A, want.A}, {"B", got.B, want.B}, {"alpha", got.Alpha, want.Alpha}, {"beta", got.Beta, want.Beta}} {
		if rel := math.Abs(c.got-c.want) / c.want; rel > tol[c.name] {
			t.Errorf("%s = %.6g, want %.6g (relative error %.2g > %.2g)", c.name, c.got, c.want, rel, tol[c.name])
		}
	}
}

func TestObjectiveGradient(t *testing.T) {
	r, _ := numtest.Rand(t)
	ps := gridPoints(chinchilla, logspace(1e7, 1e9, 3), logspace(1e9, 1e11, 3), 0.05, r)
	o := newObjective(ps)
	// Away from the optimum most residuals sit in the Huber loss's linear part, so also test a
	// point near it where they are in the quadratic part.
	for _, th := range [][]float64{{6, 7.5, 0.6, 0.3, 0.4}, {math.Log(482.01), math.Log(2085.43), math.Log(1.8172), 0.3478, 0.3658}} {
		g := make([]float64, 5)
		o.eval(g, th)
		x := append([]float64(nil), th...)
		num := numtest.NumGrad(func() float64 { return o.eval(nil, x) }, x, 1e-7)
		numtest.Check(t, "objective gradient", g, num, numtest.Tol{Atol: 1e-8, Rtol: 1e-5})
	}
}

// Data generated from the published Chinchilla refit must fit back to it.
func TestChinchillaRefitRecovered(t *testing.T) {
	ps := gridPoints(chinchilla, logspace(7e7, 1.6e10, 7), logspace(5e9, 5e11, 7), 0, nil)
	p, err := FitParametric(ps, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recovered E=%.6g A=%.6g B=%.6g α=%.6g β=%.6g (objective %.3g)", p.E, p.A, p.B, p.Alpha, p.Beta, p.Objective)
	checkLaw(t, p.Law, chinchilla, map[string]float64{"E": 1e-4, "A": 1e-3, "B": 1e-3, "alpha": 1e-4, "beta": 1e-4})
	// Allocation: a = β/(α+β) = 0.5126 for the refit.
	if math.Abs(p.NExp-chinchilla.Beta/(chinchilla.Alpha+chinchilla.Beta)) > 1e-4 {
		t.Errorf("N exponent %.5f", p.NExp)
	}
	if p.Ratio != 6 || p.RatioSource != "runs" {
		t.Errorf("ratio %g from %s, want 6 from the runs", p.Ratio, p.RatioSource)
	}
	// N*, D* must minimise the law along C = 6ND: nudging N either way raises the loss.
	c := 1e22
	n, d := p.Optimal(c, 6)
	if got := 6 * n * d; math.Abs(got-c)/c > 1e-9 {
		t.Errorf("6·N*·D* = %g, want %g", got, c)
	}
	l0 := p.Loss(n, d)
	for _, f := range []float64{0.98, 1.02} {
		if p.Loss(n*f, d/f) <= l0 {
			t.Errorf("N*·%.2f has loss %.9f ≤ %.9f at the optimum", f, p.Loss(n*f, d/f), l0)
		}
	}
}

// A different law at the small scales this toolkit trains, with 1% noise, comes back within
// tolerance, and the bootstrap intervals cover the truth.
func TestParametricNoisy(t *testing.T) {
	r, _ := numtest.Rand(t)
	truth := Law{E: 1.2, A: 150, B: 900, Alpha: 0.33, Beta: 0.38}
	ps := gridPoints(truth, logspace(1e5, 3e7, 8), logspace(1e7, 3e9, 8), 0.005, r)
	p, err := FitParametric(ps, Options{Bootstrap: 40, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fit %+v, CIs α %v β %v", p.Law, *p.CI["alpha"], *p.CI["beta"])
	checkLaw(t, p.Law, truth, map[string]float64{"E": 0.05, "A": 0.6, "B": 0.6, "alpha": 0.1, "beta": 0.1})
	for k, v := range map[string]float64{"alpha": truth.Alpha, "beta": truth.Beta, "E": truth.E} {
		c := p.CI[k]
		if c == nil || c.Lo > c.Hi {
			t.Fatalf("%s: interval %v", k, c)
		}
		// Percentile intervals from 40 replicates: allow a little slack beyond the ends.
		w := c.Hi - c.Lo
		if v < c.Lo-w || v > c.Hi+w {
			t.Errorf("%s = %g far outside its interval [%g, %g]", k, v, c.Lo, c.Hi)
		}
	}
	if p.Bootstrap < 30 {
		t.Errorf("%d of 40 replicates converged", p.Bootstrap)
	}
}

// isoPoints builds budgets whose loss is an exact parabola in ln N with vertex N* = 0.1·C^0.5,
// D = C/(6N); sd adds noise to the loss.
func isoPoints(budgets []float64, sd float64, r *rand.Rand) []Point {
	var ps []Point
	for _, c := range budgets {
		nopt := 0.1 * math.Sqrt(c)
		base := 1.5 + 40*math.Pow(c, -0.1)
		for _, f := range []float64{1.0 / 8, 1.0 / 4, 1.0 / 2, 1, 2, 4, 8} {
			n := nopt * f
			u := math.Log(f)
			l := base + 0.03*u*u
			if sd > 0 {
				l += sd * r.NormFloat64()
			}
			// FLOPs jitter by ±3% inside a budget, as real runs' accounting does.
			cj := c * (1 + 0.03*math.Sin(float64(len(ps))))
			ps = append(ps, Point{Run: "iso", N: n, D: cj / (6 * n), C: cj, Loss: l})
		}
	}
	return ps
}

func TestIsoFLOPExact(t *testing.T) {
	bs := []float64{1e15, 1e16, 1e17, 1e18, 1e19}
	ps := isoPoints(bs, 0, nil)
	iso, err := FitIsoFLOP(ps, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(iso.Budgets) != len(bs) {
		t.Fatalf("%d budgets, want %d", len(iso.Budgets), len(bs))
	}
	for i, b := range iso.Budgets {
		want := 0.1 * math.Sqrt(b.FLOPs)
		// The ±3% FLOPs jitter moves the geometric-mean budget slightly; the vertex is exact in N.
		if rel := math.Abs(b.NOpt-0.1*math.Sqrt(bs[i])) / want; rel > 1e-9 {
			t.Errorf("budget %g: N* = %g, want %g", bs[i], b.NOpt, 0.1*math.Sqrt(bs[i]))
		}
		if b.Extrapolated || b.Sizes != 7 {
			t.Errorf("budget %g: extrapolated %v, sizes %d", bs[i], b.Extrapolated, b.Sizes)
		}
	}
	if math.Abs(iso.N.Exponent-0.5) > 0.01 || math.Abs(iso.D.Exponent-0.5) > 0.01 {
		t.Errorf("exponents a=%g b=%g, want 0.5, 0.5", iso.N.Exponent, iso.D.Exponent)
	}
}

func TestIsoFLOPNoisy(t *testing.T) {
	r, _ := numtest.Rand(t)
	ps := isoPoints([]float64{1e15, 1e16, 1e17, 1e18, 1e19}, 0.002, r)
	for _, boot := range []int{0, 60} {
		iso, err := FitIsoFLOP(ps, Options{Bootstrap: boot})
		if err != nil {
			t.Fatal(err)
		}
		c := iso.N.CI
		t.Logf("bootstrap %d (%s): a = %.4f %v, b = %.4f %v", boot, iso.Method, iso.N.Exponent, c, iso.D.Exponent, iso.D.CI)
		if c == nil || 0.5 < c.Lo-0.02 || 0.5 > c.Hi+0.02 || math.Abs(iso.N.Exponent-0.5) > 0.03 {
			t.Errorf("bootstrap %d: a = %g %v does not recover 0.5", boot, iso.N.Exponent, c)
		}
		for _, b := range iso.Budgets {
			if b.NCI == nil || b.NCI.Lo > b.NOpt || b.NCI.Hi < b.NOpt {
				t.Errorf("budget %g: N* %g outside its interval %v", b.FLOPs, b.NOpt, b.NCI)
			}
		}
		if want := map[int]string{0: "delta", 60: "bootstrap"}[boot]; iso.Method != want {
			t.Errorf("method %q, want %q", iso.Method, want)
		}
	}
}

func run(name, fam string, n, d int64, loss float64) *results.Results {
	return &results.Results{Schema: 1, Recipe: name, Family: fam,
		Cost: results.Cost{Params: n, NonEmbeddingParams: n / 2, Tokens: d, FLOPs: 6 * float64(n) * float64(d)},
		LM:   &results.LM{NLL: loss}}
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name string
		rs   []*results.Results
		opt  Options
		want []string
	}{
		{"empty", nil, Options{}, []string{"no runs"}},
		{"NaN loss", []*results.Results{run("a", "mamba", 1000, 1e6, math.NaN())}, Options{}, []string{"run a", "lm.nll = NaN"}},
		{"zero params", []*results.Results{run("z", "mamba", 0, 1e6, 2)}, Options{}, []string{"run z", "cost.params = 0"}},
		{"zero non-embedding", []*results.Results{run("z", "mamba", 1, 1e6, 2)}, Options{Params: NonEmbedding}, []string{"cost.non_embedding_params = 0"}},
		{"missing metric", []*results.Results{run("m", "mamba", 1000, 1e6, 2)}, Options{Metric: "train.best_val"}, []string{"run m", `no metric "train.best_val"`, "lm.nll"}},
		{"bad params kind", []*results.Results{run("m", "mamba", 1000, 1e6, 2)}, Options{Params: "embedding"}, []string{"params", "non_embedding"}},
		{"bad by", []*results.Results{run("m", "mamba", 1000, 1e6, 2)}, Options{By: "tokenizer"}, []string{"--by", "family"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Fit(c.rs, c.opt)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// Fits that cannot be made.
	few := []Point{{Run: "a", N: 1e6, D: 1e8, C: 6e14, Loss: 3}, {Run: "b", N: 2e6, D: 5e7, C: 6e14, Loss: 2.9}}
	if _, err := FitParametric(few, Options{}); err == nil || !strings.Contains(err.Error(), "need at least 8") {
		t.Errorf("parametric on 2 runs: %v", err)
	}
	if _, err := FitIsoFLOP(few, Options{}); err == nil || !strings.Contains(err.Error(), "2 distinct model size") || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("isoFLOP on a 2-size budget: %v", err)
	}
	one := isoPoints([]float64{1e16}, 0, nil)
	if _, err := FitIsoFLOP(one, Options{}); err == nil || !strings.Contains(err.Error(), "need at least 2") {
		t.Errorf("isoFLOP with one budget: %v", err)
	}
	single := append(isoPoints([]float64{1e16, 1e18}, 0, nil), Point{Run: "lonely", N: 1e6, D: 1e10 / 6e6, C: 1e10, Loss: 3})
	if _, err := FitIsoFLOP(single, Options{}); err == nil || !strings.Contains(err.Error(), "lonely") || !strings.Contains(err.Error(), "1 distinct model size") {
		t.Errorf("isoFLOP with a single-size budget: %v", err)
	}
	concave := isoPoints([]float64{1e16, 1e18}, 0, nil)
	for i := range concave {
		concave[i].Loss = 3 - (concave[i].Loss - 1.5)
	}
	if _, err := FitIsoFLOP(concave, Options{}); err == nil || !strings.Contains(err.Error(), "not convex") {
		t.Errorf("isoFLOP on concave profiles: %v", err)
	}
	sameD := gridPoints(chinchilla, logspace(1e7, 1e9, 9), []float64{1e10}, 0, nil)
	if _, err := FitParametric(sameD, Options{}); err == nil || !strings.Contains(err.Error(), "same D") {
		t.Errorf("parametric with one D: %v", err)
	}
}

// Fit on results grouped by family: the groups come out in order, the report encodes as JSON
// (no NaN), and the tables and CSV name every group.
func TestFitByFamily(t *testing.T) {
	var rs []*results.Results
	add := func(fam string, law Law) {
		for _, p := range gridPoints(law, logspace(1e5, 1e7, 5), logspace(1e7, 1e9, 5), 0, nil) {
			rs = append(rs, run(fam, fam, int64(p.N), int64(p.D), p.Loss))
		}
	}
	add("transformer", Law{E: 1.5, A: 200, B: 600, Alpha: 0.35, Beta: 0.35})
	add("mamba", Law{E: 1.4, A: 250, B: 500, Alpha: 0.32, Beta: 0.37})
	rep, err := Fit(rs, Options{By: "family"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range rep.Groups {
		names = append(names, g.Group)
		if g.Group != All && g.Parametric == nil {
			t.Errorf("%s: %s", g.Group, g.ParametricError)
		}
	}
	if strings.Join(names, ",") != "all,mamba,transformer" {
		t.Errorf("groups %v", names)
	}
	if g := rep.Groups[2].Parametric; g != nil && math.Abs(g.Alpha-0.35) > 1e-3 {
		t.Errorf("transformer α = %g", g.Alpha)
	}
	// A grid of N × D is not an isoFLOP design: the error says which budget lacks sizes.
	if rep.Groups[1].IsoFLOPError == "" {
		t.Error("isoFLOP on a grid design: no error")
	}
	var js, tab, csvb bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Groups) != 3 {
		t.Fatalf("JSON round trip: %v", err)
	}
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteCSV(&csvb); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"tokens per parameter at the optimum", "mamba", "transformer"} {
		if !strings.Contains(tab.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tab.String())
		}
	}
	if n := strings.Count(csvb.String(), "\n"); n != 4 {
		t.Errorf("CSV has %d lines, want 4", n)
	}
}
