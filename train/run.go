package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/ops"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/tensor"
)

// Model is what the loop trains: named parameters (unique names; they key the checkpoint) and
// the mean next-token loss of a (B, T) batch recorded on tp, with the number of tokens scored.
// Errors go on the tape (tp.Fail); the loop checks tp.Err.
type Model interface {
	Params() []*tensor.Tensor
	Loss(tp *tensor.Tape, ids, targets []int32, B, T int) (*tensor.Tensor, int)
}

// Batches is a resumable source of training batches (data.Loader, data.MQARLoader).
type Batches interface {
	Shape() (B, T int)
	Next(b *data.Batch)
	State() data.State
	Restore(data.State) error
}

// EvalSet is a held-out set read from its start on every pass (data.Eval).
type EvalSet interface {
	Reset()
	Next(b *data.Batch) bool
}

// Hooks are called by Run; a hook's error stops the run with that error, except ErrStop, which
// ends it cleanly after a checkpoint.
type Hooks struct {
	OnStep func(StepInfo) error
	OnEval func(EvalInfo) error
	OnEnd  func(*Result) error
}

// ErrStop, returned by a hook, ends the run early after writing a checkpoint; Run then returns
// no error and Result.Stopped is set.
var ErrStop = errors.New("train: stop requested")

// Options is one training run.
type Options struct {
	Model   Model
	Backend kernels.Backend
	Train   Batches // training batches; B·T per micro-batch
	Eval    EvalSet // validation batches, or nil
	// EvalBatches bounds each validation pass (0: the whole of Eval).
	EvalBatches int
	// Recipe is the optimisation: AdamW settings, schedule, grad clip, accumulation, budget,
	// eval/checkpoint/log cadence and seed. Dtype is the model builder's business, not the loop's.
	Recipe recipes.Train
	// FLOPsPerToken is the model's training FLOPs per token (arch Count(T).TrainFLOPs()),
	// needed for a FLOP budget.
	FLOPsPerToken float64
	// BytesPerToken, when > 0, turns validation loss into bits per byte.
	BytesPerToken float64
	// Dir is the run directory (metrics, event file, checkpoints); "" writes nothing.
	Dir string
	// Resume continues from Dir's latest checkpoint (an error when there is none).
	Resume bool
	// ConfigHash identifies the experiment (recipes.Recipe.Hash); Resume refuses a checkpoint
	// made under another hash.
	ConfigHash string
	// Keep is how many checkpoints to keep (0: 2, the newest and the one before).
	Keep     int
	Hooks    Hooks
	Progress io.Writer // console progress bar, or nil
	Tape     *tensor.Tape
}

// Result is what a run did.
type Result struct {
	Steps      int       // completed steps, earlier sessions included
	Total      int       // steps in the budget
	Tokens     int64     // training tokens seen
	Losses     []float64 // training loss of each step of this session
	LastLoss   float64
	Val        *EvalInfo // the last validation pass, or nil
	BestVal    float64   // lowest validation loss (0 when none)
	BestStep   int
	Elapsed    time.Duration // training time over all sessions
	Checkpoint string        // the last checkpoint written or resumed from
	Stopped    bool          // ended early by ErrStop or a cancelled context
}

// NonFiniteError reports a step whose loss or gradients hold a NaN or an infinity. The step's
// update is not applied and no checkpoint is written.
type NonFiniteError struct {
	Step           int
	Loss, GradNorm float64
	Param          string // first parameter (model order) with a non-finite gradient, or ""
	Index          int    // its first bad element
}

func (e *NonFiniteError) Error() string {
	where := "every gradient is finite"
	if e.Param != "" {
		where = fmt.Sprintf("the gradient of %s is non-finite at element %d", e.Param, e.Index)
	}
	return fmt.Sprintf("train: step %d: loss %g, gradient norm %g: %s; stopped before the update, last good checkpoint kept",
		e.Step, e.Loss, e.GradNorm, where)
}

func (o *Options) check() error {
	switch {
	case o.Model == nil || o.Backend == nil || o.Train == nil:
		return errors.New("train.Run: Model, Backend and Train are required")
	case o.Recipe.GradAccum < 1:
		return fmt.Errorf("train.Run: grad_accum %d, want ≥ 1", o.Recipe.GradAccum)
	case o.Resume && o.Dir == "":
		return errors.New("train.Run: Resume needs a run directory")
	case len(o.Recipe.Optimizer.Betas) != 2:
		return fmt.Errorf("train.Run: optimizer betas %v, want two", o.Recipe.Optimizer.Betas)
	case o.Recipe.Optimizer.Name != "" && o.Recipe.Optimizer.Name != "adamw":
		return fmt.Errorf("train.Run: optimizer %q not supported (want adamw)", o.Recipe.Optimizer.Name)
	}
	return CheckSchedule(o.Recipe.Schedule)
}

// Run trains o.Model until the budget is spent, ctx is cancelled or a hook says stop. Each
// step: zero the gradients; for each of A micro-batches reset the tape, run the loss forward and
// backward with seed 1/A (so the gradient is the micro-batches' mean); check the loss and the
// global gradient norm are finite; clip; take the rate from the schedule; update with AdamW.
// Validation runs every EvalEvery steps and at the end, checkpoints every CheckpointEvery steps
// and at the end (and when stopped early).
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	be, rc := o.Backend, o.Recipe
	params := o.Model.Params()
	seen := map[string]bool{}
	for i, p := range params {
		if p == nil || p.Name() == "" || seen[p.Name()] {
			return nil, fmt.Errorf("train.Run: parameter %d is nil, unnamed or named twice (%v)", i, p)
		}
		seen[p.Name()] = true
	}
	B, T := o.Train.Shape()
	A := rc.GradAccum
	perStep := int64(A * B * T)
	total, err := Steps(rc.Budget, perStep, o.FLOPsPerToken)
	if err != nil {
		return nil, err
	}
	opt := NewAdamW(be, params, ops.AdamWConfig{
		Beta1: rc.Optimizer.Betas[0], Beta2: rc.Optimizer.Betas[1],
		Eps: rc.Optimizer.Eps, WeightDecay: rc.Optimizer.WeightDecay,
	})
	keep := o.Keep
	if keep == 0 {
		keep = 2
	}
	tp := o.Tape
	if tp == nil {
		tp = tensor.NewTape(be)
	}

	st := State{Seed: rc.Seed, ConfigHash: o.ConfigHash, Loader: o.Train.State()}
	res := &Result{Total: total}
	if o.Resume {
		ck, err := LoadCheckpoint(o.Dir)
		if err != nil {
			return nil, err
		}
		if ck.State.ConfigHash != o.ConfigHash || ck.State.Seed != rc.Seed {
			return nil, fmt.Errorf("train.Run: %s was made by config %.12s seed %d, this run is config %.12s seed %d",
				ck.Dir, ck.State.ConfigHash, ck.State.Seed, o.ConfigHash, rc.Seed)
		}
		if err := ck.Restore(be, opt, o.Train); err != nil {
			return nil, err
		}
		st = ck.State
		res.Checkpoint = ck.Dir
		if err := trimMetrics(filepath.Join(o.Dir, "metrics.jsonl"), st.Step); err != nil {
			return nil, err
		}
	}

	var log *jsonLines
	var events *EventWriter
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, err
		}
		if log, err = openJSONLines(filepath.Join(o.Dir, "metrics.jsonl")); err != nil {
			return nil, err
		}
		defer log.Close()
		if events, err = NewEventWriter(o.Dir); err != nil {
			return nil, err
		}
		defer events.Close()
	}
	var bar *Progress
	if o.Progress != nil {
		bar = NewProgress(o.Progress, total, st.Step, rc.LogEvery)
		defer bar.Done()
	}
	say := func(format string, a ...any) {
		if bar != nil {
			bar.Printf(format, a...)
		}
	}

	baseElapsed := time.Duration(st.Elapsed * float64(time.Second))
	start := time.Now()
	elapsed := func() time.Duration { return baseElapsed + time.Since(start) }
	sync := func() {
		st.Loader = o.Train.State()
		st.Elapsed = elapsed().Seconds()
		res.Steps, res.Tokens, res.LastLoss = st.Step, st.Tokens, st.LastLoss
		res.BestVal, res.BestStep, res.Elapsed = st.BestVal, st.BestStep, elapsed()
	}
	save := func() error {
		if o.Dir == "" {
			return nil
		}
		sync()
		dir, err := SaveCheckpoint(o.Dir, be, opt, st, keep)
		if err != nil {
			return err
		}
		res.Checkpoint = dir
		say("checkpoint %s", dir)
		return nil
	}
	evaluate := func() error {
		if o.Eval == nil {
			return nil
		}
		loss, n, err := Evaluate(tp, o.Model, o.Eval, o.EvalBatches)
		if err != nil {
			return fmt.Errorf("train: validation at step %d: %w", st.Step, err)
		}
		if !finite(loss) {
			return fmt.Errorf("train: step %d: validation loss is %g", st.Step, loss)
		}
		ev := EvalInfo{Step: st.Step, Tokens: st.Tokens, Loss: loss, Scored: n}
		if o.BytesPerToken > 0 {
			ev.BPB = loss / math.Ln2 / o.BytesPerToken
		}
		res.Val = &ev
		if st.BestStep == 0 || loss < st.BestVal {
			st.BestVal, st.BestStep = loss, st.Step
		}
		if log != nil {
			if err := log.add(ev); err != nil {
				return err
			}
			sc := []Scalar{{"val_loss", float32(loss)}}
			if ev.BPB > 0 {
				sc = append(sc, Scalar{"val_bpb", float32(ev.BPB)})
			}
			if err := events.Scalars(st.Step, time.Now(), sc...); err != nil {
				return err
			}
			if err := events.Flush(); err != nil {
				return err
			}
		}
		say("step %d: val_loss %.4f%s", st.Step, loss, map[bool]string{true: fmt.Sprintf(" (%.4f bits/byte)", ev.BPB)}[ev.BPB > 0])
		if o.Hooks.OnEval != nil {
			return o.Hooks.OnEval(ev)
		}
		return nil
	}
	stop := func(cause error) (*Result, error) { // early end: checkpoint, then report
		res.Stopped = true
		if err := save(); err != nil {
			return res, err
		}
		sync()
		if errors.Is(cause, ErrStop) {
			return res, nil
		}
		return res, cause
	}

	var batch data.Batch
	for st.Step < total {
		if err := ctx.Err(); err != nil {
			return stop(err)
		}
		t0 := time.Now()
		for _, p := range params {
			p.ZeroGrad(be)
		}
		lossSum := 0.0
		for range A {
			tp.Reset()
			o.Train.Next(&batch)
			loss, _ := o.Model.Loss(tp, batch.Inputs, batch.Targets, batch.B, batch.T)
			if err := tp.Err(); err != nil {
				return res, fmt.Errorf("train: step %d: forward: %w", st.Step+1, err)
			}
			if err := tp.Backward(loss, float32(1/float64(A))); err != nil {
				return res, fmt.Errorf("train: step %d: backward: %w", st.Step+1, err)
			}
			v, err := host(be, loss.Buf())
			if err != nil {
				return res, err
			}
			lossSum += float64(v[0])
		}
		tp.Reset()
		loss := lossSum / float64(A)
		norm, err := GradNorm(be, params)
		if err != nil {
			return res, err
		}
		if !finite(loss) || !finite(norm) {
			e := &NonFiniteError{Step: st.Step + 1, Loss: loss, GradNorm: norm}
			if e.Param, e.Index, err = FirstNonFinite(be, params); err != nil {
				return res, err
			}
			return res, e
		}
		if err := ClipGrads(be, params, norm, rc.GradClip); err != nil {
			return res, err
		}
		lr := LR(rc.Schedule, rc.Optimizer.LR, st.Step, total)
		if err := opt.Update(lr); err != nil {
			return res, err
		}
		st.Step++
		st.Tokens += perStep
		st.LastLoss = loss
		res.Losses = append(res.Losses, loss)
		sync()
		dt := time.Since(t0)

		info := StepInfo{Step: st.Step, Total: total, Loss: loss, LR: lr, GradNorm: norm, Tokens: st.Tokens,
			TokensPerS: float64(perStep) / max(dt.Seconds(), 1e-9), Elapsed: elapsed().Seconds()}
		if log != nil {
			if err := log.add(info); err != nil {
				return res, err
			}
			if err := events.Scalars(st.Step, time.Now(), Scalar{"loss", float32(loss)}, Scalar{"lr", float32(lr)},
				Scalar{"grad_norm", float32(norm)}); err != nil {
				return res, err
			}
		}
		if bar != nil {
			bar.Update(info)
		}
		var hookErr error
		if o.Hooks.OnStep != nil {
			hookErr = o.Hooks.OnStep(info)
		}
		last := st.Step == total
		if hookErr == nil && ((rc.EvalEvery > 0 && st.Step%rc.EvalEvery == 0) || last) {
			hookErr = evaluate()
		}
		if events != nil {
			if err := events.Flush(); err != nil {
				return res, err
			}
		}
		if hookErr != nil {
			return stop(hookErr)
		}
		if (rc.CheckpointEvery > 0 && st.Step%rc.CheckpointEvery == 0) || last {
			if err := save(); err != nil {
				return res, err
			}
		}
	}
	sync()
	if o.Hooks.OnEnd != nil {
		if err := o.Hooks.OnEnd(res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Evaluate returns the mean loss per scored token over up to maxBatches batches of ev (0: a
// whole pass), from the start, with the tape in no-grad mode.
func Evaluate(tp *tensor.Tape, m Model, ev EvalSet, maxBatches int) (loss float64, tokens int, err error) {
	was := tp.NoGrad()
	tp.SetNoGrad(true)
	defer func() {
		tp.Reset()
		tp.SetNoGrad(was)
	}()
	ev.Reset()
	var b data.Batch
	sum := 0.0
	for i := 0; (maxBatches <= 0 || i < maxBatches) && ev.Next(&b); i++ {
		tp.Reset()
		l, n := m.Loss(tp, b.Inputs, b.Targets, b.B, b.T)
		if err := tp.Err(); err != nil {
			return 0, 0, err
		}
		v, err := host(tp.Backend(), l.Buf())
		if err != nil {
			return 0, 0, err
		}
		sum += float64(v[0]) * float64(n)
		tokens += n
	}
	if tokens == 0 {
		return 0, 0, errors.New("train.Evaluate: no tokens scored")
	}
	return sum / float64(tokens), tokens, nil
}
