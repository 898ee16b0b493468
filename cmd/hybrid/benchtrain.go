package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/hybridlab/hybrid/internal/units"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"

	"github.com/hybridlab/hybrid/experiment"
	"github.com/hybridlab/hybrid/internal/sysinfo"
	"github.com/hybridlab/hybrid/recipes"
)

// torchScript is the PyTorch twin of recipes/bench/cpu-inter.yaml.
const torchScript = "bench/torch/cpu_inter.py"

// benchTrain: hybrid bench train RECIPE [--steps N] [--warmup N] [--torch].
func benchTrain(args []string) error {
	sets, rest, err := setFlags(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("bench train", flag.ContinueOnError)
	steps := fs.Int("steps", 10, "timed training steps (the median is reported)")
	warmup := fs.Int("warmup", 2, "untimed steps first")
	device := fs.String("device", "", "backend (default $HYBRID_BACKEND, else cpu)")
	torch := fs.Bool("torch", false, "also time the PyTorch twin ("+torchScript+", bench/cpu-inter only) on the same CPU")
	python := fs.String("python", defaultPython(), "Python interpreter with torch, for --torch")
	pos, err := parseInterleaved(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"bench train needs one RECIPE (for example bench/cpu-inter)"}
	}
	r, err := recipes.Load(pos[0], sets)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("machine: %s, %d cores, %s\n", sysinfo.CPU(), runtime.NumCPU(), runtime.Version())
	tb, err := experiment.BenchTrain(ctx, r, *device, *warmup, *steps)
	if err != nil {
		return err
	}
	fmt.Printf("recipe %s: layout %s, %s params, batch %d × %d tokens, %.2f MFLOP/token (training)\n",
		tb.Recipe, tb.Pattern, units.SI(float64(tb.Params)), tb.Batch, tb.SeqLen, tb.FLOPsPerToken/1e6)
	fmt.Printf("SGEMM ceiling measured now: %.1f GFLOP/s\n\n", tb.SGEMM)
	fmt.Printf("%-10s %12s %12s %12s %8s %12s\n", "framework", "step (s)", "tokens/s", "GFLOP/s", "MFU", "peak mem")
	fmt.Printf("%-10s %12.3f %12.0f %12.1f %7.1f%% %12s\n", "hybrid", tb.StepSeconds, tb.TokensPerSec, tb.GFLOPS, 100*tb.MFU, mib(float64(tb.PeakBytes)))
	if !*torch {
		return nil
	}
	if r.Name != "bench/cpu-inter" || len(sets) > 0 {
		return fmt.Errorf("--torch: %s mirrors bench/cpu-inter exactly, without overrides", torchScript)
	}
	tt, err := runTorch(ctx, *python, *warmup, *steps)
	if err != nil {
		return fmt.Errorf("torch twin: %w", err)
	}
	gf := tb.FLOPsPerToken * tt.TokensPerSec / 1e9
	fmt.Printf("%-10s %12.3f %12.0f %12.1f %7.1f%% %12s\n", "torch "+tt.Version, tt.StepSeconds, tt.TokensPerSec, gf, 100*gf/tb.SGEMM, "")
	fmt.Printf("\nhybrid / torch: %.2f× the tokens/s (torch on %d threads, %s params)\n", tb.TokensPerSec/tt.TokensPerSec, tt.Threads, units.SI(float64(tt.Params)))
	if tt.Params != tb.Params {
		fmt.Printf("warning: the twin has %d parameters, ours %d: the models differ\n", tt.Params, tb.Params)
	}
	return nil
}

type torchResult struct {
	Version      string  `json:"version"`
	Threads      int     `json:"threads"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	StepSeconds  float64 `json:"step_seconds"`
	Params       int64   `json:"params"`
}

// runTorch runs the PyTorch twin and reads the JSON line it ends with.
func runTorch(ctx context.Context, python string, warmup, steps int) (*torchResult, error) {
	if _, err := os.Stat(torchScript); err != nil {
		return nil, fmt.Errorf("%s not found (run from the repository root)", torchScript)
	}
	cmd := exec.CommandContext(ctx, python, torchScript, "--warmup", fmt.Sprint(warmup), "--steps", fmt.Sprint(steps),
		"--threads", fmt.Sprint(runtime.NumCPU()))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var tr *torchResult
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "{") {
			var t torchResult
			if json.Unmarshal([]byte(line), &t) == nil && t.TokensPerSec > 0 {
				tr = &t
			}
		}
	}
	if tr == nil {
		return nil, fmt.Errorf("%s printed no result line:\n%s", torchScript, out)
	}
	return tr, nil
}

// defaultPython prefers Debian's interpreter, where python3-torch installs torch.
func defaultPython() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}
