// Package sweep runs studies: a sweep file in the Weights & Biases grammar (method, metric,
// parameters, run_cap) whose parameter names are dotted recipe paths, expanded into trials,
// each trial a base recipe plus overrides keyed by its recipes.Hash.
//
//	name: lr
//	method: grid                     # grid | random (bayes is refused)
//	metric: {name: lm.bpb, goal: minimize}
//	recipe: [inter/1-5, mamba2]      # one base recipe or a list (a grid axis)
//	parameters:
//	  train.optimizer.lr: {values: [1e-3, 2e-3]}
//	  model.d_model: {values: [64, 128]}
//	  model.ffn.hidden: {values: [192, 384]}
//	zip: [[model.d_model, model.ffn.hidden]]   # these vary together
//	seeds: [1, 2]                    # repeats: sets train.seed
//	budget: {flops: 1e13}            # every trial's budget (FLOP-matched comparison)
//	resources: {cpus: 2, mem: 4G, time: "02:00:00", partition: debug, parallel: 4}
//
// A trial lives in <sweepdir>/trials/<hash[:12]>/ (recipe.yaml, trial.json, status.json,
// logs/, and what experiment.Run writes). Re-running a sweep skips finished trials and
// resumes interrupted ones; a flock per trial keeps two runners from running one trial twice.
// The local executor runs trials as `hybrid sweep worker` subprocesses; the Slurm executor
// submits one job array.
package sweep

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Spec is a decoded sweep file.
type Spec struct {
	File        string // the sweep file, as given
	Name        string // defaults to the file's base name
	Description string
	Method      string // grid | random
	Metric      Metric
	Recipes     []string // base recipes: shipped names or paths (relative to the cwd, resolved from File)
	Params      []*Param // in file order, nested parameters flattened to dotted paths
	Zip         [][]string
	Seeds       []int64
	Budget      map[string]*yaml.Node // train.budget field → value (tokens, flops or steps)
	RunCap      int
	RandomSeed  uint64
	Resources   Resources

	recipeLine, paramsLine, budgetLine, seedsLine int
}

// Metric is what the sweep ranks trials by: a flat results metric key ("lm.bpb").
type Metric struct {
	Name string
	Goal string // minimize | maximize
}

// Resources are what one trial needs; the local executor derives its default parallelism from
// CPUs, the Slurm executor passes all of them to sbatch.
type Resources struct {
	CPUs      int    // per trial (default 4, at most the machine's cores)
	Mem       string // Slurm --mem (e.g. 4G)
	Time      string // Slurm --time (e.g. 02:00:00)
	Partition string // Slurm --partition
	Parallel  int    // at most this many trials at once (Slurm's %N; local default cores/CPUs)
}

// Param is one swept recipe path.
type Param struct {
	Path  string // dotted recipe path (train.optimizer.lr)
	Line  int
	Dist  string       // constant | categorical | int_uniform | uniform | ...
	Nodes []*yaml.Node // values (categorical) or the one value (constant)
	Min   float64
	Max   float64
	Q     float64
	Mu    float64
	Sigma float64
	Probs []float64
}

// Distributions are the W&B parameter distributions this package samples.
var Distributions = []string{
	"constant", "categorical", "int_uniform", "uniform", "q_uniform",
	"log_uniform", "log_uniform_values", "q_log_uniform", "q_log_uniform_values",
	"inv_log_uniform", "inv_log_uniform_values", "normal", "q_normal", "log_normal", "q_log_normal",
}

// Error is every problem of a sweep file, one "file:line: field: message" per line.
type Error []string

func (e Error) Error() string { return strings.Join(e, "\n") }

type specDecoder struct {
	file string
	errs Error
}

func (d *specDecoder) fail(n *yaml.Node, field, format string, a ...any) {
	line := 1
	if n != nil {
		line = n.Line
	}
	msg := fmt.Sprintf(format, a...)
	if field != "" {
		msg = field + ": " + msg
	}
	d.errs = append(d.errs, fmt.Sprintf("%s:%d: %s", d.file, line, msg))
}

// pairs iterates a mapping's keys, failing on duplicates.
func (d *specDecoder) pairs(n *yaml.Node, field string, f func(k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		for v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if seen[k.Value] {
			d.fail(k, join(field, k.Value), "set twice in one mapping")
			continue
		}
		seen[k.Value] = true
		f(k, v)
	}
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "null"
	}
	return strconv.Quote(n.Value)
}

func (d *specDecoder) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		d.fail(n, field, "want a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

func (d *specDecoder) num(n *yaml.Node, field string) float64 {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil {
			return f
		}
		if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			return float64(i)
		}
	}
	d.fail(n, field, "want a number, got %s", describe(n))
	return 0
}

func (d *specDecoder) integer(n *yaml.Node, field string) int64 {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		s := strings.ReplaceAll(n.Value, "_", "")
		if i, err := strconv.ParseInt(s, 0, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<62 {
			return int64(f)
		}
	}
	d.fail(n, field, "want an integer, got %s", describe(n))
	return 0
}

func isInt(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!int" }

// LoadSpec reads and strictly decodes a sweep file. Every problem is reported at once as
// file:line: field: message. It does not touch recipes; Plan validates the trials.
func LoadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	return ParseSpec(path, b)
}

// ParseSpec decodes a sweep file's bytes; file names it in errors and anchors relative
// recipe paths.
func ParseSpec(file string, b []byte) (*Spec, error) {
	d := &specDecoder{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:1: a sweep is a mapping (method, metric, recipe, parameters, ...)", file)
	}
	root := doc.Content[0]
	s := &Spec{File: file, Method: "grid", Metric: Metric{Name: "lm.bpb", Goal: "minimize"}}
	s.Name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(file), ".yaml"), ".yml")
	var zipNode *yaml.Node
	d.pairs(root, "", func(k, v *yaml.Node) {
		switch k.Value {
		case "name":
			if n := d.str(v, "name"); n != "" {
				if strings.ContainsAny(n, "/\\") || n == "." || n == ".." || strings.TrimSpace(n) != n {
					d.fail(v, "name", "%q names a directory (runs/sweeps/<name>): no slashes or surrounding spaces", n)
				} else {
					s.Name = n
				}
			}
		case "description":
			s.Description = d.str(v, "description")
		case "method":
			switch m := d.str(v, "method"); m {
			case "grid", "random":
				s.Method = m
			case "bayes":
				d.fail(v, "method", "bayes is not supported: it needs a model of finished trials guiding new ones; use grid, or random with run_cap")
			case "":
			default:
				d.fail(v, "method", "%q is not one of grid, random", m)
			}
		case "metric":
			if v.Kind != yaml.MappingNode {
				d.fail(v, "metric", "want a mapping {name, goal}, got %s", describe(v))
				return
			}
			d.pairs(v, "metric", func(k2, v2 *yaml.Node) {
				switch k2.Value {
				case "name":
					s.Metric.Name = d.str(v2, "metric.name")
				case "goal":
					g := d.str(v2, "metric.goal")
					if g != "minimize" && g != "maximize" {
						d.fail(v2, "metric.goal", "%q is not one of minimize, maximize", g)
					}
					s.Metric.Goal = g
				case "target":
					d.num(v2, "metric.target") // accepted for W&B compatibility; unused
				default:
					d.fail(k2, "metric."+k2.Value, "unknown field (known: name, goal, target)")
				}
			})
			if s.Metric.Name == "" {
				d.fail(v, "metric.name", "missing: a flat results metric such as lm.bpb")
			}
		case "recipe":
			s.recipeLine = k.Line
			switch v.Kind {
			case yaml.ScalarNode:
				s.Recipes = []string{d.str(v, "recipe")}
			case yaml.SequenceNode:
				if len(v.Content) == 0 {
					d.fail(v, "recipe", "empty list: name at least one base recipe")
				}
				for i, c := range v.Content {
					s.Recipes = append(s.Recipes, d.str(c, fmt.Sprintf("recipe[%d]", i)))
				}
			default:
				d.fail(v, "recipe", "want a recipe name or a list of them, got %s", describe(v))
			}
		case "parameters":
			s.paramsLine = k.Line
			d.params(s, v, "")
		case "zip":
			zipNode = v
		case "seeds":
			s.seedsLine = k.Line
			switch {
			case isInt(v):
				n := d.integer(v, "seeds")
				if n < 1 {
					d.fail(v, "seeds", "want a count ≥ 1 (seeds 1..n) or a list of seeds, got %d", n)
				}
				for i := int64(1); i <= n; i++ {
					s.Seeds = append(s.Seeds, i)
				}
			case v.Kind == yaml.SequenceNode:
				if len(v.Content) == 0 {
					d.fail(v, "seeds", "empty list: leave seeds out to keep the recipe's train.seed")
				}
				seen := map[int64]bool{}
				for i, c := range v.Content {
					x := d.integer(c, fmt.Sprintf("seeds[%d]", i))
					if seen[x] {
						d.fail(c, fmt.Sprintf("seeds[%d]", i), "seed %d repeated", x)
					}
					seen[x] = true
					s.Seeds = append(s.Seeds, x)
				}
			default:
				d.fail(v, "seeds", "want a count or a list of integer seeds, got %s", describe(v))
			}
		case "budget":
			s.budgetLine = k.Line
			if v.Kind != yaml.MappingNode {
				d.fail(v, "budget", "want a mapping {flops: X} or {tokens: N} or {steps: N}, got %s", describe(v))
				return
			}
			s.Budget = map[string]*yaml.Node{}
			d.pairs(v, "budget", func(k2, v2 *yaml.Node) {
				switch k2.Value {
				case "flops":
					if d.num(v2, "budget.flops") <= 0 {
						d.fail(v2, "budget.flops", "must be positive")
					}
				case "tokens", "steps":
					if d.integer(v2, "budget."+k2.Value) <= 0 {
						d.fail(v2, "budget."+k2.Value, "must be positive")
					}
				default:
					d.fail(k2, "budget."+k2.Value, "unknown field (known: flops, tokens, steps)")
					return
				}
				s.Budget[k2.Value] = v2
			})
			if len(s.Budget) != 1 {
				d.fail(v, "budget", "set exactly one of flops, tokens, steps (have %d)", len(s.Budget))
			}
		case "run_cap":
			if n := d.integer(v, "run_cap"); n < 1 {
				d.fail(v, "run_cap", "must be ≥ 1, have %d", n)
			} else {
				s.RunCap = int(n)
			}
		case "random_seed":
			s.RandomSeed = uint64(d.integer(v, "random_seed"))
		case "resources":
			d.resources(s, v)
		case "early_terminate":
			d.fail(k, "early_terminate", "not supported: every trial trains to its budget (a FLOP-matched comparison)")
		case "program", "command":
			d.fail(k, k.Value, "not used: each trial is a recipe run by experiment.Run (`hybrid sweep worker`); remove it")
		case "project", "entity":
			d.fail(k, k.Value, "W&B upload settings do not belong here; results land in the sweep directory")
		default:
			d.fail(k, k.Value, "unknown field (known: name, description, method, metric, recipe, parameters, zip, seeds, budget, run_cap, random_seed, resources)")
		}
	})
	if s.Recipes == nil {
		d.fail(root, "recipe", "missing: name the base recipe (a shipped name or a .yaml path), or a list of them")
	}
	if zipNode != nil {
		d.zip(s, zipNode)
	}
	if s.Method == "random" && s.RunCap == 0 {
		d.fail(root, "run_cap", "method random needs run_cap (how many trials to draw)")
	}
	if s.Budget != nil {
		for _, p := range s.Params {
			if strings.HasPrefix(p.Path, "train.budget") {
				d.fail(&yaml.Node{Line: p.Line}, "parameters."+p.Path, "the budget is set twice: by budget: (line %d) and by this parameter", s.budgetLine)
			}
		}
	}
	if s.Seeds != nil {
		for _, p := range s.Params {
			if p.Path == "train.seed" || p.Path == "train" {
				d.fail(&yaml.Node{Line: p.Line}, "parameters."+p.Path, "train.seed is set by seeds: (line %d); drop one", s.seedsLine)
			}
		}
	}
	// Recipe files are relative to the sweep file.
	for i, r := range s.Recipes {
		if (strings.HasSuffix(r, ".yaml") || strings.HasSuffix(r, ".yml")) && !filepath.IsAbs(r) {
			s.Recipes[i] = filepath.Join(filepath.Dir(file), r)
		}
	}
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return s, nil
}

func (d *specDecoder) resources(s *Spec, v *yaml.Node) {
	if v.Kind != yaml.MappingNode {
		d.fail(v, "resources", "want a mapping {cpus, mem, time, partition, parallel}, got %s", describe(v))
		return
	}
	r := &s.Resources
	d.pairs(v, "resources", func(k, v2 *yaml.Node) {
		f := "resources." + k.Value
		switch k.Value {
		case "cpus":
			if r.CPUs = int(d.integer(v2, f)); r.CPUs < 1 {
				d.fail(v2, f, "must be ≥ 1")
			}
		case "parallel":
			if r.Parallel = int(d.integer(v2, f)); r.Parallel < 1 {
				d.fail(v2, f, "must be ≥ 1")
			}
		case "mem":
			r.Mem = d.slurmValue(v2, f, "0123456789KMGTkmgt")
		case "time":
			r.Time = d.slurmValue(v2, f, "0123456789:-")
		case "partition":
			r.Partition = d.slurmValue(v2, f, "")
		default:
			d.fail(k, f, "unknown field (known: cpus, mem, time, partition, parallel)")
		}
	})
}

// slurmValue reads a string or number passed to sbatch as one argument; allowed restricts its
// characters ("" allows letters, digits, '-', '_', ',' and '.').
func (d *specDecoder) slurmValue(n *yaml.Node, field, allowed string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Tag == "!!map" {
		d.fail(n, field, "want a string, got %s", describe(n))
		return ""
	}
	v := n.Value
	for _, c := range v {
		ok := strings.ContainsRune(allowed, c)
		if allowed == "" {
			ok = c == '-' || c == '_' || c == ',' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		}
		if !ok {
			d.fail(n, field, "%q: character %q not allowed here", v, c)
			return ""
		}
	}
	return v
}

// params decodes a parameters mapping; W&B nested `parameters:` prefix their names.
func (d *specDecoder) params(s *Spec, v *yaml.Node, prefix string) {
	if v.Kind != yaml.MappingNode {
		d.fail(v, "parameters", "want a mapping of recipe path → {values|value|min,max|distribution}, got %s", describe(v))
		return
	}
	if len(v.Content) == 0 && prefix == "" {
		d.fail(v, "parameters", "empty: leave it out to run the base recipes as they are")
	}
	d.pairs(v, "parameters", func(k, pv *yaml.Node) {
		path := join(prefix, k.Value)
		f := "parameters." + path
		if pv.Kind != yaml.MappingNode {
			d.fail(pv, f, "want a mapping {values: [...]} or {value: x} or {min, max}, got %s", describe(pv))
			return
		}
		if nested := lookup(pv, "parameters"); nested != nil {
			if len(pv.Content) != 2 {
				d.fail(k, f, "a parameter with nested parameters has no other fields")
			}
			d.params(s, nested, path)
			return
		}
		for _, q := range s.Params {
			if q.Path == path {
				d.fail(k, f, "set twice (line %d)", q.Line)
				return
			}
		}
		p := &Param{Path: path, Line: k.Line, Sigma: 1}
		var minN, maxN *yaml.Node
		has := map[string]bool{}
		d.pairs(pv, f, func(k2, v2 *yaml.Node) {
			has[k2.Value] = true
			switch k2.Value {
			case "values":
				if v2.Kind != yaml.SequenceNode {
					d.fail(v2, f+".values", "want a list, got %s", describe(v2))
					return
				}
				if len(v2.Content) == 0 {
					d.fail(v2, f+".values", "empty list: the grid would have no trials")
				}
				p.Nodes = v2.Content
			case "value":
				p.Nodes = []*yaml.Node{v2}
			case "distribution":
				p.Dist = d.str(v2, f+".distribution")
				known := false
				for _, x := range Distributions {
					known = known || x == p.Dist
				}
				if !known {
					d.fail(v2, f+".distribution", "%q is not one of %s", p.Dist, strings.Join(Distributions, ", "))
				}
			case "min":
				minN, p.Min = v2, d.num(v2, f+".min")
			case "max":
				maxN, p.Max = v2, d.num(v2, f+".max")
			case "q":
				if p.Q = d.num(v2, f+".q"); p.Q <= 0 {
					d.fail(v2, f+".q", "must be positive")
				}
			case "mu":
				p.Mu = d.num(v2, f+".mu")
			case "sigma":
				if p.Sigma = d.num(v2, f+".sigma"); p.Sigma <= 0 {
					d.fail(v2, f+".sigma", "must be positive")
				}
			case "probabilities":
				if v2.Kind != yaml.SequenceNode {
					d.fail(v2, f+".probabilities", "want a list of numbers, got %s", describe(v2))
					return
				}
				for i, c := range v2.Content {
					p.Probs = append(p.Probs, d.num(c, fmt.Sprintf("%s.probabilities[%d]", f, i)))
				}
			default:
				d.fail(k2, f+"."+k2.Value, "unknown field (known: values, value, distribution, min, max, q, mu, sigma, probabilities, parameters)")
			}
		})
		if p.Dist == "" { // inferred as W&B does
			switch {
			case has["values"]:
				p.Dist = "categorical"
			case has["value"]:
				p.Dist = "constant"
			case minN != nil && maxN != nil && isInt(minN) && isInt(maxN):
				p.Dist = "int_uniform"
			case minN != nil && maxN != nil:
				p.Dist = "uniform"
			case has["mu"] || has["sigma"]:
				p.Dist = "normal"
			default:
				d.fail(k, f, "give values: [...], value: x, or min and max")
				return
			}
		}
		switch p.Dist {
		case "constant":
			if !has["value"] {
				d.fail(k, f, "constant needs value")
			} else if has["values"] {
				d.fail(k, f, "set one of value, values")
			}
		case "categorical":
			if !has["values"] {
				d.fail(k, f, "categorical needs values")
			} else if has["value"] {
				d.fail(k, f, "set one of value, values")
			}
			if p.Probs != nil {
				sum := 0.0
				for _, x := range p.Probs {
					if x < 0 {
						d.fail(k, f+".probabilities", "must be ≥ 0")
					}
					sum += x
				}
				if len(p.Probs) != len(p.Nodes) {
					d.fail(k, f+".probabilities", "%d probabilities for %d values", len(p.Probs), len(p.Nodes))
				} else if math.Abs(sum-1) > 1e-6 {
					d.fail(k, f+".probabilities", "sum to %g, want 1", sum)
				}
			}
		case "normal", "q_normal", "log_normal", "q_log_normal":
		default: // ranges
			if minN == nil || maxN == nil {
				d.fail(k, f, "%s needs min and max", p.Dist)
				return
			}
			if p.Max < p.Min {
				d.fail(minN, f, "min %g is above max %g", p.Min, p.Max)
			}
			if p.Dist == "int_uniform" && (p.Min != math.Trunc(p.Min) || p.Max != math.Trunc(p.Max)) {
				d.fail(minN, f, "int_uniform needs integer min and max")
			}
			if strings.HasSuffix(p.Dist, "_values") && p.Min <= 0 {
				d.fail(minN, f, "%s needs min > 0 (they are values, not exponents), have %g", p.Dist, p.Min)
			}
		}
		if strings.HasPrefix(p.Dist, "q_") && p.Q == 0 {
			p.Q = 1
		}
		s.Params = append(s.Params, p)
	})
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// zip decodes zip: [[a, b], [c, d]]: each group's parameters list values of one length and
// vary together as one axis.
func (d *specDecoder) zip(s *Spec, v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		d.fail(v, "zip", "want a list of groups ([[model.d_model, model.ffn.hidden]]), got %s", describe(v))
		return
	}
	in := map[string]int{}
	for gi, g := range v.Content {
		f := fmt.Sprintf("zip[%d]", gi)
		if g.Kind != yaml.SequenceNode || len(g.Content) < 2 {
			d.fail(g, f, "want a list of at least two parameter names, got %s", describe(g))
			continue
		}
		var group []string
		n := -1
		for _, c := range g.Content {
			name := d.str(c, f)
			if name == "" {
				continue
			}
			if prev, ok := in[name]; ok {
				d.fail(c, f, "%s is already in zip[%d]", name, prev)
				continue
			}
			in[name] = gi
			var p *Param
			for _, q := range s.Params {
				if q.Path == name {
					p = q
				}
			}
			switch {
			case p == nil:
				d.fail(c, f, "%s is not a parameter", name)
				continue
			case p.Dist != "categorical":
				d.fail(c, f, "%s must list values to be zipped (it is %s)", name, p.Dist)
				continue
			case n >= 0 && len(p.Nodes) != n:
				d.fail(c, f, "%s has %d values, the group's first parameter %d", name, len(p.Nodes), n)
				continue
			}
			n = len(p.Nodes)
			group = append(group, name)
		}
		s.Zip = append(s.Zip, group)
	}
}

// sortedKeys is a helper for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
