// Package scaling fits compute-optimal scaling laws to a sweep's results.
//
// Two methods of Hoffmann et al. (2022, "Training Compute-Optimal Large Language Models"):
//
//   - IsoFLOP profiles (their approach 2): runs are grouped into compute budgets C; within one
//     budget the loss is fitted by a parabola in log N and its vertex is the compute-optimal
//     size N*(C); power laws N* = k_N·C^a and D* = k_D·C^b are then fitted through the vertices.
//   - A parametric loss (their approach 3, refitted by Besiroglu et al. 2024, "Chinchilla
//     Scaling: A replication attempt"): L(N, D) = E + A/N^α + B/D^β, fitted by minimising the
//     Huber loss (δ = 1e-3) of log L residuals with L-BFGS from a grid of starting points.
//     Minimising L at fixed C = k·N·D gives N*(C) = G·(C/k)^(β/(α+β)), D*(C) = (C/k)^(α/(α+β))/G,
//     G = (αA/(βB))^(1/(α+β)).
//
// Symbols: N parameters, D training tokens, C training FLOPs, L the loss metric (nats per token
// unless the metric says otherwise), k = C/(N·D) the FLOPs per parameter per token (≈ 6 for a
// Transformer without attention FLOPs).
package scaling

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/hybridlab/hybrid/results"
)

// ParamKind selects which parameter count is N.
type ParamKind string

const (
	Total        ParamKind = "total"         // results.Cost.Params
	NonEmbedding ParamKind = "non_embedding" // results.Cost.NonEmbeddingParams
)

// DefaultMetric is the loss used when Options.Metric is empty.
const DefaultMetric = "lm.nll"

// Point is one run as the fits see it.
type Point struct {
	Run    string  `json:"run"` // recipe and config hash, for messages
	Family string  `json:"family"`
	N      float64 `json:"n"`    // parameters
	D      float64 `json:"d"`    // training tokens
	C      float64 `json:"c"`    // training FLOPs
	Loss   float64 `json:"loss"` // the metric
}

// Options control extraction and fitting. The zero value is usable.
type Options struct {
	Metric string    // loss metric key; "" is DefaultMetric
	Params ParamKind // "" is Total
	By     string    // "family" fits each family separately (and all together); "" fits all together

	BudgetTol float64 // relative FLOPs tolerance that makes runs one budget; 0 is 0.1
	// FLOPsRatio is k in C = k·N·D for the compute-optimal allocation. 0 uses the runs' own
	// ratio (the median of C/(N·D) over the fitted runs), which counts attention and SSM FLOPs.
	FLOPsRatio float64
	RefFLOPs   float64 // compute at which tokens per parameter are compared; 0 is the largest budget among all runs

	Bootstrap int     // bootstrap replicates for the intervals; 0 uses the analytic intervals only
	Seed      uint64  // bootstrap seed; 0 is 1
	Grid      *Grid   // parametric starting points; nil is CoarseGrid
	Level     float64 // interval coverage; 0 is 0.95
}

func (o Options) metric() string {
	if o.Metric == "" {
		return DefaultMetric
	}
	return o.Metric
}

func (o Options) params() ParamKind {
	if o.Params == "" {
		return Total
	}
	return o.Params
}

func (o Options) tol() float64 {
	if o.BudgetTol <= 0 {
		return 0.1
	}
	return o.BudgetTol
}

func (o Options) seed() uint64 {
	if o.Seed == 0 {
		return 1
	}
	return o.Seed
}

func (o Options) level() float64 {
	if o.Level <= 0 || o.Level >= 1 {
		return 0.95
	}
	return o.Level
}

// RunName is how messages and tables name a run: recipe@hash-prefix.
func RunName(r *results.Results) string {
	h := r.ConfigHash
	if len(h) > 8 {
		h = h[:8]
	}
	switch {
	case r.Recipe == "" && h == "":
		return "(unnamed run)"
	case h == "":
		return r.Recipe
	}
	return r.Recipe + "@" + h
}

// Points extracts N, D, C and the loss metric from each run. Every value must be finite and
// positive (the fits take logs); the error names each offending run and field.
func Points(rs []*results.Results, opt Options) ([]Point, error) {
	if len(rs) == 0 {
		return nil, errors.New("scaling: no runs given")
	}
	pk := opt.params()
	if pk != Total && pk != NonEmbedding {
		return nil, fmt.Errorf("scaling: params %q: want %q or %q", pk, Total, NonEmbedding)
	}
	key := opt.metric()
	var errs []error
	var out []Point
	for _, r := range rs {
		name := RunName(r)
		p := Point{Run: name, Family: r.Family, D: float64(r.Cost.Tokens), C: r.Cost.FLOPs}
		nField := "cost.params"
		p.N = float64(r.Cost.Params)
		if pk == NonEmbedding {
			nField, p.N = "cost.non_embedding_params", float64(r.Cost.NonEmbeddingParams)
		}
		v, ok := r.Metric(key)
		if !ok {
			errs = append(errs, fmt.Errorf("run %s: no metric %q (it has %s)", name, key, keyList(r.Metrics)))
			continue
		}
		p.Loss = v
		bad := false
		for _, f := range []struct {
			name string
			v    float64
		}{{nField, p.N}, {"cost.tokens", p.D}, {"cost.flops", p.C}, {key, p.Loss}} {
			if !results.Finite(f.v) || f.v <= 0 {
				errs = append(errs, fmt.Errorf("run %s: %s = %g, need a finite value > 0 (fits take its log)", name, f.name, f.v))
				bad = true
			}
		}
		if !bad {
			out = append(out, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("scaling: %w", err)
	}
	return out, nil
}

func keyList(m map[string]float64) string {
	if len(m) == 0 {
		return "no metrics"
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	if len(ks) > 12 {
		ks = append(ks[:12], "...")
	}
	return strings.Join(ks, ", ")
}

// Groups splits points by family (sorted by family name). Runs without a family go to "other".
func Groups(ps []Point) (names []string, groups map[string][]Point) {
	groups = map[string][]Point{}
	for _, p := range ps {
		f := p.Family
		if f == "" {
			f = "other"
		}
		groups[f] = append(groups[f], p)
	}
	for f := range groups {
		names = append(names, f)
	}
	sort.Strings(names)
	return names, groups
}

// Ratio is the median of C/(N·D) over ps: the FLOPs per parameter per token the runs' own
// accounting implies.
func Ratio(ps []Point) float64 {
	if len(ps) == 0 {
		return math.NaN()
	}
	ks := make([]float64, len(ps))
	for i, p := range ps {
		ks[i] = p.C / (p.N * p.D)
	}
	return median(ks)
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// quantile is the linear-interpolation sample quantile of sorted s.
func quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	h := q * float64(len(s)-1)
	i := int(math.Floor(h))
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[i] + (h-float64(i))*(s[i+1]-s[i])
}

// Interval is a confidence interval [Lo, Hi].
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// percentile returns the central level interval of the finite values in x, or nil when fewer
// than 10 are finite.
func percentile(x []float64, level float64) *Interval {
	s := make([]float64, 0, len(x))
	for _, v := range x {
		if results.Finite(v) {
			s = append(s, v)
		}
	}
	if len(s) < 10 {
		return nil
	}
	sort.Float64s(s)
	a := (1 - level) / 2
	return &Interval{quantile(s, a), quantile(s, 1-a)}
}
