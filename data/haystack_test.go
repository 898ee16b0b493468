package data

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// prose is held-out text with sentence ends every few words.
func prose(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "Sentence %d says little of note. It ends here! Does it? ", i)
	}
	return b.String()
}

func TestNeedle(t *testing.T) {
	text := prose(20000)
	for _, tok := range []Tokenizer{ByteTokenizer{}, trainedBPE(t, text)} {
		s, err := NewStream(tok.Encode(text), tok.VocabSize())
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewHaystack(tok, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, length := range []int{200, 1000, 3000} {
			for _, depth := range []float64{0, 0.25, 0.5, 1} {
				p, err := h.Needle(length, depth, 7)
				if err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("%s/L=%d/depth=%g", tok.Name(), length, depth)
				if len(p.Ids) != length {
					t.Fatalf("%s: prompt has %d tokens", name, len(p.Ids))
				}
				txt := tok.Decode(p.Ids)
				value := strings.TrimPrefix(p.Answer, " ")
				needle := fmt.Sprintf(" One of the special magic numbers for %s is: %s.", p.Key, value)
				i := strings.Index(txt, needle)
				if i < 0 || strings.Count(txt, value) != 1 {
					t.Fatalf("%s: needle %q not found once in the prompt", name, needle)
				}
				if !strings.HasSuffix(txt, fmt.Sprintf("One of the special magic numbers for %s is:", p.Key)) {
					t.Fatalf("%s: prompt ends %q", name, txt[len(txt)-60:])
				}
				if i > 0 && !strings.ContainsAny(txt[i-1:i], ".!?\n") {
					t.Fatalf("%s: needle follows %q, not a sentence end", name, txt[max(i-10, 0):i])
				}
				if p.Depth > depth+1e-9 || (depth-p.Depth)*float64(p.Hay) > 40 { // moved back at most one sentence
					t.Fatalf("%s: needle at depth %.3f", name, p.Depth)
				}
				if got := tok.Decode(p.AnswerIds); got != p.Answer || !slices.Equal(p.Ids[p.NeedleAt:p.NeedleAt+3], tok.Encode(needle)[:3]) {
					t.Fatalf("%s: answer ids decode to %q, needle position %d", name, got, p.NeedleAt)
				}
			}
		}
		a, _ := h.Needle(500, 0.5, 1)
		b, _ := h.Needle(500, 0.5, 1)
		c, _ := h.Needle(500, 0.5, 2)
		if !slices.Equal(a.Ids, b.Ids) || a.Answer != b.Answer {
			t.Fatal("same seed, different prompts")
		}
		if slices.Equal(a.Ids, c.Ids) || a.Answer == c.Answer {
			t.Fatal("different seeds, same prompt")
		}
	}
}

func trainedBPE(t *testing.T, text string) *BPE {
	t.Helper()
	b, err := TrainBPE(Texts{text}, 300)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPasskey(t *testing.T) {
	pk, err := NewPasskey(ByteTokenizer{}, "")
	if err != nil {
		t.Fatal(err)
	}
	depths := 0.0
	for seed := range uint64(50) {
		p, err := pk.Prompt(1000, seed)
		if err != nil {
			t.Fatal(err)
		}
		txt := string(ByteTokenizer{}.Decode(p.Ids))
		k := strings.TrimPrefix(p.Answer, " ")
		if len(p.Ids) != 1000 || len(k) != 5 || !strings.HasSuffix(txt, "What is the pass key? The pass key is") {
			t.Fatalf("seed %d: %d tokens, key %q, ending %q", seed, len(p.Ids), k, txt[len(txt)-40:])
		}
		needle := fmt.Sprintf(" The pass key is %s. Remember it. %s is the pass key.", k, k)
		if i := strings.Index(txt, needle); i < 0 || i != p.NeedleAt || (i > 0 && txt[i-1] != '.') {
			t.Fatalf("seed %d: needle at %d (NeedleAt %d)", seed, i, p.NeedleAt)
		}
		if !strings.HasPrefix(txt, "The grass is green.") && p.NeedleAt != 0 {
			t.Fatalf("seed %d: filler does not start the prompt", seed)
		}
		depths += p.Depth
	}
	if m := depths / 50; m < 0.3 || m > 0.7 {
		t.Fatalf("mean depth %.2f, want about 0.5 (uniform)", m)
	}
}

func TestHaystackBadInput(t *testing.T) {
	s, _ := NewStream(ByteTokenizer{}.Encode(prose(1000)), 256)
	h, _ := NewHaystack(ByteTokenizer{}, s)
	for _, c := range []struct {
		length int
		depth  float64
		want   string
	}{
		{50, 0.5, "no room"},
		{5000, 0.5, "needs"},
		{500, 1.5, "depth"},
		{500, -0.1, "depth"},
	} {
		if _, err := h.Needle(c.length, c.depth, 1); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Needle(%d, %g): error %v, want one mentioning %q", c.length, c.depth, err, c.want)
		}
	}
	pk, _ := NewPasskey(ByteTokenizer{}, "")
	if _, err := pk.Prompt(40, 1); err == nil {
		t.Error("passkey prompt shorter than its needle accepted")
	}
	if _, err := NewHaystack(ByteTokenizer{}, nil); err == nil {
		t.Error("nil haystack accepted")
	}
}
