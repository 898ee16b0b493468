package experiment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/train"
)

// valFrac is the share held out for validation where the corpus has no split of its own.
const valFrac = 0.02

// Data is a recipe's training and held-out data, ready for the loop and the evaluations.
type Data struct {
	Name      string // corpus name and version, e.g. gosrc-go1.26.8
	Tokenizer data.Tokenizer
	Train     train.Batches
	Val       train.EvalSet // held-out (B, T) batches
	ValStream *data.Stream  // the held-out tokens, for evaluations at other lengths
	// BytesPerToken converts nats per token into bits per byte (1 for the byte tokenizer).
	BytesPerToken float64
	// MQAR is the held-out recall set when the recipe trains on MQAR.
	MQAR *data.MQAREval
	// Unigram is the held-out unigram entropy in bits per byte: the score of a model that
	// ignores context, which training must beat.
	Unigram float64
}

// CacheDir is where packed token streams and trained tokenizers are kept ($HYBRID_CACHE, else
// the user cache directory).
func CacheDir() string {
	if d := os.Getenv("HYBRID_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "hybrid-cache")
	}
	return filepath.Join(d, "hybrid")
}

// Prepare loads, tokenises (cached) and splits the recipe's corpus and makes the batches: the
// training order is seeded by train.seed.
func Prepare(r *recipes.Recipe) (*Data, error) {
	d := r.Data
	B, T := d.BatchSize, d.SeqLen
	if d.Corpus.Kind == "mqar" {
		return prepareMQAR(r)
	}
	trainC, valC, name, err := corpora(d.Corpus)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer(d.Tokenizer, trainC, name)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() > r.Model.VocabSize {
		return nil, fmt.Errorf("tokenizer %s makes %d ids, model.vocab_size is %d", tok.Name(), tok.VocabSize(), r.Model.VocabSize)
	}
	sep := data.NoSep
	if _, ok := tok.(data.ByteTokenizer); ok {
		sep = 0 // NUL never occurs in text, so it can mark document ends
	}
	cache := filepath.Join(CacheDir(), "tokens")
	var trainS, valS *data.Stream
	if d.Corpus.Kind == "tokens" {
		all, err := data.ReadStream(d.Corpus.Path)
		if err != nil {
			return nil, err
		}
		n := all.Len() - int(float64(all.Len())*valFrac)
		if trainS, err = all.Slice(0, n); err != nil {
			return nil, err
		}
		if valS, err = all.Slice(n, all.Len()); err != nil {
			return nil, err
		}
	} else {
		if trainS, err = data.PackCached(cache, trainC, tok, sep); err != nil {
			return nil, err
		}
		if valC == nil { // hold out the stream's tail
			n := trainS.Len() - int(float64(trainS.Len())*valFrac)
			all := trainS
			if trainS, err = all.Slice(0, n); err != nil {
				return nil, err
			}
			if valS, err = all.Slice(n, all.Len()); err != nil {
				return nil, err
			}
		} else if valS, err = data.PackCached(cache, valC, tok, sep); err != nil {
			return nil, err
		}
	}
	if trainS.Vocab() > r.Model.VocabSize {
		return nil, fmt.Errorf("%s: token ids reach %d, model.vocab_size is %d", name, trainS.Vocab()-1, r.Model.VocabSize)
	}
	ld, err := data.NewLoader(trainS, B, T, uint64(r.Train.Seed))
	if err != nil {
		return nil, fmt.Errorf("training data: %w", err)
	}
	ev, err := data.NewEval(valS, B, T)
	if err != nil {
		return nil, fmt.Errorf("validation data: %w", err)
	}
	bpt, err := bytesPerToken(tok, valS)
	if err != nil {
		return nil, err
	}
	var u data.Unigram
	u.AddStream(valS)
	return &Data{
		Name: name, Tokenizer: tok, Train: ld, Val: ev, ValStream: valS,
		BytesPerToken: bpt, Unigram: u.BitsPerByte(int64(bpt * float64(valS.Len()))),
	}, nil
}

// corpora opens the training and held-out text; valC is nil when the corpus has no file
// split (the stream's tail is held out instead).
func corpora(c recipes.Corpus) (trainC, valC data.Corpus, name string, err error) {
	switch c.Kind {
	case "gosrc":
		var s *data.Split
		if c.Path != "" {
			s, err = data.GoSourceAt(c.Path)
		} else {
			s, err = data.GoSource()
		}
		if err != nil {
			return nil, nil, "", err
		}
		return s.Train, s.Val, s.Name, nil
	case "text":
		fl, err := data.Files(c.Path)
		if err != nil {
			return nil, nil, "", err
		}
		if fl.Len() < 2 {
			return fl, nil, "text:" + c.Path, nil
		}
		val, tr := fl.Split(valFrac, "hybrid/text/val")
		if val.Len() == 0 || tr.Len() == 0 {
			return fl, nil, "text:" + c.Path, nil
		}
		return tr, val, "text:" + c.Path, nil
	case "jsonl":
		return data.JSONL{Paths: []string{c.Path}, Field: c.Field}, nil, "jsonl:" + c.Path, nil
	case "tokens":
		return nil, nil, "tokens:" + c.Path, nil
	}
	return nil, nil, "", fmt.Errorf("data.corpus.kind %q: want gosrc, text, jsonl, tokens or mqar", c.Kind)
}

// tokenizer loads the recipe's tokenizer; a BPE without a vocabulary file is trained on (a
// subset of) the training corpus once and cached.
func tokenizer(t recipes.Tokenizer, c data.Corpus, corpus string) (data.Tokenizer, error) {
	switch t.Kind {
	case "byte":
		return data.ByteTokenizer{}, nil
	case "bpe":
		if t.Vocab != "" {
			if _, err := os.Stat(t.Vocab); err == nil {
				return data.LoadBPE(t.Vocab)
			}
		}
		if c == nil {
			return nil, errors.New("data.tokenizer: a bpe tokenizer over a token file needs data.tokenizer.vocab")
		}
		path := t.Vocab
		if path == "" {
			path = filepath.Join(CacheDir(), "bpe", fmt.Sprintf("%s-%d.json", filepath.Base(corpus), t.VocabSize))
		}
		if tok, err := data.LoadBPE(path); err == nil {
			return tok, nil
		}
		sub := c
		if fl, ok := c.(*data.FileList); ok && fl.Bytes() > 8<<20 {
			sub = fl.Subset(float64(8<<20)/float64(fl.Bytes()), "hybrid/bpe")
		}
		tok, err := data.TrainBPE(sub, t.VocabSize)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		return tok, tok.Save(path)
	}
	return nil, fmt.Errorf("data.tokenizer.kind %q: want byte or bpe", t.Kind)
}

// bytesPerToken measures how many bytes of text the held-out tokens encode, per token.
func bytesPerToken(tok data.Tokenizer, s *data.Stream) (float64, error) {
	if _, ok := tok.(data.ByteTokenizer); ok {
		return 1, nil
	}
	if s.Len() == 0 {
		return 0, errors.New("empty held-out stream")
	}
	buf := make([]int32, 1<<14)
	var n int64
	for off := 0; off < s.Len(); off += len(buf) {
		k := s.Copy(buf, off)
		for _, id := range buf[:k] {
			if int(id) < tok.VocabSize() {
				n += int64(len(tok.Decode([]int32{id})))
			}
		}
	}
	return float64(n) / float64(s.Len()), nil
}

// prepareMQAR makes the synthetic recall task's training stream and held-out set; bits per
// byte do not apply (BytesPerToken 0).
func prepareMQAR(r *recipes.Recipe) (*Data, error) {
	task := r.MQARTask()
	c := r.Data.Corpus
	ld, err := data.NewMQARLoader(task, r.Data.BatchSize, c.Examples, uint64(r.Train.Seed))
	if err != nil {
		return nil, err
	}
	n := c.EvalExamples
	if n == 0 {
		n = 1000
	}
	ev, err := data.NewMQAREval(task, r.Data.BatchSize, n, uint64(r.Train.Seed))
	if err != nil {
		return nil, err
	}
	return &Data{Name: task.String(), Tokenizer: data.ByteTokenizer{}, Train: ld, Val: ev, MQAR: ev}, nil
}

// Tokenizer is the recipe's tokenizer alone (a BPE is loaded from its vocabulary file or the
// cache, trained first if neither has it), for generation and evaluation prompts.
func Tokenizer(r *recipes.Recipe) (data.Tokenizer, error) {
	if r.Data.Corpus.Kind == "mqar" || r.Data.Tokenizer.Kind == "byte" {
		return data.ByteTokenizer{}, nil
	}
	trainC, _, name, err := corpora(r.Data.Corpus)
	if err != nil {
		return nil, err
	}
	return tokenizer(r.Data.Tokenizer, trainC, name)
}
