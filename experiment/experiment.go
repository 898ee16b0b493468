// Package experiment runs one recipe end to end: data, model, training (resuming when the run
// directory holds a checkpoint of the same configuration), the recipe's evaluation suites, and
// results.json. The CLI's train command and every sweep trial go through Run.
package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hybridlab/hybrid/internal/units"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/internal/atomicfile"
	"github.com/hybridlab/hybrid/internal/sysinfo"
	"github.com/hybridlab/hybrid/kernels"
	_ "github.com/hybridlab/hybrid/kernels/cpu" // registers "cpu"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/results"
	"github.com/hybridlab/hybrid/tensor"
	"github.com/hybridlab/hybrid/train"
)

// Options are the knobs of one run that are not part of the experiment itself.
type Options struct {
	Backend  string    // kernels backend name; "" uses kernels.Default (HYBRID_BACKEND, else cpu)
	Progress io.Writer // progress bars, or nil
	Log      io.Writer // one-line events (layout, data, budget, evaluations), or nil
	// Fresh refuses to continue an existing run directory instead of resuming it.
	Fresh bool
}

// RecipeFile is the resolved recipe a run directory holds.
const RecipeFile = "recipe.yaml"

// Run trains r in dir and evaluates it, writing dir/recipe.yaml, checkpoints, metrics and
// finally dir/results.json (atomically; a failed run writes none). A dir holding a checkpoint
// of the same configuration hash is resumed; one of another hash is an error.
func Run(ctx context.Context, r *recipes.Recipe, dir string, o Options) (*results.Results, error) {
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	if r.Pattern == "" {
		if err := r.Resolve(); err != nil {
			return nil, err
		}
	}
	hash := r.Hash()
	resume, err := prepareDir(r, dir, hash, o.Fresh)
	if err != nil {
		return nil, err
	}
	be, err := backend(o.Backend)
	if err != nil {
		return nil, err
	}
	T := r.Data.SeqLen
	count, err := r.Model.Count(T)
	if err != nil {
		return nil, err
	}
	logf("recipe %s (config %.12s): layout %s, %s parameters (%s non-embedding), %.2f MFLOP/token to train",
		r.Name, hash, r.Pattern, units.SI(float64(count.Params())), units.SI(float64(count.NonEmbeddingParams())), count.TrainFLOPs()/1e6)
	d, err := Prepare(r)
	if err != nil {
		return nil, fmt.Errorf("%s: data: %w", r.Name, err)
	}
	if d.Unigram > 0 {
		logf("data %s: held-out unigram entropy %.3f bits/byte (a model must beat this)", d.Name, d.Unigram)
	}
	m, err := arch.Build(r.Model, be, uint64(r.Train.Seed))
	if err != nil {
		return nil, err
	}
	if resume {
		logf("resuming %s", dir)
	}
	tp := tensor.NewTape(be)
	res, err := train.Run(ctx, train.Options{
		Model: m, Backend: be, Train: d.Train, Eval: d.Val, EvalBatches: r.Eval.Batches,
		Recipe: r.Train, FLOPsPerToken: count.TrainFLOPs(), BytesPerToken: d.BytesPerToken,
		Dir: dir, Resume: resume, ConfigHash: hash, Progress: o.Progress, Tape: tp,
	})
	if err != nil {
		return nil, err
	}
	if res.Stopped {
		return nil, fmt.Errorf("%s: stopped at step %d of %d (checkpoint kept; run again to resume): %w", r.Name, res.Steps, res.Total, ctx.Err())
	}

	out := describe(r, hash, be, count)
	out.Cost.Tokens, out.Cost.Steps = res.Tokens, res.Steps
	out.Cost.FLOPs = count.TrainFLOPs() * float64(res.Tokens)
	out.Cost.WallSeconds = res.Elapsed.Seconds()
	out.Train = &results.Train{FinalLoss: res.LastLoss, BestVal: res.BestVal, BestStep: res.BestStep,
		SeqLen: T, BatchSize: r.Data.BatchSize}
	if err := evaluate(ctx, r, m, d, be, out, o, nil); err != nil {
		return nil, err
	}
	if d.Unigram > 0 {
		out.Flatten()["data.unigram_bpb"] = d.Unigram
	}
	out.Cost.PeakBytes = sysinfo.PeakRSS()
	out.Created = time.Now().UTC().Format(time.RFC3339)
	if err := results.Write(filepath.Join(dir, results.FileName), out); err != nil {
		return nil, err
	}
	return out, nil
}

// prepareDir makes dir and writes its recipe.yaml, and says whether the run resumes: a
// checkpoint of the same configuration is continued (unless fresh), one of another is refused.
func prepareDir(r *recipes.Recipe, dir, hash string, fresh bool) (resume bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	ck, err := train.LoadCheckpoint(dir)
	switch {
	case errors.Is(err, train.ErrNoCheckpoint):
	case err != nil:
		return false, fmt.Errorf("%s: unreadable checkpoint (move the run directory aside to start over): %w", dir, err)
	case ck.State.ConfigHash != hash:
		return false, fmt.Errorf("%s holds a run of another configuration (%.12s, this is %.12s): pick another directory",
			dir, ck.State.ConfigHash, hash)
	case fresh:
		return false, fmt.Errorf("%s holds a checkpoint at step %d: resume it, or pick another directory", dir, ck.State.Step)
	default:
		resume = true
	}
	y, err := r.Marshal()
	if err != nil {
		return false, err
	}
	return resume, atomicfile.Write(filepath.Join(dir, RecipeFile), func(w io.Writer) error {
		_, err := w.Write(y)
		return err
	})
}

func backend(name string) (kernels.Backend, error) {
	if name == "" {
		return kernels.Default()
	}
	if name == "cuda" && !slices.Contains(kernels.Names(), "cuda") {
		return nil, errors.New(`backend "cuda": no CUDA device found: this binary was built without -tags cuda (see kernels/cuda/README.md)`)
	}
	return kernels.Get(name)
}

// describe fills what a results file says about the run before any metric.
func describe(r *recipes.Recipe, hash string, be kernels.Backend, count *arch.Count) *results.Results {
	cfg, _ := json.Marshal(r)
	mod, ver, dirty := sysinfo.Version()
	tok := r.Data.Tokenizer.Kind
	if tok == "bpe" {
		tok = fmt.Sprintf("bpe:%d", r.Data.Tokenizer.VocabSize)
	}
	if r.Data.Corpus.Kind == "mqar" {
		tok = "mqar"
	}
	blas := ""
	if b, ok := be.(interface{ BLAS() string }); ok {
		blas = b.BLAS()
	}
	return &results.Results{
		Schema: results.Version, Recipe: r.Name, ConfigHash: hash, Config: cfg, Pattern: r.Pattern,
		Family: Family(r.Pattern), Tokenizer: tok,
		Seeds: results.Seeds{Model: r.Train.Seed, Data: r.Train.Seed, Eval: r.Train.Seed},
		Code:  results.Code{Module: mod, Version: ver, Go: runtime.Version(), Modified: dirty},
		Machine: results.Machine{CPU: sysinfo.CPU(), Cores: runtime.NumCPU(), BLAS: blas, Backend: be.Name(),
			OS: runtime.GOOS + "/" + runtime.GOARCH},
		Cost: results.Cost{Params: count.Params(), NonEmbeddingParams: count.NonEmbeddingParams(),
			FLOPsPerToken: count.TrainFLOPs()},
	}
}

// Family names a layout's architecture family, the grouping scaling fits compare: transformer
// (attention only), mamba (Mamba only), swa (sliding-window attention with Mamba), intra
// (intra-layer hybrid blocks), inter (Mamba and global attention layers), or other.
func Family(pattern string) string {
	has := func(k arch.Kind) bool { return strings.ContainsRune(pattern, rune(k)) }
	mixers := strings.ReplaceAll(pattern, string(arch.KindFFN), "")
	switch {
	case pattern == "":
		return "other"
	case has(arch.KindIntra) || has(arch.KindIntraWindow):
		return "intra"
	case strings.Trim(mixers, string(arch.KindAttn)+string(arch.KindWindow)) == "":
		return "transformer"
	case strings.Trim(mixers, string(arch.KindMamba)) == "":
		return "mamba"
	case has(arch.KindAttn) && has(arch.KindMamba):
		return "inter"
	case has(arch.KindWindow) && has(arch.KindMamba):
		return "swa"
	}
	return "other"
}
