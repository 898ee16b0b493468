package recipes

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShipped(t *testing.T) {
	want := map[string]string{
		"mamba2":            "MMMMMMMMMMMMM",
		"mamba1":            "MMMMMMMMMMMMM",
		"transformer":       "AAAAAAAAAAAAA",
		"inter/1-1":         "MAMAMAMAMAMAM",
		"inter/1-3":         "MMMAMMAMMAMMM",
		"inter/1-5":         "MMMMAMMMAMMMM", // the paper: attention at {4, 8}
		"inter/1-12":        "MMMMMMAMMMMMM",
		"inter/1-12-front":  "AMMMMMMMMMMMM",
		"intra/1-5":         "MMMMMIMMMIMMM", // the paper: intra blocks at {5, 9}
		"swa/1-5":           "SSSSASSSASSSS",
		"public/jamba":      "MMMMAMMM",
		"public/samba":      "MSMSMSMS",
		"public/hymba":      "IWWWIWWI",
		"public/falcon-h1":  "IIIIIIII",
		"public/nemotron-h": "M-M-MA-M-MA-M-",
		"quickstart":        "MMMAMM",
		"bench/cpu-inter":   "MMAMMMAM",
		"mqar/hybrid":       "MA",
		"mqar/mamba2":       "MM",
	}
	names := List()
	if len(names) != len(want) {
		t.Errorf("List() = %v, want the %d recipes of the table", names, len(want))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r, err := Load(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Name != name {
				t.Errorf("name %q, want %q", r.Name, name)
			}
			if r.Pattern != want[name] {
				t.Errorf("pattern %s, want %s", r.Pattern, want[name])
			}
			n, err := r.Model.Count(r.Data.SeqLen)
			if err != nil {
				t.Fatal(err)
			}
			if r.Data.Corpus.Kind != "mqar" && (r.Model.DModel < 128 || r.Model.DModel > 256 || r.Data.SeqLen < 256 || r.Data.SeqLen > 512) {
				t.Errorf("d_model %d, seq_len %d: not a 2-core size", r.Model.DModel, r.Data.SeqLen)
			}
			if _, err := Show(name); err != nil {
				t.Error(err)
			}
			t.Logf("%-18s %-15s %9d params, %.1f MFLOP/token train", name, r.Pattern, n.Params(), n.TrainFLOPs()/1e6)
		})
	}
	// bench/cpu-inter is arch's hand-counted config: 7,772,304 parameters.
	r, _ := Load("bench/cpu-inter", nil)
	if n, _ := r.Model.Count(512); n.Params() != 7772304 {
		t.Errorf("bench/cpu-inter: %d params, want 7772304", n.Params())
	}
}

// TestBad loads each testdata/bad file with the overrides of its "# set:" lines and wants the
// error of its "# want:" line.
func TestBad(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) < 10 {
		t.Fatalf("only %d bad cases", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			var want string
			var sets []string
			for sc := bufio.NewScanner(fh); sc.Scan(); {
				if s, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
					want = s
				}
				if s, ok := strings.CutPrefix(sc.Text(), "# set: "); ok {
					sets = append(sets, s)
				}
			}
			_, err = Load(f, sets)
			if err == nil {
				t.Fatalf("no error, want %s", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got\n\t%v\nwant\n\t%s", err, want)
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	r, err := Load("inter/1-5", []string{
		"model.n_layers=16",
		"model.d_model=256",
		"model.ffn.hidden=768",
		"train.optimizer.betas=[0.8, 0.9]",
		"train.budget.tokens=2e6", // a whole float is fine for an integer
		"data.corpus={kind: jsonl, path: x.jsonl, field: text}",
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Pattern != "MMMMAMMMAMMMAMMM" || r.Model.DModel != 256 || r.Train.Budget.Tokens != 2000000 ||
		r.Train.Optimizer.Betas[0] != 0.8 || r.Data.Corpus.Field != "text" {
		t.Errorf("overrides not applied: %s %+v %+v %+v", r.Pattern, r.Model, r.Train, r.Data)
	}
	// A pattern replaces the ratio layout of the base and vice versa.
	r, err = Load("inter/1-5", []string{"model.layout.pattern=AMMMMMMMMMMMM"})
	if err != nil || r.Pattern != "AMMMMMMMMMMMM" {
		t.Errorf("pattern over ratio: %v %v", r, err)
	}
	r, err = Load("transformer", []string{"model.layout.ratio=1:3"})
	if err != nil || r.Pattern != "MMMAMMAMMAMMM" {
		t.Errorf("ratio over pattern: %v %v", r, err)
	}
	// An empty value clears a field; the budget then has nothing set.
	_, err = Load("mamba2", []string{"train.budget.tokens="})
	if err == nil || !strings.Contains(err.Error(), "train.budget: set exactly one") {
		t.Errorf("cleared budget: %v", err)
	}
	_, err = Load("mamba2", []string{"model.d_model"})
	if err == nil || !strings.Contains(err.Error(), "want path=value") {
		t.Errorf("no '=': %v", err)
	}
	// Validation errors from an override name the flag.
	_, err = Load("transformer", []string{"model.attention.kv_heads=3"})
	if want := "--set model.attention.kv_heads=3: model.attention.kv_heads: 3 does not divide"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestHash(t *testing.T) {
	load := func(name string, sets ...string) *Recipe {
		t.Helper()
		r, err := Load(name, sets)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	h := load("inter/1-5").Hash()
	if len(h) != 64 || load("inter/1-5").Hash() != h {
		t.Errorf("hash %q is not stable", h)
	}
	for _, set := range []string{"train.seed=2", "model.layout.placement=front", "data.batch_size=4", "train.optimizer.lr=1e-3"} {
		if load("inter/1-5", set).Hash() == h {
			t.Errorf("%s: hash unchanged", set)
		}
	}
	// Identity and layout spelling do not change what is trained.
	if load("inter/1-5", "name=other", "description=x").Hash() != h {
		t.Error("name changes the hash")
	}
	if load("mamba2", "model.layout.pattern=MMMMAMMMAMMMM").Hash() != h {
		t.Error("pattern and ratio spellings of one layout hash differently")
	}
	// Marshal round-trips.
	for _, name := range List() {
		r := load(name)
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "r.yaml")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if r2 := load(f); r2.Hash() != r.Hash() || r2.Name != r.Name {
			t.Errorf("%s: marshalled recipe loads as %s, hash %s, want %s", name, r2.Name, r2.Hash(), r.Hash())
		}
	}
}

func TestLoadFileWithBase(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("base: inter/1-12\nmodel:\n  d_model: 256\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("base: a.yaml\nmodel:\n  layout:\n    placement: front\n"), 0o644)
	r, err := Load(filepath.Join(dir, "b.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "b" || r.Base != "a.yaml" || r.Model.DModel != 256 || r.Pattern != "AMMMMMMMMMMMM" {
		t.Errorf("got %s base %s d %d %s", r.Name, r.Base, r.Model.DModel, r.Pattern)
	}
	if _, err := Load("nope", nil); err == nil {
		t.Error("unknown name: no error")
	}
	if _, err := Show("nope"); err == nil {
		t.Error("Show(unknown): no error")
	}
}

func ExampleLoad() {
	r, err := Load("inter/1-5", []string{"model.n_layers=7"})
	if err != nil {
		fmt.Println(err)
		return
	}
	n, _ := r.Model.Count(r.Data.SeqLen)
	fmt.Println(r.Name, r.Pattern, n.Params())

	_, err = Load("inter/1-5", []string{"model.n_layers=4"})
	fmt.Println(err)
	// Output:
	// inter/1-5 MMMAMMM 1772432
	// recipes/inter/1-5.yaml:6: model.layout.ratio: "1:5" needs at least 6 layers, have 4
}
