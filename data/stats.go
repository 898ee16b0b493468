package data

import "math"

// Unigram counts tokens to measure the entropy of their unigram distribution: the bits per
// token (or per byte) a model that ignores context entirely would need. A trained model's
// bits per byte should land well below it.
type Unigram struct {
	counts []int64
	n      int64
}

// Add counts ids; negative ids are ignored.
func (u *Unigram) Add(ids []int32) {
	for _, id := range ids {
		if id < 0 {
			continue
		}
		if int(id) >= len(u.counts) {
			u.counts = append(u.counts, make([]int64, int(id)+1-len(u.counts))...)
		}
		u.counts[id]++
		u.n++
	}
}

// AddStream counts every token of s.
func (u *Unigram) AddStream(s *Stream) {
	buf := make([]int32, 1<<16)
	for off := 0; off < s.Len(); off += len(buf) {
		u.Add(buf[:s.Copy(buf, off)])
	}
}

// N is the number of tokens counted.
func (u *Unigram) N() int64 { return u.n }

// Entropy is −Σ p log₂ p over the counted distribution, in bits per token (0 when empty).
func (u *Unigram) Entropy() float64 {
	if u.n == 0 {
		return 0
	}
	h := 0.0
	for _, c := range u.counts {
		if c > 0 {
			p := float64(c) / float64(u.n)
			h -= p * math.Log2(p)
		}
	}
	return h
}

// BitsPerByte is the entropy spread over the text the tokens encode: Entropy · N / nbytes.
// For ByteTokenizer streams it equals Entropy.
func (u *Unigram) BitsPerByte(nbytes int64) float64 {
	if nbytes <= 0 {
		return 0
	}
	return u.Entropy() * float64(u.n) / float64(nbytes)
}
