package eval

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/results"
)

func checkMQAR(m Model, o *Options, mem *memory) error {
	if o.MQAR == nil {
		return fmt.Errorf("mqar: no held-out set (Options.MQAR, data.NewMQAREval)")
	}
	q := o.MQAR.Task
	if q.Vocab > m.Vocab() {
		return fmt.Errorf("mqar: task vocabulary %d exceeds the model's %d", q.Vocab, m.Vocab())
	}
	return mem.fits(SuiteMQAR, o.MQAR.B, o.MQAR.T)
}

// MQAR is the accuracy of the argmax prediction at the scored (value) positions of the
// held-out set o.MQAR; every other position is ignored.
func MQAR(ctx context.Context, m Model, o Options) (*results.MQAR, error) {
	o.defaults()
	if err := checkMQAR(m, &o, newMemory(m, &o)); err != nil {
		return nil, err
	}
	return runMQAR(ctx, m, &o)
}

func runMQAR(ctx context.Context, m Model, o *Options) (*results.MQAR, error) {
	ev, V := o.MQAR, m.Vocab()
	ev.Reset()
	bar := newBar(o.Progress, "mqar", ev.Len())
	var b data.Batch
	right, scored := 0, 0
	for ev.Next(&b) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logits, err := logitsOf(m, b.Inputs, b.B, b.T, V)
		if err != nil {
			return nil, err
		}
		for j, t := range b.Targets {
			if t < 0 {
				continue
			}
			scored++
			if argmax(logits[j*V:(j+1)*V]) == int(t) {
				right++
			}
		}
		bar.add(1)
	}
	if scored == 0 {
		return nil, fmt.Errorf("no scored positions in the held-out set")
	}
	q := ev.Task
	r := &results.MQAR{Vocab: q.Vocab, SeqLen: q.T, Pairs: q.Pairs, Examples: ev.Examples(),
		Accuracy: float64(right) / float64(scored)}
	if o.Out != nil {
		tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "mqar\tV\tT\tK\texamples\taccuracy\t\n")
		fmt.Fprintf(tw, "\t%d\t%d\t%d\t%d\t%.4f\t\n", q.Vocab, q.T, q.Pairs, r.Examples, r.Accuracy)
		tw.Flush()
	}
	return r, nil
}
