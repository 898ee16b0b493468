package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/results"
)

// tiny are overrides that shrink the quickstart to seconds on a small text corpus.
func tiny(t *testing.T) []string {
	corpus := t.TempDir()
	for i := range 4 {
		text := strings.Repeat("func sum(xs []int) (s int) { for _, x := range xs { s += x }; return }\n", 30+i)
		if err := os.WriteFile(filepath.Join(corpus, string(rune('a'+i))+".go.txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HYBRID_CACHE", t.TempDir())
	var args []string
	for _, s := range []string{
		"data.corpus.kind=text", "data.corpus.path=" + corpus, "model.d_model=32", "model.n_layers=2",
		"model.layout.ratio=1:1", "model.attention.heads=2", "model.attention.kv_heads=1",
		"model.attention.head_dim=16", "model.mamba.head_dim=16", "model.mamba.d_state=8", "model.ffn.hidden=64",
		"data.seq_len=32", "data.batch_size=4", "train.budget.steps=4", "train.eval_every=2",
		"train.schedule.warmup=1", "eval.batches=2",
	} {
		args = append(args, "--set", s)
	}
	return args
}

// The front door end to end: train, refuse to clobber, resume-complete, evaluate more suites,
// generate.
func TestTrainEvalGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	args := append([]string{"quickstart", "--dir", dir, "--quiet"}, tiny(t)...)
	if err := cmdTrain(args); err != nil {
		t.Fatal(err)
	}
	res, err := results.Read(filepath.Join(dir, results.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if res.LM == nil || res.Cost.Steps != 4 {
		t.Fatalf("results after train: %+v", res.Cost)
	}
	if err := cmdTrain(args); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("second train into the same dir: err = %v, want a hint to --resume", err)
	}
	if err := cmdEval([]string{dir, "--suite", "lm,passkey", "--lengths", "128,256", "--trials", "2"}); err != nil {
		t.Fatal(err)
	}
	res, err = results.Read(filepath.Join(dir, results.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if res.Passkey == nil || len(res.Passkey.Lengths) != 2 || res.LM == nil {
		t.Fatalf("eval did not merge its suites: %+v", res.Passkey)
	}
	if err := cmdEval([]string{dir, "--suite", "nonsense"}); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("unknown suite: err = %v", err)
	}
	if err := cmdEval([]string{t.TempDir()}); err == nil {
		t.Fatal("eval of an empty directory: no error")
	}
	if err := cmdGenerate([]string{dir, "--tokens", "5", "--prompt", "func"}); err != nil {
		t.Fatal(err)
	}
}

func TestSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := []float32{0.1, 3, -1, 2.9}
	if got := sample(logits, 0, 0, rng); got != 1 {
		t.Fatalf("greedy = %d, want 1", got)
	}
	for range 100 {
		if got := sample(logits, 1, 1, rng); got != 1 {
			t.Fatalf("top-1 sampled %d", got)
		}
		if got := sample(logits, 1, 2, rng); got != 1 && got != 3 {
			t.Fatalf("top-2 sampled %d", got)
		}
	}
}

func TestIntList(t *testing.T) {
	got, err := intList("512, 1K,2k")
	if err != nil || len(got) != 3 || got[1] != 1024 || got[2] != 2048 {
		t.Fatalf("intList = %v, %v", got, err)
	}
	if _, err := intList("0"); err == nil {
		t.Fatal("0 accepted")
	}
}
