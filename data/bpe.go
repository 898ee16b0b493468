package data

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/hybridlab/hybrid/internal/atomicfile"
	"io"
	"os"
	"sync"
)

// BPE is a byte-level byte-pair-encoding tokenizer. Ids 0..255 are the bytes; id 256+r is the
// token made by merge r, the concatenation of the two tokens it names. Text is first cut
// into words (see splitWords) and each word is encoded on its own by applying merges in rank
// order, the way they were learned, so every byte string encodes and decodes exactly.
//
// A BPE is safe for concurrent use: Encode caches the ids of words it has seen.
type BPE struct {
	merges [][2]int32
	ranks  map[uint64]int32 // pair key → merge rank
	toks   [][]byte         // id → bytes
	name   string

	mu    sync.RWMutex
	cache map[string][]int32
}

// maxCache bounds Encode's word cache; natural text has far fewer distinct words than this.
const maxCache = 1 << 20

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// NewBPE builds a tokenizer from merges in rank order. Merge r may only name ids below 256+r.
func NewBPE(merges [][2]int32) (*BPE, error) {
	t := &BPE{
		merges: merges,
		ranks:  make(map[uint64]int32, len(merges)),
		toks:   make([][]byte, 256, 256+len(merges)),
		cache:  make(map[string][]int32),
	}
	for i := range 256 {
		t.toks[i] = []byte{byte(i)}
	}
	h := sha256.New()
	for r, m := range merges {
		lim := int32(256 + r)
		if m[0] < 0 || m[0] >= lim || m[1] < 0 || m[1] >= lim {
			return nil, fmt.Errorf("data.NewBPE: merge %d is (%d, %d), ids must be in [0, %d)", r, m[0], m[1], lim)
		}
		k := pairKey(m[0], m[1])
		if _, dup := t.ranks[k]; dup {
			return nil, fmt.Errorf("data.NewBPE: merge %d (%d, %d) repeats an earlier merge", r, m[0], m[1])
		}
		t.ranks[k] = int32(r)
		tok := append(append([]byte{}, t.toks[m[0]]...), t.toks[m[1]]...)
		t.toks = append(t.toks, tok)
		binary.Write(h, binary.LittleEndian, m)
	}
	t.name = fmt.Sprintf("bpe%d-%x", t.VocabSize(), h.Sum(nil)[:4])
	return t, nil
}

// VocabSize is 256 plus the number of merges.
func (t *BPE) VocabSize() int { return len(t.toks) }

// Name is "bpe<vocab>-<hash of the merges>".
func (t *BPE) Name() string { return t.name }

// Merges returns the merges in rank order; the caller must not modify them.
func (t *BPE) Merges() [][2]int32 { return t.merges }

// Token returns the bytes of id (nil when out of range); the caller must not modify them.
func (t *BPE) Token(id int32) []byte {
	if id < 0 || int(id) >= len(t.toks) {
		return nil
	}
	return t.toks[id]
}

// Encode splits s into words and encodes each by applying merges in rank order.
func (t *BPE) Encode(s string) []int32 {
	out := make([]int32, 0, len(s)/3+1)
	splitWords(s, func(w string) { out = t.appendWord(out, w) })
	return out
}

func (t *BPE) appendWord(out []int32, w string) []int32 {
	if len(w) == 1 {
		return append(out, int32(w[0]))
	}
	t.mu.RLock()
	ids, ok := t.cache[w]
	t.mu.RUnlock()
	if ok {
		return append(out, ids...)
	}
	ids = make([]int32, len(w))
	for i := 0; i < len(w); i++ {
		ids[i] = int32(w[i])
	}
	ids = t.mergeWord(ids)
	t.mu.Lock()
	if len(t.cache) < maxCache {
		t.cache[w] = ids
	}
	t.mu.Unlock()
	return append(out, ids...)
}

// mergeWord repeatedly merges every occurrence of the lowest-ranked adjacent pair, in place.
func (t *BPE) mergeWord(ids []int32) []int32 {
	for len(ids) > 1 {
		best := int32(-1)
		for k := 0; k+1 < len(ids); k++ {
			if r, ok := t.ranks[pairKey(ids[k], ids[k+1])]; ok && (best < 0 || r < best) {
				best = r
			}
		}
		if best < 0 {
			break
		}
		ids = mergePair(ids, t.merges[best][0], t.merges[best][1], 256+best)
	}
	return ids
}

// mergePair replaces each non-overlapping (a, b), left to right, by id, in place.
func mergePair(ids []int32, a, b, id int32) []int32 {
	j := 0
	for k := 0; k < len(ids); k++ {
		if k+1 < len(ids) && ids[k] == a && ids[k+1] == b {
			ids[j] = id
			k++
		} else {
			ids[j] = ids[k]
		}
		j++
	}
	return ids[:j]
}

// Decode concatenates the bytes of ids; ids outside the vocabulary are skipped (they are
// not text: an end-of-document separator, for instance).
func (t *BPE) Decode(ids []int32) string {
	n := 0
	for _, id := range ids {
		if id >= 0 && int(id) < len(t.toks) {
			n += len(t.toks[id])
		}
	}
	b := make([]byte, 0, n)
	for _, id := range ids {
		if id >= 0 && int(id) < len(t.toks) {
			b = append(b, t.toks[id]...)
		}
	}
	return string(b)
}

// TrainBPE learns up to vocabSize-256 merges from the documents of c: each step merges the
// most frequent adjacent pair of tokens within words, ties going to the smallest pair of ids
// (first id, then second), so training is deterministic. It stops early when no pair occurs
// twice, so VocabSize of the result may be below vocabSize.
//
// Pair counts are kept over distinct words weighted by frequency and updated incrementally:
// a merge touches only the words that contain its pair. Training on a few MB takes seconds;
// to train on part of a large corpus, pass a subset (FileList.Subset).
func TrainBPE(c Corpus, vocabSize int) (*BPE, error) {
	if vocabSize < 256 {
		return nil, fmt.Errorf("data.TrainBPE: vocabSize is %d, want ≥ 256", vocabSize)
	}
	// Distinct words and their frequencies.
	index := make(map[string]int32)
	var words []bpeWord
	for d, err := range c.Docs() {
		if err != nil {
			return nil, fmt.Errorf("data.TrainBPE: %w", err)
		}
		splitWords(d.Text, func(w []byte) {
			if len(w) < 2 {
				return // a single byte has no pair to merge
			}
			if i, ok := index[string(w)]; ok {
				words[i].n++
				return
			}
			index[string(w)] = int32(len(words))
			ids := make([]int32, len(w))
			for k, b := range w {
				ids[k] = int32(b)
			}
			words = append(words, bpeWord{ids: ids, n: 1})
		})
	}
	index = nil

	counts := make(map[uint64]int64)
	where := make(map[uint64][]int32) // pair → words that may contain it
	for i, w := range words {
		for k := 0; k+1 < len(w.ids); k++ {
			p := pairKey(w.ids[k], w.ids[k+1])
			if counts[p] == 0 || last(where[p]) != int32(i) {
				where[p] = append(where[p], int32(i))
			}
			counts[p] += w.n
		}
	}
	h := make(pairHeap, 0, len(counts))
	for p, n := range counts {
		h = append(h, pairCount{p, n})
	}
	heap.Init(&h)

	var merges [][2]int32
	seen := make([]int32, len(words)) // merge step+1 at which a word was last rewritten
	delta := make(map[uint64]int64)
	for 256+len(merges) < vocabSize && h.Len() > 0 {
		top := heap.Pop(&h).(pairCount)
		if counts[top.pair] != top.n {
			continue // stale entry
		}
		if top.n < 2 {
			break
		}
		a, b := int32(top.pair>>32), int32(uint32(top.pair))
		id := int32(256 + len(merges))
		merges = append(merges, [2]int32{a, b})
		step := int32(len(merges))
		clear(delta)
		for _, wi := range where[top.pair] {
			if seen[wi] == step {
				continue
			}
			seen[wi] = step
			w := &words[wi]
			if !hasPair(w.ids, a, b) {
				continue
			}
			for k := 0; k+1 < len(w.ids); k++ {
				delta[pairKey(w.ids[k], w.ids[k+1])] -= w.n
			}
			w.ids = mergePair(w.ids, a, b, id)
			for k := 0; k+1 < len(w.ids); k++ {
				p := pairKey(w.ids[k], w.ids[k+1])
				delta[p] += w.n
				if (w.ids[k] == id || w.ids[k+1] == id) && last(where[p]) != wi {
					where[p] = append(where[p], wi)
				}
			}
		}
		delete(where, top.pair)
		for p, d := range delta {
			if d == 0 {
				continue
			}
			n := counts[p] + d
			if n <= 0 {
				delete(counts, p)
				continue
			}
			counts[p] = n
			heap.Push(&h, pairCount{p, n})
		}
	}
	return NewBPE(merges)
}

type bpeWord struct {
	ids []int32
	n   int64
}

func last(s []int32) int32 {
	if len(s) == 0 {
		return -1
	}
	return s[len(s)-1]
}

func hasPair(ids []int32, a, b int32) bool {
	for k := 0; k+1 < len(ids); k++ {
		if ids[k] == a && ids[k+1] == b {
			return true
		}
	}
	return false
}

type pairCount struct {
	pair uint64
	n    int64
}

// pairHeap pops the highest count first, then the smallest pair key.
type pairHeap []pairCount

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].n != h[j].n {
		return h[i].n > h[j].n
	}
	return h[i].pair < h[j].pair
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairCount)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// bpeFile is the JSON form of a BPE. Tokens is for people reading the file (bytes that are
// not valid UTF-8 show as U+FFFD); loading uses only Merges.
type bpeFile struct {
	Format string     `json:"format"`
	Name   string     `json:"name"`
	Vocab  int        `json:"vocab_size"`
	Merges [][2]int32 `json:"merges"`
	Tokens []string   `json:"tokens,omitempty"`
}

const bpeFormat = "hybrid-bpe-1"

// Save writes the merges (and, for reading, the tokens) as JSON, atomically: a crash leaves
// either the old file or the new one, never half of one.
func (t *BPE) Save(path string) error {
	f := bpeFile{Format: bpeFormat, Name: t.name, Vocab: t.VocabSize(), Merges: t.merges}
	for _, tok := range t.toks[256:] {
		f.Tokens = append(f.Tokens, string(tok))
	}
	if f.Merges == nil {
		f.Merges = [][2]int32{}
	}
	err := atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(f)
	})
	if err != nil {
		return fmt.Errorf("data.BPE.Save: %w", err)
	}
	return nil
}

// LoadBPE reads a tokenizer written by Save.
func LoadBPE(path string) (*BPE, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data.LoadBPE: %w", err)
	}
	var f bpeFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("data.LoadBPE: %s: %w", path, err)
	}
	if f.Format != bpeFormat {
		return nil, fmt.Errorf("data.LoadBPE: %s: format is %q, want %q", path, f.Format, bpeFormat)
	}
	t, err := NewBPE(f.Merges)
	if err != nil {
		return nil, fmt.Errorf("data.LoadBPE: %s: %w", path, err)
	}
	if f.Name != "" && f.Name != t.name {
		return nil, fmt.Errorf("data.LoadBPE: %s: merges hash to %s but the file says %s", path, t.name, f.Name)
	}
	return t, nil
}
