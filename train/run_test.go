package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/tensor"
)

func options(t *testing.T, dir string, modelSeed uint64) (Options, *tiny) {
	be, m, ld, ev := setup(t, modelSeed)
	return Options{Model: m, Backend: be, Train: ld, Eval: ev, EvalBatches: 2, Recipe: testRecipe(),
		BytesPerToken: 1, Dir: dir, ConfigHash: "cafe"}, m
}

// A run of 6 steps and a run of 3 steps, a checkpoint, a fresh model, backend and loader, and
// a resume for 3 more give bit-identical losses and parameters.
func TestResumeBitIdentical(t *testing.T) {
	o, whole := options(t, t.TempDir(), 1)
	ref, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.Losses) != 6 || ref.Steps != 6 || ref.Tokens != 6*32 {
		t.Fatalf("uninterrupted run: %d losses, %d steps, %d tokens", len(ref.Losses), ref.Steps, ref.Tokens)
	}
	if !(ref.Losses[5] < ref.Losses[0]) {
		t.Errorf("loss did not fall: %v", ref.Losses)
	}

	dir := t.TempDir()
	o, _ = options(t, dir, 1)
	o.Hooks.OnStep = func(s StepInfo) error {
		if s.Step == 3 {
			return ErrStop
		}
		return nil
	}
	first, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Stopped || first.Steps != 3 || filepath.Base(first.Checkpoint) != "ckpt-000003" {
		t.Fatalf("first half: stopped %v at %d, checkpoint %q", first.Stopped, first.Steps, first.Checkpoint)
	}

	o, resumed := options(t, dir, 99) // a differently initialised model: everything must come from disk
	o.Resume = true
	second, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	got := append(append([]float64{}, first.Losses...), second.Losses...)
	for i := range ref.Losses {
		if got[i] != ref.Losses[i] {
			t.Fatalf("step %d: loss %v after resume, %v uninterrupted\n got %v\nwant %v", i+1, got[i], ref.Losses[i], got, ref.Losses)
		}
	}
	for i, p := range whole.Params() {
		a, b := hostOf(t, p.Buf()), hostOf(t, resumed.Params()[i].Buf())
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("%s[%d]: %v resumed, %v uninterrupted", p.Name(), j, b[j], a[j])
			}
		}
	}
	if second.Steps != 6 || second.Tokens != ref.Tokens || second.Val == nil || second.Val.Loss != ref.Val.Loss {
		t.Errorf("resumed result %+v, uninterrupted %+v", second, ref)
	}

	// metrics.jsonl has each step once, in order, with every field.
	steps := readMetrics(t, filepath.Join(dir, "metrics.jsonl"))
	if len(steps) != 6 {
		t.Fatalf("metrics.jsonl has %d step lines, want 6", len(steps))
	}
	for i, s := range steps {
		if int(s["step"].(float64)) != i+1 || s["loss"].(float64) != ref.Losses[i] {
			t.Errorf("line %d: %v", i, s)
		}
		for _, k := range []string{"lr", "grad_norm", "tokens", "tokens_per_s", "elapsed"} {
			if _, ok := s[k]; !ok {
				t.Errorf("line %d lacks %s", i, k)
			}
		}
	}
	events, _ := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	if len(events) != 2 { // one per session
		t.Errorf("event files %v, want 2", events)
	}

	// Resuming under another config is refused.
	o, _ = options(t, dir, 1)
	o.Resume, o.ConfigHash = true, "beef"
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "config") {
		t.Errorf("resume under another config hash: %v", err)
	}
	o, _ = options(t, t.TempDir(), 1)
	o.Resume = true
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("resume from an empty dir: %v", err)
	}
}

// readMetrics returns the step lines of a metrics file (evaluation lines have val_loss).
func readMetrics(t *testing.T, path string) []map[string]any {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	evals := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		if _, ok := m["val_loss"]; ok {
			evals++
			if _, ok := m["val_bpb"]; !ok {
				t.Errorf("eval line without bits per byte: %s", sc.Text())
			}
			continue
		}
		out = append(out, m)
	}
	if evals == 0 {
		t.Error("no validation lines")
	}
	return out
}

// A parameter turned to NaN after step 3 stops the run at step 4 with an error naming the step
// and the first parameter whose gradient is not finite; the checkpoint of step 2 is left as it was.
func TestNonFiniteStops(t *testing.T) {
	dir := t.TempDir()
	o, m := options(t, dir, 1)
	o.Recipe.CheckpointEvery = 2
	o.Eval = nil
	o.Hooks.OnStep = func(s StepInfo) error {
		if s.Step == 3 {
			hostOf(t, m.w.Buf())[5] = float32(math.NaN())
		}
		return nil
	}
	ckpt := filepath.Join(dir, "ckpt-000002", "model.safetensors")
	res, err := Run(context.Background(), o)
	var nf *NonFiniteError
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want a NonFiniteError", err)
	}
	if nf.Step != 4 || nf.Param != "emb" || !strings.Contains(err.Error(), "step 4") || !strings.Contains(err.Error(), "emb") {
		t.Errorf("error %q: want step 4 and parameter emb (the first in model order)", err)
	}
	if res.Steps != 3 || len(res.Losses) != 3 {
		t.Errorf("result after the guard: %d steps, losses %v", res.Steps, res.Losses)
	}
	latest, _ := os.ReadFile(filepath.Join(dir, "latest"))
	if strings.TrimSpace(string(latest)) != "ckpt-000002" {
		t.Errorf("latest = %q, want the step-2 checkpoint", latest)
	}
	c, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := c.Tensors.Get("head.w")
	if math.IsNaN(float64(w.Data[5])) || c.State.Step != 2 {
		t.Errorf("checkpoint was overwritten: step %d, head.w[5] = %v", c.State.Step, w.Data[5])
	}
	if _, err := os.Stat(ckpt); err != nil {
		t.Error(err)
	}
}

// Two micro-batches of 2 rows give the gradient of one batch of 4 rows: the micro-batches'
// gradients are averaged, not summed. (Compared before the update: AdamW's step barely depends
// on the gradient's scale, so the parameters could not tell a sum from a mean.)
func TestGradAccumulation(t *testing.T) {
	run := func(B, A int) ([]*tensor.Tensor, float64) {
		o, m := options(t, "", 1)
		o.Train.(*data.Loader).B = B
		o.Recipe.GradAccum = A
		o.Recipe.GradClip = 0
		o.Recipe.Budget.Steps = 1
		o.Eval = nil
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return m.Params(), res.Losses[0] // the gradients stay until the next step zeroes them
	}
	big, bigLoss := run(4, 1)
	acc, accLoss := run(2, 2)
	if math.Abs(bigLoss-accLoss) > 1e-6 {
		t.Errorf("loss %v accumulated, %v in one batch", accLoss, bigLoss)
	}
	for i, p := range big {
		numtest.Check(t, "d"+p.Name(), hostOf(t, acc[i].Grad()), numtest.F64s(hostOf(t, p.Grad())), numtest.F32.Scaled(16))
	}
}

func TestRunErrors(t *testing.T) {
	o, _ := options(t, "", 1)
	o.Recipe.Budget.Steps = 0
	if _, err := Run(context.Background(), o); err == nil {
		t.Error("no budget: no error")
	}
	o, _ = options(t, "", 1)
	o.Recipe.Schedule.Kind = "step"
	if _, err := Run(context.Background(), o); err == nil {
		t.Error("unknown schedule: no error")
	}
	o, _ = options(t, "", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res, err := Run(ctx, o); !errors.Is(err, context.Canceled) || !res.Stopped {
		t.Errorf("cancelled: %v", err)
	}
}

func TestKeepCheckpoints(t *testing.T) {
	dir := t.TempDir()
	o, _ := options(t, dir, 1)
	o.Recipe.CheckpointEvery = 1
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(dir, "ckpt-*"))
	if len(got) != 2 || filepath.Base(got[0]) != "ckpt-000005" || filepath.Base(got[1]) != "ckpt-000006" {
		t.Errorf("kept %v, want steps 5 and 6", got)
	}
	c, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Step != 6 || len(c.Tensors.Entries) != 9 || c.State.Loader.Pos == 0 || c.State.BestStep == 0 {
		t.Errorf("checkpoint state %+v with %d tensors", c.State, len(c.Tensors.Entries))
	}
	for _, n := range []string{"emb", "opt.m.emb", "opt.v.head.b"} {
		if _, ok := c.Tensors.Get(n); !ok {
			t.Errorf("checkpoint lacks %s", n)
		}
	}
}

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, 10, 0, 5)
	for s := 1; s <= 10; s++ {
		p.Update(StepInfo{Step: s, Loss: 2.5, TokensPerS: 12345})
	}
	p.Done()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || strings.Contains(b.String(), "\r") {
		t.Fatalf("not a terminal: want two plain lines, got %q", b.String())
	}
	for _, want := range []string{"step 10/10", "100%", "loss 2.5000", "12.3k tok/s", "ETA"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("%q lacks %q", lines[1], want)
		}
	}
	b.Reset()
	p = NewProgress(&b, 10, 0, 5)
	p.TTY = true
	p.Update(StepInfo{Step: 1, Loss: 3})
	p.Printf("checkpoint x")
	p.Update(StepInfo{Step: 10, Loss: 1})
	p.Done()
	if s := b.String(); !strings.HasPrefix(s, "\rstep  1/10") || !strings.Contains(s, "checkpoint x\n") || !strings.HasSuffix(s, "\n") {
		t.Errorf("terminal output %q", s)
	}
}
