package figure

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/hybridlab/hybrid/results"
	"github.com/hybridlab/hybrid/scaling"
)

// Options select what a figure shows.
type Options struct {
	Metric string            // loss-flops, isoflop, optimal, summary: the metric key ("" is lm.nll)
	X      string            // summary: dotted recipe path of the swept parameter ("train.lr")
	Group  string            // dotted recipe path that names a series; "" groups by family
	Params scaling.ParamKind // isoflop, optimal: N is total or non-embedding parameters
}

func (o Options) metric() string {
	if o.Metric == "" {
		return scaling.DefaultMetric
	}
	return o.Metric
}

// Kinds are the figures by the name the CLI uses.
var Kinds = map[string]func([]*results.Results, Options) (*Figure, error){
	"loss-flops": LossFLOPs,
	"isoflop":    IsoFLOP,
	"optimal":    Optimal,
	"position":   Position,
	"needle":     Needle,
	"decode":     Decode,
	"throughput": Throughput,
	"summary":    Summary,
}

// KindNames lists Kinds in a fixed order.
var KindNames = []string{"loss-flops", "isoflop", "optimal", "position", "needle", "decode", "throughput", "summary"}

// metricLabel names a metric with its unit for an axis.
func metricLabel(key string) string {
	switch {
	case strings.Contains(key, "bpb") || strings.Contains(key, "bits_per_byte"):
		return key + " (bits/byte)"
	case strings.Contains(key, "nll") || strings.HasPrefix(key, "train.loss") || key == "train.best_val":
		return key + " (nats/token)"
	case strings.Contains(key, "accuracy"):
		return key + " (fraction)"
	case strings.Contains(key, "tokens_per_sec"):
		return key + " (tokens/s)"
	case strings.Contains(key, "bytes"):
		return key + " (bytes)"
	}
	return key
}

// tokenizerBound reports whether values of metric are comparable only within one tokenizer
// (bits per byte as results.Tokenizer documents, and any per-token loss).
func tokenizerBound(metric string) bool {
	return strings.Contains(metric, "bpb") || strings.Contains(metric, "bits_per_byte") || strings.Contains(metric, "nll") ||
		strings.Contains(metric, "ppl") || strings.HasPrefix(metric, "train.") || strings.HasPrefix(metric, "long_context.")
}

// checkInput refuses empty input and, for tokenizer-bound metrics, mixed tokenizers.
func checkInput(kind string, rs []*results.Results, metric string) error {
	if len(rs) == 0 {
		return fmt.Errorf("%s: no runs to plot", kind)
	}
	if metric == "" || !tokenizerBound(metric) {
		return nil
	}
	toks := map[string][]string{}
	for _, r := range rs {
		toks[r.Tokenizer] = append(toks[r.Tokenizer], scaling.RunName(r))
	}
	if len(toks) > 1 {
		var parts []string
		for t, runs := range toks {
			if t == "" {
				t = "(none)"
			}
			parts = append(parts, fmt.Sprintf("%s: %s", t, strings.Join(first(runs, 3), ", ")))
		}
		sort.Strings(parts)
		return fmt.Errorf("%s: %s from runs with %d tokenizers cannot share a plot (%s); plot each tokenizer separately", kind, metric, len(toks), strings.Join(parts, "; "))
	}
	return nil
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(append([]string{}, s[:n]...), fmt.Sprintf("%d more", len(s)-n))
	}
	return s
}

// ConfigValue reads a dotted path ("train.lr", "model.layout.ratio") from the run's resolved
// recipe. Numbers come back as float64, everything else as its JSON text.
func ConfigValue(r *results.Results, path string) (any, error) {
	if len(r.Config) == 0 {
		return nil, fmt.Errorf("run %s: no resolved config to read %q from", scaling.RunName(r), path)
	}
	var v any
	if err := json.Unmarshal(r.Config, &v); err != nil {
		return nil, fmt.Errorf("run %s: config: %w", scaling.RunName(r), err)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("run %s: config path %q: %q is not inside an object", scaling.RunName(r), path, k)
		}
		if v, ok = m[k]; !ok {
			keys := make([]string, 0, len(m))
			for kk := range m {
				keys = append(keys, kk)
			}
			sort.Strings(keys)
			return nil, fmt.Errorf("run %s: config path %q: no %q (there: %s)", scaling.RunName(r), path, k, strings.Join(keys, ", "))
		}
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case string:
		return x, nil
	}
	b, _ := json.Marshal(v)
	return string(b), nil
}

// design names the series a run belongs to: the Group config path, else its family, else its recipe.
func design(r *results.Results, group string) (string, error) {
	if group != "" {
		v, err := ConfigValue(r, group)
		if err != nil {
			return "", err
		}
		if f, ok := v.(float64); ok {
			return group + "=" + strconv.FormatFloat(f, 'g', -1, 64), nil
		}
		return fmt.Sprint(v), nil
	}
	if r.Family != "" {
		return r.Family, nil
	}
	return r.Recipe, nil
}

// groupRuns splits runs by design, in sorted order.
func groupRuns(rs []*results.Results, group string) ([]string, map[string][]*results.Results, error) {
	m := map[string][]*results.Results{}
	var errs []error
	for _, r := range rs {
		d, err := design(r, group)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m[d] = append(m[d], r)
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, m, errors.Join(errs...)
}

// LossFLOPs is the metric against training FLOPs per design (log-log) with the fitted
// compute frontier: L(N*(C), D*(C)) of the parametric fit on all runs when it can be made,
// else the power law through the runs that are best so far in compute order.
func LossFLOPs(rs []*results.Results, opt Options) (*Figure, error) {
	key := opt.metric()
	if err := checkInput("loss-flops", rs, key); err != nil {
		return nil, err
	}
	names, groups, err := groupRuns(rs, opt.Group)
	if err != nil {
		return nil, err
	}
	f := &Figure{Header: []string{"series", "run", "flops", key}}
	p := newPlot(key+" against training compute", "training compute (FLOPs)", metricLabel(key), true, true)
	var pal palette
	var all []scaling.Point
	for i, n := range names {
		var xy plotter.XYs
		for _, r := range groups[n] {
			v, ok := r.Metric(key)
			if !ok {
				return nil, fmt.Errorf("loss-flops: run %s has no metric %q", scaling.RunName(r), key)
			}
			if err := positive("cost.flops", scaling.RunName(r), r.Cost.FLOPs); err != nil {
				return nil, fmt.Errorf("loss-flops: %w", err)
			}
			if err := positive(key, scaling.RunName(r), v); err != nil {
				return nil, fmt.Errorf("loss-flops: %w", err)
			}
			xy = append(xy, plotter.XY{X: r.Cost.FLOPs, Y: v})
			f.add(n, scaling.RunName(r), r.Cost.FLOPs, v)
		}
		if err := points(p, n, xy, pal.colour(n), i, false); err != nil {
			return nil, err
		}
	}
	if ps, err := scaling.Points(rs, scaling.Options{Metric: key, Params: opt.Params}); err == nil {
		all = ps
	}
	if front, label := frontier(all); len(front) > 1 {
		if err := line(p, label, front, color.Gray{60}, true); err != nil {
			return nil, err
		}
		for _, q := range front {
			f.add("frontier", label, q.X, q.Y)
		}
	}
	f.Panels = []Panel{{Plot: p}}
	return f, nil
}

// frontier is the fitted compute frontier over the span of the runs' FLOPs.
func frontier(ps []scaling.Point) (plotter.XYs, string) {
	if len(ps) < 2 {
		return nil, ""
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		lo, hi = math.Min(lo, p.C), math.Max(hi, p.C)
	}
	if !(hi > lo) {
		return nil, ""
	}
	grid := func(f func(c float64) float64) plotter.XYs {
		var xy plotter.XYs
		for i := 0; i <= 40; i++ {
			c := lo * math.Pow(hi/lo, float64(i)/40)
			xy = append(xy, plotter.XY{X: c, Y: f(c)})
		}
		return xy
	}
	if par, err := scaling.FitParametric(ps, scaling.Options{}); err == nil {
		return grid(func(c float64) float64 { return par.Loss(par.Optimal(c, par.Ratio)) }), "frontier: L(N*(C), D*(C)), parametric fit"
	}
	// Fallback: a power law through the running minimum in compute order.
	s := append([]scaling.Point(nil), ps...)
	sort.Slice(s, func(i, j int) bool { return s[i].C < s[j].C })
	var x, y []float64
	best := math.Inf(1)
	for _, p := range s {
		if p.Loss < best {
			best = p.Loss
			x, y = append(x, math.Log(p.C)), append(y, math.Log(p.Loss))
		}
	}
	if len(x) < 2 {
		return nil, ""
	}
	e, c := lsq(x, y)
	return grid(func(cc float64) float64 { return math.Exp(c + e*math.Log(cc)) }), "frontier: power law through the best runs"
}

// lsq fits y = c + e·x.
func lsq(x, y []float64) (e, c float64) {
	n := float64(len(x))
	var mx, my, sxx, sxy float64
	for i := range x {
		mx, my = mx+x[i]/n, my+y[i]/n
	}
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
	}
	e = sxy / sxx
	return e, my - e*mx
}

// IsoFLOP draws each compute budget's runs (metric against N, log N axis), the fitted
// parabola, and its vertex N*(C).
func IsoFLOP(rs []*results.Results, opt Options) (*Figure, error) {
	key := opt.metric()
	if err := checkInput("isoflop", rs, key); err != nil {
		return nil, err
	}
	ps, err := scaling.Points(rs, scaling.Options{Metric: key, Params: opt.Params})
	if err != nil {
		return nil, fmt.Errorf("isoflop: %w", err)
	}
	nlabel := "parameters N"
	if opt.Params == scaling.NonEmbedding {
		nlabel = "non-embedding parameters N"
	}
	// One panel per family: pooling designs would mix their profiles.
	f := &Figure{Header: []string{"family", "budget_flops", "kind", "run", "n", key}}
	names, groups := scaling.Groups(ps)
	for _, fam := range names {
		iso, err := scaling.FitIsoFLOP(groups[fam], scaling.Options{})
		if err != nil {
			return nil, fmt.Errorf("isoflop: %s: %w", fam, err)
		}
		title := "isoFLOP profiles: " + key
		if len(names) > 1 {
			title = fam + ": " + title
		}
		p := newPlot(title, nlabel+" (log scale)", metricLabel(key), true, false)
		if err := isoPanel(p, f, fam, iso, key); err != nil {
			return nil, err
		}
		f.Panels = append(f.Panels, Panel{Plot: p})
	}
	if len(names) > 1 {
		f.Height = 4 * vg.Inch
	}
	return f, nil
}

func isoPanel(p *plot.Plot, f *Figure, fam string, iso *scaling.IsoFLOP, key string) error {
	var pal palette
	var opts plotter.XYs
	for i, b := range iso.Budgets {
		name := fmt.Sprintf("C = %.2g FLOPs", b.FLOPs)
		c := pal.colour(name)
		var xy plotter.XYs
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, q := range b.Points {
			xy = append(xy, plotter.XY{X: q.N, Y: q.Loss})
			lo, hi = math.Min(lo, q.N), math.Max(hi, q.N)
			f.add(fam, b.FLOPs, "run", q.Run, q.N, q.Loss)
		}
		// A vertex far outside the sizes run is an extrapolation, not a measured optimum: the
		// curve is drawn at most a factor 3 past the data and such a vertex is left unmarked
		// (it stays in the CSV and in fits.json, flagged there).
		inside := b.NOpt >= lo/3 && b.NOpt <= 3*hi
		if inside {
			lo, hi = math.Min(lo, b.NOpt), math.Max(hi, b.NOpt)
		} else {
			lo, hi = lo/3, 3*hi
		}
		if err := points(p, name, xy, c, i, false); err != nil {
			return err
		}
		var curve plotter.XYs
		for j := 0; j <= 40; j++ {
			n := lo * math.Pow(hi/lo, float64(j)/40)
			u := math.Log(n) - b.Center
			curve = append(curve, plotter.XY{X: n, Y: b.Coef[0] + b.Coef[1]*u + b.Coef[2]*u*u})
		}
		if err := line(p, "", curve, c, false); err != nil {
			return err
		}
		if inside {
			opts = append(opts, plotter.XY{X: b.NOpt, Y: b.LossOpt})
			f.add(fam, b.FLOPs, "vertex", "", b.NOpt, b.LossOpt)
		} else {
			f.add(fam, b.FLOPs, "vertex outside the sizes run", "", b.NOpt, b.LossOpt)
		}
	}
	s, err := plotter.NewScatter(opts)
	if err != nil {
		return err
	}
	s.GlyphStyle.Shape = draw.CrossGlyph{}
	s.GlyphStyle.Radius = vg.Points(6)
	s.GlyphStyle.Color = color.Black
	p.Add(s)
	p.Legend.Add("fitted minimum N*(C)", s)
	return nil
}

// Optimal draws N*(C) and D*(C) from the isoFLOP vertices with their intervals and the power
// laws through them, per family (log-log).
func Optimal(rs []*results.Results, opt Options) (*Figure, error) {
	key := opt.metric()
	if err := checkInput("optimal", rs, key); err != nil {
		return nil, err
	}
	ps, err := scaling.Points(rs, scaling.Options{Metric: key, Params: opt.Params})
	if err != nil {
		return nil, fmt.Errorf("optimal: %w", err)
	}
	names, groups := scaling.Groups(ps)
	pn := newPlot("compute-optimal model size", "training compute C (FLOPs)", "optimal parameters N*", true, true)
	pd := newPlot("compute-optimal training tokens", "training compute C (FLOPs)", "optimal tokens D*", true, true)
	f := &Figure{Header: []string{"family", "kind", "flops", "n_opt", "n_lo", "n_hi", "d_opt", "d_lo", "d_hi"}}
	var pal palette
	var errs []error
	for i, fam := range names {
		iso, err := scaling.FitIsoFLOP(groups[fam], scaling.Options{})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fam, err))
			continue
		}
		c := pal.colour(fam)
		for _, pp := range []struct {
			p   *plot.Plot
			law scaling.PowerLaw
			sym string
		}{{pn, iso.N, "N"}, {pd, iso.D, "D"}} {
			var xy plotter.XYs
			var errsY []float64
			var lows, highs []float64
			for _, b := range iso.Budgets {
				v, ci := b.NOpt, b.NCI
				if pp.sym == "D" {
					v, ci = b.DOpt, b.DCI
				}
				xy = append(xy, plotter.XY{X: b.FLOPs, Y: v})
				lo, hi := v, v
				if ci != nil {
					lo, hi = ci.Lo, ci.Hi
				}
				lows, highs = append(lows, lo), append(highs, hi)
				errsY = append(errsY, 0)
			}
			label := fmt.Sprintf("%s: %s* ~ C^%.3f", fam, pp.sym, pp.law.Exponent)
			if pp.law.CI != nil {
				label += fmt.Sprintf(" [%.3f, %.3f]", pp.law.CI.Lo, pp.law.CI.Hi)
			}
			if err := points(pp.p, label, xy, c, i, false); err != nil {
				return nil, err
			}
			// Interval bars as short vertical segments (log-safe: both ends positive).
			for j := range xy {
				if highs[j] > lows[j] {
					if err := line(pp.p, "", plotter.XYs{{X: xy[j].X, Y: lows[j]}, {X: xy[j].X, Y: highs[j]}}, c, false); err != nil {
						return nil, err
					}
				}
			}
			lo, hi := iso.Budgets[0].FLOPs, iso.Budgets[len(iso.Budgets)-1].FLOPs
			if err := line(pp.p, "", plotter.XYs{{X: lo, Y: pp.law.At(lo)}, {X: hi, Y: pp.law.At(hi)}}, c, true); err != nil {
				return nil, err
			}
		}
		for _, b := range iso.Budgets {
			row := []any{fam, "vertex", b.FLOPs, b.NOpt, lo(b.NCI), hi(b.NCI), b.DOpt, lo(b.DCI), hi(b.DCI)}
			f.add(row...)
		}
		f.add(fam, "exponent", math.NaN(), iso.N.Exponent, lo(iso.N.CI), hi(iso.N.CI), iso.D.Exponent, lo(iso.D.CI), hi(iso.D.CI))
	}
	if len(f.Rows) == 0 {
		return nil, fmt.Errorf("optimal: no family has an isoFLOP fit: %w", errors.Join(errs...))
	}
	pn.Legend.Left, pd.Legend.Left = true, true
	f.Panels = []Panel{{Plot: pn}, {Plot: pd}}
	f.Height = 4.5 * vg.Inch
	return f, errors.Join(errs...)
}

func lo(c *scaling.Interval) float64 {
	if c == nil {
		return math.NaN()
	}
	return c.Lo
}

func hi(c *scaling.Interval) float64 {
	if c == nil {
		return math.NaN()
	}
	return c.Hi
}

// Position draws the loss by token position of each run's long-context curves, with a
// vertical line at the training length.
func Position(rs []*results.Results, opt Options) (*Figure, error) {
	if err := checkInput("position", rs, "long_context.nll"); err != nil {
		return nil, err
	}
	p := newPlot("loss by token position beyond the training length", "token position (tokens)", "NLL (nats/token)", false, false)
	f := &Figure{Header: []string{"run", "length", "start", "end", "position", "nll"}}
	var pal palette
	lines := map[int]bool{}
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for i, r := range rs {
		lc := r.LongContext
		if lc == nil || len(lc.Curves) == 0 {
			return nil, fmt.Errorf("position: run %s has no long-context curves", scaling.RunName(r))
		}
		lines[lc.TrainLen] = true
		// The longest curve per run: shorter ones repeat its prefix.
		c := lc.Curves[0]
		for _, cc := range lc.Curves {
			if cc.Length > c.Length {
				c = cc
			}
		}
		var xy plotter.XYs
		for _, b := range c.Buckets {
			if !results.Finite(b.NLL) {
				return nil, fmt.Errorf("position: run %s: bucket [%d, %d) has NLL %g", scaling.RunName(r), b.Start, b.End, b.NLL)
			}
			x := float64(b.Start+b.End) / 2
			xy = append(xy, plotter.XY{X: x, Y: b.NLL})
			ymin, ymax = math.Min(ymin, b.NLL), math.Max(ymax, b.NLL)
			f.add(scaling.RunName(r), c.Length, b.Start, b.End, x, b.NLL)
		}
		name := fmt.Sprintf("%s (eval length %d)", r.Recipe, c.Length)
		if err := points(p, name, xy, pal.colour(r.Recipe+strconv.Itoa(i)), i, true); err != nil {
			return nil, err
		}
	}
	for _, tl := range sortedKeys(lines) {
		if err := vline(p, fmt.Sprintf("training length %d", tl), float64(tl), ymin, ymax); err != nil {
			return nil, err
		}
	}
	// Curves start high on the left and part ways to the right: the lower left stays clear.
	p.Legend.Top, p.Legend.Left = false, true
	f.Panels = []Panel{{Plot: p}}
	return f, nil
}

func sortedKeys(m map[int]bool) []int {
	var k []int
	for v := range m {
		k = append(k, v)
	}
	sort.Ints(k)
	return k
}

// Needle draws one heat map per run: haystack length × needle depth, coloured by retrieval
// accuracy (0 dark to 1 bright, each cell also printed), with a colour bar.
func Needle(rs []*results.Results, opt Options) (*Figure, error) {
	if err := checkInput("needle", rs, ""); err != nil {
		return nil, err
	}
	cm := moreland.ExtendedBlackBody()
	cm.SetMin(0)
	cm.SetMax(1)
	f := &Figure{Header: []string{"run", "length", "depth", "accuracy"}}
	for _, r := range rs {
		n := r.Needle
		if n == nil {
			return nil, fmt.Errorf("needle: run %s has no needle results", scaling.RunName(r))
		}
		if len(n.Accuracy) != len(n.Lengths) || len(n.Lengths) == 0 || len(n.Depths) == 0 {
			return nil, fmt.Errorf("needle: run %s: accuracy has %d rows for %d lengths × %d depths", scaling.RunName(r), len(n.Accuracy), len(n.Lengths), len(n.Depths))
		}
		g := &needleGrid{n: n}
		var lab plotter.XYLabels
		for i, row := range n.Accuracy {
			if len(row) != len(n.Depths) {
				return nil, fmt.Errorf("needle: run %s: accuracy row %d has %d values for %d depths", scaling.RunName(r), i, len(row), len(n.Depths))
			}
			for j, a := range row {
				if !results.Finite(a) || a < 0 || a > 1 {
					return nil, fmt.Errorf("needle: run %s: accuracy at length %d depth %g is %g, want a fraction in [0, 1]", scaling.RunName(r), n.Lengths[i], n.Depths[j], a)
				}
				f.add(scaling.RunName(r), n.Lengths[i], n.Depths[j], a)
				lab.XYs = append(lab.XYs, plotter.XY{X: float64(i), Y: float64(j)})
				lab.Labels = append(lab.Labels, fmt.Sprintf("%.2f", a))
			}
		}
		title := "needle in a haystack: " + scaling.RunName(r)
		if r.Train != nil && r.Train.SeqLen > 0 {
			title += fmt.Sprintf(" (dashed: trained at %d)", r.Train.SeqLen)
		}
		p := newPlot(title, "haystack length (tokens)", "needle depth (% of haystack)", false, false)
		p.Add(plotter.NewHeatMap(g, cm.Palette(256)))
		labels, err := plotter.NewLabels(lab)
		if err != nil {
			return nil, err
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].Font.Size = 7
			labels.TextStyle[i].XAlign, labels.TextStyle[i].YAlign = -0.5, -0.5
			if acc := n.Accuracy[i/len(n.Depths)][i%len(n.Depths)]; acc > 0.6 {
				labels.TextStyle[i].Color = color.Black
			} else {
				labels.TextStyle[i].Color = color.White
			}
		}
		p.Add(labels)
		p.X.Tick.Marker = indexTicks(len(n.Lengths), func(i int) string { return strconv.Itoa(n.Lengths[i]) })
		p.Y.Tick.Marker = indexTicks(len(n.Depths), func(i int) string { return fmt.Sprintf("%.0f", 100*n.Depths[i]) })
		p.X.Min, p.X.Max = -0.5, float64(len(n.Lengths))-0.5
		p.Y.Min, p.Y.Max = -0.5, float64(len(n.Depths))-0.5
		if r.Train != nil && r.Train.SeqLen > 0 {
			// Training length as a fractional column position between the lengths around it.
			if x, ok := between(n.Lengths, r.Train.SeqLen); ok {
				if err := vline(p, "", x, -0.5, float64(len(n.Depths))-0.5); err != nil {
					return nil, err
				}
			}
		}
		f.Panels = append(f.Panels, Panel{Plot: p})
	}
	bar := plot.New()
	bar.HideX()
	bar.Y.Label.Text = "accuracy (fraction of trials)"
	bar.Y.Label.TextStyle.Font.Size = 11
	bar.Y.Tick.Label.Font.Size = 9
	bar.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true})
	f.Panels = append(f.Panels, Panel{Plot: bar, Weight: 0.22})
	return f, nil
}

// between places v among sorted lengths as a fractional index (linear in the value).
func between(ls []int, v int) (float64, bool) {
	for i := 0; i+1 < len(ls); i++ {
		if v >= ls[i] && v <= ls[i+1] {
			return float64(i) + float64(v-ls[i])/float64(ls[i+1]-ls[i]), true
		}
	}
	return 0, false
}

type needleGrid struct{ n *results.Needle }

func (g *needleGrid) Dims() (c, r int)   { return len(g.n.Lengths), len(g.n.Depths) }
func (g *needleGrid) Z(c, r int) float64 { return g.n.Accuracy[c][r] }
func (g *needleGrid) X(c int) float64    { return float64(c) }
func (g *needleGrid) Y(r int) float64    { return float64(r) }

// indexTicks labels the integer positions 0..n−1 (a heat map's cells).
func indexTicks(n int, label func(int) string) plot.Ticker { return labelTicks{n, label} }

type labelTicks struct {
	n     int
	label func(int) string
}

func (t labelTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for i := 0; i < t.n; i++ {
		ts = append(ts, plot.Tick{Value: float64(i), Label: t.label(i)})
	}
	return ts
}
