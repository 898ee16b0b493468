package figure

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"flag"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/results"
)

// go test ./figure -figdir DIR keeps one PNG of each kind there for looking at.
var figdir = flag.String("figdir", "", "write the rendered test figures here")

// law is L = E + A/N^α + B/D^β per family (made-up, Chinchilla-like at small scale).
type law struct{ e, a, b, al, be float64 }

var laws = map[string]law{
	"transformer": {1.6, 300, 900, 0.34, 0.36},
	"mamba":       {1.55, 260, 1000, 0.33, 0.37},
	"inter":       {1.5, 280, 950, 0.34, 0.37},
}

// synthetic builds an isoFLOP sweep per family (3 budgets × 5 sizes, C = 6ND) with
// long-context, needle and efficiency sections and a resolved config.
func synthetic() []*results.Results {
	var rs []*results.Results
	i := 0
	for _, fam := range []string{"transformer", "mamba", "inter"} {
		l := laws[fam]
		for _, c := range []float64{1e15, 1e16, 1e17} {
			nopt := 0.08 * math.Sqrt(c)
			for _, f := range []float64{0.2, 0.45, 1, 2.2, 5} {
				n := nopt * f
				d := c / (6 * n)
				loss := l.e + l.a*math.Pow(n, -l.al) + l.b*math.Pow(d, -l.be)
				i++
				lr := []float64{1e-4, 3e-4, 1e-3, 3e-3, 1e-2}[i%5]
				r := &results.Results{
					Schema: 1, Recipe: fmt.Sprintf("%s-%.0e", fam, n), ConfigHash: fmt.Sprintf("h%03d", i), Family: fam, Tokenizer: "byte",
					Config: []byte(fmt.Sprintf(`{"model":{"d_model":%d,"layout":{"ratio":%d}},"train":{"lr":%g}}`, 64*(1+i%4), 1+i%3, lr)),
					Cost:   results.Cost{Params: int64(n), NonEmbeddingParams: int64(0.9 * n), Tokens: int64(d), FLOPs: 6 * float64(int64(n)) * float64(int64(d)), PeakBytes: int64(n * 16)},
					LM:     &results.LM{NLL: loss, BitsPerByte: loss / math.Ln2},
					Train:  &results.Train{FinalLoss: loss + 0.01*(1+math.Log(lr/1e-3)*math.Log(lr/1e-3)), SeqLen: 512},
				}
				rs = append(rs, r)
			}
		}
	}
	// Evaluation sections on one run per family.
	for k, fam := range []string{"transformer", "mamba", "inter"} {
		r := rs[k*15+12]
		tl := 512
		var bs []results.Bucket
		for s := 0; s < 3*tl; s += 128 {
			x := float64(s+64) / float64(tl)
			nll := 2.4 - 0.3*math.Log1p(x)
			if x > 1 {
				nll += map[string]float64{"transformer": 0.8, "mamba": 0.05, "inter": 0.15}[fam] * (x - 1)
			}
			bs = append(bs, results.Bucket{Start: s, End: s + 128, NLL: nll, Count: 1000})
		}
		r.LongContext = &results.LongContext{TrainLen: tl, Curves: []results.PositionLoss{{Length: 3 * tl, NLL: 2.3, Buckets: bs}}}
		nd := &results.Needle{Lengths: []int{128, 256, 512, 768, 1024}, Depths: []float64{0, 0.25, 0.5, 0.75, 1}, Trials: 20}
		for li, L := range nd.Lengths {
			row := make([]float64, len(nd.Depths))
			for di := range row {
				acc := 1.0
				if L > tl {
					acc = map[string]float64{"transformer": 0.1, "mamba": 0.4, "inter": 0.8}[fam] + 0.05*float64(di)
				}
				row[di] = math.Min(1, acc-0.02*float64(li))
			}
			nd.Accuracy = append(nd.Accuracy, row)
		}
		r.Needle = nd
		eff := &results.Efficiency{TrainTokensPerSec: map[string]float64{"transformer": 9000, "mamba": 12000, "inter": 11000}[fam], PeakBytes: int64(1+k) << 28}
		for _, ctx := range []int{512, 1024, 2048, 4096, 8192} {
			kv := map[string]float64{"transformer": 1, "mamba": 0, "inter": 0.2}[fam]
			tps := 1e5 / (1 + kv*float64(ctx)/512)
			cache := int64(1<<20 + kv*float64(ctx)*4096)
			eff.Decode = append(eff.Decode, results.Decode{Context: ctx, Batch: 4, TokensPerSec: tps, CacheBytes: cache, AnalyticBytes: cache, LatencyMs: 1000 / tps})
		}
		r.Efficiency = eff
	}
	return rs
}

func withSection(rs []*results.Results, has func(*results.Results) bool) []*results.Results {
	var out []*results.Results
	for _, r := range rs {
		if has(r) {
			out = append(out, r)
		}
	}
	return out
}

func inputsFor(kind string, rs []*results.Results) []*results.Results {
	switch kind {
	case "position":
		return withSection(rs, func(r *results.Results) bool { return r.LongContext != nil })
	case "needle":
		return withSection(rs, func(r *results.Results) bool { return r.Needle != nil })[:2]
	case "decode", "throughput":
		return withSection(rs, func(r *results.Results) bool { return r.Efficiency != nil })
	}
	return rs
}

func optsFor(kind string) Options {
	if kind == "summary" {
		return Options{Metric: "train.loss", X: "train.lr", Group: "model.layout.ratio"}
	}
	return Options{}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestEveryKindRendersEveryFormat(t *testing.T) {
	rs := synthetic()
	dir := t.TempDir()
	for _, kind := range KindNames {
		t.Run(kind, func(t *testing.T) {
			fig, err := Kinds[kind](inputsFor(kind, rs), optsFor(kind))
			if err != nil {
				t.Fatal(err)
			}
			if len(fig.Rows) == 0 {
				t.Fatal("no data rows")
			}
			for _, ext := range []string{".png", ".svg", ".pdf"} {
				p := filepath.Join(dir, kind+ext)
				if err := fig.Save(p); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				switch ext {
				case ".png":
					img, err := png.Decode(bytes.NewReader(b))
					if err != nil {
						t.Fatalf("PNG does not decode: %v", err)
					}
					if img.Bounds().Dx() < 100 {
						t.Errorf("PNG is %v", img.Bounds())
					}
				case ".svg":
					d := xml.NewDecoder(bytes.NewReader(b))
					for {
						if _, err := d.Token(); err == io.EOF {
							break
						} else if err != nil {
							t.Fatalf("SVG does not parse as XML: %v", err)
						}
					}
				case ".pdf":
					if !bytes.HasPrefix(b, []byte("%PDF")) {
						t.Errorf("PDF starts with %q", b[:8])
					}
				}
			}
			rows := readCSV(t, CSVPath(filepath.Join(dir, kind+".png")))
			if len(rows) != len(fig.Rows)+1 || strings.Join(rows[0], ",") != strings.Join(fig.Header, ",") {
				t.Errorf("CSV has %d rows (want %d) and header %v", len(rows), len(fig.Rows)+1, rows[0])
			}
			if *figdir != "" {
				if err := fig.Save(filepath.Join(*figdir, kind+".png")); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// The CSV beside a figure holds exactly the inputs: every run's FLOPs and metric for
// loss-flops, every cell for needle.
func TestCSVMatchesInputs(t *testing.T) {
	rs := synthetic()
	dir := t.TempDir()
	fig, err := LossFLOPs(rs, Options{Metric: "lm.bpb"})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "lf.svg")
	if err := fig.Save(p); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{}
	for _, r := range rs {
		want[r.Recipe+"@"+r.ConfigHash] = [2]float64{r.Cost.FLOPs, r.LM.BitsPerByte}
	}
	got := 0
	for _, row := range readCSV(t, CSVPath(p))[1:] {
		if row[0] == "frontier" {
			continue
		}
		w, ok := want[row[1]]
		if !ok {
			t.Fatalf("CSV row for unknown run %q", row[1])
		}
		x, _ := strconv.ParseFloat(row[2], 64)
		y, _ := strconv.ParseFloat(row[3], 64)
		if math.Abs(x-w[0]) > 1e-9*w[0] || math.Abs(y-w[1]) > 1e-9*w[1] {
			t.Errorf("%s: CSV (%g, %g), input (%g, %g)", row[1], x, y, w[0], w[1])
		}
		got++
	}
	if got != len(rs) {
		t.Errorf("CSV has %d runs, want %d", got, len(rs))
	}

	nd := inputsFor("needle", rs)
	fig, err = Needle(nd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p = filepath.Join(dir, "needle.png")
	if err := fig.Save(p); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, CSVPath(p))[1:]
	k := 0
	for _, r := range nd {
		for i, L := range r.Needle.Lengths {
			for j, dp := range r.Needle.Depths {
				row := rows[k]
				k++
				a, _ := strconv.ParseFloat(row[3], 64)
				if row[1] != strconv.Itoa(L) || row[2] != strconv.FormatFloat(dp, 'g', 10, 64) || math.Abs(a-r.Needle.Accuracy[i][j]) > 1e-12 {
					t.Errorf("needle row %v, want length %d depth %g accuracy %g", row, L, dp, r.Needle.Accuracy[i][j])
				}
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	rs := synthetic()
	mixed := synthetic()
	mixed[3].Tokenizer = "bpe:8192"
	nonpos := synthetic()
	nonpos[2].Cost.FLOPs = 0
	negDecode := inputsFor("decode", synthetic())
	negDecode[1].Efficiency.Decode[2].CacheBytes = 0
	cases := []struct {
		name string
		f    func() (*Figure, error)
		want []string
	}{
		{"empty", func() (*Figure, error) { return LossFLOPs(nil, Options{}) }, []string{"no runs"}},
		{"empty needle", func() (*Figure, error) { return Needle(nil, Options{}) }, []string{"no runs"}},
		{"mixed tokenizers bpb", func() (*Figure, error) { return LossFLOPs(mixed, Options{Metric: "lm.bpb"}) }, []string{"lm.bpb", "2 tokenizers", "bpe:8192", "byte"}},
		{"zero FLOPs on a log axis", func() (*Figure, error) { return LossFLOPs(nonpos, Options{}) }, []string{"cost.flops = 0", "log axis"}},
		{"zero cache on a log axis", func() (*Figure, error) { return Decode(negDecode, Options{}) }, []string{"cache_bytes = 0", "log axis"}},
		{"no long context", func() (*Figure, error) { return Position(rs[:1], Options{}) }, []string{"no long-context"}},
		{"summary without x", func() (*Figure, error) { return Summary(rs, Options{}) }, []string{"--x"}},
		{"summary bad path", func() (*Figure, error) { return Summary(rs, Options{X: "train.nope"}) }, []string{`no "nope"`, "lr"}},
		{"isoflop one size", func() (*Figure, error) { return IsoFLOP(rs[:1], Options{}) }, []string{"distinct model size"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.f()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	fig, _ := Throughput(inputsFor("throughput", rs), Options{})
	if err := fig.Save(filepath.Join(t.TempDir(), "x.jpg")); err == nil || !strings.Contains(err.Error(), ".svg") {
		t.Errorf("Save .jpg: %v", err)
	}
}
