package sweep

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hybridlab/hybrid/internal/atomicfile"
	"github.com/hybridlab/hybrid/results"
)

// metricOf reads a finished trial's metric.
func metricOf(s *Spec, dir string, t *Trial) (float64, bool) {
	r, err := results.Read(filepath.Join(TrialDir(dir, t.Hash), results.FileName))
	if err != nil {
		return 0, false
	}
	return r.Metric(s.Metric.Name)
}

// si prints x with a k/M/G/T/P/E suffix.
func si(x float64) string {
	for _, u := range []struct {
		v float64
		s string
	}{{1e18, "E"}, {1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(x) >= u.v {
			return strconv.FormatFloat(x/u.v, 'f', 2, 64) + u.s
		}
	}
	return strconv.FormatFloat(x, 'f', 0, 64)
}

// WritePlan prints the trials, their resolved differences from the base, their state in dir
// and the estimated cost (arch Count training FLOPs per token × tokens). gflops, when
// positive, is the sustained training rate used to estimate wall time.
func WritePlan(w io.Writer, p *Plan, dir string, gflops float64) error {
	s := p.Spec
	fmt.Fprintf(w, "sweep %s (%s): %s, %d trials, metric %s (%s), dir %s\n", s.Name, s.File, s.Method, len(p.Trials), s.Metric.Name, s.Metric.Goal, dir)
	if s.Description != "" {
		fmt.Fprintf(w, "  %s\n", s.Description)
	}
	if len(s.Recipes) == 1 {
		fmt.Fprintf(w, "base recipe %s\n", s.Recipes[0])
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\ttrial\tstate\trecipe\tpattern\tparams\tsteps\ttokens\tFLOPs\tchanges from the base")
	var flops float64
	var tokens int64
	todo := 0
	for _, t := range p.Trials {
		st, _ := State(TrialDir(dir, t.Hash))
		if _, err := os.Stat(TrialDir(dir, t.Hash)); err != nil {
			st = "new"
		}
		if st != Done {
			todo++
		}
		c, _ := t.Recipe.Model.Count(t.Recipe.Data.SeqLen)
		var ch []string
		for _, c := range t.Changes {
			ch = append(ch, c.Path+": "+c.From+" → "+c.To)
		}
		params := "-"
		if c != nil {
			params = si(float64(c.Params()))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", t.Index, t.ID(), st, t.Base, t.Recipe.Pattern, params,
			t.Steps, si(float64(t.Tokens)), si(t.FLOPs), strings.Join(ch, "; "))
		flops += t.FLOPs
		tokens += t.Tokens
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range p.Duplicates {
		fmt.Fprintf(w, "dropped: %s\n", d)
	}
	fmt.Fprintf(w, "estimated cost: %s training FLOPs over %s tokens (%d trials, %d not done)", si(flops), si(float64(tokens)), len(p.Trials), todo)
	if gflops > 0 {
		sec := flops / (gflops * 1e9)
		fmt.Fprintf(w, "; ≈ %s of training at %.3g GFLOP/s (evaluation extra)", fmtDur(sec), gflops)
	}
	fmt.Fprintln(w)
	return nil
}

func fmtDur(sec float64) string {
	switch {
	case sec >= 86400:
		return fmt.Sprintf("%.1f days", sec/86400)
	case sec >= 3600:
		return fmt.Sprintf("%.1f h", sec/3600)
	case sec >= 60:
		return fmt.Sprintf("%.0f min", sec/60)
	}
	return fmt.Sprintf("%.0f s", sec)
}

// Row is one trial of a results table.
type Row struct {
	Trial   *Trial
	State   string
	Status  Status
	Results *results.Results // nil unless done
	Metric  float64
	HasM    bool
}

// Collect reads every trial of the plan from dir, ranked by the metric (best first; trials
// without it last, in plan order). Each trial appears once.
func Collect(p *Plan, dir string) ([]*Row, error) {
	var rows []*Row
	for _, t := range p.Trials {
		td := TrialDir(dir, t.Hash)
		st, status := State(td)
		if _, err := os.Stat(td); err != nil {
			st = Pending
		}
		r := &Row{Trial: t, State: st, Status: status}
		if st == Done {
			res, err := results.Read(filepath.Join(td, results.FileName))
			if err != nil {
				return nil, err
			}
			r.Results = res
			r.Metric, r.HasM = res.Metric(p.Spec.Metric.Name)
		}
		rows = append(rows, r)
	}
	maximize := p.Spec.Metric.Goal == "maximize"
	sort.SliceStable(rows, func(i, j int) bool {
		a := &Outcome{Trial: rows[i].Trial, Metric: rows[i].Metric, HasM: rows[i].HasM}
		b := &Outcome{Trial: rows[j].Trial, Metric: rows[j].Metric, HasM: rows[j].HasM}
		return better(a, b, maximize)
	})
	return rows, nil
}

// WriteTable prints rows: rank, trial, state, metric, cost and parameters.
func WriteTable(w io.Writer, p *Plan, rows []*Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "rank\ttrial\t#\tstate\t%s\tparams\tFLOPs\twall\tsettings\n", p.Spec.Metric.Name)
	for i, r := range rows {
		m, params, flops, wall := "-", "-", "-", "-"
		if r.HasM {
			m = strconv.FormatFloat(r.Metric, 'g', 5, 64)
		}
		if res := r.Results; res != nil {
			params, flops = si(float64(res.Cost.Params)), si(res.Cost.FLOPs)
			wall = fmtDur(res.Cost.WallSeconds)
		}
		rank := strconv.Itoa(i + 1)
		if !r.HasM {
			rank = "-"
		}
		state := r.State
		if r.State == Failed && r.Status.Error != "" {
			first, _, _ := strings.Cut(r.Status.Error, "\n")
			if len(first) > 60 {
				first = first[:60] + "…"
			}
			state += " (" + first + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", rank, r.Trial.ID(), r.Trial.Index, state, m, params, flops, wall,
			r.Trial.Label(len(p.Spec.Recipes) > 1))
	}
	return tw.Flush()
}

// WriteResults writes results.csv and results.jsonl (results.WriteCSV/WriteJSONL: the finished
// trials, best first, readable by results.ReadCSV) and trials.csv (every trial: index, hash,
// state, metric and the swept settings) into dir.
func WriteResults(p *Plan, dir string, rows []*Row) error {
	var rs []*results.Results
	for _, r := range rows {
		if r.Results != nil {
			rs = append(rs, r.Results)
		}
	}
	write := func(name string, f func(io.Writer) error) error {
		return atomicfile.Write(filepath.Join(dir, name), f)
	}
	if err := write("results.csv", func(w io.Writer) error { return results.WriteCSV(w, rs) }); err != nil {
		return err
	}
	if err := write("results.jsonl", func(w io.Writer) error { return results.WriteJSONL(w, rs) }); err != nil {
		return err
	}
	var paths []string
	seen := map[string]bool{}
	for _, t := range p.Trials {
		for _, s := range t.Params {
			if !seen[s.Path] {
				seen[s.Path] = true
				paths = append(paths, s.Path)
			}
		}
	}
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write(append([]string{"index", "trial", "config_hash", "recipe", "state", p.Spec.Metric.Name}, paths...))
	for _, r := range rows {
		m := ""
		if r.HasM {
			m = strconv.FormatFloat(r.Metric, 'g', -1, 64)
		}
		rec := []string{strconv.Itoa(r.Trial.Index), r.Trial.ID(), r.Trial.Hash, r.Trial.Base, r.State, m}
		vals := map[string]string{}
		for _, s := range r.Trial.Params {
			vals[s.Path] = s.Value
		}
		for _, path := range paths {
			rec = append(rec, vals[path])
		}
		cw.Write(rec)
	}
	cw.Flush()
	return write("trials.csv", func(w io.Writer) error { _, err := w.Write(b.Bytes()); return err })
}
