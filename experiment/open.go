package experiment

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/train"
)

// Trained is a model loaded from a run: its recipe, weights and the checkpoint they came from.
type Trained struct {
	Dir        string // the run directory
	Recipe     *recipes.Recipe
	Model      *arch.Model
	Backend    kernels.Backend
	Checkpoint *train.Checkpoint
}

// Open loads a trained model from a run directory (its latest checkpoint) or from one
// checkpoint directory inside it (ckpt-NNNNNN). The run's recipe.yaml rebuilds the model; a
// checkpoint made under another configuration is refused.
func Open(path, backendName string) (*Trained, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: want a run directory or a checkpoint directory", path)
	}
	var ck *train.Checkpoint
	runDir := path
	if _, err := os.Stat(filepath.Join(path, RecipeFile)); err == nil {
		ck, err = train.LoadCheckpoint(path)
		if err != nil {
			return nil, err
		}
	} else {
		runDir = filepath.Dir(path)
		if _, err := os.Stat(filepath.Join(runDir, RecipeFile)); err != nil {
			return nil, fmt.Errorf("%s: no %s here or in the parent directory: not a run", path, RecipeFile)
		}
		if ck, err = train.LoadCheckpointDir(path); err != nil {
			return nil, err
		}
	}
	r, err := recipes.Load(filepath.Join(runDir, RecipeFile), nil)
	if err != nil {
		return nil, err
	}
	if h := r.Hash(); ck.State.ConfigHash != h {
		return nil, fmt.Errorf("%s was written by config %.12s but %s describes %.12s",
			ck.Dir, ck.State.ConfigHash, filepath.Join(runDir, RecipeFile), h)
	}
	be, err := backend(backendName)
	if err != nil {
		return nil, err
	}
	m, err := arch.Build(r.Model, be, uint64(r.Train.Seed))
	if err != nil {
		return nil, err
	}
	if err := ck.LoadParams(be, m.Params()); err != nil {
		return nil, err
	}
	return &Trained{Dir: runDir, Recipe: r, Model: m, Backend: be, Checkpoint: ck}, nil
}
