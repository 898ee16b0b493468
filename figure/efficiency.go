package figure

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/hybridlab/hybrid/results"
	"github.com/hybridlab/hybrid/scaling"
)

// Decode draws decode throughput and cache bytes against context length (log-log), one series
// per run and batch size.
func Decode(rs []*results.Results, opt Options) (*Figure, error) {
	if err := checkInput("decode", rs, ""); err != nil {
		return nil, err
	}
	pt := newPlot("decode throughput", "context length (tokens)", "decode throughput (tokens/s)", true, true)
	pc := newPlot("inference cache size", "context length (tokens)", "cache (bytes, measured)", true, true)
	f := &Figure{Header: []string{"run", "batch", "context", "tokens_per_sec", "cache_bytes", "analytic_bytes", "latency_ms"}}
	var pal palette
	series := 0
	for _, r := range rs {
		e := r.Efficiency
		if e == nil || len(e.Decode) == 0 {
			return nil, fmt.Errorf("decode: run %s has no decode measurements", scaling.RunName(r))
		}
		byBatch := map[int][]results.Decode{}
		for _, d := range e.Decode {
			byBatch[d.Batch] = append(byBatch[d.Batch], d)
		}
		batches := make([]int, 0, len(byBatch))
		for b := range byBatch {
			batches = append(batches, b)
		}
		sort.Ints(batches)
		for _, b := range batches {
			ds := byBatch[b]
			sort.Slice(ds, func(i, j int) bool { return ds[i].Context < ds[j].Context })
			var tp, cb plotter.XYs
			for _, d := range ds {
				run := scaling.RunName(r)
				for _, c := range []struct {
					what string
					v    float64
				}{{"context", float64(d.Context)}, {"tokens_per_sec", d.TokensPerSec}, {"cache_bytes", float64(d.CacheBytes)}} {
					if err := positive("decode "+c.what, run, c.v); err != nil {
						return nil, fmt.Errorf("decode: %w", err)
					}
				}
				tp = append(tp, plotter.XY{X: float64(d.Context), Y: d.TokensPerSec})
				cb = append(cb, plotter.XY{X: float64(d.Context), Y: float64(d.CacheBytes)})
				f.add(run, d.Batch, d.Context, d.TokensPerSec, float64(d.CacheBytes), float64(d.AnalyticBytes), d.LatencyMs)
			}
			name := r.Recipe
			if len(batches) > 1 {
				name += " batch " + strconv.Itoa(b)
			}
			c := pal.colour(name)
			// One legend serves both panels: the cache panel's upper left is clear (caches grow).
			if err := points(pt, "", tp, c, series, true); err != nil {
				return nil, err
			}
			if err := points(pc, name, cb, c, series, true); err != nil {
				return nil, err
			}
			series++
		}
	}
	pc.Legend.Left = true
	f.Panels = []Panel{{Plot: pt}, {Plot: pc}}
	return f, nil
}

// Throughput draws training tokens per second and peak memory per design as bar charts (the
// mean over a design's runs when it has several).
func Throughput(rs []*results.Results, opt Options) (*Figure, error) {
	if err := checkInput("throughput", rs, ""); err != nil {
		return nil, err
	}
	type agg struct {
		tps, mem float64
		n        int
	}
	var names []string
	m := map[string]*agg{}
	for _, r := range rs {
		e := r.Efficiency
		if e == nil || e.TrainTokensPerSec <= 0 {
			return nil, fmt.Errorf("throughput: run %s has no training throughput (efficiency.train_tokens_per_sec)", scaling.RunName(r))
		}
		mem := float64(e.PeakBytes)
		if mem <= 0 {
			mem = float64(r.Cost.PeakBytes)
		}
		if mem <= 0 {
			return nil, fmt.Errorf("throughput: run %s has no peak memory (efficiency.peak_bytes or cost.peak_bytes)", scaling.RunName(r))
		}
		d := r.Recipe
		if opt.Group != "" {
			var err error
			if d, err = design(r, opt.Group); err != nil {
				return nil, fmt.Errorf("throughput: %w", err)
			}
		}
		a := m[d]
		if a == nil {
			a = &agg{}
			m[d] = a
			names = append(names, d)
		}
		a.tps += e.TrainTokensPerSec
		a.mem += mem
		a.n++
	}
	sort.Strings(names)
	f := &Figure{Header: []string{"design", "runs", "train_tokens_per_sec", "peak_bytes"}}
	var tv, mv plotter.Values
	for _, n := range names {
		a := m[n]
		tv, mv = append(tv, a.tps/float64(a.n)), append(mv, a.mem/float64(a.n)/(1<<20))
		f.add(n, a.n, a.tps/float64(a.n), a.mem/float64(a.n))
	}
	bars := func(title, y string, v plotter.Values) (*plot.Plot, error) {
		p := newPlot(title, "design", y, false, false)
		b, err := plotter.NewBarChart(v, vg.Points(math.Max(8, 180/float64(len(v)))))
		if err != nil {
			return nil, err
		}
		b.Color = colours[0]
		b.LineStyle.Width = 0
		p.Add(b)
		p.NominalX(names...)
		p.Y.Min = 0
		top := 0.0
		for _, x := range v {
			top = math.Max(top, x)
		}
		p.Y.Max = 1.08 * top
		return p, nil
	}
	pt, err := bars("training throughput", "training throughput (tokens/s)", tv)
	if err != nil {
		return nil, err
	}
	pm, err := bars("peak memory", "peak memory (MiB)", mv)
	if err != nil {
		return nil, err
	}
	for _, p := range []*plot.Plot{pt, pm} {
		if len(names) > 4 {
			p.X.Tick.Label.Rotation = math.Pi / 6
			p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = -1, -0.5
		}
	}
	f.Panels = []Panel{{Plot: pt}, {Plot: pm}}
	return f, nil
}

// Summary draws a metric against a swept parameter (opt.X, a dotted recipe path read from
// each run's resolved config), one line per value of opt.Group (or per family). The x axis is
// logarithmic when every x is positive and they span a factor of 20 or more (learning rates,
// widths); non-numeric x values are placed as categories in sorted order.
func Summary(rs []*results.Results, opt Options) (*Figure, error) {
	key := opt.metric()
	if opt.X == "" {
		return nil, fmt.Errorf("summary: needs --x PATH, the swept recipe parameter (e.g. train.lr)")
	}
	if err := checkInput("summary", rs, key); err != nil {
		return nil, err
	}
	type pt struct {
		x   any
		y   float64
		run string
	}
	names, groups, err := groupRuns(rs, opt.Group)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	numeric := true
	cats := map[string]bool{}
	data := map[string][]pt{}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	for _, n := range names {
		for _, r := range groups[n] {
			x, err := ConfigValue(r, opt.X)
			if err != nil {
				return nil, fmt.Errorf("summary: %w", err)
			}
			y, ok := r.Metric(key)
			if !ok || !results.Finite(y) {
				return nil, fmt.Errorf("summary: run %s has no finite metric %q", scaling.RunName(r), key)
			}
			if v, ok := x.(float64); ok {
				xmin, xmax = math.Min(xmin, v), math.Max(xmax, v)
			} else {
				numeric = false
			}
			cats[fmt.Sprint(x)] = true
			data[n] = append(data[n], pt{x, y, scaling.RunName(r)})
		}
	}
	var order []string
	for c := range cats {
		order = append(order, c)
	}
	sort.Strings(order)
	pos := func(x any) float64 {
		if numeric {
			return x.(float64)
		}
		return float64(sort.SearchStrings(order, fmt.Sprint(x)))
	}
	logX := numeric && xmin > 0 && xmax/xmin >= 20
	xl := opt.X
	if logX {
		xl += " (log scale)"
	}
	p := newPlot(key+" by "+opt.X, xl, metricLabel(key), logX, false)
	f := &Figure{Header: []string{"group", "run", opt.X, key}}
	var pal palette
	for i, n := range names {
		d := data[n]
		sort.SliceStable(d, func(a, b int) bool { return pos(d[a].x) < pos(d[b].x) })
		var xy, mean plotter.XYs
		for j, q := range d {
			x := pos(q.x)
			xy = append(xy, plotter.XY{X: x, Y: q.y})
			f.add(n, q.run, fmt.Sprint(q.x), q.y)
			// Runs sharing an x (seeds, other knobs) are all shown; the line joins their means.
			if j > 0 && pos(d[j-1].x) == x {
				m := &mean[len(mean)-1]
				m.Y += q.y
				continue
			}
			mean = append(mean, plotter.XY{X: x, Y: q.y})
		}
		for k := range mean {
			cnt := 0
			for _, q := range xy {
				if q.X == mean[k].X {
					cnt++
				}
			}
			mean[k].Y /= float64(cnt)
		}
		c := pal.colour(n)
		if err := points(p, n, xy, c, i, false); err != nil {
			return nil, err
		}
		if len(mean) > 1 {
			if err := line(p, "", mean, c, false); err != nil {
				return nil, err
			}
		}
	}
	if !numeric {
		p.X.Tick.Marker = indexTicks(len(order), func(i int) string { return order[i] })
		p.X.Min, p.X.Max = -0.5, float64(len(order))-0.5
	}
	f.Panels = []Panel{{Plot: p}}
	return f, nil
}
