// Package results is the one results schema: every run writes a results.json (Write) and
// sweeps, scaling fits and plots read only that (Read, Find) or its flat CSV/JSONL export.
//
// A run's suites fill typed sections (LM, LongContext, Needle, Passkey, MQAR, Efficiency) and
// the flat Metrics map, whose dotted keys ("lm.bpb", "mqar.accuracy") are what sweep metrics
// and table columns name.
package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/hybridlab/hybrid/internal/atomicfile"
)

// Version is the schema version written into every file; Read refuses newer ones.
const Version = 1

// FileName is the name of the results file inside a run directory.
const FileName = "results.json"

// Results is one run: what it was, what it cost and what it scored.
type Results struct {
	Schema     int             `json:"schema"`
	Recipe     string          `json:"recipe"`      // recipe name
	ConfigHash string          `json:"config_hash"` // recipes.Recipe.Hash of the resolved recipe
	Config     json.RawMessage `json:"config"`      // the resolved recipe
	Pattern    string          `json:"pattern"`     // resolved layout, one letter per layer
	Family     string          `json:"family"`      // transformer | mamba | inter | intra | swa | other
	Tokenizer  string          `json:"tokenizer"`   // "byte", "bpe:<vocab>", "mqar"; bits per byte is comparable only within one
	Seeds      Seeds           `json:"seeds"`
	Code       Code            `json:"code"`
	Machine    Machine         `json:"machine"`
	Cost       Cost            `json:"cost"`
	Train      *Train          `json:"train,omitempty"`

	LM          *LM          `json:"lm,omitempty"`
	LongContext *LongContext `json:"long_context,omitempty"`
	Needle      *Needle      `json:"needle,omitempty"`
	Passkey     *Passkey     `json:"passkey,omitempty"`
	MQAR        *MQAR        `json:"mqar,omitempty"`
	Efficiency  *Efficiency  `json:"efficiency,omitempty"`

	// Metrics is the flat view of every scalar above ("lm.bpb", "train.loss", "cost.params"),
	// filled by Flatten; sweeps rank trials by one of these keys.
	Metrics map[string]float64 `json:"metrics"`
	// Created is the RFC 3339 time the file was written.
	Created string `json:"created"`
}

// Seeds are the random seeds that fix the run.
type Seeds struct {
	Model int64 `json:"model"` // parameter init
	Data  int64 `json:"data"`  // batch order
	Eval  int64 `json:"eval"`  // synthetic evaluation trials
}

// Code identifies the program that produced the run.
type Code struct {
	Module   string `json:"module"`
	Version  string `json:"version"`  // module version or VCS revision (+dirty)
	Go       string `json:"go"`       // toolchain
	Modified bool   `json:"modified"` // built from a dirty tree
}

// Machine is where the run happened.
type Machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	BLAS    string `json:"blas"`
	Backend string `json:"backend"`
	GPU     string `json:"gpu,omitempty"`
	OS      string `json:"os"`
}

// Cost is what the run consumed, counted by the model's own accounting (arch.Count).
type Cost struct {
	Params             int64   `json:"params"`
	NonEmbeddingParams int64   `json:"non_embedding_params"`
	FLOPsPerToken      float64 `json:"flops_per_token"` // training FLOPs per token (forward + backward)
	Tokens             int64   `json:"tokens"`          // training tokens
	FLOPs              float64 `json:"flops"`           // training FLOPs = FLOPsPerToken · Tokens
	Steps              int     `json:"steps"`
	WallSeconds        float64 `json:"wall_seconds"` // training wall time over all sessions
	PeakBytes          int64   `json:"peak_bytes"`   // peak resident memory of the process (measured)
}

// Train summarises the optimisation.
type Train struct {
	FinalLoss float64 `json:"final_loss"` // last training loss (nats per token)
	BestVal   float64 `json:"best_val"`   // lowest validation loss (nats per token), 0 when none
	BestStep  int     `json:"best_step"`
	SeqLen    int     `json:"seq_len"`
	BatchSize int     `json:"batch_size"`
}

// LM is held-out language modelling.
type LM struct {
	NLL         float64 `json:"nll"`        // nats per token
	Perplexity  float64 `json:"perplexity"` // exp(NLL)
	BitsPerByte float64 `json:"bits_per_byte"`
	Tokens      int64   `json:"tokens"`
	Bytes       int64   `json:"bytes"`
	SeqLen      int     `json:"seq_len"`
	Split       string  `json:"split"`
}

// Bucket is the mean NLL of the token positions [Start, End).
type Bucket struct {
	Start int     `json:"start"`
	End   int     `json:"end"`
	NLL   float64 `json:"nll"`
	Count int64   `json:"count"`
}

// LongContext is loss by position on sequences longer than training, one curve per length.
type LongContext struct {
	TrainLen int            `json:"train_len"`
	Curves   []PositionLoss `json:"curves"`
}

// PositionLoss is one evaluation length's loss by position.
type PositionLoss struct {
	Length  int      `json:"length"`
	NLL     float64  `json:"nll"` // mean over all positions
	Buckets []Bucket `json:"buckets"`
}

// Needle is needle-in-a-haystack accuracy on a lengths × depths grid.
type Needle struct {
	Lengths  []int       `json:"lengths"`  // haystack lengths in tokens
	Depths   []float64   `json:"depths"`   // needle depth as a fraction of the haystack
	Accuracy [][]float64 `json:"accuracy"` // [len(Lengths)][len(Depths)]
	Trials   int         `json:"trials"`   // per cell
	Mean     float64     `json:"mean"`
}

// Passkey is pass-key retrieval accuracy per length.
type Passkey struct {
	Lengths  []int     `json:"lengths"`
	Accuracy []float64 `json:"accuracy"`
	Trials   int       `json:"trials"`
	Mean     float64   `json:"mean"`
}

// MQAR is multi-query associative recall accuracy (value positions only).
type MQAR struct {
	Vocab    int     `json:"vocab"`
	SeqLen   int     `json:"seq_len"`
	Pairs    int     `json:"pairs"`
	Examples int     `json:"examples"`
	Accuracy float64 `json:"accuracy"`
}

// Efficiency is measured speed and memory.
type Efficiency struct {
	TrainTokensPerSec   float64  `json:"train_tokens_per_sec"`
	TrainStepSeconds    float64  `json:"train_step_seconds"`
	MFU                 float64  `json:"mfu"`          // achieved training FLOP/s over the SGEMM rate
	SGEMMGFLOPS         float64  `json:"sgemm_gflops"` // measured in the same run
	PeakBytes           int64    `json:"peak_bytes"`
	PrefillTokensPerSec float64  `json:"prefill_tokens_per_sec"`
	Decode              []Decode `json:"decode"`
}

// Decode is one decode measurement at a context length.
type Decode struct {
	Context       int     `json:"context"`
	Batch         int     `json:"batch"`
	LatencyMs     float64 `json:"latency_ms"` // per generated token
	TokensPerSec  float64 `json:"tokens_per_sec"`
	CacheBytes    int64   `json:"cache_bytes"`    // measured
	AnalyticBytes int64   `json:"analytic_bytes"` // arch.Count
}

// Flatten fills Metrics from the typed sections (keeping keys already there that no section
// owns) and returns it.
func (r *Results) Flatten() map[string]float64 {
	if r.Metrics == nil {
		r.Metrics = map[string]float64{}
	}
	m := r.Metrics
	m["cost.params"] = float64(r.Cost.Params)
	m["cost.non_embedding_params"] = float64(r.Cost.NonEmbeddingParams)
	m["cost.tokens"] = float64(r.Cost.Tokens)
	m["cost.flops"] = r.Cost.FLOPs
	m["cost.wall_seconds"] = r.Cost.WallSeconds
	if r.Cost.PeakBytes > 0 {
		m["cost.peak_bytes"] = float64(r.Cost.PeakBytes)
	}
	if t := r.Train; t != nil {
		m["train.loss"] = t.FinalLoss
		if t.BestVal > 0 {
			m["train.best_val"] = t.BestVal
		}
	}
	if l := r.LM; l != nil {
		m["lm.nll"], m["lm.ppl"], m["lm.bpb"] = l.NLL, l.Perplexity, l.BitsPerByte
	}
	if lc := r.LongContext; lc != nil {
		for _, c := range lc.Curves {
			m[fmt.Sprintf("long_context.nll@%d", c.Length)] = c.NLL
		}
	}
	if n := r.Needle; n != nil {
		m["needle.accuracy"] = n.Mean
	}
	if p := r.Passkey; p != nil {
		m["passkey.accuracy"] = p.Mean
	}
	if q := r.MQAR; q != nil {
		m["mqar.accuracy"] = q.Accuracy
	}
	if e := r.Efficiency; e != nil {
		m["efficiency.train_tokens_per_sec"] = e.TrainTokensPerSec
		m["efficiency.mfu"] = e.MFU
		if e.PeakBytes > 0 {
			m["efficiency.peak_bytes"] = float64(e.PeakBytes)
		}
		if e.PrefillTokensPerSec > 0 {
			m["efficiency.prefill_tokens_per_sec"] = e.PrefillTokensPerSec
		}
		for _, d := range e.Decode {
			m[fmt.Sprintf("efficiency.decode_tokens_per_sec@%d/b%d", d.Context, d.Batch)] = d.TokensPerSec
		}
	}
	return m
}

// Metric looks up a flat metric by key.
func (r *Results) Metric(key string) (float64, bool) {
	v, ok := r.Flatten()[key]
	return v, ok
}

// Write stores r as path atomically (a crash leaves the old file or none, never half of one).
func Write(path string, r *Results) error {
	if r.Schema == 0 {
		r.Schema = Version
	}
	r.Flatten()
	return atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	})
}

// Read loads one results file; errors name the file.
func Read(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Schema < 1 || r.Schema > Version {
		return nil, fmt.Errorf("%s: results schema %d, this program reads 1..%d", path, r.Schema, Version)
	}
	r.Flatten()
	return &r, nil
}

// Find returns the results files under each argument: a results.json itself, or a directory
// searched recursively; sorted, without duplicates. A path holding none is an error.
func Find(paths ...string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		n := 0
		if !st.IsDir() {
			n = 1
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		} else {
			err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() && d.Name() == FileName {
					n++
					if !seen[q] {
						seen[q] = true
						out = append(out, q)
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no %s found", p, FileName)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReadAll reads every results file Find returns.
func ReadAll(paths ...string) ([]*Results, error) {
	files, err := Find(paths...)
	if err != nil {
		return nil, err
	}
	var rs []*Results
	var errs []error
	for _, f := range files {
		r, err := Read(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rs = append(rs, r)
	}
	return rs, errors.Join(errs...)
}
