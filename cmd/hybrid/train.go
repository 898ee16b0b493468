package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hybridlab/hybrid/experiment"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/train"
)

// cmdTrain: hybrid train RECIPE [--set path=value ...] [--dir DIR] [--resume] [--device NAME].
func cmdTrain(args []string) error {
	sets, rest, err := setFlags(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	dir := fs.String("dir", "", "run directory (default runs/RECIPE)")
	resume := fs.Bool("resume", false, "continue the run directory's last checkpoint")
	device := fs.String("device", "", "backend: cpu or cuda (default $HYBRID_BACKEND, else cpu)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	pos, err := parseInterleaved(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"train needs one RECIPE (a shipped name or a .yaml path)"}
	}
	r, err := recipes.Load(pos[0], sets)
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = filepath.Join("runs", strings.ReplaceAll(r.Name, "/", "-"))
	}
	if !*resume {
		if ck, err := train.LoadCheckpoint(*dir); err == nil {
			return fmt.Errorf("%s already holds a run (checkpoint at step %d): add --resume to continue it, or --dir to start another",
				*dir, ck.State.Step)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := experiment.Options{Backend: *device, Log: os.Stdout}
	if !*quiet {
		o.Progress = os.Stderr
	}
	fmt.Printf("run directory %s\n", *dir)
	res, err := experiment.Run(ctx, r, *dir, o)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%w\nresume with: hybrid train %s --dir %s --resume", err, pos[0], *dir)
		}
		return err
	}
	fmt.Printf("\ntrained %d steps, %d tokens in %.0f s (%.0f tokens/s)\n", res.Cost.Steps, res.Cost.Tokens,
		res.Cost.WallSeconds, float64(res.Cost.Tokens)/max(res.Cost.WallSeconds, 1e-9))
	if res.LM != nil {
		fmt.Printf("validation: %.4f nats/token, %.3f bits/byte\n", res.LM.NLL, res.LM.BitsPerByte)
	}
	if u, ok := res.Metrics["data.unigram_bpb"]; ok {
		fmt.Printf("held-out unigram entropy: %.3f bits/byte\n", u)
	}
	fmt.Printf("results: %s\n", filepath.Join(*dir, "results.json"))
	return nil
}
