package eval

import (
	"context"
	"fmt"
	"math"
	"text/tabwriter"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/results"
)

// nll is −log softmax(row)[target], in float64.
func nll(row []float32, target int32) float64 {
	mx := row[0]
	for _, x := range row[1:] {
		mx = max(mx, x)
	}
	s := 0.0
	for _, x := range row {
		s += math.Exp(float64(x - mx))
	}
	return math.Log(s) + float64(mx) - float64(row[target])
}

// byteLens is the length in bytes of each id's text (0 for ids the tokenizer does not make,
// such as a document separator).
func byteLens(tok data.Tokenizer, V int) []int {
	l := make([]int, V)
	for id := range min(V, tok.VocabSize()) {
		l[id] = len(tok.Decode([]int32{int32(id)}))
	}
	return l
}

// checkText checks o has held-out text the model can read.
func checkText(suite string, m Model, o *Options, need int) error {
	switch {
	case o.Val == nil:
		return fmt.Errorf("%s: no held-out text (Options.Val)", suite)
	case o.Val.Vocab() > m.Vocab():
		return fmt.Errorf("%s: held-out text has vocabulary %d, the model %d", suite, o.Val.Vocab(), m.Vocab())
	case o.Val.Len() < need+1:
		return fmt.Errorf("%s: held-out text has %d tokens, want ≥ %d", suite, o.Val.Len(), need+1)
	}
	return nil
}

type lmPlan struct {
	lens []int // bytes per id, nil when BytesPerToken is set
}

func prepareLM(m Model, o *Options, mem *memory) (*lmPlan, error) {
	if o.SeqLen <= 0 {
		return nil, fmt.Errorf("lm: SeqLen %d, want the training context length", o.SeqLen)
	}
	if err := checkText(SuiteLM, m, o, o.SeqLen); err != nil {
		return nil, err
	}
	p := &lmPlan{}
	if o.BytesPerToken <= 0 {
		if o.Tokenizer == nil {
			return nil, fmt.Errorf("lm: bits per byte needs Options.Tokenizer or BytesPerToken")
		}
		p.lens = byteLens(o.Tokenizer, m.Vocab())
	}
	return p, mem.fits(SuiteLM, min(o.Batch, (o.Val.Len()-1)/o.SeqLen), o.SeqLen)
}

// LM is the held-out negative log-likelihood of Val in windows of SeqLen, as nats per token,
// perplexity and bits per byte.
func LM(ctx context.Context, m Model, o Options) (*results.LM, error) {
	o.defaults()
	p, err := prepareLM(m, &o, newMemory(m, &o))
	if err != nil {
		return nil, err
	}
	return p.run(ctx, m, &o)
}

func (p *lmPlan) run(ctx context.Context, m Model, o *Options) (*results.LM, error) {
	ev, err := data.NewEval(o.Val, o.Batch, o.SeqLen)
	if err != nil {
		return nil, err
	}
	n := ev.Len()
	if o.LMBatches > 0 {
		n = min(n, o.LMBatches)
	}
	V := m.Vocab()
	bar := newBar(o.Progress, "lm", n)
	var b data.Batch
	sum, tokens, bytes := 0.0, int64(0), int64(0)
	for i := 0; i < n && ev.Next(&b); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logits, err := logitsOf(m, b.Inputs, b.B, b.T, V)
		if err != nil {
			return nil, err
		}
		for j, t := range b.Targets {
			sum += nll(logits[j*V:(j+1)*V], t)
			tokens++
			if p.lens != nil {
				bytes += int64(p.lens[t])
			}
		}
		bar.add(1)
	}
	if tokens == 0 {
		return nil, fmt.Errorf("no tokens scored")
	}
	r := &results.LM{NLL: sum / float64(tokens), Tokens: tokens, SeqLen: o.SeqLen, Split: o.Split}
	r.Perplexity = math.Exp(r.NLL)
	if p.lens == nil {
		bytes = int64(math.Round(float64(tokens) * o.BytesPerToken))
	}
	r.Bytes = bytes
	if bytes > 0 {
		r.BitsPerByte = sum / math.Ln2 / float64(bytes)
	}
	if o.Out != nil {
		tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "lm (%s)\tnll\tppl\tbits/byte\ttokens\tbytes\t\n", o.Split)
		fmt.Fprintf(tw, "T=%d\t%.4f\t%.3f\t%.4f\t%d\t%d\t\n", o.SeqLen, r.NLL, r.Perplexity, r.BitsPerByte, r.Tokens, r.Bytes)
		tw.Flush()
	}
	return r, nil
}

// Buckets averages per-position sums into buckets of width positions: [0, w), [w, 2w), …, the
// last one ending at len(sum). count[t] is how many values sum[t] adds up.
func Buckets(sum []float64, count []int64, width int) []results.Bucket {
	if width <= 0 {
		width = 1
	}
	var out []results.Bucket
	for s := 0; s < len(sum); s += width {
		e := min(s+width, len(sum))
		b := results.Bucket{Start: s, End: e}
		tot := 0.0
		for t := s; t < e; t++ {
			tot += sum[t]
			b.Count += count[t]
		}
		if b.Count > 0 {
			b.NLL = tot / float64(b.Count)
		}
		out = append(out, b)
	}
	return out
}

type longPlan struct{}

func prepareLong(m Model, o *Options, mem *memory) (*longPlan, error) {
	if err := checkLengths(SuiteLongContext, "LongLengths", o.LongLengths); err != nil {
		return nil, err
	}
	L := slicesMax(o.LongLengths)
	if err := checkText(SuiteLongContext, m, o, L); err != nil {
		return nil, err
	}
	for _, l := range o.LongLengths {
		if err := mem.fits(SuiteLongContext, o.rows(l), l); err != nil {
			return nil, err
		}
	}
	return &longPlan{}, nil
}

func slicesMax(ls []int) int {
	m := ls[0]
	for _, l := range ls {
		m = max(m, l)
	}
	return m
}

// LongContext is the mean NLL by position, bucketed, on up to LongSeqs held-out sequences
// of each of LongLengths (by default 1, 2 and 4 times the training length).
func LongContext(ctx context.Context, m Model, o Options) (*results.LongContext, error) {
	o.defaults()
	p, err := prepareLong(m, &o, newMemory(m, &o))
	if err != nil {
		return nil, err
	}
	return p.run(ctx, m, &o)
}

func (p *longPlan) run(ctx context.Context, m Model, o *Options) (*results.LongContext, error) {
	V := m.Vocab()
	r := &results.LongContext{TrainLen: o.SeqLen}
	total := 0
	for _, L := range o.LongLengths {
		total += min(o.LongSeqs, (o.Val.Len()-1)/L) * L
	}
	bar := newBar(o.Progress, "long_context", total)
	for _, L := range o.LongLengths {
		ev, err := data.NewEval(o.Val, min(o.rows(L), o.LongSeqs), L)
		if err != nil {
			return nil, err
		}
		sum, count := make([]float64, L), make([]int64, L)
		var b data.Batch
		for seqs := 0; seqs < o.LongSeqs && ev.Next(&b); seqs += b.B {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rows := min(b.B, o.LongSeqs-seqs)
			logits, err := logitsOf(m, b.Inputs[:rows*L], rows, L, V)
			if err != nil {
				return nil, fmt.Errorf("length %d: %w", L, err)
			}
			for row := range rows {
				for t := range L {
					j := row*L + t
					sum[t] += nll(logits[j*V:(j+1)*V], b.Targets[j])
					count[t]++
				}
			}
			bar.add(rows * L)
		}
		c := results.PositionLoss{Length: L, Buckets: Buckets(sum, count, o.BucketWidth)}
		tot, n := 0.0, int64(0)
		for t := range L {
			tot += sum[t]
			n += count[t]
		}
		c.NLL = tot / float64(max(n, 1))
		r.Curves = append(r.Curves, c)
	}
	if o.Out != nil {
		tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "long_context (train T=%d)\t", o.SeqLen)
		longest := r.Curves[0]
		for _, c := range r.Curves {
			fmt.Fprintf(tw, "L=%d\t", c.Length)
			if c.Length > longest.Length {
				longest = c
			}
		}
		fmt.Fprintf(tw, "\nmean nll\t")
		for _, c := range r.Curves {
			fmt.Fprintf(tw, "%.4f\t", c.NLL)
		}
		fmt.Fprintln(tw)
		for i, b := range longest.Buckets { // one row per bucket, blank beyond a curve's length
			fmt.Fprintf(tw, "[%d, %d)\t", b.Start, b.End)
			for _, c := range r.Curves {
				if i < len(c.Buckets) && c.Buckets[i].Start == b.Start {
					fmt.Fprintf(tw, "%.4f\t", c.Buckets[i].NLL)
				} else {
					fmt.Fprint(tw, "\t")
				}
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	return r, nil
}
