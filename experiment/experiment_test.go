package experiment

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/results"
	"github.com/hybridlab/hybrid/tensor"
	"github.com/hybridlab/hybrid/train"
)

// tinyRecipe is a two-layer hybrid on a small text corpus written into a temp dir.
func tinyRecipe(t *testing.T, sets ...string) *recipes.Recipe {
	t.Helper()
	corpus := t.TempDir()
	for i := range 6 {
		text := strings.Repeat("func add(a, b int) int { return a + b }\n", 40+i)
		if err := os.WriteFile(filepath.Join(corpus, string(rune('a'+i))+".txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HYBRID_CACHE", t.TempDir())
	base := []string{
		"data.corpus.kind=text", "data.corpus.path=" + corpus,
		"model.d_model=32", "model.n_layers=2", "model.layout.ratio=1:1",
		"model.attention.heads=2", "model.attention.kv_heads=1", "model.attention.head_dim=16",
		"model.mamba.head_dim=16", "model.mamba.d_state=8", "model.ffn.hidden=64",
		"data.seq_len=32", "data.batch_size=4", "train.budget.steps=6", "train.eval_every=3",
		"train.checkpoint_every=2", "train.schedule.warmup=1", "eval.batches=2", "train.log_every=1",
	}
	r, err := recipes.Load("quickstart", append(base, sets...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunWritesResults(t *testing.T) {
	r := tinyRecipe(t)
	dir := t.TempDir()
	res, err := Run(context.Background(), r, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	back, err := results.Read(filepath.Join(dir, results.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if back.ConfigHash != r.Hash() || back.Cost.Steps != 6 || back.Cost.Tokens != 6*4*32 || back.Family != "inter" {
		t.Fatalf("results: %+v", back.Cost)
	}
	if back.LM == nil || !(back.LM.BitsPerByte > 0) || back.Metrics["lm.bpb"] != res.LM.BitsPerByte {
		t.Fatalf("lm section: %+v", back.LM)
	}
	if back.Cost.FLOPs != back.Cost.FLOPsPerToken*float64(back.Cost.Tokens) || back.Cost.PeakBytes <= 0 {
		t.Fatalf("cost: %+v", back.Cost)
	}
	again, err := recipes.Load(filepath.Join(dir, RecipeFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Hash() != r.Hash() {
		t.Fatal("recipe.yaml does not reload to the same configuration")
	}

	// The trained model comes back from the run directory and from its checkpoint directory
	// with the same validation loss.
	for _, path := range []string{dir, filepath.Join(dir, "ckpt-000006")} {
		tr, err := Open(path, "")
		if err != nil {
			t.Fatal(err)
		}
		d, err := Prepare(tr.Recipe)
		if err != nil {
			t.Fatal(err)
		}
		loss, _, err := train.Evaluate(tensor.NewTape(tr.Backend), tr.Model, d.Val, r.Eval.Batches)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(loss-res.LM.NLL) > 1e-5*res.LM.NLL { // the suite reads logits, the loop the fused loss
			t.Fatalf("Open(%s): validation loss %v, the run's %v", path, loss, res.LM.NLL)
		}
	}
	if _, err := Open(t.TempDir(), ""); err == nil {
		t.Fatal("Open of an empty directory: no error")
	}
}

// A run cancelled midway resumes from its checkpoint to the same final loss as a run that
// was never interrupted.
func TestRunResumesAfterStop(t *testing.T) {
	full, err := Run(context.Background(), tinyRecipe(t), t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := tinyRecipe(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	logw := &cancelAfter{cancel: cancel, marker: "resuming"}
	// Cancel from the progress writer once step 3 prints.
	o := Options{Progress: &cancelAfter{cancel: cancel, marker: "step 3/"}, Log: logw}
	if _, err := Run(ctx, r, dir, o); err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, results.FileName)); !os.IsNotExist(err) {
		t.Fatal("an interrupted run wrote results.json")
	}
	res, err := Run(context.Background(), r, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Train.FinalLoss != full.Train.FinalLoss || res.LM.NLL != full.LM.NLL {
		t.Fatalf("resumed run ends at loss %v / val %v, uninterrupted at %v / %v",
			res.Train.FinalLoss, res.LM.NLL, full.Train.FinalLoss, full.LM.NLL)
	}
	// Another configuration may not take over the directory.
	other := tinyRecipe(t, "train.optimizer.lr=0.01")
	if _, err := Run(context.Background(), other, dir, Options{}); err == nil || !strings.Contains(err.Error(), "another configuration") {
		t.Fatalf("other config in the same dir: err = %v", err)
	}
}

type cancelAfter struct {
	cancel func()
	marker string
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.marker) {
		c.cancel()
	}
	return len(p), nil
}

func TestFamily(t *testing.T) {
	for pattern, want := range map[string]string{
		"AAAA": "transformer", "MMMM": "mamba", "MMAM": "inter", "M*": "other", "MSMS": "swa",
		"IIII": "intra", "MWMM": "intra", "A-A-": "transformer", "": "other", "SSSS": "transformer",
	} {
		if got := Family(pattern); got != want {
			t.Errorf("Family(%q) = %s, want %s", pattern, got, want)
		}
	}
}
