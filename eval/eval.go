// Package eval runs the evaluation suites of a trained model and fills the sections of its
// results.json: held-out language modelling (lm), loss by position beyond the training length
// (long_context), needle in a haystack (needle), pass-key retrieval (passkey), multi-query
// associative recall (mqar) and measured speed and memory (efficiency).
//
// The suites see a model only through Model and Decoder, so they are tested with doubles and
// run on any backend; arch.go adapts *arch.Model. Run checks everything a suite needs (data,
// names, lengths against memory) before running any of them, so a misconfigured evaluation
// fails in a second, not after an hour of the suites before it.
//
// Glossary: B rows per call, T tokens per row, V vocabulary, L an evaluation length
// (prompt or sequence tokens), C a decode context length.
package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/results"
)

// Model is what the suites evaluate.
type Model interface {
	// Vocab is V, the width of a row of logits.
	Vocab() int
	// Logits returns the next-token logits (B, T, V) of ids (B, T), without gradients.
	Logits(ids []int32, B, T int) ([]float32, error)
	// NewDecoder returns an incremental decoder of B rows holding up to capacity tokens each.
	NewDecoder(B, capacity int) (Decoder, error)
}

// Decoder generates token by token with a cache (KV for attention, states for SSMs).
type Decoder interface {
	// Prefill runs a prompt ids (B, T) and returns the logits (B, V) of its last position.
	Prefill(ids []int32, T int) ([]float32, error)
	// Step appends one token per row (B) and returns the next logits (B, V).
	Step(ids []int32) ([]float32, error)
	// Len is the number of tokens in the cache of each row.
	Len() int
	// Bytes is the measured size of the cache (all rows).
	Bytes() int64
	// Reset empties the cache, keeping its memory.
	Reset()
}

// Suite names, in the order Run reports them.
const (
	SuiteLM          = "lm"
	SuiteLongContext = "long_context"
	SuiteNeedle      = "needle"
	SuitePasskey     = "passkey"
	SuiteMQAR        = "mqar"
	SuiteEfficiency  = "efficiency"
)

// Suites lists every suite name.
var Suites = []string{SuiteLM, SuiteLongContext, SuiteNeedle, SuitePasskey, SuiteMQAR, SuiteEfficiency}

// aliases are names recipes use for the same suites.
var aliases = map[string]string{"recall": SuiteMQAR}

// Options configure Run. Zero values take the defaults named on each field.
type Options struct {
	Suites   []string  // suites to run, in this order (aliases: recall = mqar)
	Out      io.Writer // human-readable tables, or nil
	Progress io.Writer // progress bars of long evaluations, or nil
	Seed     uint64    // fixes every trial (NIAH and pass-key prompts, decode inputs)

	// Held-out text, in the tokenizer's ids: lm, long_context and needle read it.
	Val       *data.Stream
	Tokenizer data.Tokenizer // bytes per token for bits per byte; NIAH and pass-key prompts
	// BytesPerToken, when > 0, replaces the byte count measured from Tokenizer.
	BytesPerToken float64
	Split         string // name of Val in results (default "val")
	SeqLen        int    // training context length T: lm's window and the base of the default lengths
	Batch         int    // rows per Logits call at SeqLen (default 8); longer calls get Batch·SeqLen/L rows
	LMBatches     int    // lm: at most this many batches (0: all of Val)

	LongLengths []int // long_context lengths (default SeqLen·{1, 2, 4})
	LongSeqs    int   // long_context sequences per length (default 8)
	BucketWidth int   // long_context positions per bucket (default SeqLen/4)

	NeedleLengths  []int     // needle prompt lengths (default SeqLen·{1, 2, 4})
	Depths         []float64 // needle depths (default 0, 0.25, 0.5, 0.75, 1)
	Trials         int       // needle trials per cell and pass-key trials per length (default 10)
	PasskeyLengths []int     // pass-key prompt lengths (default NeedleLengths)
	PasskeyFiller  string    // "" for data.PasskeyFiller

	MQAR *data.MQAREval // the held-out MQAR set

	// Efficiency. TrainStep runs one training step of TokensPerStep tokens; nil skips training
	// speed. Warmup steps run untimed first, then Steps timed ones.
	TrainStep     func() error
	TokensPerStep int
	FLOPsPerToken float64 // training FLOPs per token, for MFU
	Warmup        int     // default 2
	Steps         int     // default 5
	PeakGFLOPS    float64 // MFU's denominator; 0 measures ceiling.SGEMM() in this run
	Contexts      []int   // decode contexts (default 1K, 2K, 4K, 8K, 16K, 32K)
	DecodeBatches []int   // default 1, 4
	DecodeSteps   int     // timed decode steps per context (default 16)
	MaxContext    int     // contexts above it are skipped (0: no cap but memory)
	// CacheBytes is the analytic decode cache of one sequence at a context (arch Count), or nil.
	CacheBytes func(context int) int64

	// Memory. MemoryBytes is what an evaluation may use (0: MemAvailable from /proc/meminfo;
	// negative: no check). ActivationBytes estimates the working memory of one call on (B, T)
	// tokens (nil: 3 float32 copies of the (B, T, V) logits).
	MemoryBytes     int64
	ActivationBytes func(B, T int) int64
}

func (o *Options) defaults() {
	if o.Batch <= 0 {
		o.Batch = 8
	}
	if o.Split == "" {
		o.Split = "val"
	}
	times := func(ks ...int) []int {
		var l []int
		for _, k := range ks {
			l = append(l, k*o.SeqLen)
		}
		return l
	}
	if len(o.LongLengths) == 0 && o.SeqLen > 0 {
		o.LongLengths = times(1, 2, 4)
	}
	if o.LongSeqs <= 0 {
		o.LongSeqs = 8
	}
	if o.BucketWidth <= 0 {
		o.BucketWidth = max(o.SeqLen/4, 1)
	}
	if len(o.NeedleLengths) == 0 && o.SeqLen > 0 {
		o.NeedleLengths = times(1, 2, 4)
	}
	if len(o.Depths) == 0 {
		o.Depths = []float64{0, 0.25, 0.5, 0.75, 1}
	}
	if o.Trials <= 0 {
		o.Trials = 10
	}
	if len(o.PasskeyLengths) == 0 {
		o.PasskeyLengths = o.NeedleLengths
	}
	if o.Warmup <= 0 {
		o.Warmup = 2
	}
	if o.Steps <= 0 {
		o.Steps = 5
	}
	if len(o.Contexts) == 0 {
		o.Contexts = []int{1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10}
	}
	if len(o.DecodeBatches) == 0 {
		o.DecodeBatches = []int{1, 4}
	}
	if o.DecodeSteps <= 0 {
		o.DecodeSteps = 16
	}
}

// rows is the batch for calls of L tokens: about Batch·SeqLen tokens a call, at least one row.
func (o *Options) rows(L int) int {
	if o.SeqLen <= 0 || L <= 0 {
		return 1
	}
	return max(1, o.Batch*o.SeqLen/L)
}

// suite is one runnable suite, checked and ready.
type suite struct {
	name string
	run  func(ctx context.Context, res *results.Results) error
}

// Run checks every requested suite, then runs them in order, filling res's sections and
// printing a table for each to o.Out. Nothing runs when a check fails: an unknown suite, data
// a suite needs but o lacks, or a length whose estimated memory exceeds what is available.
func Run(ctx context.Context, m Model, o Options, res *results.Results) error {
	if m == nil || res == nil {
		return errors.New("eval.Run: need a model and a results to fill")
	}
	o.defaults()
	if len(o.Suites) == 0 {
		return fmt.Errorf("eval.Run: no suites requested (known: %s)", strings.Join(Suites, ", "))
	}
	var plan []suite
	var errs []error
	seen := map[string]bool{}
	mem := newMemory(m, &o)
	for _, name := range o.Suites {
		if a, ok := aliases[name]; ok {
			name = a
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		s, err := prepare(name, m, &o, mem)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plan = append(plan, s)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("eval.Run: nothing was run:\n%w", err)
	}
	if res.Seeds.Eval == 0 {
		res.Seeds.Eval = int64(o.Seed)
	}
	for _, s := range plan {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.run(ctx, res); err != nil {
			return fmt.Errorf("eval %s: %w", s.name, err)
		}
	}
	res.Flatten()
	return nil
}

// prepare checks suite name against m and o and returns it ready to run.
func prepare(name string, m Model, o *Options, mem *memory) (suite, error) {
	s := suite{name: name}
	switch name {
	case SuiteLM:
		p, err := prepareLM(m, o, mem)
		if err != nil {
			return s, err
		}
		s.run = func(ctx context.Context, res *results.Results) error {
			r, err := p.run(ctx, m, o)
			res.LM = r
			return err
		}
	case SuiteLongContext:
		p, err := prepareLong(m, o, mem)
		if err != nil {
			return s, err
		}
		s.run = func(ctx context.Context, res *results.Results) error {
			r, err := p.run(ctx, m, o)
			res.LongContext = r
			return err
		}
	case SuiteNeedle:
		p, err := prepareNeedle(m, o, mem)
		if err != nil {
			return s, err
		}
		s.run = func(ctx context.Context, res *results.Results) error {
			r, err := p.run(ctx, m, o)
			res.Needle = r
			return err
		}
	case SuitePasskey:
		p, err := preparePasskey(m, o, mem)
		if err != nil {
			return s, err
		}
		s.run = func(ctx context.Context, res *results.Results) error {
			r, err := p.run(ctx, m, o)
			res.Passkey = r
			return err
		}
	case SuiteMQAR:
		if err := checkMQAR(m, o, mem); err != nil {
			return s, err
		}
		s.run = func(ctx context.Context, res *results.Results) error {
			r, err := runMQAR(ctx, m, o)
			res.MQAR = r
			return err
		}
	case SuiteEfficiency:
		p, err := prepareEfficiency(m, o, mem)
		if err != nil {
			return s, err
		}
		s.run = func(ctx context.Context, res *results.Results) error {
			r, err := p.run(ctx, m, o)
			res.Efficiency = r
			return err
		}
	default:
		known := slices.Clone(Suites)
		for a := range aliases {
			known = append(known, a)
		}
		return s, fmt.Errorf("unknown suite %q (known: %s)", name, strings.Join(known, ", "))
	}
	return s, nil
}

// checkLengths refuses an empty length list or one holding a length ≤ 0.
func checkLengths(suite, field string, ls []int) error {
	if len(ls) == 0 {
		return fmt.Errorf("%s: no %s (set Options.%s or SeqLen)", suite, field, field)
	}
	for _, l := range ls {
		if l <= 0 {
			return fmt.Errorf("%s: %s %v holds %d, want lengths > 0", suite, field, ls, l)
		}
	}
	return nil
}

// argmax is the index of the largest of row (the first on ties).
func argmax(row []float32) int {
	best := 0
	for i, x := range row[1:] {
		if x > row[best] {
			best = i + 1
		}
	}
	return best
}

// logitsOf runs m.Logits on ids (B, T) and checks the result has B·T rows of V.
func logitsOf(m Model, ids []int32, B, T, V int) ([]float32, error) {
	logits, err := m.Logits(ids, B, T)
	if err != nil {
		return nil, err
	}
	if err := checkLogits("Logits", logits, B*T, V); err != nil {
		return nil, err
	}
	return logits, nil
}

// checkLogits checks a Logits or decoder result has rows·V values.
func checkLogits(what string, got []float32, rows, V int) error {
	if len(got) != rows*V {
		return fmt.Errorf("%s returned %d logits, want %d rows × V=%d", what, len(got), rows, V)
	}
	return nil
}
