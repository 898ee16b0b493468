package scaling

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"

	"github.com/hybridlab/hybrid/results"
	"gonum.org/v1/gonum/optimize"
)

// HuberDelta is the Huber loss threshold on log-loss residuals (Hoffmann et al. 2022).
const HuberDelta = 1e-3

// Grid is the set of starting points for the parametric fit, in the fitted coordinates
// θ = (a, b, e, α, β) with A = eᵃ, B = eᵇ, E = eᵉ: every combination is one start.
type Grid struct {
	A, B, E, Alpha, Beta []float64
}

// CoarseGrid is the default: 3·3·3·5·5 = 675 starts (Hoffmann's grid thinned).
var CoarseGrid = &Grid{
	A:     []float64{0, 5, 10, 15, 20},
	B:     []float64{0, 5, 10, 15, 20},
	E:     []float64{-1, 0, 1},
	Alpha: []float64{0.2, 0.6, 1.2},
	Beta:  []float64{0.2, 0.6, 1.2},
}

// HoffmannGrid is the grid of Hoffmann et al. (2022) as used by Besiroglu et al. (2024):
// α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25} (4,500 starts).
var HoffmannGrid = &Grid{
	A:     []float64{0, 5, 10, 15, 20, 25},
	B:     []float64{0, 5, 10, 15, 20, 25},
	E:     []float64{-1, -0.5, 0, 0.5, 1},
	Alpha: []float64{0, 0.5, 1, 1.5, 2},
	Beta:  []float64{0, 0.5, 1, 1.5, 2},
}

func (g *Grid) starts() [][]float64 {
	var out [][]float64
	for _, a := range g.A {
		for _, b := range g.B {
			for _, e := range g.E {
				for _, al := range g.Alpha {
					for _, be := range g.Beta {
						out = append(out, []float64{a, b, e, al, be})
					}
				}
			}
		}
	}
	return out
}

// Law is L(N, D) = E + A/N^α + B/D^β.
type Law struct {
	E     float64 `json:"E"`
	A     float64 `json:"A"`
	B     float64 `json:"B"`
	Alpha float64 `json:"alpha"`
	Beta  float64 `json:"beta"`
}

// Loss evaluates the law.
func (l Law) Loss(n, d float64) float64 {
	return l.E + l.A*math.Pow(n, -l.Alpha) + l.B*math.Pow(d, -l.Beta)
}

// G is (αA/(βB))^(1/(α+β)).
func (l Law) G() float64 {
	return math.Pow(l.Alpha*l.A/(l.Beta*l.B), 1/(l.Alpha+l.Beta))
}

// Optimal is the loss-minimising split of compute c with C = k·N·D:
// N* = G·(C/k)^(β/(α+β)), D* = (C/k)^(α/(α+β))/G.
func (l Law) Optimal(c, k float64) (n, d float64) {
	g, s := l.G(), l.Alpha+l.Beta
	return g * math.Pow(c/k, l.Beta/s), math.Pow(c/k, l.Alpha/s) / g
}

// Parametric is a fitted Law with its bootstrap intervals and the allocation it implies.
type Parametric struct {
	Law
	Objective float64 `json:"objective"` // summed Huber loss at the fit
	Points    int     `json:"points"`
	Starts    int     `json:"starts"`
	// Ratio is k in C = k·N·D used for the allocation; RatioSource is "runs" (the median
	// C/(N·D) of the fitted runs) or "fixed" (Options.FLOPsRatio).
	Ratio       float64 `json:"flops_ratio"`
	RatioSource string  `json:"flops_ratio_source"`
	NExp        float64 `json:"n_exponent"` // a = β/(α+β)
	DExp        float64 `json:"d_exponent"` // b = α/(α+β)

	RefFLOPs       float64 `json:"ref_flops"`
	NOpt           float64 `json:"n_opt"` // at RefFLOPs
	DOpt           float64 `json:"d_opt"`
	TokensPerParam float64 `json:"tokens_per_param"`

	Bootstrap int                  `json:"bootstrap,omitempty"` // replicates that converged
	CI        map[string]*Interval `json:"ci,omitempty"`        // keyed by the JSON names above
}

// theta ↔ Law.
func lawOf(t []float64) Law {
	return Law{A: math.Exp(t[0]), B: math.Exp(t[1]), E: math.Exp(t[2]), Alpha: t[3], Beta: t[4]}
}

// objective is Σ Huber_δ(LSE(a − α ln N, b − β ln D, e) − ln L) and its gradient.
type objective struct {
	lnN, lnD, lnL []float64
}

func newObjective(ps []Point) *objective {
	o := &objective{}
	for _, p := range ps {
		o.lnN = append(o.lnN, math.Log(p.N))
		o.lnD = append(o.lnD, math.Log(p.D))
		o.lnL = append(o.lnL, math.Log(p.Loss))
	}
	return o
}

// eval returns the objective and, when grad is not nil, assigns its gradient.
func (o *objective) eval(grad, t []float64) float64 {
	a, b, e, al, be := t[0], t[1], t[2], t[3], t[4]
	if grad != nil {
		clear(grad)
	}
	f := 0.0
	for i := range o.lnN {
		u, v := a-al*o.lnN[i], b-be*o.lnD[i]
		m := math.Max(u, math.Max(v, e))
		wu, wv, we := math.Exp(u-m), math.Exp(v-m), math.Exp(e-m)
		s := wu + wv + we
		r := m + math.Log(s) - o.lnL[i]
		var dr float64 // dHuber/dr
		if math.Abs(r) <= HuberDelta {
			f += 0.5 * r * r
			dr = r
		} else {
			f += HuberDelta * (math.Abs(r) - 0.5*HuberDelta)
			dr = math.Copysign(HuberDelta, r)
		}
		if grad != nil {
			wu, wv, we = dr*wu/s, dr*wv/s, dr*we/s
			grad[0] += wu
			grad[1] += wv
			grad[2] += we
			grad[3] -= wu * o.lnN[i]
			grad[4] -= wv * o.lnD[i]
		}
	}
	return f
}

// minimize runs L-BFGS from start; it returns the best point seen (a line-search failure near
// the optimum still leaves a usable point).
func (o *objective) minimize(start []float64, iters int) ([]float64, float64) {
	p := optimize.Problem{
		Func: func(t []float64) float64 { return o.eval(nil, t) },
		Grad: func(g, t []float64) { o.eval(g, t) },
	}
	set := &optimize.Settings{
		GradientThreshold: 1e-14,
		MajorIterations:   iters,
		Converger:         &optimize.FunctionConverge{Absolute: 1e-16, Relative: 1e-12, Iterations: 20},
	}
	// An error here is a stalled line search or the iteration cap; the point reached is
	// still the best this start gives, and the caller compares starts by objective.
	res, _ := optimize.Minimize(p, start, set, &optimize.LBFGS{})
	if res == nil || !results.Finite(res.F) {
		return nil, math.Inf(1)
	}
	return res.X, res.F
}

// Iterations of the two stages of best: every start gets a short run, the few best are then
// polished to convergence (most starts end in the same basin, so full runs from all of them
// would cost the grid times over for nothing).
const (
	scoutIters  = 40
	polishIters = 3000
	polishTop   = 8
)

// best minimises from every start (in parallel) and returns the lowest objective among fits
// with positive exponents.
func (o *objective) best(starts [][]float64) ([]float64, float64) {
	scout := o.each(starts, scoutIters)
	sort.SliceStable(scout, func(i, j int) bool { return scout[i].f < scout[j].f })
	var top [][]float64
	for _, s := range scout {
		if len(top) == polishTop || s.x == nil {
			break
		}
		top = append(top, s.x)
	}
	bx, bf := []float64(nil), math.Inf(1)
	for _, f := range o.each(top, polishIters) {
		if f.x == nil || f.x[3] <= 0 || f.x[4] <= 0 {
			continue
		}
		if f.f < bf {
			bx, bf = f.x, f.f
		}
	}
	return bx, bf
}

type fit struct {
	x []float64
	f float64
}

// each minimises from every start in parallel.
func (o *objective) each(starts [][]float64, iters int) []fit {
	fits := make([]fit, len(starts))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				x, f := o.minimize(starts[i], iters)
				fits[i] = fit{x, f}
			}
		}()
	}
	for i := range starts {
		next <- i
	}
	close(next)
	wg.Wait()
	return fits
}

// MinPoints is the fewest runs the parametric fit accepts (5 parameters, and at least two
// sizes and two token counts to tell the terms apart).
const MinPoints = 8

// FitParametric fits L(N, D) = E + A/N^α + B/D^β to ps. Intervals come from opt.Bootstrap
// replicates (points resampled with replacement, seeded by opt.Seed), each started from the
// full fit and its nearest rivals.
func FitParametric(ps []Point, opt Options) (*Parametric, error) {
	if len(ps) < MinPoints {
		return nil, fmt.Errorf("parametric fit: %d runs, need at least %d", len(ps), MinPoints)
	}
	if distinctN(ps) < 2 {
		return nil, errors.New("parametric fit: every run has the same N; need at least 2 model sizes")
	}
	ds := map[float64]bool{}
	for _, p := range ps {
		ds[p.D] = true
	}
	if len(ds) < 2 {
		return nil, errors.New("parametric fit: every run has the same D; need at least 2 token counts")
	}
	grid := opt.Grid
	if grid == nil {
		grid = CoarseGrid
	}
	starts := grid.starts()
	if len(starts) == 0 {
		return nil, errors.New("parametric fit: empty grid of starting points")
	}
	obj := newObjective(ps)
	x, f := obj.best(starts)
	if x == nil {
		return nil, fmt.Errorf("parametric fit: no start of %d converged to positive exponents", len(starts))
	}
	p := &Parametric{Law: lawOf(x), Objective: f, Points: len(ps), Starts: len(starts)}
	p.Ratio, p.RatioSource = opt.FLOPsRatio, "fixed"
	if p.Ratio <= 0 {
		p.Ratio, p.RatioSource = Ratio(ps), "runs"
	}
	p.RefFLOPs = opt.RefFLOPs
	if p.RefFLOPs <= 0 {
		for _, q := range ps {
			p.RefFLOPs = math.Max(p.RefFLOPs, q.C)
		}
	}
	p.fillDerived()
	if opt.Bootstrap > 0 {
		p.bootstrap(ps, x, opt)
	}
	return p, nil
}

func (p *Parametric) fillDerived() {
	s := p.Alpha + p.Beta
	p.NExp, p.DExp = p.Beta/s, p.Alpha/s
	p.NOpt, p.DOpt = p.Optimal(p.RefFLOPs, p.Ratio)
	p.TokensPerParam = p.DOpt / p.NOpt
}

func (p *Parametric) bootstrap(ps []Point, x []float64, opt Options) {
	rng := rand.New(rand.NewPCG(opt.seed(), 0xb007))
	// Warm starts: the full fit, and small perturbations of it (a resample moves the optimum
	// only a little; a fresh grid per replicate would cost the grid times over).
	starts := [][]float64{x}
	for _, d := range [][]float64{{1, 0, 0, 0.05, 0}, {0, 1, 0, 0, 0.05}, {-1, -1, 0, -0.05, -0.05}, {0, 0, 0.2, 0, 0}} {
		s := make([]float64, 5)
		for i := range s {
			s[i] = x[i] + d[i]
		}
		starts = append(starts, s)
	}
	keys := []string{"E", "A", "B", "alpha", "beta", "n_exponent", "d_exponent", "n_opt", "d_opt", "tokens_per_param"}
	vals := make(map[string][]float64, len(keys))
	sample := make([]Point, len(ps))
	for range opt.Bootstrap {
		for i := range sample {
			sample[i] = ps[rng.IntN(len(ps))]
		}
		bx, _ := newObjective(sample).best(starts)
		if bx == nil {
			continue
		}
		q := &Parametric{Law: lawOf(bx), Ratio: p.Ratio, RefFLOPs: p.RefFLOPs}
		q.fillDerived()
		for k, v := range map[string]float64{"E": q.E, "A": q.A, "B": q.B, "alpha": q.Alpha, "beta": q.Beta,
			"n_exponent": q.NExp, "d_exponent": q.DExp, "n_opt": q.NOpt, "d_opt": q.DOpt, "tokens_per_param": q.TokensPerParam} {
			vals[k] = append(vals[k], v)
		}
		p.Bootstrap++
	}
	p.CI = map[string]*Interval{}
	for _, k := range keys {
		if ci := percentile(vals[k], opt.level()); ci != nil {
			p.CI[k] = ci
		}
	}
	if len(p.CI) == 0 {
		p.CI = nil
	}
}
