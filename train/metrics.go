package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"github.com/hybridlab/hybrid/internal/atomicfile"
	"io"
	"os"
)

// StepInfo is one training step, as written to metrics.jsonl and passed to Hooks.OnStep.
type StepInfo struct {
	Step       int     `json:"step"`         // completed steps, this one included
	Total      int     `json:"-"`            // steps in the budget
	Loss       float64 `json:"loss"`         // mean over the step's micro-batches
	LR         float64 `json:"lr"`           // rate used by this step
	GradNorm   float64 `json:"grad_norm"`    // global norm before clipping
	Tokens     int64   `json:"tokens"`       // training tokens seen after this step
	TokensPerS float64 `json:"tokens_per_s"` // this step's throughput
	Elapsed    float64 `json:"elapsed"`      // seconds of training, all sessions
}

// EvalInfo is one validation pass, as written to metrics.jsonl and passed to Hooks.OnEval.
type EvalInfo struct {
	Step   int     `json:"step"`
	Tokens int64   `json:"tokens"` // training tokens seen
	Loss   float64 `json:"val_loss"`
	BPB    float64 `json:"val_bpb,omitempty"` // bits per byte, when bytes per token is known
	Scored int     `json:"val_tokens"`        // tokens scored
}

// jsonLines appends one JSON object per line to a file, each with a single write (no buffer
// to lose on a crash).
type jsonLines struct{ f *os.File }

func openJSONLines(path string) (*jsonLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &jsonLines{f: f}, nil
}

func (j *jsonLines) add(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = j.f.Write(append(b, '\n'))
	return err
}

func (j *jsonLines) Close() error { return j.f.Close() }

// trimMetrics drops the lines of a metrics file whose step is after step (written by a run
// that went on past its last checkpoint), so a resumed run's log has each step once.
func trimMetrics(path string, step int) error {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Step *int `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Step != nil && *rec.Step > step {
			continue
		}
		keep.Write(sc.Bytes())
		keep.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if keep.Len() == len(raw) {
		return nil
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(keep.Bytes())
		return err
	})
}
