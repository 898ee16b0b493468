package eval

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/internal/sysinfo"
	"github.com/hybridlab/hybrid/results"
)

// decodeRun is one (context, batch) decode measurement to make.
type decodeRun struct{ C, B int }

type effPlan struct {
	runs    []decodeRun
	skipped []string // contexts left out, and why
}

func prepareEfficiency(m Model, o *Options, mem *memory) (*effPlan, error) {
	if o.TrainStep != nil && o.TokensPerStep <= 0 {
		return nil, fmt.Errorf("efficiency: TrainStep given without TokensPerStep")
	}
	if err := checkLengths(SuiteEfficiency, "Contexts", o.Contexts); err != nil {
		return nil, err
	}
	for _, B := range o.DecodeBatches {
		if B <= 0 {
			return nil, fmt.Errorf("efficiency: decode batch %d, want > 0", B)
		}
	}
	p := &effPlan{}
	for _, C := range o.Contexts {
		if o.MaxContext > 0 && C > o.MaxContext {
			p.skipped = append(p.skipped, fmt.Sprintf("context %d: above MaxContext %d", C, o.MaxContext))
			continue
		}
		for _, B := range o.DecodeBatches {
			if err := mem.fits(SuiteEfficiency, B, C+o.DecodeSteps+1); err != nil {
				p.skipped = append(p.skipped, err.Error())
				continue
			}
			p.runs = append(p.runs, decodeRun{C, B})
		}
	}
	if o.TrainStep == nil && len(p.runs) == 0 {
		return nil, fmt.Errorf("efficiency: nothing to measure: no TrainStep and no decode context fits (%v)", p.skipped)
	}
	return p, nil
}

// Efficiency measures training speed (steady state: Warmup steps excluded) and MFU against
// the SGEMM rate measured in this run, peak memory, prefill throughput, and decode latency,
// throughput and cache size at each context and batch.
func Efficiency(ctx context.Context, m Model, o Options) (*results.Efficiency, error) {
	o.defaults()
	p, err := prepareEfficiency(m, &o, newMemory(m, &o))
	if err != nil {
		return nil, err
	}
	return p.run(ctx, m, &o)
}

// prefill records one prefill measurement for the table.
type prefill struct {
	C, B      int
	tokPerSec float64
}

func (p *effPlan) run(ctx context.Context, m Model, o *Options) (*results.Efficiency, error) {
	r := &results.Efficiency{}
	if o.TrainStep != nil {
		bar := newBar(o.Progress, "train steps", o.Warmup+o.Steps)
		for range o.Warmup {
			if err := o.TrainStep(); err != nil {
				return nil, fmt.Errorf("warmup step: %w", err)
			}
			bar.add(1)
		}
		var total time.Duration
		for range o.Steps {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t0 := time.Now()
			if err := o.TrainStep(); err != nil {
				return nil, fmt.Errorf("timed step: %w", err)
			}
			total += time.Since(t0)
			bar.add(1)
		}
		r.TrainStepSeconds = total.Seconds() / float64(o.Steps)
		r.TrainTokensPerSec = float64(o.TokensPerStep) / max(r.TrainStepSeconds, 1e-12)
		r.SGEMMGFLOPS = o.PeakGFLOPS
		if r.SGEMMGFLOPS <= 0 {
			r.SGEMMGFLOPS = ceiling.SGEMM()
		}
		if o.FLOPsPerToken > 0 && r.SGEMMGFLOPS > 0 {
			r.MFU = o.FLOPsPerToken * r.TrainTokensPerSec / (r.SGEMMGFLOPS * 1e9)
		}
	}

	V := m.Vocab()
	rng := rand.New(rand.NewPCG(o.Seed, 0x6566_6663)) // "effc"
	var pre []prefill
	bar := newBar(o.Progress, "decode", len(p.runs))
	for _, run := range p.runs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		C, B := run.C, run.B
		d, err := m.NewDecoder(B, C+o.DecodeSteps+1)
		if err != nil {
			return nil, fmt.Errorf("decoder for %d×%d: %w", B, C, err)
		}
		ids := make([]int32, B*C)
		for i := range ids {
			ids[i] = int32(rng.IntN(V))
		}
		t0 := time.Now()
		logits, err := d.Prefill(ids, C)
		if err != nil {
			return nil, fmt.Errorf("prefill of %d×%d: %w", B, C, err)
		}
		pre = append(pre, prefill{C, B, float64(B*C) / max(time.Since(t0).Seconds(), 1e-12)})
		next := make([]int32, B)
		step := func() error {
			if err := checkLogits("decoder", logits, B, V); err != nil {
				return err
			}
			for r := range B {
				next[r] = int32(argmax(logits[r*V : (r+1)*V]))
			}
			logits, err = d.Step(next)
			return err
		}
		if err := step(); err != nil { // warm: first-step allocations are not steady state
			return nil, fmt.Errorf("decode at %d×%d: %w", B, C, err)
		}
		t0 = time.Now()
		for range o.DecodeSteps {
			if err := step(); err != nil {
				return nil, fmt.Errorf("decode at %d×%d: %w", B, C, err)
			}
		}
		dt := time.Since(t0).Seconds() / float64(o.DecodeSteps)
		dec := results.Decode{Context: C, Batch: B, LatencyMs: 1e3 * dt, TokensPerSec: float64(B) / max(dt, 1e-12),
			CacheBytes: d.Bytes()}
		if o.CacheBytes != nil {
			dec.AnalyticBytes = int64(B) * o.CacheBytes(d.Len())
		}
		r.Decode = append(r.Decode, dec)
		d = nil
		runtime.GC() // let the next, larger cache reuse this one's memory
		bar.add(1)
	}
	// The prefill figure is the longest context measured at batch 1 (the largest batch when
	// batch 1 was not run).
	better := func(a, b prefill) bool {
		if (a.B == 1) != (b.B == 1) {
			return a.B == 1
		}
		if a.C != b.C {
			return a.C > b.C
		}
		return a.B > b.B
	}
	best := prefill{}
	for i, x := range pre {
		if i == 0 || better(x, best) {
			best = x
		}
	}
	r.PrefillTokensPerSec = best.tokPerSec
	r.PeakBytes = sysinfo.PeakRSS() // VmHWM, or the Go runtime's total where /proc is missing
	goTotal, goHeap := GoMemory()
	if o.Out != nil {
		tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
		if o.TrainStep != nil {
			fmt.Fprintf(tw, "training\tstep s\ttok/s\tMFU\tSGEMM GFLOP/s\t\n")
			fmt.Fprintf(tw, "%d timed, %d warmup\t%.4f\t%.1f\t%.4f\t%.1f\t\n", o.Steps, o.Warmup, r.TrainStepSeconds,
				r.TrainTokensPerSec, r.MFU, r.SGEMMGFLOPS)
		}
		tw.Flush()
		tw = tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "memory\tpeak RSS\tGo mapped\tGo heap\t\n")
		fmt.Fprintf(tw, "\t%s\t%s\t%s\t\n", human(sysinfo.PeakRSS()), human(goTotal), human(goHeap))
		tw.Flush()
		tw = tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
		if len(r.Decode) > 0 {
			fmt.Fprintf(tw, "decode\tcontext\tbatch\tprefill tok/s\tms/token\ttok/s\tcache\tanalytic\t\n")
			for i, dec := range r.Decode {
				an := "-"
				if o.CacheBytes != nil {
					an = human(dec.AnalyticBytes)
				}
				fmt.Fprintf(tw, "\t%d\t%d\t%.0f\t%.3f\t%.1f\t%s\t%s\t\n", dec.Context, dec.Batch, pre[i].tokPerSec,
					dec.LatencyMs, dec.TokensPerSec, human(dec.CacheBytes), an)
			}
		}
		tw.Flush()
		for _, s := range p.skipped {
			fmt.Fprintf(o.Out, "  skipped %s\n", s)
		}
	}
	return r, nil
}
