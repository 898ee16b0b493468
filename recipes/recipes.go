// Package recipes loads the YAML design recipes: a model (arch.Config), its data, its training
// and its evaluation, with explicit defaults, `base:` inheritance and dotted `--set` overrides.
//
// Recipes are data: every knob a study varies is a field with a dotted path (model.layout.ratio,
// train.optimizer.lr), and sweeps override those paths and nothing else. Decoding is strict:
// unknown keys, wrong types and impossible values fail with `file:line: field.path: message`.
// The shipped recipes are embedded in the binary; README.md lists them and every default.
package recipes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/data"
	"go.yaml.in/yaml/v3"
)

// Recipe is one fully described experiment.
type Recipe struct {
	Name        string      `yaml:"name" json:"name"`
	Description string      `yaml:"description,omitempty" json:"description,omitempty"`
	Base        string      `yaml:"base,omitempty" json:"base,omitempty"` // the recipe this one extends, as written
	Model       arch.Config `yaml:"model" json:"model"`
	Data        Data        `yaml:"data" json:"data"`
	Train       Train       `yaml:"train" json:"train"`
	Eval        Eval        `yaml:"eval" json:"eval"`

	// Kinds and Pattern are the resolved layout, set by Resolve.
	Kinds   []arch.Kind `yaml:"-" json:"-"`
	Pattern string      `yaml:"-" json:"-"`

	pos map[string]pos // where each field path was set, for error messages
	src string         // the file or name the recipe came from
}

// Data is what the model reads.
type Data struct {
	Corpus    Corpus    `yaml:"corpus" json:"corpus"`
	Tokenizer Tokenizer `yaml:"tokenizer" json:"tokenizer"`
	SeqLen    int       `yaml:"seq_len" json:"seq_len"`
	BatchSize int       `yaml:"batch_size" json:"batch_size"`
}

// Corpus names the training text.
type Corpus struct {
	// Kind is gosrc (the Go standard library sources; Path defaults to GOROOT/src), text (plain
	// files under Path), jsonl (Field of each line of Path), tokens (pre-tokenized uint16/uint32
	// file at Path) or mqar (the synthetic associative-recall task).
	Kind  string `yaml:"kind" json:"kind"`
	Path  string `yaml:"path,omitempty" json:"path,omitempty"`
	Field string `yaml:"field,omitempty" json:"field,omitempty"`
	// MQAR only (vocabulary = model.vocab_size, length = data.seq_len): Pairs key–value pairs
	// per example (0: seq_len/8), Examples training examples cycled over (0: a fresh example
	// every time), EvalExamples held-out examples (0: 1000).
	Pairs        int `yaml:"pairs,omitempty" json:"pairs,omitempty"`
	Examples     int `yaml:"examples,omitempty" json:"examples,omitempty"`
	EvalExamples int `yaml:"eval_examples,omitempty" json:"eval_examples,omitempty"`
}

// MQARTask is the MQAR task a recipe describes (meaningful when data.corpus.kind is mqar).
func (r *Recipe) MQARTask() data.MQAR {
	k := r.Data.Corpus.Pairs
	if k == 0 {
		k = r.Data.SeqLen / 8
	}
	return data.MQAR{Vocab: r.Model.VocabSize, T: r.Data.SeqLen, Pairs: k}
}

// Tokenizer turns text into ids.
type Tokenizer struct {
	Kind      string `yaml:"kind" json:"kind"`                       // byte | bpe
	Vocab     string `yaml:"vocab,omitempty" json:"vocab,omitempty"` // bpe vocabulary file
	VocabSize int    `yaml:"vocab_size" json:"vocab_size"`           // byte: 256
}

// Train is the optimisation.
type Train struct {
	Optimizer Optimizer `yaml:"optimizer" json:"optimizer"`
	Schedule  Schedule  `yaml:"schedule" json:"schedule"`
	GradClip  float64   `yaml:"grad_clip" json:"grad_clip"`   // global norm; 0 turns clipping off
	GradAccum int       `yaml:"grad_accum" json:"grad_accum"` // micro-batches per step
	// Budget ends training; exactly one of its fields is set.
	Budget          Budget `yaml:"budget" json:"budget"`
	EvalEvery       int    `yaml:"eval_every" json:"eval_every"` // steps; 0: only at the end
	CheckpointEvery int    `yaml:"checkpoint_every" json:"checkpoint_every"`
	LogEvery        int    `yaml:"log_every" json:"log_every"`
	Seed            int64  `yaml:"seed" json:"seed"`
	Dtype           string `yaml:"dtype" json:"dtype"` // float32 | bf16 (parameters and activations)
}

// Optimizer is AdamW (the only one for now).
type Optimizer struct {
	Name        string    `yaml:"name" json:"name"`
	LR          float64   `yaml:"lr" json:"lr"`
	Betas       []float64 `yaml:"betas" json:"betas"`
	Eps         float64   `yaml:"eps" json:"eps"`
	WeightDecay float64   `yaml:"weight_decay" json:"weight_decay"`
}

// Schedule shapes the learning rate: linear warmup, then cosine to MinLRRatio·lr, a constant,
// or wsd (warmup–stable–decay, the paper's trapezoid) decaying linearly over the last
// DecayFraction of the budget.
type Schedule struct {
	Kind          string  `yaml:"kind" json:"kind"`     // cosine | wsd | constant
	Warmup        int     `yaml:"warmup" json:"warmup"` // steps
	DecayFraction float64 `yaml:"decay_fraction" json:"decay_fraction"`
	MinLRRatio    float64 `yaml:"min_lr_ratio" json:"min_lr_ratio"`
}

// Budget is how long to train: tokens, FLOPs (training FLOPs from arch.Count) or steps.
type Budget struct {
	Tokens int64   `yaml:"tokens,omitempty" json:"tokens,omitempty"`
	FLOPs  float64 `yaml:"flops,omitempty" json:"flops,omitempty"`
	Steps  int     `yaml:"steps,omitempty" json:"steps,omitempty"`
}

// Eval lists the suites run at eval_every and at the end.
type Eval struct {
	Suites  []string `yaml:"suites" json:"suites"`                       // lm, long_context, needle, passkey, mqar (recall), efficiency
	Batches int      `yaml:"batches" json:"batches"`                     // held-out batches for lm (0: all)
	Lengths []int    `yaml:"lengths,omitempty" json:"lengths,omitempty"` // context lengths for long_context, needle, passkey (default seq_len·{1,2,4})
	// Contexts are the efficiency suite's decode context lengths (default 1K…32K).
	Contexts []int `yaml:"contexts,omitempty" json:"contexts,omitempty"`
	// Trials per needle cell and pass-key length (0: 10).
	Trials int `yaml:"trials,omitempty" json:"trials,omitempty"`
}

// Default is the recipe every file is decoded over: a field a recipe leaves out keeps the value
// here (README.md lists them). The layout and the budget have no default: every recipe says
// which model it is and how long to train it.
func Default() Recipe {
	return Recipe{
		Model: arch.Default(),
		Data: Data{
			Corpus:    Corpus{Kind: "gosrc"},
			Tokenizer: Tokenizer{Kind: "byte", VocabSize: 256},
			SeqLen:    256,
			BatchSize: 8,
		},
		Train: Train{
			Optimizer:       Optimizer{Name: "adamw", LR: 1e-3, Betas: []float64{0.9, 0.95}, Eps: 1e-8, WeightDecay: 0.1},
			Schedule:        Schedule{Kind: "wsd", Warmup: 100, DecayFraction: 0.2},
			GradClip:        1,
			GradAccum:       1,
			EvalEvery:       500,
			CheckpointEvery: 1000,
			LogEvery:        10,
			Dtype:           "float32",
		},
		Eval: Eval{Suites: []string{"lm"}, Batches: 16},
	}
}

// Error is one invalid field of a recipe, located in the file (or --set flag) that set it.
type Error struct {
	Where string // "recipes/x.yaml:12", "--set model.d_model=x", or the recipe name
	Path  string // model.layout.ratio
	Msg   string
}

func (e *Error) Error() string {
	if e.Where == "" {
		return e.Path + ": " + e.Msg
	}
	if e.Path == "" {
		return e.Where + ": " + e.Msg
	}
	return e.Where + ": " + e.Path + ": " + e.Msg
}

// Errors is every problem found in one pass.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// where names the place that set path, or its nearest set parent.
func (r *Recipe) where(path string) string {
	for p := path; ; {
		if at, ok := r.pos[p]; ok {
			return at.String()
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			return r.src
		}
		p = p[:i]
	}
}

func (r *Recipe) fail(errs *Errors, path, format string, a ...any) {
	*errs = append(*errs, &Error{Where: r.where(path), Path: path, Msg: fmt.Sprintf(format, a...)})
}

// Resolve validates the recipe and resolves its layout into Kinds and Pattern. It returns an
// Errors with every problem, each located where the field was set.
func (r *Recipe) Resolve() error {
	var errs Errors
	if err := r.Model.Validate(); err != nil {
		var fes arch.Errors
		if !errors.As(err, &fes) {
			return err
		}
		for _, fe := range fes {
			r.fail(&errs, "model."+fe.Path, "%s", fe.Msg)
		}
	} else {
		r.Kinds, r.Pattern, _ = r.Model.Layout.Resolve(r.Model.NLayers)
	}
	r.checkData(&errs)
	r.checkTrain(&errs)
	r.checkEval(&errs)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func oneOf(v string, ok ...string) bool {
	for _, o := range ok {
		if v == o {
			return true
		}
	}
	return false
}

func (r *Recipe) checkData(errs *Errors) {
	d := r.Data
	switch d.Corpus.Kind {
	case "gosrc":
	case "mqar":
		if err := r.MQARTask().Validate(); err != nil && d.SeqLen > 0 {
			r.fail(errs, "data.corpus.pairs", "%s", strings.TrimPrefix(err.Error(), "data.MQAR: "))
		}
		if d.Corpus.Examples < 0 || d.Corpus.EvalExamples < 0 {
			r.fail(errs, "data.corpus.examples", "must not be negative")
		}
	case "text", "tokens":
		if d.Corpus.Path == "" {
			r.fail(errs, "data.corpus.path", "missing: a %s corpus needs a path", d.Corpus.Kind)
		}
	case "jsonl":
		if d.Corpus.Path == "" {
			r.fail(errs, "data.corpus.path", "missing: a jsonl corpus needs a path")
		}
		if d.Corpus.Field == "" {
			r.fail(errs, "data.corpus.field", "missing: a jsonl corpus needs the field to read")
		}
	default:
		r.fail(errs, "data.corpus.kind", "%q is not one of gosrc, text, jsonl, tokens, mqar", d.Corpus.Kind)
	}
	t := d.Tokenizer
	switch t.Kind {
	case "byte":
		if t.VocabSize != 256 {
			r.fail(errs, "data.tokenizer.vocab_size", "the byte tokenizer has 256 ids, have %d", t.VocabSize)
		}
	case "bpe":
		if t.Vocab == "" {
			r.fail(errs, "data.tokenizer.vocab", "missing: bpe needs a vocabulary file")
		}
		if t.VocabSize <= 0 {
			r.fail(errs, "data.tokenizer.vocab_size", "must be positive, have %d", t.VocabSize)
		}
	default:
		r.fail(errs, "data.tokenizer.kind", "%q is not one of byte, bpe", t.Kind)
	}
	if t.VocabSize > r.Model.VocabSize && d.Corpus.Kind != "mqar" {
		r.fail(errs, "model.vocab_size", "%d is smaller than the tokenizer's %d ids", r.Model.VocabSize, t.VocabSize)
	}
	if d.SeqLen <= 0 {
		r.fail(errs, "data.seq_len", "must be positive, have %d", d.SeqLen)
	}
	if d.BatchSize <= 0 {
		r.fail(errs, "data.batch_size", "must be positive, have %d", d.BatchSize)
	}
}

func (r *Recipe) checkTrain(errs *Errors) {
	t := r.Train
	o := t.Optimizer
	if o.Name != "adamw" {
		r.fail(errs, "train.optimizer.name", "%q is not supported (want adamw)", o.Name)
	}
	if !(o.LR > 0) {
		r.fail(errs, "train.optimizer.lr", "must be positive, have %g", o.LR)
	}
	if len(o.Betas) != 2 || o.Betas[0] < 0 || o.Betas[0] >= 1 || o.Betas[1] < 0 || o.Betas[1] >= 1 {
		r.fail(errs, "train.optimizer.betas", "want [β1, β2] in [0, 1), have %v", o.Betas)
	}
	if !(o.Eps > 0) {
		r.fail(errs, "train.optimizer.eps", "must be positive, have %g", o.Eps)
	}
	if o.WeightDecay < 0 {
		r.fail(errs, "train.optimizer.weight_decay", "must be ≥ 0, have %g", o.WeightDecay)
	}
	s := t.Schedule
	if !oneOf(s.Kind, "cosine", "wsd", "constant") {
		r.fail(errs, "train.schedule.kind", "%q is not one of cosine, wsd, constant", s.Kind)
	}
	if s.Warmup < 0 {
		r.fail(errs, "train.schedule.warmup", "must be ≥ 0, have %d", s.Warmup)
	}
	if s.Kind == "wsd" && !(s.DecayFraction > 0 && s.DecayFraction <= 1) {
		r.fail(errs, "train.schedule.decay_fraction", "wsd needs a fraction in (0, 1], have %g", s.DecayFraction)
	}
	if s.MinLRRatio < 0 || s.MinLRRatio > 1 {
		r.fail(errs, "train.schedule.min_lr_ratio", "must lie in [0, 1], have %g", s.MinLRRatio)
	}
	if t.GradClip < 0 {
		r.fail(errs, "train.grad_clip", "must be ≥ 0 (0 turns clipping off), have %g", t.GradClip)
	}
	if t.GradAccum < 1 {
		r.fail(errs, "train.grad_accum", "must be ≥ 1, have %d", t.GradAccum)
	}
	b, set := t.Budget, 0
	for _, v := range []bool{b.Tokens != 0, b.FLOPs != 0, b.Steps != 0} {
		if v {
			set++
		}
	}
	switch {
	case set != 1:
		r.fail(errs, "train.budget", "set exactly one of tokens, flops, steps (have %d; clear one with --set train.budget.steps=0)", set)
	case b.Tokens < 0 || b.FLOPs < 0 || b.Steps < 0:
		r.fail(errs, "train.budget", "must be positive")
	}
	for path, v := range map[string]int{"train.eval_every": t.EvalEvery, "train.checkpoint_every": t.CheckpointEvery, "train.log_every": t.LogEvery} {
		if v < 0 {
			r.fail(errs, path, "must be ≥ 0, have %d", v)
		}
	}
	if !oneOf(t.Dtype, "float32", "bf16") {
		r.fail(errs, "train.dtype", "%q is not one of float32, bf16", t.Dtype)
	}
}

func (r *Recipe) checkEval(errs *Errors) {
	for _, s := range r.Eval.Suites {
		if !oneOf(s, "lm", "long_context", "needle", "passkey", "mqar", "recall", "efficiency") {
			r.fail(errs, "eval.suites", "%q is not one of lm, long_context, needle, passkey, mqar (or recall), efficiency", s)
		}
		if oneOf(s, "mqar", "recall") && r.Data.Corpus.Kind != "mqar" {
			r.fail(errs, "eval.suites", "%q needs data.corpus.kind: mqar", s)
		}
		if oneOf(s, "lm", "long_context", "needle", "passkey") && r.Data.Corpus.Kind == "mqar" {
			r.fail(errs, "eval.suites", "%q needs a text corpus, not mqar", s)
		}
	}
	if r.Eval.Batches < 0 {
		r.fail(errs, "eval.batches", "must be ≥ 0, have %d", r.Eval.Batches)
	}
	for _, n := range r.Eval.Lengths {
		if n <= 0 {
			r.fail(errs, "eval.lengths", "must be positive, have %d", n)
		}
	}
	for _, n := range r.Eval.Contexts {
		if n <= 0 {
			r.fail(errs, "eval.contexts", "must be positive, have %d", n)
		}
	}
	if r.Eval.Trials < 0 {
		r.fail(errs, "eval.trials", "must be ≥ 0, have %d", r.Eval.Trials)
	}
}

// resolved is the recipe as it is hashed and marshalled: the layout as its canonical pattern,
// without name, description or base (they do not change what is trained).
func (r *Recipe) resolved() Recipe {
	c := *r
	c.Name, c.Description, c.Base = "", "", ""
	pat := r.Pattern
	if pat == "" {
		_, pat, _ = r.Model.Layout.Resolve(r.Model.NLayers)
	}
	c.Model.Layout = arch.Layout{Pattern: pat}
	return c
}

// Hash is a stable identity of the resolved experiment: the sha256 of its canonical JSON. Two
// recipes that train the same model the same way share it whatever their names or layout
// spelling (ratio or pattern); any field that changes training changes it.
func (r *Recipe) Hash() string {
	c := r.resolved()
	b, err := json.Marshal(&c)
	if err != nil {
		panic("recipes: " + err.Error()) // plain structs always marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Marshal writes the resolved recipe as YAML: every field explicit, the layout as its canonical
// pattern, no base. Loading it gives the same Hash.
func (r *Recipe) Marshal() ([]byte, error) {
	c := r.resolved()
	c.Name, c.Description = r.Name, r.Description
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(2)
	if err := e.Encode(&c); err != nil {
		return nil, err
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
