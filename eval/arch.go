package eval

import (
	"github.com/hybridlab/hybrid/arch"
)

// Arch adapts a built *arch.Model to Model.
type Arch struct{ M *arch.Model }

var _ Model = Arch{}

// Vocab is the model's vocabulary size.
func (a Arch) Vocab() int { return a.M.Config.VocabSize }

// Logits runs arch.Model.Logits (no gradients, in pieces of arch.DefaultPiece tokens).
func (a Arch) Logits(ids []int32, B, T int) ([]float32, error) { return a.M.Logits(ids, B, T) }

// NewDecoder returns an arch.Decoder.
func (a Arch) NewDecoder(B, capacity int) (Decoder, error) {
	d, err := a.M.NewDecoder(B, capacity)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return d, nil
}

// ArchMemory sets o's analytic cache size and activation estimate from the model's
// accounting: the float32 decode cache of Config.Count, and for a call on (B, T) the returned
// logits (B·T·V) plus one layer's working set on one piece of at most arch.DefaultPiece tokens,
// taken as twice the piece's logits and 16 values a token of the widest layer. The estimate
// errs high; it decides only whether to refuse a length before running.
func ArchMemory(cfg arch.Config, o *Options) {
	o.CacheBytes = func(T int) int64 {
		n, err := cfg.CacheBytes(max(T, 1), arch.Float32)
		if err != nil {
			return 0
		}
		return n
	}
	wide := max(cfg.DModel, cfg.FFN.Hidden, cfg.Mamba.Expand*cfg.DModel)
	V := int64(cfg.VocabSize)
	o.ActivationBytes = func(B, T int) int64 {
		piece := int64(min(T, arch.DefaultPiece))
		return 4 * int64(B) * (int64(T)*V + piece*(2*V+16*int64(wide)))
	}
}
