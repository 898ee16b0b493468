package main

import (
	"flag"
	"fmt"
	"github.com/hybridlab/hybrid/internal/units"
	"os"
	"text/tabwriter"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/recipes"
)

func cmdRecipes(args []string) error {
	if len(args) == 0 {
		return usageError{"recipes needs list, show NAME or validate [NAME|FILE...]"}
	}
	switch args[0] {
	case "list":
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "RECIPE\tLAYOUT\tPARAMS\tDESCRIPTION")
		for _, name := range recipes.List() {
			r, err := recipes.Load(name, nil)
			if err != nil {
				return err
			}
			c, err := r.Model.Count(r.Data.SeqLen)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, r.Pattern, units.SI(float64(c.Params())), r.Description)
		}
		return w.Flush()
	case "show":
		if len(args) != 2 {
			return usageError{"recipes show needs one NAME"}
		}
		s, err := recipes.Show(args[1])
		if err != nil {
			return err
		}
		fmt.Print(s)
		return nil
	case "validate":
		names := args[1:]
		if len(names) == 0 {
			names = recipes.List()
		}
		bad := 0
		for _, n := range names {
			r, err := recipes.Load(n, nil)
			if err != nil {
				fmt.Println(err)
				bad++
				continue
			}
			fmt.Printf("ok  %-22s %s  hash %s\n", n, r.Pattern, r.Hash()[:12])
		}
		if bad > 0 {
			return fmt.Errorf("%d of %d recipes invalid", bad, len(names))
		}
		return nil
	}
	return usageError{fmt.Sprintf("unknown recipes subcommand %q", args[0])}
}

func cmdInfo(args []string) error {
	sets, rest, err := setFlags(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	seq := fs.Int("seq", 0, "context length T for FLOPs and cache (default: the recipe's seq_len)")
	dtype := fs.String("dtype", "bf16", "cache dtype: float32 or bf16")
	var name string
	if len(rest) > 0 && rest[0][0] != '-' {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return usageError{err.Error()}
	}
	if name == "" {
		if fs.NArg() == 0 {
			return usageError{"info needs a RECIPE (name or .yaml path)"}
		}
		name = fs.Arg(0)
	}
	r, err := recipes.Load(name, sets)
	if err != nil {
		return err
	}
	t := *seq
	if t == 0 {
		t = r.Data.SeqLen
	}
	c, err := r.Model.Count(t)
	if err != nil {
		return err
	}
	fmt.Printf("recipe %s (hash %s)\nlayout %s\n\n", name, r.Hash()[:12], r.Pattern)
	return c.WriteTable(os.Stdout, arch.Dtype(*dtype))
}
