package data

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// roundTrips are strings every tokenizer must give back exactly.
var roundTrips = []string{
	"",
	"a",
	"hello, world",
	"héllo 世界 🙂\n\t\x00\xff",
	"\xff\xfe\x80 invalid utf-8 \xc3",
	"func main() {\n\tfmt.Println(\"hi\")\n}\n",
	"    four spaces, then\r\n\r\nCRLF",
	strings.Repeat("z", 1000),
}

func randomBytes(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return string(b)
}

// checkRoundTrip is the conformance test every Tokenizer passes.
func checkRoundTrip(t *testing.T, tok Tokenizer) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	cases := append([]string{}, roundTrips...)
	for range 50 {
		cases = append(cases, randomBytes(r, r.IntN(300)))
	}
	for _, s := range cases {
		ids := tok.Encode(s)
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("%s: Encode(%q) made id %d outside [0, %d)", tok.Name(), s, id, tok.VocabSize())
			}
		}
		if got := tok.Decode(ids); got != s {
			t.Fatalf("%s: Decode(Encode(%q)) = %q", tok.Name(), s, got)
		}
	}
}

func TestByteTokenizer(t *testing.T) {
	checkRoundTrip(t, ByteTokenizer{})
	tok := ByteTokenizer{}
	if got, want := tok.Encode("A\xff"), []int32{65, 255}; !reflect.DeepEqual(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got := tok.Decode([]int32{104, 256, -1, 105}); got != "hi" {
		t.Errorf("Decode skipping non-byte ids = %q, want \"hi\"", got)
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"x := y", []string{"x", " :=", " y"}},
		{"  foo", []string{" ", " foo"}},
		{"\n\tfoo()", []string{"\n\t", "foo", "()"}},
		{"a.b(c, d)\n", []string{"a", ".", "b", "(", "c", ",", " d", ")", "\n"}},
		{"x  ", []string{"x", "  "}},
		{"héllo wörld", []string{"héllo", " wörld"}},
		{strings.Repeat("a", 70), []string{strings.Repeat("a", 64), "aaaaaa"}},
	}
	for _, tt := range tests {
		var got []string
		splitWords(tt.in, func(w string) { got = append(got, w) })
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		s := randomBytes(r, r.IntN(200))
		var b strings.Builder
		splitWords([]byte(s), func(w []byte) {
			if len(w) == 0 || len(w) > maxWord {
				t.Fatalf("word of length %d", len(w))
			}
			b.Write(w)
		})
		if b.String() != s {
			t.Fatalf("words of %q concatenate to %q", s, b.String())
		}
	}
}

func TestTrainBPEHand(t *testing.T) {
	tests := []struct {
		name   string
		texts  Texts
		vocab  int
		merges [][2]int32
		encode string
		ids    []int32
	}{
		// One word. Pairs: aa 4 (overlapping, twice), ab 2, rest 1 → merge aa=256.
		// Then Z=aa: Za 2, ab 2; tie → smaller ids, (97,98)=257. Then (256,257) 2 → 258.
		// All remaining pairs occur once: stop.
		{"wikipedia", Texts{"aaabdaaabac"}, 1000, [][2]int32{{'a', 'a'}, {'a', 'b'}, {256, 257}},
			"aaabdaaabac", []int32{258, 'd', 258, 'a', 'c'}},
		// Words "ab", " ab" ×2, " cd": ab 3 → 256, then (' ', 256) 2 → 257.
		{"words", Texts{"ab ab ab", " cd"}, 1000, [][2]int32{{'a', 'b'}, {' ', 256}},
			"ab ab cd", []int32{256, 257, ' ', 'c', 'd'}},
		// The vocabulary limit stops training after one merge.
		{"limit", Texts{"aaabdaaabac"}, 257, [][2]int32{{'a', 'a'}},
			"aaab", []int32{256, 'a', 'b'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := TrainBPE(tt.texts, tt.vocab)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tok.Merges(), tt.merges) {
				t.Fatalf("merges = %v, want %v", tok.Merges(), tt.merges)
			}
			if got := tok.Encode(tt.encode); !reflect.DeepEqual(got, tt.ids) {
				t.Errorf("Encode(%q) = %v, want %v", tt.encode, got, tt.ids)
			}
			checkRoundTrip(t, tok)
		})
	}
}

// goText reads the non-test Go files of a few standard packages: real text, ~300 KB.
func goText(t testing.TB) Texts {
	t.Helper()
	root, err := goroot()
	if err != nil {
		t.Skip(err)
	}
	var texts Texts
	for _, pkg := range []string{"strings", "bufio", "sort"} {
		l, err := Files(filepath.Join(root, "src", pkg), ".go")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l.Paths {
			if strings.HasSuffix(p, "_test.go") || strings.Contains(p, "/") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(l.Root, p))
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, string(b))
		}
	}
	return texts
}

func TestTrainBPECompresses(t *testing.T) {
	texts := goText(t)
	tok, err := TrainBPE(texts, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 1024 {
		t.Fatalf("VocabSize = %d, want 1024", tok.VocabSize())
	}
	checkRoundTrip(t, tok)
	var nb, nt int
	for _, s := range texts {
		ids := tok.Encode(s)
		if tok.Decode(ids) != s {
			t.Fatal("round trip failed on training text")
		}
		nb += len(s)
		nt += len(ids)
	}
	t.Logf("%d bytes → %d tokens: %.2f bytes/token", nb, nt, float64(nb)/float64(nt))
	if float64(nb)/float64(nt) < 2.3 {
		t.Errorf("%.2f bytes/token, want ≥ 2.3 with 768 merges on Go source", float64(nb)/float64(nt))
	}
	again, err := TrainBPE(texts, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if again.Name() != tok.Name() {
		t.Errorf("training twice gave %s and %s", tok.Name(), again.Name())
	}
	// Concurrent encoding shares the word cache.
	done := make(chan []int32)
	for range 4 {
		go func() { done <- tok.Encode(texts[0]) }()
	}
	want := tok.Encode(texts[0])
	for range 4 {
		if got := <-done; !reflect.DeepEqual(got, want) {
			t.Fatal("concurrent Encode differs")
		}
	}
}

func TestBPESaveLoad(t *testing.T) {
	tok, err := TrainBPE(goText(t), 600)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bpe.json")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadBPE(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name() != tok.Name() || !reflect.DeepEqual(got.Merges(), tok.Merges()) || !reflect.DeepEqual(got.toks, tok.toks) {
		t.Fatalf("loaded %s, saved %s", got.Name(), tok.Name())
	}
	for _, s := range roundTrips {
		if !reflect.DeepEqual(got.Encode(s), tok.Encode(s)) {
			t.Errorf("loaded tokenizer encodes %q differently", s)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("Save left %d files, want 1", len(ents))
	}
}

func TestBPEErrors(t *testing.T) {
	if _, err := NewBPE([][2]int32{{97, 256}}); err == nil || !strings.Contains(err.Error(), "merge 0") {
		t.Errorf("forward reference: err = %v", err)
	}
	if _, err := NewBPE([][2]int32{{97, 98}, {97, 98}}); err == nil || !strings.Contains(err.Error(), "repeats") {
		t.Errorf("repeated merge: err = %v", err)
	}
	if _, err := TrainBPE(Texts{"x"}, 100); err == nil {
		t.Error("vocab below 256: no error")
	}
	dir := t.TempDir()
	for name, content := range map[string]string{
		"notjson": "{",
		"format":  `{"format":"other","merges":[]}`,
		"bad":     `{"format":"hybrid-bpe-1","merges":[[300,1]]}`,
		"name":    `{"format":"hybrid-bpe-1","name":"bpe999-00","merges":[]}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := LoadBPE(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("LoadBPE(%s): err = %v, want one naming the file", name, err)
		}
	}
}
