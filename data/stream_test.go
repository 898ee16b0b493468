package data

import (
	"errors"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func streamIDs(s *Stream) []int32 {
	ids := make([]int32, s.Len())
	s.Copy(ids, 0)
	return ids
}

func TestPack(t *testing.T) {
	texts := Texts{"ab", "", "cde", "f"}
	tests := []struct {
		sep   int32
		want  string
		vocab int
	}{
		{NoSep, "abcdef", 256},
		{'\n', "ab\n\ncde\nf\n", 256},
		{256, "ab|" + "|" + "cde|f|", 257}, // | is the dedicated id 256
	}
	for _, tt := range tests {
		s, err := Pack(texts, ByteTokenizer{}, tt.sep)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, id := range streamIDs(s) {
			if id == 256 {
				b.WriteByte('|')
			} else {
				b.WriteByte(byte(id))
			}
		}
		if b.String() != tt.want || s.Vocab() != tt.vocab {
			t.Errorf("sep %d: %q vocab %d, want %q vocab %d", tt.sep, b.String(), s.Vocab(), tt.want, tt.vocab)
		}
	}
	if _, err := Pack(texts, ByteTokenizer{}, -2); err == nil {
		t.Error("sep -2: no error")
	}
}

func TestPackOrderAndErrors(t *testing.T) {
	// Many documents through the parallel workers come out in order, BPE or bytes.
	var texts Texts
	var all strings.Builder
	for i := range 500 {
		s := strings.Repeat(string(rune('a'+i%26)), i%37) + " func x() {}\n"
		texts = append(texts, s)
		all.WriteString(s)
	}
	bpe, err := TrainBPE(texts, 400)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []Tokenizer{ByteTokenizer{}, bpe} {
		s, err := Pack(texts, tok, NoSep)
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Decode(streamIDs(s)); got != all.String() {
			t.Errorf("%s: packed stream decodes differently", tok.Name())
		}
	}

	// An iteration error is returned, and nothing hangs.
	boom := errors.New("boom")
	if _, err := Pack(failing{texts, 100, boom}, ByteTokenizer{}, NoSep); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	// A tokenizer making an id out of range is an error naming the document.
	if _, err := Pack(texts, liar{}, NoSep); err == nil || !strings.Contains(err.Error(), "liar") {
		t.Errorf("out-of-range id: err = %v", err)
	}
}

// failing yields n documents of Texts, then err.
type failing struct {
	Texts
	n   int
	err error
}

func (f failing) Docs() iter.Seq2[Doc, error] {
	return func(yield func(Doc, error) bool) {
		i := 0
		for d := range f.Texts.Docs() {
			if i == f.n {
				yield(Doc{}, f.err)
				return
			}
			if !yield(d, nil) {
				return
			}
			i++
		}
	}
}

// liar makes ids beyond its vocabulary.
type liar struct{ ByteTokenizer }

func (liar) Encode(s string) []int32 { return []int32{300} }
func (liar) Name() string            { return "liar" }

func TestPackCached(t *testing.T) {
	root := writeTree(t, map[string]string{"a.txt": "hello", "b/c.txt": " world"})
	l, err := Files(root, ".txt")
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	first, err := PackCached(cache, l, ByteTokenizer{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(cache)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "byte-") {
		t.Fatalf("cache holds %v", ents)
	}
	// Corrupt the cached tokens: a hit must read the file, not re-pack.
	p := filepath.Join(cache, ents[0].Name())
	b, _ := os.ReadFile(p)
	b[tokHeader] = 'J'
	os.WriteFile(p, b, 0o644)
	second, err := PackCached(cache, l, ByteTokenizer{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(ByteTokenizer{}.Decode(streamIDs(second))); got != "Jello\x00 world\x00" {
		t.Errorf("cached stream %q", got)
	}
	_ = first
	// Another separator is another cache entry.
	if _, err := PackCached(cache, l, ByteTokenizer{}, NoSep); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(cache); len(ents) != 2 {
		t.Errorf("cache holds %d files, want 2", len(ents))
	}
}

func TestUnigram(t *testing.T) {
	tests := []struct {
		ids  []int32
		want float64
	}{
		{nil, 0},
		{[]int32{5, 5, 5}, 0},
		{[]int32{0, 1}, 1},
		{[]int32{0, 1, 2, 3, 0, 1, 2, 3}, 2},
		{[]int32{7, 7, 7, 9}, 0.8112781244591328},
	}
	for _, tt := range tests {
		var u Unigram
		u.Add(tt.ids)
		if got := u.Entropy(); got < tt.want-1e-12 || got > tt.want+1e-12 {
			t.Errorf("Entropy(%v) = %v, want %v", tt.ids, got, tt.want)
		}
	}
	var u Unigram
	s, _ := NewStream([]int32{0, 1, 0, 1}, 2)
	u.AddStream(s)
	if u.N() != 4 || u.BitsPerByte(8) != 0.5 {
		t.Errorf("N %d, BitsPerByte %v, want 4, 0.5", u.N(), u.BitsPerByte(8))
	}
}

func TestStreamSlice(t *testing.T) {
	s, err := NewStream([]int32{1, 2, 3, 4, 5}, 300)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Slice(1, 4)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Len() != 3 || sub.At(0) != 2 || sub.At(2) != 4 || sub.Vocab() != 300 {
		t.Fatalf("slice = len %d vocab %d", sub.Len(), sub.Vocab())
	}
	if _, err := s.Slice(3, 9); err == nil {
		t.Fatal("out-of-range slice accepted")
	}
}
