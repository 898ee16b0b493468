package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hybridlab/hybrid/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/tensor"
)

// State is the training state saved beside the weights: with the same model, data and recipe,
// it is enough to continue a run exactly.
type State struct {
	Step       int        `json:"step"`   // completed optimizer steps
	Tokens     int64      `json:"tokens"` // training tokens seen
	Loader     data.State `json:"loader"` // position of the training batches
	Seed       int64      `json:"seed"`   // the recipe's seed (model init, loader order)
	ConfigHash string     `json:"config_hash,omitempty"`
	LastLoss   float64    `json:"last_loss"`               // training loss of the last step
	BestVal    float64    `json:"best_val_loss,omitempty"` // lowest validation loss so far
	BestStep   int        `json:"best_val_step,omitempty"` // its step (0: no evaluation yet)
	Elapsed    float64    `json:"elapsed"`                 // seconds of training over all sessions
	Saved      string     `json:"saved,omitempty"`         // wall time of the save, RFC 3339
	Weights    string     `json:"weights"`                 // the safetensors file, relative to state.json
	Params     []string   `json:"params"`                  // parameter names, in model order
	Producer   string     `json:"producer,omitempty"`      // "hybrid/train"
	Meta       any        `json:"meta,omitempty"`          // free-form, for callers
}

// Checkpoint file names inside a run directory.
const (
	latestFile  = "latest"
	weightsFile = "model.safetensors"
	stateFile   = "state.json"
)

// Moment names in the safetensors file.
func momentNames(param string) (m, v string) { return "opt.m." + param, "opt.v." + param }

// ckptName is the directory of the checkpoint after step completed steps.
func ckptName(step int) string { return fmt.Sprintf("ckpt-%06d", step) }

// SaveCheckpoint writes params, the optimizer's moments and st into runDir/ckpt-<step>/, then
// points runDir/latest at it, and finally removes older checkpoints beyond the newest keep
// (keep < 1 keeps them all). Each file is written atomically and latest moves last, so an
// interrupted save leaves the previous checkpoint in place. It returns the checkpoint's
// directory.
func SaveCheckpoint(runDir string, be kernels.Backend, opt *AdamW, st State, keep int) (string, error) {
	name := ckptName(st.Step)
	dir := filepath.Join(runDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	entries := make([]Entry, 0, 3*len(opt.Params))
	var moments []Entry
	st.Params = st.Params[:0]
	for i, p := range opt.Params {
		w, err := hostCopy(be, p.Buf())
		if err != nil {
			return "", err
		}
		m, err := hostCopy(be, opt.M[i])
		if err != nil {
			return "", err
		}
		v, err := hostCopy(be, opt.V[i])
		if err != nil {
			return "", err
		}
		mn, vn := momentNames(p.Name())
		entries = append(entries, Entry{Name: p.Name(), Shape: p.Shape(), Data: w})
		moments = append(moments, Entry{Name: mn, Shape: p.Shape(), Data: m}, Entry{Name: vn, Shape: p.Shape(), Data: v})
		st.Params = append(st.Params, p.Name())
	}
	entries = append(entries, moments...)
	meta := map[string]string{"format": "pt", "producer": "hybrid/train", "step": strconv.Itoa(st.Step)}
	if err := WriteSafetensors(filepath.Join(dir, weightsFile), entries, meta); err != nil {
		return "", err
	}
	st.Weights, st.Producer = weightsFile, "hybrid/train"
	st.Saved = time.Now().UTC().Format(time.RFC3339)
	if err := writeJSON(filepath.Join(dir, stateFile), st); err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(runDir, latestFile), func(w io.Writer) error {
		_, err := io.WriteString(w, name+"\n")
		return err
	}); err != nil {
		return "", err
	}
	if keep > 0 {
		if err := prune(runDir, name, keep); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

// prune removes checkpoint directories other than the newest keep (by step), never current.
func prune(runDir, current string, keep int) error {
	ents, err := os.ReadDir(runDir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "ckpt-") && e.Name() != current {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // zero-padded steps sort numerically
	for len(names) > keep-1 {
		if err := os.RemoveAll(filepath.Join(runDir, names[0])); err != nil {
			return err
		}
		names = names[1:]
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// hostCopy downloads b into a fresh host slice.
func hostCopy(be kernels.Backend, b kernels.Buffer) ([]float32, error) {
	h := make([]float32, b.Len())
	return h, be.Download(h, b)
}

// ErrNoCheckpoint is returned (wrapped) by LoadCheckpoint when a run directory has none.
var ErrNoCheckpoint = errors.New("no checkpoint")

// Checkpoint is a loaded checkpoint: its directory, training state and tensors.
type Checkpoint struct {
	Dir     string
	State   State
	Tensors *Safetensors
}

// LoadCheckpoint reads the checkpoint runDir/latest names, validating both files.
func LoadCheckpoint(runDir string) (*Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(runDir, latestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("train: %s: %w to resume (no %s file)", runDir, ErrNoCheckpoint, latestFile)
	}
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return nil, fmt.Errorf("train: %s: bad checkpoint name %q", filepath.Join(runDir, latestFile), name)
	}
	return LoadCheckpointDir(filepath.Join(runDir, name))
}

// LoadCheckpointDir reads the checkpoint in dir (state.json and its weights file).
func LoadCheckpointDir(dir string) (*Checkpoint, error) {
	path := filepath.Join(dir, stateFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Dir: dir}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.DisallowUnknownFields()
	if err := d.Decode(&c.State); err != nil {
		return nil, fmt.Errorf("train: %s: %v", path, err)
	}
	w := c.State.Weights
	if w == "" || filepath.Base(w) != w {
		return nil, fmt.Errorf("train: %s: bad weights file name %q", path, w)
	}
	if c.Tensors, err = ReadSafetensors(filepath.Join(dir, w)); err != nil {
		return nil, err
	}
	return c, nil
}

// Restore copies the checkpoint's parameters and moments into opt (whose Params must have the
// same names and shapes), sets opt.Step, and moves loader (when not nil) to the saved position.
func (c *Checkpoint) Restore(be kernels.Backend, opt *AdamW, loader Batches) error {
	file := c.Tensors.Path
	if len(c.State.Params) != len(opt.Params) {
		return fmt.Errorf("train: %s holds %d parameters, the model has %d", file, len(c.State.Params), len(opt.Params))
	}
	load := func(name string, p *tensor.Tensor, dst kernels.Buffer) error {
		e, ok := c.Tensors.Get(name)
		if !ok {
			return fmt.Errorf("train: %s has no tensor %q", file, name)
		}
		if !sameInts(e.Shape, p.Shape()) {
			return fmt.Errorf("train: %s: %q has shape %v, the model's %s has %v", file, name, e.Shape, p.Name(), p.Shape())
		}
		return be.Upload(dst, e.Data)
	}
	for i, p := range opt.Params {
		mn, vn := momentNames(p.Name())
		for _, x := range []struct {
			name string
			dst  kernels.Buffer
		}{{p.Name(), p.Buf()}, {mn, opt.M[i]}, {vn, opt.V[i]}} {
			if err := load(x.name, p, x.dst); err != nil {
				return err
			}
		}
	}
	opt.Step = c.State.Step
	if loader != nil {
		if err := loader.Restore(c.State.Loader); err != nil {
			return fmt.Errorf("train: %s: %w", c.Dir, err)
		}
	}
	return nil
}

// LoadParams copies the checkpoint's parameters (not the optimizer moments) into params, which
// must have the checkpoint's names and shapes: the way to a trained model for inference.
func (c *Checkpoint) LoadParams(be kernels.Backend, params []*tensor.Tensor) error {
	file := c.Tensors.Path
	if len(c.State.Params) != len(params) {
		return fmt.Errorf("train: %s holds %d parameters, the model has %d", file, len(c.State.Params), len(params))
	}
	for _, p := range params {
		e, ok := c.Tensors.Get(p.Name())
		if !ok {
			return fmt.Errorf("train: %s has no tensor %q", file, p.Name())
		}
		if !sameInts(e.Shape, p.Shape()) {
			return fmt.Errorf("train: %s: %q has shape %v, the model's has %v", file, p.Name(), e.Shape, p.Shape())
		}
		if err := be.Upload(p.Buf(), e.Data); err != nil {
			return err
		}
	}
	return nil
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
