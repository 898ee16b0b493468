package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hybridlab/hybrid/eval"
	"github.com/hybridlab/hybrid/experiment"
	"github.com/hybridlab/hybrid/results"
)

// cmdEval: hybrid eval RUN_DIR|CHECKPOINT [--suite a,b] [--lengths 512,1024] [--contexts ...]
// [--trials N] [--batches N] [--out FILE].
func cmdEval(args []string) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	suites := fs.String("suite", "", "comma-separated suites (default: the recipe's): "+strings.Join(eval.Suites, ", "))
	lengths := fs.String("lengths", "", "context lengths for long_context, needle and passkey (default seq_len×{1,2,4})")
	contexts := fs.String("contexts", "", "decode context lengths for efficiency (default 1K…32K)")
	trials := fs.Int("trials", 0, "trials per needle cell and pass-key length (default 10)")
	batches := fs.Int("batches", -1, "held-out batches for lm (0: all; default: the recipe's)")
	outPath := fs.String("out", "", "results file (default results.json in the run or checkpoint directory)")
	device := fs.String("device", "", "backend (default $HYBRID_BACKEND, else cpu)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"eval needs one RUN_DIR or CHECKPOINT directory"}
	}
	var ls, cs []int
	if ls, err = intList(*lengths); err != nil {
		return usageError{"--lengths: " + err.Error()}
	}
	if cs, err = intList(*contexts); err != nil {
		return usageError{"--contexts: " + err.Error()}
	}
	var names []string
	if *suites != "" {
		names = strings.Split(*suites, ",")
	}
	tr, err := experiment.Open(pos[0], *device)
	if err != nil {
		return err
	}
	r := tr.Recipe
	if ls != nil {
		r.Eval.Lengths = ls
	}
	if cs != nil {
		r.Eval.Contexts = cs
	}
	if *trials > 0 {
		r.Eval.Trials = *trials
	}
	if *batches >= 0 {
		r.Eval.Batches = *batches
	}
	path := *outPath
	if path == "" {
		path = filepath.Join(pos[0], results.FileName)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("evaluating %s (step %d, layout %s)\n", tr.Checkpoint.Dir, tr.Checkpoint.State.Step, r.Pattern)
	if _, err := experiment.Evaluate(ctx, tr, names, path, experiment.Options{Backend: *device, Log: os.Stdout, Progress: os.Stderr}); err != nil {
		return err
	}
	fmt.Printf("results: %s\n", path)
	return nil
}

// intList parses "512,1K,2k" into ints (K = 1024).
func intList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mul := 1
		if strings.HasSuffix(f, "K") || strings.HasSuffix(f, "k") {
			f, mul = f[:len(f)-1], 1024
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive length", f)
		}
		out = append(out, n*mul)
	}
	return out, nil
}
