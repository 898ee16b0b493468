package sweep

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/hybridlab/hybrid/recipes"
	"go.yaml.in/yaml/v3"
)

// Setting is one override of a trial: a recipe path and its value in flow YAML.
type Setting struct {
	Path  string `json:"path"`
	Value string `json:"value"`
}

// Change is one resolved field of a trial that differs from its base recipe.
type Change struct {
	Path, From, To string
}

// Trial is one resolved experiment of a sweep.
type Trial struct {
	Index     int       // position in the plan (stable while the sweep file is)
	Hash      string    // recipes.Hash of the resolved recipe: the trial's identity
	Base      string    // the base recipe
	Params    []Setting // what the sweep set (parameters, then train.seed)
	Overrides []string  // the --set strings applied to Base (budget, parameters, seed)
	Recipe    *recipes.Recipe
	Changes   []Change // resolved differences from Base

	vary map[string]bool // the paths whose value differs between trials of the plan

	FLOPsPerToken float64 // training FLOPs per token (arch Count at seq_len)
	Steps         int
	Tokens        int64
	FLOPs         float64
}

// ID is the trial's directory name: the first 12 hex digits of its hash.
func (t *Trial) ID() string { return t.Hash[:12] }

// Label is the trial's settings that vary across the sweep as "path=value, ..." (with its
// base recipe first when withBase).
func (t *Trial) Label(withBase bool) string {
	var s []string
	if withBase {
		s = append(s, t.Base)
	}
	for _, p := range t.Params {
		if t.vary == nil || t.vary[p.Path] {
			s = append(s, p.Path+"="+p.Value)
		}
	}
	return strings.Join(s, ", ")
}

// Plan is a sweep expanded into trials, in order, each hash once.
type Plan struct {
	Spec       *Spec
	Trials     []*Trial
	Duplicates []string // trials dropped because an earlier trial has the same hash
}

// Trial finds a trial by hash or hash prefix.
func (p *Plan) Trial(id string) *Trial {
	for _, t := range p.Trials {
		if id != "" && strings.HasPrefix(t.Hash, id) {
			return t
		}
	}
	return nil
}

// MaxTrials is the largest plan a sweep may expand to.
const MaxTrials = 10000

// axis is one dimension of the grid: each choice is a list of settings.
type axis [][]Setting

// flow writes a YAML value as the one-line form a --set override reads back.
func flow(n *yaml.Node) string {
	c := deepCopy(n)
	b, err := yaml.Marshal(c)
	if err != nil {
		return n.Value
	}
	return strings.TrimSuffix(string(b), "\n")
}

func deepCopy(n *yaml.Node) *yaml.Node {
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		c.Style |= yaml.FlowStyle
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return deepCopy(n.Alias)
	}
	c.Anchor = ""
	c.Content = nil
	for _, k := range n.Content {
		c.Content = append(c.Content, deepCopy(k))
	}
	return &c
}

func numberNode(x float64, integer bool) *yaml.Node {
	if integer && x == math.Trunc(x) && math.Abs(x) < 1<<53 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(int64(x), 10)}
	}
	s := strconv.FormatFloat(x, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}
}

// gridValues enumerates a parameter for a grid.
func gridValues(p *Param) ([]*yaml.Node, error) {
	switch p.Dist {
	case "constant", "categorical":
		return p.Nodes, nil
	case "int_uniform":
		if p.Max-p.Min >= MaxTrials {
			return nil, fmt.Errorf("int_uniform [%g, %g] has more than %d values", p.Min, p.Max, MaxTrials)
		}
		var out []*yaml.Node
		for x := p.Min; x <= p.Max; x++ {
			out = append(out, numberNode(x, true))
		}
		return out, nil
	case "q_uniform":
		if (p.Max-p.Min)/p.Q >= MaxTrials {
			return nil, fmt.Errorf("q_uniform [%g, %g] step %g has more than %d values", p.Min, p.Max, p.Q, MaxTrials)
		}
		var out []*yaml.Node
		for i := 0; ; i++ {
			x := p.Min + float64(i)*p.Q
			if x > p.Max*(1+1e-12) {
				break
			}
			out = append(out, numberNode(x, p.Q == math.Trunc(p.Q) && p.Min == math.Trunc(p.Min)))
		}
		return out, nil
	}
	return nil, fmt.Errorf("distribution %s is continuous and has no grid: list values, or use method: random with run_cap", p.Dist)
}

// sample draws one value of a parameter.
func sample(p *Param, rng *rand.Rand) *yaml.Node {
	u := func(a, b float64) float64 { return a + rng.Float64()*(b-a) }
	q := func(x float64) float64 { return math.Round(x/p.Q) * p.Q }
	qint := p.Q == math.Trunc(p.Q)
	switch p.Dist {
	case "constant":
		return p.Nodes[0]
	case "categorical":
		if p.Probs == nil {
			return p.Nodes[rng.IntN(len(p.Nodes))]
		}
		x, acc := rng.Float64(), 0.0
		for i, pr := range p.Probs {
			if acc += pr; x < acc {
				return p.Nodes[i]
			}
		}
		return p.Nodes[len(p.Nodes)-1]
	case "int_uniform":
		return numberNode(p.Min+float64(rng.IntN(int(p.Max-p.Min)+1)), true)
	case "uniform":
		return numberNode(u(p.Min, p.Max), false)
	case "q_uniform":
		return numberNode(q(u(p.Min, p.Max)), qint)
	case "log_uniform":
		return numberNode(math.Exp(u(p.Min, p.Max)), false)
	case "log_uniform_values":
		return numberNode(math.Exp(u(math.Log(p.Min), math.Log(p.Max))), false)
	case "q_log_uniform":
		return numberNode(q(math.Exp(u(p.Min, p.Max))), qint)
	case "q_log_uniform_values":
		return numberNode(q(math.Exp(u(math.Log(p.Min), math.Log(p.Max)))), qint)
	case "inv_log_uniform":
		return numberNode(1/math.Exp(u(p.Min, p.Max)), false)
	case "inv_log_uniform_values":
		return numberNode(1/math.Exp(u(math.Log(1/p.Max), math.Log(1/p.Min))), false)
	case "normal":
		return numberNode(p.Mu+p.Sigma*rng.NormFloat64(), false)
	case "q_normal":
		return numberNode(q(p.Mu+p.Sigma*rng.NormFloat64()), qint)
	case "log_normal":
		return numberNode(math.Exp(p.Mu+p.Sigma*rng.NormFloat64()), false)
	case "q_log_normal":
		return numberNode(q(math.Exp(p.Mu+p.Sigma*rng.NormFloat64())), qint)
	}
	panic("sweep: unknown distribution " + p.Dist)
}

// candidate is one unresolved trial: a base and its settings.
type candidate struct {
	base     string
	settings []Setting
}

// expand lists the sweep's candidates: the grid's cartesian product (bases outermost, seeds
// innermost) or run_cap random draws.
func (s *Spec) expand() ([]candidate, error) {
	zipped := map[string]int{}
	for gi, g := range s.Zip {
		for _, n := range g {
			zipped[n] = gi
		}
	}
	var seedAxis axis
	for _, sd := range s.Seeds {
		seedAxis = append(seedAxis, []Setting{{"train.seed", strconv.FormatInt(sd, 10)}})
	}
	byPath := map[string]*Param{}
	for _, p := range s.Params {
		byPath[p.Path] = p
	}
	var out []candidate
	if s.Method == "random" {
		rng := rand.New(rand.NewPCG(s.RandomSeed, 0x5eed))
		seeds := seedAxis
		if seeds == nil {
			seeds = axis{nil}
		}
		for len(out) < s.RunCap {
			c := candidate{base: s.Recipes[rng.IntN(len(s.Recipes))]}
			picks := make([]int, len(s.Zip))
			for i, g := range s.Zip {
				picks[i] = rng.IntN(len(byPath[g[0]].Nodes))
			}
			for _, p := range s.Params {
				if gi, ok := zipped[p.Path]; ok {
					c.settings = append(c.settings, Setting{p.Path, flow(p.Nodes[picks[gi]])})
					continue
				}
				c.settings = append(c.settings, Setting{p.Path, flow(sample(p, rng))})
			}
			for _, sd := range seeds {
				if len(out) < s.RunCap {
					out = append(out, candidate{c.base, append(append([]Setting{}, c.settings...), sd...)})
				}
			}
		}
		return out, nil
	}
	var axes []axis
	done := map[int]bool{}
	for _, p := range s.Params {
		if gi, ok := zipped[p.Path]; ok {
			if done[gi] {
				continue
			}
			done[gi] = true
			g := s.Zip[gi]
			var a axis
			for i := range byPath[g[0]].Nodes {
				var choice []Setting
				for _, q := range s.Params { // file order within the group
					if zipped[q.Path] == gi && contains(g, q.Path) {
						choice = append(choice, Setting{q.Path, flow(q.Nodes[i])})
					}
				}
				a = append(a, choice)
			}
			axes = append(axes, a)
			continue
		}
		vals, err := gridValues(p)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: parameters.%s: %v", s.File, p.Line, p.Path, err)
		}
		var a axis
		for _, v := range vals {
			a = append(a, []Setting{{p.Path, flow(v)}})
		}
		axes = append(axes, a)
	}
	if seedAxis != nil {
		axes = append(axes, seedAxis)
	}
	total := len(s.Recipes)
	for _, a := range axes {
		total *= len(a)
		if total > MaxTrials {
			return nil, fmt.Errorf("%s: the grid has more than %d trials; shrink it, set run_cap, or use method: random", s.File, MaxTrials)
		}
	}
	for _, base := range s.Recipes {
		idx := make([]int, len(axes))
		for {
			c := candidate{base: base}
			for i, a := range axes {
				c.settings = append(c.settings, a[idx[i]]...)
			}
			out = append(out, c)
			i := len(axes) - 1
			for ; i >= 0; i-- {
				if idx[i]++; idx[i] < len(axes[i]) {
					break
				}
				idx[i] = 0
			}
			if i < 0 {
				break
			}
		}
	}
	if s.RunCap > 0 && len(out) > s.RunCap {
		out = out[:s.RunCap]
	}
	return out, nil
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

var budgetFields = []string{"tokens", "flops", "steps"}

// overrides turns settings into --set strings. Setting one train.budget field clears the
// other two, as the layout's exclusive keys do in recipes.
func (s *Spec) overrides(settings []Setting) []string {
	var o []string
	budget := func(field, value string) {
		for _, f := range budgetFields {
			if f != field {
				o = append(o, "train.budget."+f+"=")
			}
		}
		o = append(o, "train.budget."+field+"="+value)
	}
	for _, f := range sortedKeys(s.Budget) {
		budget(f, flow(s.Budget[f]))
	}
	for _, st := range settings {
		if f, ok := strings.CutPrefix(st.Path, "train.budget."); ok && contains(budgetFields, f) {
			budget(f, st.Value)
			continue
		}
		o = append(o, st.Path+"="+st.Value)
	}
	return o
}

// Plan expands the sweep into trials: each base recipe plus overrides, loaded, resolved and
// costed. Errors point into the sweep file: an unknown recipe path or a value a recipe refuses
// names the parameter's line; every problem is reported at once.
func (s *Spec) Plan() (*Plan, error) {
	cands, err := s.expand()
	if err != nil {
		return nil, err
	}
	if len(cands) == 0 {
		return nil, Error{fmt.Sprintf("%s:%d: parameters: the sweep has no trials", s.File, s.paramsLine)}
	}
	p := &Plan{Spec: s}
	bases := map[string]*recipes.Recipe{}
	for _, b := range s.Recipes {
		if _, ok := bases[b]; ok {
			continue
		}
		r, err := recipes.Load(b, nil)
		if err != nil {
			return nil, Error{fmt.Sprintf("%s:%d: recipe: %s: %v", s.File, s.recipeLine, b, err)}
		}
		bases[b] = r
	}
	var errs Error
	seenErr := map[string]bool{}
	fail := func(msg string) {
		if !seenErr[msg] {
			seenErr[msg] = true
			errs = append(errs, msg)
		}
	}
	byHash := map[string]*Trial{}
	for _, c := range cands {
		t := &Trial{Base: c.base, Params: c.settings, Overrides: s.overrides(c.settings)}
		r, err := recipes.Load(c.base, t.Overrides)
		if err != nil {
			for _, m := range s.locate(err, t) {
				fail(m)
			}
			continue
		}
		t.Recipe, t.Hash = r, r.Hash()
		if prev, ok := byHash[t.Hash]; ok {
			p.Duplicates = append(p.Duplicates, fmt.Sprintf("{%s} is the same experiment as trial %d {%s}", t.Label(len(s.Recipes) > 1), prev.Index, prev.Label(len(s.Recipes) > 1)))
			continue
		}
		if err := t.cost(); err != nil {
			fail(fmt.Sprintf("%s:%d: trial {%s}: %v", s.File, s.budgetOrParams(), t.Label(true), err))
			continue
		}
		t.Changes = diff(bases[c.base], r)
		t.Index = len(p.Trials)
		byHash[t.Hash] = t
		p.Trials = append(p.Trials, t)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	vals := map[string]map[string]bool{}
	for _, t := range p.Trials {
		for _, st := range t.Params {
			if vals[st.Path] == nil {
				vals[st.Path] = map[string]bool{}
			}
			vals[st.Path][st.Value] = true
		}
	}
	vary := map[string]bool{}
	for path, vs := range vals {
		vary[path] = len(vs) > 1
	}
	for _, t := range p.Trials {
		t.vary = vary
	}
	return p, nil
}

func (s *Spec) budgetOrParams() int {
	if s.budgetLine > 0 {
		return s.budgetLine
	}
	if s.paramsLine > 0 {
		return s.paramsLine
	}
	return 1
}

// locate turns a recipes error of one trial into sweep-file errors: an override's error at
// its parameter's line, a field's error at the line of the parameter that set the field (or
// the budget/recipe line).
func (s *Spec) locate(err error, t *Trial) []string {
	var out []string
	lineOf := func(path string) (int, string) {
		for _, p := range s.Params {
			if path == p.Path || strings.HasPrefix(path, p.Path+".") || strings.HasPrefix(p.Path, path+".") {
				return p.Line, "parameters." + p.Path
			}
		}
		if strings.HasPrefix(path, "train.budget") && s.budgetLine > 0 {
			return s.budgetLine, "budget"
		}
		if path == "train.seed" && s.seedsLine > 0 {
			return s.seedsLine, "seeds"
		}
		// A field no parameter names failed because of the combination (the base alone loads):
		// point at the parameters.
		if s.paramsLine > 0 {
			return s.paramsLine, "parameters"
		}
		return s.recipeLine, "recipe"
	}
	var res recipes.Errors
	if errors.As(err, &res) {
		for _, e := range res {
			line, field := lineOf(e.Path)
			if strings.HasPrefix(e.Where, "--set ") { // the value itself is wrong
				out = append(out, fmt.Sprintf("%s:%d: %s: %s", s.File, max(line, 1), field, e.Msg))
				continue
			}
			out = append(out, fmt.Sprintf("%s:%d: %s: trial {%s}: %v", s.File, max(line, 1), field, t.Label(true), e))
		}
		return out
	}
	// An override the schema refuses: "--set path=value: path: message".
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "--set "); ok {
		path, _, _ := strings.Cut(rest, "=")
		line, field := lineOf(path)
		if _, after, ok := strings.Cut(rest, ": "+path+": "); ok {
			msg = after
		}
		return []string{fmt.Sprintf("%s:%d: %s: %s", s.File, max(line, 1), field, msg)}
	}
	return []string{fmt.Sprintf("%s:%d: recipe: trial {%s}: %v", s.File, max(s.recipeLine, 1), t.Label(true), err)}
}

// cost fills the trial's step, token and FLOP counts from the model's own accounting.
func (t *Trial) cost() error {
	r := t.Recipe
	c, err := r.Model.Count(r.Data.SeqLen)
	if err != nil {
		return err
	}
	t.FLOPsPerToken = c.TrainFLOPs()
	perStep := int64(r.Data.SeqLen) * int64(r.Data.BatchSize) * int64(max(r.Train.GradAccum, 1))
	if t.Steps, err = steps(r.Train.Budget, perStep, t.FLOPsPerToken); err != nil {
		return err
	}
	t.Tokens = int64(t.Steps) * perStep
	t.FLOPs = float64(t.Tokens) * t.FLOPsPerToken
	return nil
}

// diff lists the resolved fields of r that differ from base (name and description aside).
func diff(base, r *recipes.Recipe) []Change {
	a, b := flat(base), flat(r)
	var out []Change
	for _, k := range sortedKeys(b) {
		if k == "name" || k == "description" {
			continue
		}
		if a[k] != b[k] {
			out = append(out, Change{k, a[k], b[k]})
		}
	}
	for _, k := range sortedKeys(a) {
		if _, ok := b[k]; !ok && k != "name" && k != "description" {
			out = append(out, Change{k, a[k], ""})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// flat is a resolved recipe as dotted path → one-line YAML value.
func flat(r *recipes.Recipe) map[string]string {
	out := map[string]string{}
	b, err := r.Marshal()
	if err != nil {
		return out
	}
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
		return out
	}
	var walk func(n *yaml.Node, p string)
	walk = func(n *yaml.Node, p string) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], join(p, n.Content[i].Value))
			}
			return
		}
		out[p] = flow(n)
	}
	walk(doc.Content[0], "")
	return out
}

// steps is how many optimizer steps a budget allows, as the trainer counts them (train.Steps):
// token and FLOP budgets round down and must allow one step.
func steps(b recipes.Budget, perStep int64, flopsPerToken float64) (int, error) {
	tokens := b.Tokens
	switch {
	case b.Steps > 0:
		return b.Steps, nil
	case b.FLOPs > 0:
		if !(flopsPerToken > 0) {
			return 0, fmt.Errorf("a FLOP budget needs the model's FLOPs per token, have %g", flopsPerToken)
		}
		tokens = int64(b.FLOPs / flopsPerToken)
	}
	if n := tokens / perStep; n >= 1 {
		return int(n), nil
	}
	return 0, fmt.Errorf("budget of %d tokens is less than one step of %d tokens (seq_len × batch_size × grad_accum)", tokens, perStep)
}
