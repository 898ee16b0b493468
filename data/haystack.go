package data

// Retrieval prompts for long-context evaluation: needle in a haystack (NIAH) over held-out
// corpus text, and pass-key retrieval over repeated filler. Both build a prompt of exactly the
// requested number of tokens that ends where the answer starts; a model passes a trial when its
// greedy continuation begins with Prompt.Answer.
//
//	NIAH:    hay[:at] + " One of the special magic numbers for {key} is: {value}." + hay[at:]
//	         + "\nWhat is the special magic number for {key} mentioned in the provided text?"
//	         + " One of the special magic numbers for {key} is:"          → answer " {value}"
//	passkey: filler… + " The pass key is {k}. Remember it. {k} is the pass key." + filler…
//	         + "\nWhat is the pass key? The pass key is"                  → answer " {k}"
//
// The needle goes at a depth (a fraction of the haystack), moved back to the nearest sentence
// boundary at or before it: just after a token whose text ends in '.', '!', '?' or a newline.
// The NIAH answer prefix repeats the needle's own words (as in RULER's answer prefixes), so a
// model that copies from its context scores perfectly; the key is a random pair of words, the
// value a random 7-digit number, the pass key a random 5-digit number.

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Prompt is one retrieval trial.
type Prompt struct {
	Ids       []int32 // the prompt, exactly the requested length
	Answer    string  // the continuation that counts as correct (" 4817263")
	AnswerIds []int32 // Answer tokenised
	Key       string  // the NIAH key ("" for pass keys)
	NeedleAt  int     // token index where the needle starts
	Hay       int     // haystack tokens: the prompt less the needle and the question
	Depth     float64 // NeedleAt as a fraction of Hay
}

// PasskeyFiller is the standard pass-key filler (Landmark Attention, LongLoRA).
const PasskeyFiller = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "

// boundaries marks the ids whose text ends a sentence.
func boundaries(tok Tokenizer) []bool {
	b := make([]bool, tok.VocabSize())
	for id := range b {
		s := tok.Decode([]int32{int32(id)})
		if s == "" {
			continue
		}
		switch s[len(s)-1] {
		case '.', '!', '?', '\n':
			b[id] = true
		}
	}
	return b
}

// insert puts needle into hay at the sentence boundary at or before depth·len(hay) and appends
// question; it returns the prompt and where the needle starts.
func insert(hay, needle, question []int32, depth float64, ends []bool) ([]int32, int) {
	at := int(depth*float64(len(hay)) + 0.5)
	at = min(max(at, 0), len(hay))
	for at > 0 {
		id := hay[at-1]
		if id >= 0 && int(id) < len(ends) && ends[id] {
			break
		}
		at--
	}
	ids := make([]int32, 0, len(hay)+len(needle)+len(question))
	ids = append(ids, hay[:at]...)
	ids = append(ids, needle...)
	ids = append(ids, hay[at:]...)
	ids = append(ids, question...)
	return ids, at
}

// Haystack builds NIAH prompts from held-out text.
type Haystack struct {
	tok  Tokenizer
	hay  *Stream
	ends []bool
}

// NewHaystack returns NIAH prompts over hay, held-out text in tok's ids (data.Pack of a
// validation split).
func NewHaystack(tok Tokenizer, hay *Stream) (*Haystack, error) {
	if tok == nil || hay == nil || hay.Len() == 0 {
		return nil, fmt.Errorf("data.NewHaystack: need a tokenizer and a non-empty stream")
	}
	return &Haystack{tok: tok, hay: hay, ends: boundaries(tok)}, nil
}

// Tokens is the length of the haystack text in tokens: the longest haystack it can serve.
func (h *Haystack) Tokens() int { return h.hay.Len() }

var keyWords = strings.Fields(`amber brisk cobalt dapper eager fabled gentle hollow ivory jolly keen lunar
	mellow nimble olive placid quiet rustic silver tender umber velvet witty young zesty
	anchor beacon canyon delta ember falcon glacier harbor island jungle kettle lantern meadow
	nectar orchard pebble quartz river saddle timber valley willow yarrow zephyr`)

// Needle returns the NIAH prompt of length tokens with the needle at depth ∈ [0, 1]; seed
// fixes the key, the value and the stretch of text used.
func (h *Haystack) Needle(length int, depth float64, seed uint64) (*Prompt, error) {
	if depth < 0 || depth > 1 || depth != depth {
		return nil, fmt.Errorf("data.Haystack.Needle: depth %g, want a fraction in [0, 1]", depth)
	}
	src := rand.NewPCG(seed, 0x6e69_6168) // "niah"
	key := keyWords[below(src, uint64(len(keyWords)))] + "-" + keyWords[below(src, uint64(len(keyWords)))]
	value := fmt.Sprint(1_000_000 + below(src, 9_000_000))
	needle := h.tok.Encode(fmt.Sprintf(" One of the special magic numbers for %s is: %s.", key, value))
	question := h.tok.Encode(fmt.Sprintf("\nWhat is the special magic number for %s mentioned in the provided text?"+
		" One of the special magic numbers for %s is:", key, key))
	n := length - len(needle) - len(question)
	if n < 1 {
		return nil, fmt.Errorf("data.Haystack.Needle: length %d leaves no room for a haystack (needle and question take %d tokens)",
			length, len(needle)+len(question))
	}
	if n > h.hay.Len() {
		return nil, fmt.Errorf("data.Haystack.Needle: length %d needs %d haystack tokens, the text has %d", length, n, h.hay.Len())
	}
	hay := make([]int32, n)
	h.hay.Copy(hay, int(below(src, uint64(h.hay.Len()-n+1))))
	ids, at := insert(hay, needle, question, depth, h.ends)
	answer := " " + value
	return &Prompt{Ids: ids, Answer: answer, AnswerIds: h.tok.Encode(answer), Key: key, NeedleAt: at, Hay: n,
		Depth: float64(at) / float64(n)}, nil
}

// Passkey builds pass-key prompts.
type Passkey struct {
	tok    Tokenizer
	filler []int32
	ends   []bool
}

// NewPasskey returns pass-key prompts over filler ("" for PasskeyFiller), repeated.
func NewPasskey(tok Tokenizer, filler string) (*Passkey, error) {
	if tok == nil {
		return nil, fmt.Errorf("data.NewPasskey: need a tokenizer")
	}
	if filler == "" {
		filler = PasskeyFiller
	}
	return &Passkey{tok: tok, filler: tok.Encode(filler), ends: boundaries(tok)}, nil
}

// Prompt returns the pass-key prompt of length tokens; seed fixes the key and its depth
// (uniform over the filler, then moved back to a sentence boundary).
func (p *Passkey) Prompt(length int, seed uint64) (*Prompt, error) {
	src := rand.NewPCG(seed, 0x7061_7373) // "pass"
	k := fmt.Sprint(10_000 + below(src, 90_000))
	needle := p.tok.Encode(fmt.Sprintf(" The pass key is %s. Remember it. %s is the pass key.", k, k))
	question := p.tok.Encode("\nWhat is the pass key? The pass key is")
	n := length - len(needle) - len(question)
	if n < 1 {
		return nil, fmt.Errorf("data.Passkey.Prompt: length %d leaves no room for filler (needle and question take %d tokens)",
			length, len(needle)+len(question))
	}
	hay := make([]int32, n)
	for i := 0; i < n; i += len(p.filler) {
		copy(hay[i:], p.filler)
	}
	depth := uniform(src)
	ids, at := insert(hay, needle, question, depth, p.ends)
	answer := " " + k
	return &Prompt{Ids: ids, Answer: answer, AnswerIds: p.tok.Encode(answer), NeedleAt: at, Hay: n,
		Depth: float64(at) / float64(n)}, nil
}
