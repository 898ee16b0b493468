// Command hybrid is the toolkit's front door: design recipes, kernel and model benchmarks,
// and (as they land) training, evaluation and sweeps.
//
//	hybrid bench [kernels] [--quick]     kernel throughput beside this machine's ceilings
//	hybrid recipes list|show|validate    the shipped design recipes
//	hybrid info RECIPE [--set k=v ...]   parameters, FLOPs and cache bytes per layer
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

var commands = map[string]func(args []string) error{
	"bench":    cmdBench,
	"recipes":  cmdRecipes,
	"info":     cmdInfo,
	"train":    cmdTrain,
	"generate": cmdGenerate,
	"eval":     cmdEval,
	"sweep":    cmdSweep,
	"scaling":  cmdScaling,
	"plot":     cmdPlot,
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: hybrid COMMAND [ARGS]

commands:
  bench [kernels] [--quick]           kernel throughput beside this machine's SGEMM rate and copy bandwidth
  recipes list|show NAME|validate [FILE...]
  info RECIPE [--set path=value ...] [--seq T] [--dtype float32|bf16]
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		if os.Args[1] != "help" && os.Args[1] != "-h" && os.Args[1] != "--help" {
			fmt.Fprintf(os.Stderr, "hybrid: unknown command %q\n", os.Args[1])
		}
		usage()
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "hybrid %s: %v\n", os.Args[1], err)
			usage()
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "hybrid %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// setFlags collects repeated --set path=value arguments and returns the rest.
func setFlags(args []string) (sets, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--set" || a == "-set":
			if i+1 >= len(args) {
				return nil, nil, usageError{"--set needs path=value"}
			}
			sets = append(sets, args[i+1])
			i++
		case strings.HasPrefix(a, "--set="):
			sets = append(sets, strings.TrimPrefix(a, "--set="))
		default:
			rest = append(rest, a)
		}
	}
	return sets, rest, nil
}

// parseInterleaved parses fs's flags wherever they appear among the positional arguments
// (`hybrid train quickstart --steps 10` and `hybrid train --steps 10 quickstart` both work)
// and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
