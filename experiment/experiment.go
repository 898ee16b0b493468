// Package experiment runs one recipe end to end: data, model, training (resuming when the run
// directory holds a checkpoint of the same configuration), the recipe's evaluation suites, and
// results.json. The CLI's train command and every sweep trial go through Run.
package experiment

import (
	"context"
	"errors"
	"io"

	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/results"
)

// Options are the knobs of one run that are not part of the experiment itself.
type Options struct {
	Backend  string    // kernels backend name; "" uses kernels.Default
	Progress io.Writer // progress bars, or nil
	Log      io.Writer // one-line events (layout, budget, evals), or nil
	// Fresh refuses to continue an existing run directory instead of resuming it.
	Fresh bool
}

// Run trains r in dir and evaluates it, writing dir/recipe.yaml, checkpoints, metrics and
// finally dir/results.json (atomically; a failed run writes none). A dir holding a checkpoint
// of the same configuration hash is resumed; one of another hash is an error.
func Run(ctx context.Context, r *recipes.Recipe, dir string, o Options) (*results.Results, error) {
	return nil, errors.New("experiment: not built yet")
}
