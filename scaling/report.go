package scaling

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"

	"github.com/hybridlab/hybrid/results"
)

// All names the group holding every run.
const All = "all"

// GroupFit is both fits of one group of runs. A fit that cannot be made leaves its error
// message and a nil result; the other fit still stands.
type GroupFit struct {
	Group           string      `json:"group"` // a family, or All
	Runs            int         `json:"runs"`
	IsoFLOP         *IsoFLOP    `json:"isoflop,omitempty"`
	IsoFLOPError    string      `json:"isoflop_error,omitempty"`
	Parametric      *Parametric `json:"parametric,omitempty"`
	ParametricError string      `json:"parametric_error,omitempty"`
}

// Report is what `hybrid scaling fit` computes and writes as fits.json.
type Report struct {
	Metric    string     `json:"metric"`
	Params    ParamKind  `json:"params"`
	BudgetTol float64    `json:"budget_tol"`
	Level     float64    `json:"level"`     // interval coverage
	RefFLOPs  float64    `json:"ref_flops"` // common compute for the tokens-per-parameter comparison
	Bootstrap int        `json:"bootstrap"`
	Seed      uint64     `json:"seed"`
	Groups    []GroupFit `json:"groups"`
}

// Fit extracts the points of rs and fits every group (All, then each family when opt.By is
// "family"). It fails only when the points cannot be extracted or no fit at all succeeds.
func Fit(rs []*results.Results, opt Options) (*Report, error) {
	if opt.By != "" && opt.By != "family" {
		return nil, fmt.Errorf("scaling: --by %q: only \"family\" (or nothing) is supported", opt.By)
	}
	ps, err := Points(rs, opt)
	if err != nil {
		return nil, err
	}
	if opt.RefFLOPs <= 0 {
		for _, p := range ps {
			opt.RefFLOPs = math.Max(opt.RefFLOPs, p.C)
		}
	}
	rep := &Report{Metric: opt.metric(), Params: opt.params(), BudgetTol: opt.tol(), Level: opt.level(), RefFLOPs: opt.RefFLOPs,
		Bootstrap: opt.Bootstrap, Seed: opt.seed()}
	rep.Groups = append(rep.Groups, fitGroup(All, ps, opt))
	if opt.By == "family" {
		names, groups := Groups(ps)
		for _, n := range names {
			rep.Groups = append(rep.Groups, fitGroup(n, groups[n], opt))
		}
	}
	ok := false
	for _, g := range rep.Groups {
		ok = ok || g.IsoFLOP != nil || g.Parametric != nil
	}
	if !ok {
		g := rep.Groups[0]
		return rep, fmt.Errorf("scaling: no fit succeeded: %s; %s", g.IsoFLOPError, g.ParametricError)
	}
	return rep, nil
}

func fitGroup(name string, ps []Point, opt Options) GroupFit {
	g := GroupFit{Group: name, Runs: len(ps)}
	if iso, err := FitIsoFLOP(ps, opt); err != nil {
		g.IsoFLOPError = err.Error()
	} else {
		g.IsoFLOP = iso
	}
	if par, err := FitParametric(ps, opt); err != nil {
		g.ParametricError = err.Error()
	} else {
		g.Parametric = par
	}
	return g
}

// WriteJSON writes the report indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func ci(c *Interval, f func(float64) string) string {
	if c == nil {
		return ""
	}
	return "[" + f(c.Lo) + ", " + f(c.Hi) + "]"
}

func g4(v float64) string  { return strconv.FormatFloat(v, 'g', 4, 64) }
func f3(v float64) string  { return strconv.FormatFloat(v, 'f', 3, 64) }
func sci(v float64) string { return strconv.FormatFloat(v, 'e', 2, 64) }

// WriteTable prints the fits for a console: the parametric laws, the isoFLOP vertices and
// power laws, and tokens per parameter at the optimum side by side.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "metric %s, N = %s parameters, budgets within %.0f%% FLOPs, intervals %.0f%%", r.Metric, r.Params, 100*r.BudgetTol, 100*r.Level)
	if r.Bootstrap > 0 {
		fmt.Fprintf(tw, " (bootstrap %d, seed %d)", r.Bootstrap, r.Seed)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "\nparametric fit L(N,D) = E + A/N^α + B/D^β")
	fmt.Fprintln(tw, "group\truns\tE\tA\tα\tB\tβ\tN*∝C^a\tD*∝C^b\tk=C/(ND)\t")
	for _, g := range r.Groups {
		p := g.Parametric
		if p == nil {
			fmt.Fprintf(tw, "%s\t%d\t(%s)\t\n", g.Group, g.Runs, g.ParametricError)
			continue
		}
		c := func(k string, f func(float64) string) string { return ci(p.CI[k], f) }
		fmt.Fprintf(tw, "%s\t%d\t%s %s\t%s %s\t%s %s\t%s %s\t%s %s\t%s %s\t%s %s\t%.2f (%s)\t\n", g.Group, g.Runs,
			f3(p.E), c("E", f3), g4(p.A), c("A", g4), f3(p.Alpha), c("alpha", f3), g4(p.B), c("B", g4), f3(p.Beta), c("beta", f3),
			f3(p.NExp), c("n_exponent", f3), f3(p.DExp), c("d_exponent", f3), p.Ratio, p.RatioSource)
	}
	fmt.Fprintln(tw, "\nisoFLOP vertices (parabola in ln N per budget)")
	fmt.Fprintln(tw, "group\tbudget C\truns\tsizes\tN*\tD*\tD*/N*\tloss*\t")
	for _, g := range r.Groups {
		if g.IsoFLOP == nil {
			fmt.Fprintf(tw, "%s\t(%s)\t\n", g.Group, g.IsoFLOPError)
			continue
		}
		for _, b := range g.IsoFLOP.Budgets {
			mark := ""
			if b.Extrapolated {
				mark = " (outside the sizes run)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s %s%s\t%s %s\t%.1f\t%s\t\n", g.Group, sci(b.FLOPs), b.Runs, b.Sizes,
				sci(b.NOpt), ci(b.NCI, sci), mark, sci(b.DOpt), ci(b.DCI, sci), b.DOpt/b.NOpt, f3(b.LossOpt))
		}
	}
	fmt.Fprintln(tw, "\nisoFLOP power laws through the vertices")
	fmt.Fprintln(tw, "group\tN* ∝ C^a\tD* ∝ C^b\t")
	for _, g := range r.Groups {
		if g.IsoFLOP != nil {
			iso := g.IsoFLOP
			fmt.Fprintf(tw, "%s\t%s %s\t%s %s\t\n", g.Group, f3(iso.N.Exponent), ci(iso.N.CI, f3), f3(iso.D.Exponent), ci(iso.D.CI, f3))
		}
	}
	fmt.Fprintf(tw, "\ntokens per parameter at the optimum, C = %s FLOPs\n", sci(r.RefFLOPs))
	fmt.Fprintln(tw, "group\tparametric D*/N*\tisoFLOP D*/N*\tparametric N*\tisoFLOP N*\t")
	for _, g := range r.Groups {
		pt, pn, it, in := "-", "-", "-", "-"
		if p := g.Parametric; p != nil {
			pt = fmt.Sprintf("%.1f %s", p.TokensPerParam, ci(p.CI["tokens_per_param"], func(v float64) string { return fmt.Sprintf("%.1f", v) }))
			pn = sci(p.NOpt)
		}
		if iso := g.IsoFLOP; iso != nil {
			n, d := iso.N.At(r.RefFLOPs), iso.D.At(r.RefFLOPs)
			it, in = fmt.Sprintf("%.1f", d/n), sci(n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", g.Group, pt, it, pn, in)
	}
	return tw.Flush()
}

// WriteCSV writes one row per group: the parametric law and allocation, then the isoFLOP
// exponents (empty where a fit is missing). Interval columns are *_lo and *_hi.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	pk := []string{"E", "A", "B", "alpha", "beta", "n_exponent", "d_exponent", "n_opt", "d_opt", "tokens_per_param"}
	head := []string{"group", "runs", "metric", "params", "ref_flops", "flops_ratio"}
	for _, k := range pk {
		head = append(head, k, k+"_lo", k+"_hi")
	}
	head = append(head, "iso_n_exponent", "iso_n_exponent_lo", "iso_n_exponent_hi", "iso_d_exponent", "iso_d_exponent_lo", "iso_d_exponent_hi", "iso_budgets")
	if err := cw.Write(head); err != nil {
		return err
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	iv := func(c *Interval) []string {
		if c == nil {
			return []string{"", ""}
		}
		return []string{num(c.Lo), num(c.Hi)}
	}
	for _, g := range r.Groups {
		row := []string{g.Group, strconv.Itoa(g.Runs), r.Metric, string(r.Params), num(r.RefFLOPs)}
		if p := g.Parametric; p != nil {
			row = append(row, num(p.Ratio))
			for i, v := range []float64{p.E, p.A, p.B, p.Alpha, p.Beta, p.NExp, p.DExp, p.NOpt, p.DOpt, p.TokensPerParam} {
				row = append(append(row, num(v)), iv(p.CI[pk[i]])...)
			}
		} else {
			row = append(row, make([]string, 1+3*len(pk))...)
		}
		if iso := g.IsoFLOP; iso != nil {
			row = append(append(row, num(iso.N.Exponent)), iv(iso.N.CI)...)
			row = append(append(row, num(iso.D.Exponent)), iv(iso.D.CI)...)
			row = append(row, strconv.Itoa(len(iso.Budgets)))
		} else {
			row = append(row, make([]string, 7)...)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteBudgetsCSV writes one row per isoFLOP budget of every group.
func (r *Report) WriteBudgetsCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"group", "flops", "runs", "sizes", "n_opt", "n_lo", "n_hi", "d_opt", "d_lo", "d_hi", "loss_opt", "c0", "c1", "c2", "center", "extrapolated"}); err != nil {
		return err
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	iv := func(c *Interval) []string {
		if c == nil {
			return []string{"", ""}
		}
		return []string{num(c.Lo), num(c.Hi)}
	}
	for _, g := range r.Groups {
		if g.IsoFLOP == nil {
			continue
		}
		for _, b := range g.IsoFLOP.Budgets {
			row := []string{g.Group, num(b.FLOPs), strconv.Itoa(b.Runs), strconv.Itoa(b.Sizes), num(b.NOpt)}
			row = append(row, iv(b.NCI)...)
			row = append(row, num(b.DOpt))
			row = append(row, iv(b.DCI)...)
			row = append(row, num(b.LossOpt), num(b.Coef[0]), num(b.Coef[1]), num(b.Coef[2]), num(b.Center), strconv.FormatBool(b.Extrapolated))
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
