package data

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// Stream is a corpus packed into one sequence of tokens, stored as uint16 when the
// vocabulary fits (2 bytes a token) and as uint32 otherwise.
type Stream struct {
	vocab int
	u16   []uint16
	u32   []uint32
}

func newStream(vocab, capacity int) *Stream {
	s := &Stream{vocab: vocab}
	if widthFor(vocab) == 2 {
		s.u16 = make([]uint16, 0, capacity)
	} else {
		s.u32 = make([]uint32, 0, capacity)
	}
	return s
}

// NewStream copies ids into a stream over a vocabulary of size vocab.
func NewStream(ids []int32, vocab int) (*Stream, error) {
	if vocab <= 0 || vocab > 1<<31 {
		return nil, fmt.Errorf("data.NewStream: vocab is %d, want in [1, 2³¹]", vocab)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return nil, fmt.Errorf("data.NewStream: ids[%d] = %d outside [0, %d)", i, id, vocab)
		}
	}
	s := newStream(vocab, len(ids))
	s.append(ids)
	return s, nil
}

// append adds ids, which the caller has checked are below vocab.
func (s *Stream) append(ids []int32) {
	if s.u32 != nil || widthFor(s.vocab) == 4 {
		for _, id := range ids {
			s.u32 = append(s.u32, uint32(id))
		}
		return
	}
	for _, id := range ids {
		s.u16 = append(s.u16, uint16(id))
	}
}

// appendBytes adds one token per byte.
func (s *Stream) appendBytes(b []byte) {
	if s.u32 != nil || widthFor(s.vocab) == 4 {
		for _, c := range b {
			s.u32 = append(s.u32, uint32(c))
		}
		return
	}
	n := len(s.u16)
	s.u16 = append(s.u16, make([]uint16, len(b))...)
	for i, c := range b {
		s.u16[n+i] = uint16(c)
	}
}

// Len is the number of tokens.
func (s *Stream) Len() int { return len(s.u16) + len(s.u32) }

// Vocab is the vocabulary size: every token is below it.
func (s *Stream) Vocab() int { return s.vocab }

// At returns token i.
func (s *Stream) At(i int) int32 {
	if s.u16 != nil {
		return int32(s.u16[i])
	}
	return int32(s.u32[i])
}

// Copy copies the tokens from off into dst and returns how many (fewer than len(dst) at the
// end of the stream).
func (s *Stream) Copy(dst []int32, off int) int {
	if s.u32 != nil {
		src := s.u32[off:min(off+len(dst), len(s.u32))]
		for i, v := range src {
			dst[i] = int32(v)
		}
		return len(src)
	}
	src := s.u16[off:min(off+len(dst), len(s.u16))]
	for i, v := range src {
		dst[i] = int32(v)
	}
	return len(src)
}

// NoSep packs documents back to back with nothing between them.
const NoSep int32 = -1

// Pack tokenises every document of c with tok and concatenates them, with sep after each
// document unless sep is NoSep. Sep may be VocabSize() (an id the tokenizer never makes) to
// mark document ends with a dedicated token; the stream's Vocab is then VocabSize()+1.
//
// Documents are tokenised in parallel, in order. When c knows its size in bytes (FileList)
// and tok is ByteTokenizer the stream is allocated once at its final size, so packing the Go
// corpus peaks at about 2 bytes per token.
func Pack(c Corpus, tok Tokenizer, sep int32) (*Stream, error) {
	vocab := tok.VocabSize()
	if sep != NoSep {
		if sep < 0 || sep > 1<<30 {
			return nil, fmt.Errorf("data.Pack: sep is %d, want NoSep or an id in [0, 2³⁰]", sep)
		}
		vocab = max(vocab, int(sep)+1)
	}
	_, bytewise := tok.(ByteTokenizer)
	capacity := 0
	if sz, ok := c.(interface {
		Bytes() int64
		Len() int
	}); ok {
		capacity = int(sz.Bytes()) + sz.Len()
		if !bytewise {
			capacity /= 3 // a guess at bytes per token; append grows it when wrong
		}
	}
	s := newStream(vocab, capacity)

	type job struct {
		doc Doc
		ids chan []int32
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan job, 2*workers)
	order := make(chan job, 2*workers)
	done := make(chan struct{})
	var iterErr error
	go func() { // producer: feeds jobs to the workers and, in the same order, to the packer
		defer close(jobs)
		defer close(order)
		for d, err := range c.Docs() {
			if err != nil {
				iterErr = err
				return
			}
			j := job{d, make(chan []int32, 1)}
			select {
			case order <- j:
			case <-done:
				return
			}
			jobs <- j
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if bytewise {
					j.ids <- nil // the packer widens the bytes itself
				} else {
					j.ids <- tok.Encode(string(j.doc.Text))
				}
			}
		})
	}
	var err error
	for j := range order {
		ids := <-j.ids
		if err != nil {
			continue // drain so the producer and workers finish
		}
		if bytewise {
			s.appendBytes(j.doc.Text)
			if sep != NoSep {
				s.append([]int32{sep})
			}
			continue
		}
		for i, id := range ids {
			if id < 0 || int(id) >= vocab {
				err = fmt.Errorf("data.Pack: %s: %s made id %d at token %d, outside [0, %d)", j.doc.Name, tok.Name(), id, i, vocab)
				close(done)
				break
			}
		}
		if err == nil {
			s.append(ids)
			if sep != NoSep {
				s.append([]int32{sep})
			}
		}
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if iterErr != nil {
		return nil, fmt.Errorf("data.Pack: %w", iterErr)
	}
	s.trim()
	return s, nil
}

// trim gives back capacity when the stream came out under half its allocation.
func (s *Stream) trim() {
	if cap(s.u16) > 2*len(s.u16) {
		s.u16 = append(make([]uint16, 0, len(s.u16)), s.u16...)
	}
	if cap(s.u32) > 2*len(s.u32) {
		s.u32 = append(make([]uint32, 0, len(s.u32)), s.u32...)
	}
}

// PackCached is Pack with the stream cached as a token file in dir, named by the tokenizer
// and a hash of the corpus key, tokenizer name and sep. A corpus without a Key is packed
// without caching. Delete dir to drop the cache.
func PackCached(dir string, c Corpus, tok Tokenizer, sep int32) (*Stream, error) {
	k, ok := c.(Keyer)
	if !ok {
		return Pack(c, tok, sep)
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", k.Key(), tok.Name(), sep))
	path := filepath.Join(dir, fmt.Sprintf("%s-%x.tok", tok.Name(), h[:8]))
	if s, err := ReadStream(path); err == nil {
		return s, nil
	} // else missing or unreadable: pack again and overwrite it
	s, err := Pack(c, tok, sep)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data.PackCached: %w", err)
	}
	if err := WriteStream(path, s); err != nil {
		return nil, fmt.Errorf("data.PackCached: %w", err)
	}
	return s, nil
}

// Slice returns tokens [from, to) of s as a new stream (copied) with the same vocabulary.
func (s *Stream) Slice(from, to int) (*Stream, error) {
	if from < 0 || to > s.Len() || from > to {
		return nil, fmt.Errorf("data.Stream.Slice: [%d, %d) of a stream of %d tokens", from, to, s.Len())
	}
	ids := make([]int32, to-from)
	s.Copy(ids, from)
	return NewStream(ids, s.vocab)
}
