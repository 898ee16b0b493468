package scaling

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Budget is one compute budget of an isoFLOP study: the parabola
// L = Coef[0] + Coef[1]·u + Coef[2]·u², u = ln N − Center, and its vertex.
type Budget struct {
	FLOPs  float64    `json:"flops"` // geometric mean of the runs' FLOPs
	Runs   int        `json:"runs"`
	Sizes  int        `json:"sizes"` // distinct N
	Center float64    `json:"center"`
	Coef   [3]float64 `json:"coef"`
	Ratio  float64    `json:"ratio"` // median C/(N·D) of the budget's runs

	NOpt    float64   `json:"n_opt"`
	NCI     *Interval `json:"n_ci,omitempty"`
	DOpt    float64   `json:"d_opt"` // C / (Ratio·NOpt)
	DCI     *Interval `json:"d_ci,omitempty"`
	LossOpt float64   `json:"loss_opt"`
	// Extrapolated marks a vertex outside the sizes the budget trained (the profile does not
	// bracket its minimum; treat N* with care).
	Extrapolated bool `json:"extrapolated,omitempty"`

	Points []Point `json:"-"`
}

// PowerLaw is y = Coef·C^Exponent fitted in log-log space.
type PowerLaw struct {
	Exponent float64   `json:"exponent"`
	CI       *Interval `json:"ci,omitempty"` // of the exponent
	Coef     float64   `json:"coef"`
}

// At evaluates the law at compute c.
func (p PowerLaw) At(c float64) float64 { return p.Coef * math.Pow(c, p.Exponent) }

// IsoFLOP is an isoFLOP analysis: the per-budget vertices and the power laws through them.
type IsoFLOP struct {
	Budgets []Budget `json:"budgets"`
	N       PowerLaw `json:"n"` // N*(C)
	D       PowerLaw `json:"d"` // D*(C)
	// Method says where the intervals come from: "delta" (parabola covariance and the power
	// law's standard error, Student t) or "bootstrap" (points resampled within each budget).
	Method string `json:"interval_method"`
}

// SplitBudgets groups points whose FLOPs agree within the relative tolerance tol: sorted by
// C, a point joins the current budget while C ≤ (1+tol)·(the budget's smallest C).
func SplitBudgets(ps []Point, tol float64) [][]Point {
	s := append([]Point(nil), ps...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].C < s[j].C })
	var out [][]Point
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j].C <= s[i].C*(1+tol) {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// FitIsoFLOP runs the isoFLOP analysis. Every budget needs at least 3 distinct sizes and a
// convex profile; at least 2 budgets are needed for the power laws (3 for their intervals).
func FitIsoFLOP(ps []Point, opt Options) (*IsoFLOP, error) {
	groups := SplitBudgets(ps, opt.tol())
	var errs []error
	res := &IsoFLOP{Method: "delta"}
	for _, g := range groups {
		b, err := fitBudget(g, opt.level())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Budgets = append(res.Budgets, *b)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("isoFLOP: %w", err)
	}
	if len(res.Budgets) < 2 {
		return nil, fmt.Errorf("isoFLOP: %d compute budget(s) (FLOPs within %.0f%% form one), the power laws need at least 2", len(res.Budgets), 100*opt.tol())
	}
	res.N, res.D = lawsThrough(res.Budgets, opt.level())
	if opt.Bootstrap > 0 {
		res.bootstrap(opt)
	}
	return res, nil
}

func budgetName(g []Point) string {
	names := make([]string, 0, len(g))
	for _, p := range g {
		names = append(names, p.Run)
	}
	if len(names) > 4 {
		names = append(names[:4], fmt.Sprintf("and %d more", len(g)-4))
	}
	return fmt.Sprintf("budget %.3g FLOPs (%s)", geoMeanC(g), strings.Join(names, ", "))
}

func geoMeanC(g []Point) float64 {
	s := 0.0
	for _, p := range g {
		s += math.Log(p.C)
	}
	return math.Exp(s / float64(len(g)))
}

func distinctN(g []Point) int {
	seen := map[float64]bool{}
	for _, p := range g {
		seen[p.N] = true
	}
	return len(seen)
}

// fitBudget fits the parabola by least squares and places the vertex.
func fitBudget(g []Point, level float64) (*Budget, error) {
	b := &Budget{FLOPs: geoMeanC(g), Runs: len(g), Sizes: distinctN(g), Points: g}
	if b.Sizes < 3 {
		return nil, fmt.Errorf("%s: %d distinct model size(s), a parabola in log N needs at least 3", budgetName(g), b.Sizes)
	}
	ks := make([]float64, len(g))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, p := range g {
		ks[i] = p.C / (p.N * p.D)
		b.Center += math.Log(p.N) / float64(len(g))
		lo, hi = math.Min(lo, math.Log(p.N)), math.Max(hi, math.Log(p.N))
	}
	b.Ratio = median(ks)
	coef, cov, err := parabola(g, b.Center)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", budgetName(g), err)
	}
	b.Coef = coef
	if coef[2] <= 0 {
		return nil, fmt.Errorf("%s: loss is not convex in log N (curvature %.3g ≤ 0), no minimum to place", budgetName(g), coef[2])
	}
	u := -coef[1] / (2 * coef[2])
	x := b.Center + u
	b.NOpt = math.Exp(x)
	b.DOpt = b.FLOPs / (b.Ratio * b.NOpt)
	b.LossOpt = coef[0] + coef[1]*u + coef[2]*u*u
	b.Extrapolated = x < lo || x > hi
	if dof := len(g) - 3; dof > 0 && cov != nil {
		// Delta method: ∂u/∂c1 = −1/(2c2), ∂u/∂c2 = c1/(2c2²).
		g1, g2 := -1/(2*coef[2]), coef[1]/(2*coef[2]*coef[2])
		v := g1*g1*cov.At(1, 1) + 2*g1*g2*cov.At(1, 2) + g2*g2*cov.At(2, 2)
		t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(dof)}.Quantile(1 - (1-level)/2)
		h := t * math.Sqrt(math.Max(v, 0))
		b.NCI = &Interval{math.Exp(x - h), math.Exp(x + h)}
		b.DCI = &Interval{b.FLOPs / (b.Ratio * b.NCI.Hi), b.FLOPs / (b.Ratio * b.NCI.Lo)}
	}
	return b, nil
}

// parabola is the least-squares fit of loss on (1, u, u²), u = ln N − center, and the
// coefficients' covariance σ²(XᵀX)⁻¹ (nil with no residual degrees of freedom).
func parabola(g []Point, center float64) ([3]float64, *mat.SymDense, error) {
	n := len(g)
	X := mat.NewDense(n, 3, nil)
	y := mat.NewVecDense(n, nil)
	for i, p := range g {
		u := math.Log(p.N) - center
		X.Set(i, 0, 1)
		X.Set(i, 1, u)
		X.Set(i, 2, u*u)
		y.SetVec(i, p.Loss)
	}
	var qr mat.QR
	qr.Factorize(X)
	var c mat.VecDense
	if err := qr.SolveVecTo(&c, false, y); err != nil {
		return [3]float64{}, nil, fmt.Errorf("parabola fit: %w", err)
	}
	coef := [3]float64{c.AtVec(0), c.AtVec(1), c.AtVec(2)}
	if n <= 3 {
		return coef, nil, nil
	}
	var r mat.VecDense
	r.MulVec(X, &c)
	r.SubVec(y, &r)
	s2 := mat.Dot(&r, &r) / float64(n-3)
	var xtx mat.SymDense
	xtx.SymOuterK(1, X.T())
	var inv mat.SymDense
	var ch mat.Cholesky
	if !ch.Factorize(&xtx) {
		return coef, nil, nil
	}
	if err := ch.InverseTo(&inv); err != nil {
		return coef, nil, nil
	}
	inv.ScaleSym(s2, &inv)
	return coef, &inv, nil
}

// lawsThrough fits ln N* and ln D* against ln C by least squares.
func lawsThrough(bs []Budget, level float64) (PowerLaw, PowerLaw) {
	x := make([]float64, len(bs))
	yn := make([]float64, len(bs))
	yd := make([]float64, len(bs))
	for i, b := range bs {
		x[i], yn[i], yd[i] = math.Log(b.FLOPs), math.Log(b.NOpt), math.Log(b.DOpt)
	}
	return logLine(x, yn, level), logLine(x, yd, level)
}

// logLine fits y = c + e·x and returns the power law exp(c)·C^e with a Student t interval on e
// (when there are at least 3 points).
func logLine(x, y []float64, level float64) PowerLaw {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i] / n
		my += y[i] / n
	}
	var sxx, sxy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
	}
	e := sxy / sxx
	p := PowerLaw{Exponent: e, Coef: math.Exp(my - e*mx)}
	if len(x) >= 3 {
		var rss float64
		for i := range x {
			r := y[i] - (my + e*(x[i]-mx))
			rss += r * r
		}
		se := math.Sqrt(rss / (n - 2) / sxx)
		t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 2}.Quantile(1 - (1-level)/2)
		p.CI = &Interval{e - t*se, e + t*se}
	}
	return p
}

// bootstrap replaces the intervals by percentile intervals over replicates that resample the
// points within each budget (a replicate redraws a budget until it has 3 sizes and a convex
// profile, and is dropped after 50 failed draws).
func (r *IsoFLOP) bootstrap(opt Options) {
	rng := rand.New(rand.NewPCG(opt.seed(), 0x150f10b))
	nb := len(r.Budgets)
	ns := make([][]float64, nb)
	ds := make([][]float64, nb)
	var an, ad []float64
	reps := make([]Budget, nb)
	for range opt.Bootstrap {
		ok := true
		for i, b := range r.Budgets {
			var fit *Budget
			for try := 0; try < 50 && fit == nil; try++ {
				s := make([]Point, len(b.Points))
				for j := range s {
					s[j] = b.Points[rng.IntN(len(s))]
				}
				fit, _ = fitBudget(s, opt.level())
			}
			if fit == nil {
				ok = false
				break
			}
			reps[i] = *fit
		}
		if !ok {
			continue
		}
		for i := range reps {
			ns[i] = append(ns[i], reps[i].NOpt)
			ds[i] = append(ds[i], reps[i].DOpt)
		}
		ln, ld := lawsThrough(reps, opt.level())
		an, ad = append(an, ln.Exponent), append(ad, ld.Exponent)
	}
	if len(an) < 10 {
		return // too few usable replicates: keep the analytic intervals
	}
	r.Method = "bootstrap"
	for i := range r.Budgets {
		r.Budgets[i].NCI = percentile(ns[i], opt.level())
		r.Budgets[i].DCI = percentile(ds[i], opt.level())
	}
	r.N.CI = percentile(an, opt.level())
	r.D.CI = percentile(ad, opt.level())
}
