package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/hybridlab/hybrid/experiment"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/results"
	"github.com/hybridlab/hybrid/sweep"
)

const sweepUsage = `sweep plan|run|status|cancel|results SWEEP.yaml [--dir DIR] [flags]
  plan     the trials, their differences from the base recipe, state and estimated cost
  run      run the trials that have no results (--executor local|slurm, --jobs N, --detach)
  status   every trial's state (and its Slurm task)
  cancel   scancel the sweep's arrays and stop its local runners
  results  the table ranked by the metric; writes results.csv, results.jsonl, trials.csv
The sweep directory defaults to runs/sweeps/<sweep name>.`

// cmdSweep: hybrid sweep plan|run|status|cancel|results SWEEP.yaml, and the internal
// hybrid sweep worker --dir DIR --trial HASH that runs one trial.
func cmdSweep(args []string) error {
	if len(args) == 0 {
		return usageError{sweepUsage}
	}
	sub, args := args[0], args[1:]
	if sub == "worker" {
		return sweepWorker(args)
	}
	fs := flag.NewFlagSet("sweep "+sub, flag.ContinueOnError)
	dir := fs.String("dir", "", "sweep directory (default runs/sweeps/<name>)")
	executor := fs.String("executor", "local", "run: local or slurm")
	jobs := fs.Int("jobs", 0, "run --executor local: trials at once (default cores / resources.cpus)")
	detach := fs.Bool("detach", false, "run --executor slurm: submit and return without following")
	gflops := fs.Float64("gflops", 0, "plan: sustained training GFLOP/s to estimate wall time")
	var file string
	var rest []string
	for _, a := range args { // the file may come before or after the flags
		if file == "" && !strings.HasPrefix(a, "-") && (len(rest) == 0 || !needsValue(rest[len(rest)-1])) {
			file = a
			continue
		}
		rest = append(rest, a)
	}
	if err := fs.Parse(rest); err != nil {
		return usageError{err.Error()}
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	}
	if file == "" {
		return usageError{"sweep " + sub + " needs SWEEP.yaml\n" + sweepUsage}
	}
	spec, err := sweep.LoadSpec(file)
	if err != nil {
		return err
	}
	plan, err := spec.Plan()
	if err != nil {
		return err
	}
	d := *dir
	if d == "" {
		d = sweep.DefaultDir(spec)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sl := &sweep.Slurm{Out: os.Stderr}
	switch sub {
	case "plan":
		return sweep.WritePlan(os.Stdout, plan, d, *gflops)
	case "run":
		var sum *sweep.Summary
		switch *executor {
		case "local":
			fi, _ := os.Stderr.Stat()
			tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
			l := &sweep.Local{Jobs: *jobs, Out: os.Stderr, TTY: tty}
			sum, err = l.Run(ctx, plan, d)
		case "slurm":
			if *detach {
				j, err := sl.Submit(ctx, plan, d)
				if err == nil && j == nil {
					fmt.Fprintln(os.Stderr, "sweep: nothing to submit (every trial is done, running or queued)")
				}
				return err
			}
			sum, err = sl.Run(ctx, plan, d)
		default:
			return usageError{fmt.Sprintf("--executor %q: want local or slurm", *executor)}
		}
		if sum != nil {
			if rows, cerr := sweep.Collect(plan, d); cerr == nil {
				sweep.WriteTable(os.Stdout, plan, rows)
				if werr := sweep.WriteResults(plan, d, rows); werr != nil && err == nil {
					err = werr
				}
			}
		}
		return err
	case "status":
		states := map[string]string{}
		if jobs, _ := sweep.Jobs(d); len(jobs) > 0 {
			if states, _, err = sl.Active(ctx, d); err != nil {
				fmt.Fprintf(os.Stderr, "sweep: slurm: %v\n", err)
			}
		}
		rows, err := sweep.Collect(plan, d)
		if err != nil {
			return err
		}
		counts := map[string]int{}
		for _, r := range rows {
			counts[r.State]++
			if s := states[r.Trial.Hash]; s != "" && r.State != sweep.Done && r.State != sweep.Running {
				r.State = s
			}
		}
		if err := sweep.WriteTable(os.Stdout, plan, rows); err != nil {
			return err
		}
		fmt.Printf("%d trials: %d done, %d running, %d failed, %d interrupted, %d pending, %d queued in slurm (%s)\n", len(rows),
			counts[sweep.Done], counts[sweep.Running], counts[sweep.Failed], counts[sweep.Interrupted], counts[sweep.Pending], len(states), d)
		return nil
	case "cancel":
		ids, err := sl.Cancel(ctx, d)
		if len(ids) > 0 {
			fmt.Printf("scancel %s\n", strings.Join(ids, " "))
		}
		pids, lerr := sweep.StopLocal(d)
		if len(pids) > 0 {
			fmt.Printf("stopped local runners %v\n", pids)
		}
		if len(ids) == 0 && len(pids) == 0 && err == nil && lerr == nil {
			fmt.Println("nothing to cancel")
		}
		return errors.Join(err, lerr)
	case "results":
		rows, err := sweep.Collect(plan, d)
		if err != nil {
			return err
		}
		if err := sweep.WriteTable(os.Stdout, plan, rows); err != nil {
			return err
		}
		if err := sweep.WriteResults(plan, d, rows); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s/results.csv, results.jsonl, trials.csv\n", d)
		return nil
	}
	return usageError{fmt.Sprintf("unknown sweep subcommand %q\n%s", sub, sweepUsage)}
}

func needsValue(flag string) bool {
	if strings.Contains(flag, "=") {
		return false
	}
	switch strings.TrimLeft(flag, "-") {
	case "dir", "executor", "jobs", "gflops":
		return true
	}
	return false
}

// sweepWorker runs one trial (the local executor's subprocess, a Slurm array task): it exits
// 0 when the trial is done, sweep.ExitBusy when another process holds it, 1 when it failed.
func sweepWorker(args []string) error {
	fs := flag.NewFlagSet("sweep worker", flag.ContinueOnError)
	dir := fs.String("dir", "", "sweep directory")
	trial := fs.String("trial", "", "trial hash (or its first 12 digits)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *dir == "" || *trial == "" {
		return usageError{"sweep worker needs --dir and --trial"}
	}
	if n, err := strconv.Atoi(os.Getenv("SLURM_CPUS_PER_TASK")); err == nil && n > 0 && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := func(ctx context.Context, r *recipes.Recipe, dir string, progress, log io.Writer) (*results.Results, error) {
		return experiment.Run(ctx, r, dir, experiment.Options{Progress: progress, Log: log})
	}
	err := sweep.Work(ctx, *dir, *trial, run, os.Stderr, os.Stderr)
	if errors.Is(err, sweep.ErrBusy) {
		fmt.Fprintf(os.Stderr, "hybrid sweep worker: %v\n", err)
		os.Exit(sweep.ExitBusy)
	}
	return err
}
