package recipes

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The shipped recipes. A recipe's name is its path here without ".yaml" (inter/1-5).
//
//go:embed *.yaml inter intra swa public bench mqar
var shipped embed.FS

// List returns the names of the shipped recipes, sorted.
func List() []string {
	var names []string
	fs.WalkDir(shipped, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			names = append(names, strings.TrimSuffix(p, ".yaml"))
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// Show returns a shipped recipe's YAML as written (before inheritance and defaults).
func Show(name string) (string, error) {
	b, err := shipped.ReadFile(name + ".yaml")
	if err != nil {
		return "", fmt.Errorf("recipes: no shipped recipe %q (see recipes.List)", name)
	}
	return string(b), nil
}

// pos is where a field was set: a file and line, or a --set flag (line 0).
type pos struct {
	file string
	line int
}

func (p pos) String() string {
	if p.line == 0 {
		return p.file
	}
	return fmt.Sprintf("%s:%d", p.file, p.line)
}

// Load reads a recipe by shipped name ("inter/1-5") or by file path (anything ending in .yaml
// or .yml), follows its base: chain, applies overrides ("model.n_layers=16", values in YAML
// syntax: "[0.9, 0.95]", an empty value clears a field), decodes it over Default and resolves
// it. Every error says where: file:line: field.path: message.
func Load(nameOrPath string, overrides []string) (*Recipe, error) {
	l := loader{origin: map[*yaml.Node]string{}}
	root, err := l.tree(nameOrPath, "", "", nil)
	if err != nil {
		return nil, err
	}
	for _, o := range overrides {
		if root, err = l.override(root, o); err != nil {
			return nil, err
		}
	}
	r := Default()
	r.src, r.pos = l.display(nameOrPath), map[string]pos{}
	d := decoder{l: &l, pos: r.pos}
	d.value(root, reflect.ValueOf(&r).Elem(), "")
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	if r.Name == "" {
		r.Name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(nameOrPath), ".yaml"), ".yml")
		if !isFile(nameOrPath) {
			r.Name = nameOrPath
		}
	}
	if err := r.Resolve(); err != nil {
		return nil, err
	}
	return &r, nil
}

func isFile(s string) bool { return strings.HasSuffix(s, ".yaml") || strings.HasSuffix(s, ".yml") }

type loader struct {
	origin map[*yaml.Node]string // the file each node came from
}

// display is how errors name a recipe source: shipped ones as recipes/<name>.yaml.
func (l *loader) display(id string) string {
	if isFile(id) {
		return id
	}
	return "recipes/" + id + ".yaml"
}

// tree reads one recipe and its bases into a merged node tree. from is the key of the recipe
// that named it in base: (relative paths are relative to that file) and at the place of that
// base: line; stack is the chain so far (for cycles).
func (l *loader) tree(id, from, at string, stack []string) (*yaml.Node, error) {
	var b []byte
	var err error
	key := id
	switch {
	case isFile(id) && strings.HasPrefix(from, "embed:"):
		key = "embed:" + path.Join(path.Dir(strings.TrimPrefix(from, "embed:")), id)
		b, err = shipped.ReadFile(strings.TrimPrefix(key, "embed:"))
	case isFile(id):
		if from != "" && !filepath.IsAbs(id) {
			id = filepath.Join(filepath.Dir(from), id)
		}
		key = filepath.Clean(id)
		b, err = os.ReadFile(key)
	default:
		key = "embed:" + id + ".yaml"
		b, err = shipped.ReadFile(id + ".yaml")
		if err != nil {
			err = fmt.Errorf("no shipped recipe %q (see `hybrid recipes`; a file path must end in .yaml)", id)
		}
	}
	file := strings.TrimPrefix(key, "embed:")
	if strings.HasPrefix(key, "embed:") {
		file = "recipes/" + file
	}
	for i, s := range stack {
		if s == key {
			chain := append(append([]string{}, stack[i:]...), key)
			for j := range chain {
				chain[j] = strings.TrimPrefix(chain[j], "embed:")
			}
			return nil, fmt.Errorf("%s: base: cycle %s", at, strings.Join(chain, " → "))
		}
	}
	if err != nil {
		if at != "" {
			return nil, fmt.Errorf("%s: base: %v", at, err)
		}
		return nil, fmt.Errorf("recipes: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1}
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: a recipe is a mapping of keys (name, model, data, train, eval)", file, root.Line)
	}
	l.mark(root, file)
	baseNode := lookup(root, "base")
	if baseNode == nil {
		return root, nil
	}
	if baseNode.Kind != yaml.ScalarNode || baseNode.Tag != "!!str" || baseNode.Value == "" {
		return nil, fmt.Errorf("%s:%d: base: want a recipe name or a .yaml path", file, baseNode.Line)
	}
	parent, err := l.tree(baseNode.Value, key, fmt.Sprintf("%s:%d", file, baseNode.Line), append(stack, key))
	if err != nil {
		return nil, err
	}
	// A recipe inherits what it trains, not its identity.
	parent = without(parent, "name", "description", "base")
	return l.merge(parent, root, ""), nil
}

// mark records the file of every node of a tree.
func (l *loader) mark(n *yaml.Node, file string) {
	l.origin[n] = file
	for _, c := range n.Content {
		l.mark(c, file)
	}
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func without(m *yaml.Node, keys ...string) *yaml.Node {
	c := *m
	c.Content = nil
	for i := 0; i+1 < len(m.Content); i += 2 {
		if !oneOf(m.Content[i].Value, keys...) {
			c.Content = append(c.Content, m.Content[i], m.Content[i+1])
		}
	}
	return &c
}

// layoutKeys are the two exclusive ways to give a layout: a child that uses one drops the
// other from its base, so a hybrid can extend a pattern recipe with a ratio and vice versa.
var layoutKeys = [2][]string{{"pattern"}, {"ratio", "placement", "indices", "offset", "place", "fill"}}

// merge lays child over base: mappings merge key by key, anything else is replaced. p is the
// dotted path of the two nodes.
func (l *loader) merge(base, child *yaml.Node, p string) *yaml.Node {
	if base == nil || base.Kind != yaml.MappingNode || child.Kind != yaml.MappingNode {
		return child
	}
	out := *child
	out.Content = nil
	l.origin[&out] = l.origin[child]
	seen := map[string]bool{}
	for i := 0; i+1 < len(child.Content); i += 2 {
		seen[child.Content[i].Value] = true
	}
	if p == "model.layout" {
		for g, keys := range layoutKeys {
			for _, k := range keys {
				if seen[k] {
					base = without(base, layoutKeys[1-g]...)
				}
			}
		}
	}
	for i := 0; i+1 < len(base.Content); i += 2 {
		k := base.Content[i].Value
		if c := lookup(child, k); c != nil {
			continue // placed below, in the child's order after the base's keys
		}
		out.Content = append(out.Content, base.Content[i], base.Content[i+1])
	}
	for i := 0; i+1 < len(child.Content); i += 2 {
		k, v := child.Content[i], child.Content[i+1]
		out.Content = append(out.Content, k, l.merge(lookup(base, k.Value), v, join(p, k.Value)))
	}
	return &out
}

// override applies one "a.b.c=value" to the tree, after checking the path against the schema.
func (l *loader) override(root *yaml.Node, o string) (*yaml.Node, error) {
	where := "--set " + o
	p, val, ok := strings.Cut(o, "=")
	if !ok || p == "" {
		return nil, fmt.Errorf("%s: want path=value, e.g. model.n_layers=16", where)
	}
	if err := checkPath(reflect.TypeOf(Recipe{}), p); err != nil {
		return nil, fmt.Errorf("%s: %s: %v", where, p, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(val), &doc); err != nil {
		return nil, fmt.Errorf("%s: %s: %v", where, p, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	if len(doc.Content) > 0 {
		v = doc.Content[0]
	}
	// Build {a: {b: {c: value}}} and merge it like a child recipe.
	keys := strings.Split(p, ".")
	for i := len(keys) - 1; i >= 0; i-- {
		k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: keys[i]}
		v = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{k, v}}
	}
	l.mark(v, where)
	return l.merge(root, v, ""), nil
}

// fieldName is the YAML key of a struct field ("" for none).
func fieldName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func fieldNames(t reflect.Type) []string {
	var s []string
	for i := 0; i < t.NumField(); i++ {
		if n := fieldName(t.Field(i)); n != "" {
			s = append(s, n)
		}
	}
	return s
}

func field(t reflect.Type, key string) (int, bool) {
	for i := 0; i < t.NumField(); i++ {
		if fieldName(t.Field(i)) == key {
			return i, true
		}
	}
	return 0, false
}

// checkPath says whether a dotted path names a field of the schema.
func checkPath(t reflect.Type, p string) error {
	done := ""
	for _, k := range strings.Split(p, ".") {
		if t.Kind() != reflect.Struct {
			return fmt.Errorf("%s is %s, not a section with fields", done, kindName(t))
		}
		i, ok := field(t, k)
		if !ok {
			return unknown(k, done, t)
		}
		t = t.Field(i).Type
		if done != "" {
			done += "."
		}
		done += k
	}
	return nil
}

func unknown(k, in string, t reflect.Type) error {
	if in == "" {
		in = "the recipe"
	}
	return fmt.Errorf("unknown field %q in %s (known: %s)", k, in, strings.Join(fieldNames(t), ", "))
}

// kindName says what a field wants, with its article: "an integer", "a list of numbers".
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(kindName(t.Elem()), "an "), "a ") + "s"
	case reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// decoder walks a node tree into a value, strictly, collecting every error.
type decoder struct {
	l    *loader
	pos  map[string]pos
	errs Errors
}

// at is where a node was written; nodes from a --set flag have no line.
func (d *decoder) at(n *yaml.Node) pos {
	p := pos{d.l.origin[n], n.Line}
	if strings.HasPrefix(p.file, "--set ") {
		p.line = 0
	}
	return p
}

func (d *decoder) fail(n *yaml.Node, p, format string, a ...any) {
	d.errs = append(d.errs, &Error{Where: d.at(n).String(), Path: p, Msg: fmt.Sprintf(format, a...)})
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, p string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if p != "" {
		d.pos[p] = d.at(n)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		if v.Kind() == reflect.Struct {
			d.fail(n, p, "want a mapping, got null")
			return
		}
		v.Set(reflect.Zero(v.Type())) // an empty value clears a field
		return
	}
	t := v.Type()
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, p, "want a mapping, got %s", describe(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			kp := join(p, k.Value)
			if seen[k.Value] {
				d.fail(k, kp, "set twice in one mapping")
				continue
			}
			seen[k.Value] = true
			j, ok := field(t, k.Value)
			if !ok {
				in := p
				d.fail(k, kp, "%v", unknown(k.Value, in, t))
				continue
			}
			d.value(val, v.Field(j), kp)
			// Errors about a field point at its key: a mapping value starts a line later.
			d.pos[kp] = d.at(k)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, p, "want %s, got %s", kindName(t), describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, s.Index(i), fmt.Sprintf("%s[%d]", p, i))
		}
		v.Set(s)
	default:
		d.scalar(n, v, p)
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, p string) {
	want := kindName(v.Type())
	if n.Kind != yaml.ScalarNode {
		d.fail(n, p, "want %s, got %s", want, describe(n))
		return
	}
	bad := func() { d.fail(n, p, "want %s, got %s", want, describe(n)) }
	switch v.Kind() {
	case reflect.String:
		if n.Tag != "!!str" {
			bad()
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			bad()
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		var err error
		switch n.Tag {
		case "!!int":
			i, err = strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		case "!!float": // 2e9 tokens: a whole number written as a float is fine
			var f float64
			f, err = strconv.ParseFloat(n.Value, 64)
			if err == nil && (f != math.Trunc(f) || math.Abs(f) > 1<<62) {
				err = errors.New("not whole")
			}
			i = int64(f)
		default:
			bad()
			return
		}
		if err != nil || v.OverflowInt(i) {
			bad()
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.Tag != "!!float" && n.Tag != "!!int" {
			bad()
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil {
			bad()
			return
		}
		v.SetFloat(f)
	default:
		panic("recipes: unsupported field type " + v.Type().String())
	}
}
