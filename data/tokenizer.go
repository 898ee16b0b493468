package data

// Tokenizer maps text to token ids and back. Decode(Encode(s)) == s must hold for every
// string, including invalid UTF-8: models are scored in bits per byte, which needs the exact
// bytes back.
type Tokenizer interface {
	Encode(s string) []int32
	Decode(ids []int32) string
	// VocabSize is one more than the largest id Encode can return.
	VocabSize() int
	// Name identifies the tokenizer and its vocabulary; two tokenizers with the same name
	// encode identically, so the name keys caches of tokenised corpora.
	Name() string
}

var (
	_ Tokenizer = ByteTokenizer{}
	_ Tokenizer = (*BPE)(nil)
)

// ByteTokenizer is the identity on bytes: id i is byte i. It needs no training and is the
// baseline that bits-per-byte figures are easiest to read against.
type ByteTokenizer struct{}

// Encode returns one id per byte of s.
func (ByteTokenizer) Encode(s string) []int32 {
	ids := make([]int32, len(s))
	for i := 0; i < len(s); i++ {
		ids[i] = int32(s[i])
	}
	return ids
}

// Decode returns the bytes named by ids. Ids outside [0, 256) are skipped: they are not bytes
// (an end-of-document separator, for instance).
func (ByteTokenizer) Decode(ids []int32) string {
	b := make([]byte, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < 256 {
			b = append(b, byte(id))
		}
	}
	return string(b)
}

// VocabSize is 256.
func (ByteTokenizer) VocabSize() int { return 256 }

// Name is "byte".
func (ByteTokenizer) Name() string { return "byte" }
