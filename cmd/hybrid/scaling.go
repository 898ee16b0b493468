package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hybridlab/hybrid/results"
	"github.com/hybridlab/hybrid/scaling"
)

const scalingUsage = "scaling fit [--metric KEY] [--params total|non_embedding] [--by family] [--bootstrap N] [--seed S] [--tol F] [--flops-ratio K] [--ref-flops C] [--full-grid] [--out DIR] RESULTS..."

// cmdScaling fits compute-optimal scaling laws to results (isoFLOP profiles and the parametric
// loss L(N,D) = E + A/N^α + B/D^β), prints the tables and writes fits.json, fits.csv and
// budgets.csv.
func cmdScaling(args []string) error {
	if len(args) == 0 || args[0] != "fit" {
		return usageError{"usage: hybrid " + scalingUsage}
	}
	fs := flag.NewFlagSet("scaling fit", flag.ContinueOnError)
	metric := fs.String("metric", scaling.DefaultMetric, "loss metric key (e.g. lm.nll, train.best_val)")
	params := fs.String("params", string(scaling.Total), "N is total or non_embedding parameters")
	by := fs.String("by", "", `"family": also fit each architecture family`)
	boot := fs.Int("bootstrap", 0, "bootstrap replicates for the intervals (0: analytic isoFLOP intervals only)")
	seed := fs.Uint64("seed", 1, "bootstrap seed")
	tol := fs.Float64("tol", 0.1, "relative FLOPs tolerance that makes runs one compute budget")
	ratio := fs.Float64("flops-ratio", 0, "k in C = k·N·D for the allocation (0: the runs' own median C/(N·D))")
	ref := fs.Float64("ref-flops", 0, "compute at which tokens per parameter are compared (0: the largest run's FLOPs)")
	full := fs.Bool("full-grid", false, "start the parametric fit from Hoffmann et al.'s 4,500-point grid (slower)")
	out := fs.String("out", "", "directory for fits.json, fits.csv and budgets.csv (none: print only)")
	if err := fs.Parse(interleaved(fs, args[1:])); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() == 0 {
		return usageError{"scaling fit needs RESULTS (results.json files, directories of them, or a .csv export)"}
	}
	rs, err := results.ReadPaths(fs.Args()...)
	if err != nil {
		return err
	}
	opt := scaling.Options{Metric: *metric, Params: scaling.ParamKind(*params), By: *by, BudgetTol: *tol,
		FLOPsRatio: *ratio, RefFLOPs: *ref, Bootstrap: *boot, Seed: *seed}
	if *full {
		opt.Grid = scaling.HoffmannGrid
	}
	rep, err := scaling.Fit(rs, opt)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	if *out == "" {
		return nil
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var errs []error
	for name, write := range map[string]func(*bytes.Buffer) error{
		"fits.json":   func(b *bytes.Buffer) error { return rep.WriteJSON(b) },
		"fits.csv":    func(b *bytes.Buffer) error { return rep.WriteCSV(b) },
		"budgets.csv": func(b *bytes.Buffer) error { return rep.WriteBudgetsCSV(b) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if err := os.WriteFile(filepath.Join(*out, name), b.Bytes(), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", filepath.Join(*out, "fits.json (+ fits.csv, budgets.csv)"))
	return nil
}

// interleaved moves flags after positional arguments to the front, so that
// `fit DIR --by family` parses like `fit --by family DIR` (flag stops at the first non-flag).
func interleaved(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := a[1:]
		if name[0] == '-' {
			name = name[1:]
		}
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && i+1 < len(args) {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				continue
			}
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(flags, pos...)
}
