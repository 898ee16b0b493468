package sweep

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSpec(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func plan(t *testing.T, body string) (*Plan, error) {
	t.Helper()
	s, err := LoadSpec(writeSpec(t, body))
	if err != nil {
		return nil, err
	}
	return s.Plan()
}

// Bad sweep files fail with file:line: field: message, every problem at once.
func TestSpecErrors(t *testing.T) {
	const tiny = "recipe: quickstart\nparameters:\n  train.optimizer.lr: {values: [0.001]}\n"
	for _, c := range []struct{ name, body, want string }{
		{"unknown key", tiny + "metrik: {name: lm.bpb}\n", `s.yaml:4: metrik: unknown field`},
		{"unknown metric key", tiny + "metric: {name: lm.bpb, gol: minimize}\n", `s.yaml:4: metric.gol: unknown field`},
		{"bad goal", tiny + "metric: {name: lm.bpb, goal: lowest}\n", `s.yaml:4: metric.goal: "lowest" is not one of minimize, maximize`},
		{"bayes", tiny + "method: bayes\n", `s.yaml:4: method: bayes is not supported`},
		{"wrong type", tiny + "run_cap: many\n", `s.yaml:4: run_cap: want an integer, got "many"`},
		{"empty grid", "recipe: quickstart\nparameters:\n  train.optimizer.lr:\n    values: []\n", `s.yaml:4: parameters.train.optimizer.lr.values: empty list`},
		{"unknown param key", "recipe: quickstart\nparameters:\n  train.optimizer.lr: {valus: [1]}\n", `s.yaml:3: parameters.train.optimizer.lr.valus: unknown field`},
		{"no recipe", "parameters:\n  train.seed: {values: [1]}\n", `recipe: missing`},
		{"random without cap", tiny + "method: random\n", `run_cap: method random needs run_cap`},
		{"zip length", "recipe: quickstart\nparameters:\n  model.d_model: {values: [64, 128]}\n  model.ffn.hidden: {values: [192]}\nzip: [[model.d_model, model.ffn.hidden]]\n",
			`s.yaml:5: zip[0]: model.ffn.hidden has 1 values, the group's first parameter 2`},
		{"zip unknown", tiny + "zip: [[train.optimizer.lr, model.d_model]]\n", `zip[0]: model.d_model is not a parameter`},
		{"seed twice", tiny + "seeds: [1]\nparameters2: 1\n", `parameters2: unknown field`},
		{"budget twice", "recipe: quickstart\nbudget: {flops: 1e12}\nparameters:\n  train.budget.tokens: {values: [1000]}\n", `s.yaml:4: parameters.train.budget.tokens: the budget is set twice`},
		{"bad distribution", "recipe: quickstart\nparameters:\n  train.optimizer.lr: {min: 0.1, max: 1, distribution: gauss}\n", `"gauss" is not one of constant`},
		{"continuous grid", "recipe: quickstart\nparameters:\n  train.optimizer.lr: {min: 0.001, max: 0.01}\n", `s.yaml:3: parameters.train.optimizer.lr: distribution uniform is continuous`},
		{"command", tiny + "command: [python, train.py]\n", `s.yaml:4: command: not used`},
		{"slurm injection in resources", tiny + "resources: {partition: \"a b\"}\n", `resources.partition: "a b": character ' ' not allowed`},
		// Recipe-level checks: the override is applied to the base recipe and resolved.
		{"unknown recipe path", "recipe: quickstart\nparameters:\n  model.layout.ration: {values: [\"1:3\"]}\n",
			`s.yaml:3: parameters.model.layout.ration: unknown field "ration" in model.layout`},
		{"wrong value type", "recipe: quickstart\nparameters:\n  model.n_layers: {values: [6, abc]}\n",
			`s.yaml:3: parameters.model.n_layers: want an integer, got "abc"`},
		{"impossible value", "recipe: quickstart\nparameters:\n  model.n_layers: {values: [3]}\n",
			`s.yaml:2: parameters: trial {quickstart, model.n_layers=3}: recipes/quickstart.yaml:9: model.layout.ratio: "1:5" needs at least 6 layers, have 3`},
		{"unknown recipe", "recipe: nope/nothing\n", `s.yaml:1: recipe: nope/nothing: recipes: no shipped recipe`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := plan(t, c.body)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

// A grid over bases × parameters × zip groups × seeds, with the budget applied to every trial.
func TestPlanGrid(t *testing.T) {
	p, err := plan(t, `
name: g
recipe: [quickstart, inter/1-5]
budget: {flops: 1e12}
parameters:
  train.optimizer.lr: {values: [0.001, 0.002]}
  model.d_model: {values: [64, 128]}
  model.ffn.hidden: {values: [192, 384]}
zip: [[model.d_model, model.ffn.hidden]]
seeds: [1, 2]
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Trials); got != 2*2*2*2 {
		t.Fatalf("%d trials, want 16", got)
	}
	t0 := p.Trials[0]
	if t0.Base != "quickstart" || t0.Label(false) != "train.optimizer.lr=0.001, model.d_model=64, model.ffn.hidden=192, train.seed=1" {
		t.Errorf("first trial %s {%s}", t0.Base, t0.Label(false))
	}
	seen := map[string]bool{}
	for _, tr := range p.Trials {
		r := tr.Recipe
		if r.Train.Budget.FLOPs != 1e12 || r.Train.Budget.Steps != 0 || r.Train.Budget.Tokens != 0 {
			t.Errorf("trial %d budget %+v, want flops 1e12 only", tr.Index, r.Train.Budget)
		}
		if (r.Model.DModel == 64) != (r.Model.FFN.Hidden == 192) {
			t.Errorf("trial %d: zip broken: d_model %d hidden %d", tr.Index, r.Model.DModel, r.Model.FFN.Hidden)
		}
		if seen[tr.Hash] {
			t.Errorf("trial %d: hash repeated", tr.Index)
		}
		seen[tr.Hash] = true
		if tr.FLOPs > 1e12 || tr.FLOPs < 0.9e12 || tr.Steps < 1 {
			t.Errorf("trial %d: cost %g FLOPs in %d steps for a 1e12 budget", tr.Index, tr.FLOPs, tr.Steps)
		}
	}
	// Planning again gives the same trials (identity is the recipe hash).
	p2, _ := p.Spec.Plan()
	for i := range p.Trials {
		if p.Trials[i].Hash != p2.Trials[i].Hash {
			t.Fatal("plans differ between two expansions")
		}
	}
}

// Trials that resolve to the same recipe are kept once; random plans are reproducible.
func TestPlanDuplicatesAndRandom(t *testing.T) {
	p, err := plan(t, "recipe: [transformer, mamba2]\nparameters:\n  model.mamba.d_state: {values: [16, 32]}\n")
	if err != nil {
		t.Fatal(err)
	}
	// transformer has no Mamba layers, but d_state is still part of its config, so 4 trials.
	if len(p.Trials) != 4 {
		t.Fatalf("%d trials", len(p.Trials))
	}
	p, err = plan(t, "recipe: mamba2\nparameters:\n  model.layout.pattern: {values: [MMMMMMMMMMMMM, MMMMMMMMMMMMM]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Trials) != 1 || len(p.Duplicates) != 1 {
		t.Fatalf("%d trials, %d duplicates; want 1 and 1", len(p.Trials), len(p.Duplicates))
	}
	body := `recipe: quickstart
method: random
run_cap: 6
random_seed: 7
parameters:
  train.optimizer.lr: {min: 1.0e-4, max: 1.0e-2, distribution: log_uniform_values}
  model.d_model: {values: [64, 128]}
  train.schedule.warmup: {min: 0, max: 50}
`
	a, err := plan(t, body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := plan(t, body)
	if len(a.Trials) != 6 {
		t.Fatalf("%d random trials, want 6", len(a.Trials))
	}
	for i := range a.Trials {
		lr := a.Trials[i].Recipe.Train.Optimizer.LR
		if a.Trials[i].Hash != b.Trials[i].Hash {
			t.Fatal("random plans with one random_seed differ")
		}
		if lr < 1e-4 || lr > 1e-2 {
			t.Errorf("lr %g outside [1e-4, 1e-2]", lr)
		}
		if w := a.Trials[i].Recipe.Train.Schedule.Warmup; w < 0 || w > 50 {
			t.Errorf("warmup %d outside [0, 50]", w)
		}
	}
}

// A budget parameter clears the base's other budget fields, so budgets can be a grid axis.
func TestBudgetParameter(t *testing.T) {
	p, err := plan(t, "recipe: mamba2\nparameters:\n  train.budget.flops: {values: [1e12, 2e12]}\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range p.Trials {
		if b := tr.Recipe.Train.Budget; b.Tokens != 0 || b.FLOPs == 0 {
			t.Errorf("budget %+v", b)
		}
	}
}

// Every shipped sweep plans (its recipes, paths and values validate).
func TestShippedSweepsPlan(t *testing.T) {
	files, _ := filepath.Glob("../sweeps/*.yaml")
	if len(files) < 5 {
		t.Fatalf("%d shipped sweeps, want at least 5", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, _ := os.ReadFile(f)
			if !strings.HasPrefix(string(b), "#") || !strings.Contains(string(b), "wall") {
				t.Errorf("%s: want a header comment with the estimated wall time", f)
			}
			s, err := LoadSpec(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Plan()
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			if err := WritePlan(&sb, p, t.TempDir(), 5); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sb.String(), "estimated cost") {
				t.Errorf("plan output lacks the cost:\n%s", sb.String())
			}
		})
	}
}
