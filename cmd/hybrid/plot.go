package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/hybridlab/hybrid/figure"
	"github.com/hybridlab/hybrid/results"
	"github.com/hybridlab/hybrid/scaling"
)

const plotUsage = "plot KIND [--metric KEY] [--x PATH] [--group PATH] [--params total|non_embedding] [-o FILE.svg|png|pdf] RESULTS...\n  KIND: "

// cmdPlot draws one of the standard figures from results and writes its data as CSV beside it.
func cmdPlot(args []string) error {
	kinds := strings.Join(figure.KindNames, ", ")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError{"usage: hybrid " + plotUsage + kinds}
	}
	kind := args[0]
	draw, ok := figure.Kinds[kind]
	if !ok {
		return usageError{fmt.Sprintf("unknown plot kind %q; kinds: %s", kind, kinds)}
	}
	fs := flag.NewFlagSet("plot "+kind, flag.ContinueOnError)
	metric := fs.String("metric", "", "metric key (default lm.nll; e.g. lm.bpb, train.best_val)")
	x := fs.String("x", "", "summary: the swept recipe parameter, a dotted path (train.lr)")
	group := fs.String("group", "", "dotted recipe path whose value names a series (default: the family)")
	params := fs.String("params", string(scaling.Total), "isoflop, optimal: N is total or non_embedding parameters")
	out := fs.String("o", kind+".svg", "output file; the extension picks SVG, PNG or PDF; data goes to the same name with .csv")
	if err := fs.Parse(interleaved(fs, args[1:])); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() == 0 {
		return usageError{"plot " + kind + " needs RESULTS (results.json files, directories of them, or a .csv export)"}
	}
	rs, err := results.ReadPaths(fs.Args()...)
	if err != nil {
		return err
	}
	fig, err := draw(rs, figure.Options{Metric: *metric, X: *x, Group: *group, Params: scaling.ParamKind(*params)})
	if fig == nil {
		return err
	}
	if err != nil {
		// A partial figure (say, one family without an isoFLOP fit): draw the rest, say what is missing.
		fmt.Printf("note: %v\n", err)
	}
	if err := fig.Save(*out); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s\n", *out, figure.CSVPath(*out))
	return nil
}
