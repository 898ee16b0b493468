package experiment

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/eval"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/ops"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/results"
	"github.com/hybridlab/hybrid/tensor"
	"github.com/hybridlab/hybrid/train"
)

// EvalOptions turns a recipe's eval section and its data into the evaluation's options.
// suites, when not empty, replaces the recipe's list.
func EvalOptions(r *recipes.Recipe, d *Data, be kernels.Backend, suites []string, out, progress io.Writer) eval.Options {
	o := eval.Options{
		Suites: suites, Out: out, Progress: progress, Seed: uint64(r.Train.Seed),
		Val: d.ValStream, Tokenizer: d.Tokenizer, BytesPerToken: d.BytesPerToken,
		SeqLen: r.Data.SeqLen, Batch: r.Data.BatchSize, LMBatches: r.Eval.Batches,
		LongLengths: r.Eval.Lengths, NeedleLengths: r.Eval.Lengths, Trials: r.Eval.Trials,
		MQAR: d.MQAR, Contexts: r.Eval.Contexts,
	}
	if len(o.Suites) == 0 {
		o.Suites = r.Eval.Suites
	}
	eval.ArchMemory(r.Model, &o)
	B, T := r.Data.BatchSize, r.Data.SeqLen
	o.TokensPerStep = B * T
	if c, err := r.Model.Count(T); err == nil {
		o.FLOPsPerToken = c.TrainFLOPs()
	}
	o.TrainStep = trainStepper(r, be, d)
	return o
}

// trainStepper times full training steps (forward, backward, clipping, AdamW) on a fresh copy
// of the model, so the efficiency suite never touches the weights under evaluation. The copy
// is built on first use.
func trainStepper(r *recipes.Recipe, be kernels.Backend, d *Data) func() error {
	var (
		m     *arch.Model
		opt   *train.AdamW
		tp    *tensor.Tape
		batch data.Batch
		src   train.Batches
	)
	return func() error {
		if m == nil {
			var err error
			if m, err = arch.Build(r.Model, be, uint64(r.Train.Seed)); err != nil {
				return err
			}
			o := r.Train.Optimizer
			opt = train.NewAdamW(be, m.Params(), ops.AdamWConfig{Beta1: o.Betas[0], Beta2: o.Betas[1], Eps: o.Eps, WeightDecay: o.WeightDecay})
			tp = tensor.NewTape(be)
			if src, err = freshBatches(r, d); err != nil {
				return err
			}
		}
		for _, p := range m.Params() {
			p.ZeroGrad(be)
		}
		tp.Reset()
		src.Next(&batch)
		loss, _ := m.Loss(tp, batch.Inputs, batch.Targets, batch.B, batch.T)
		if err := tp.Backward(loss); err != nil {
			return err
		}
		norm, err := train.GradNorm(be, m.Params())
		if err != nil {
			return err
		}
		if err := train.ClipGrads(be, m.Params(), norm, r.Train.GradClip); err != nil {
			return err
		}
		return opt.Update(r.Train.Optimizer.LR)
	}
}

// freshBatches is a new training stream for timing, independent of the run's loader position.
func freshBatches(r *recipes.Recipe, d *Data) (train.Batches, error) {
	if r.Data.Corpus.Kind == "mqar" {
		return data.NewMQARLoader(r.MQARTask(), r.Data.BatchSize, 0, uint64(r.Train.Seed))
	}
	if d.ValStream == nil {
		return nil, fmt.Errorf("no token stream to time training on")
	}
	return data.NewLoader(d.ValStream, r.Data.BatchSize, r.Data.SeqLen, 1)
}

// evaluate runs the recipe's suites on the trained model and fills out.
func evaluate(ctx context.Context, r *recipes.Recipe, m *arch.Model, d *Data, be kernels.Backend, out *results.Results, o Options, suites []string) error {
	eo := EvalOptions(r, d, be, suites, o.Log, o.Progress)
	if len(eo.Suites) == 0 {
		return nil
	}
	return eval.Run(ctx, eval.Arch{M: m}, eo, out)
}

// Evaluate runs suites (the recipe's when empty) on a trained model and writes the results to
// path, merged into the file already there when it describes the same configuration. Every
// check (unknown suite, missing data, a length memory cannot hold) happens before anything
// runs, and the file is replaced atomically only when every suite finished.
func Evaluate(ctx context.Context, tr *Trained, suites []string, path string, o Options) (*results.Results, error) {
	r := tr.Recipe
	d, err := Prepare(r)
	if err != nil {
		return nil, fmt.Errorf("%s: data: %w", r.Name, err)
	}
	hash := r.Hash()
	var out *results.Results
	if prev, err := results.Read(path); err == nil && prev.ConfigHash == hash {
		out = prev
	} else {
		count, err := r.Model.Count(r.Data.SeqLen)
		if err != nil {
			return nil, err
		}
		out = describe(r, hash, tr.Backend, count)
		st := tr.Checkpoint.State
		out.Cost.Tokens, out.Cost.Steps, out.Cost.WallSeconds = st.Tokens, st.Step, st.Elapsed
		out.Cost.FLOPs = out.Cost.FLOPsPerToken * float64(st.Tokens)
		out.Train = &results.Train{FinalLoss: st.LastLoss, BestVal: st.BestVal, BestStep: st.BestStep,
			SeqLen: r.Data.SeqLen, BatchSize: r.Data.BatchSize}
	}
	if err := evaluate(ctx, r, tr.Model, d, tr.Backend, out, o, suites); err != nil {
		return nil, err
	}
	if d.Unigram > 0 {
		out.Flatten()["data.unigram_bpb"] = d.Unigram
	}
	out.Created = time.Now().UTC().Format(time.RFC3339)
	if err := results.Write(path, out); err != nil {
		return nil, err
	}
	return out, nil
}
