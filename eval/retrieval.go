package eval

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/results"
)

// trialSeed mixes the run's seed with a trial's coordinates (splitmix64 per part), so every
// trial has its own reproducible prompt.
func trialSeed(seed uint64, parts ...uint64) uint64 {
	h := seed
	for _, p := range parts {
		h ^= p + 0x9e3779b97f4a7c15 + h<<6 + h>>2
		h ^= h >> 30
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 27
		h *= 0x94d049bb133111eb
		h ^= h >> 31
	}
	return h
}

// Greedy decodes n tokens after each prompt (all of length L): Prefill, then n−1 Steps, each
// feeding back the argmax. Prompts are run in batches of rows; a short last batch is padded with
// copies of its last prompt.
func Greedy(m Model, prompts [][]int32, n, rows int) ([][]int32, error) {
	if len(prompts) == 0 || n <= 0 || rows <= 0 {
		return nil, fmt.Errorf("eval.Greedy: %d prompts, %d tokens, %d rows", len(prompts), n, rows)
	}
	L := len(prompts[0])
	for i, p := range prompts {
		if len(p) != L || L == 0 {
			return nil, fmt.Errorf("eval.Greedy: prompt %d has %d tokens, prompt 0 has %d; want equal, > 0", i, len(p), L)
		}
	}
	rows = min(rows, len(prompts))
	V := m.Vocab()
	d, err := m.NewDecoder(rows, L+n)
	if err != nil {
		return nil, err
	}
	out := make([][]int32, len(prompts))
	ids := make([]int32, rows*L)
	next := make([]int32, rows)
	for s := 0; s < len(prompts); s += rows {
		d.Reset()
		for r := range rows {
			copy(ids[r*L:], prompts[min(s+r, len(prompts)-1)])
		}
		logits, err := d.Prefill(ids, L)
		if err != nil {
			return nil, fmt.Errorf("prefill of %d×%d: %w", rows, L, err)
		}
		for k := range n {
			if err := checkLogits("decoder", logits, rows, V); err != nil {
				return nil, err
			}
			for r := range rows {
				next[r] = int32(argmax(logits[r*V : (r+1)*V]))
				if s+r < len(prompts) {
					out[s+r] = append(out[s+r], next[r])
				}
			}
			if k < n-1 {
				if logits, err = d.Step(next); err != nil {
					return nil, fmt.Errorf("decode step %d at context %d: %w", k+1, L+k, err)
				}
			}
		}
	}
	return out, nil
}

// score counts the generations whose text starts with the prompt's answer.
func score(tok data.Tokenizer, ps []*data.Prompt, gen [][]int32) int {
	n := 0
	for i, p := range ps {
		if strings.HasPrefix(tok.Decode(gen[i]), p.Answer) {
			n++
		}
	}
	return n
}

// answerLen is the most answer tokens among ps.
func answerLen(ps []*data.Prompt) int {
	n := 0
	for _, p := range ps {
		n = max(n, len(p.AnswerIds))
	}
	return n
}

// promptIds lists the prompts' ids.
func promptIds(ps []*data.Prompt) [][]int32 {
	ids := make([][]int32, len(ps))
	for i, p := range ps {
		ids[i] = p.Ids
	}
	return ids
}

func checkTokenizer(suite string, m Model, o *Options) error {
	if o.Tokenizer == nil {
		return fmt.Errorf("%s: prompts need Options.Tokenizer", suite)
	}
	if o.Tokenizer.VocabSize() > m.Vocab() {
		return fmt.Errorf("%s: tokenizer %s has %d ids, the model reads %d", suite, o.Tokenizer.Name(), o.Tokenizer.VocabSize(), m.Vocab())
	}
	return nil
}

// needlePlan holds every trial's prompt, built (and so checked) before anything runs:
// prompts[li][di][t].
type needlePlan struct{ prompts [][][]*data.Prompt }

func prepareNeedle(m Model, o *Options, mem *memory) (*needlePlan, error) {
	if err := checkLengths(SuiteNeedle, "NeedleLengths", o.NeedleLengths); err != nil {
		return nil, err
	}
	if err := checkTokenizer(SuiteNeedle, m, o); err != nil {
		return nil, err
	}
	if o.Val == nil {
		return nil, fmt.Errorf("needle: no held-out text for the haystack (Options.Val)")
	}
	for _, d := range o.Depths {
		if d < 0 || d > 1 || d != d {
			return nil, fmt.Errorf("needle: depth %g, want fractions in [0, 1]", d)
		}
	}
	h, err := data.NewHaystack(o.Tokenizer, o.Val)
	if err != nil {
		return nil, err
	}
	p := &needlePlan{}
	for li, L := range o.NeedleLengths {
		var cells [][]*data.Prompt
		for di, depth := range o.Depths {
			ps := make([]*data.Prompt, o.Trials)
			for t := range ps {
				if ps[t], err = h.Needle(L, depth, trialSeed(o.Seed, 1, uint64(li), uint64(di), uint64(t))); err != nil {
					return nil, fmt.Errorf("needle: %w", err)
				}
			}
			cells = append(cells, ps)
		}
		if err := mem.fits(SuiteNeedle, min(o.rows(L), o.Trials), L+answerLen(cells[0])); err != nil {
			return nil, err
		}
		p.prompts = append(p.prompts, cells)
	}
	return p, nil
}

// Needle is needle-in-a-haystack accuracy on NeedleLengths × Depths, Trials prompts per cell,
// the value decoded greedily.
func Needle(ctx context.Context, m Model, o Options) (*results.Needle, error) {
	o.defaults()
	p, err := prepareNeedle(m, &o, newMemory(m, &o))
	if err != nil {
		return nil, err
	}
	return p.run(ctx, m, &o)
}

func (p *needlePlan) run(ctx context.Context, m Model, o *Options) (*results.Needle, error) {
	r := &results.Needle{Lengths: o.NeedleLengths, Depths: o.Depths, Trials: o.Trials}
	bar := newBar(o.Progress, "needle", len(o.NeedleLengths)*len(o.Depths)*o.Trials)
	sum := 0.0
	for li, L := range o.NeedleLengths {
		row := make([]float64, len(o.Depths))
		for di, depth := range o.Depths {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			ps := p.prompts[li][di]
			gen, err := Greedy(m, promptIds(ps), answerLen(ps), o.rows(L))
			if err != nil {
				return nil, fmt.Errorf("length %d depth %g: %w", L, depth, err)
			}
			row[di] = float64(score(o.Tokenizer, ps, gen)) / float64(o.Trials)
			sum += row[di]
			bar.add(o.Trials)
		}
		r.Accuracy = append(r.Accuracy, row)
	}
	r.Mean = sum / float64(len(o.NeedleLengths)*len(o.Depths))
	if o.Out != nil {
		tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "needle (%d trials)\t", o.Trials)
		for _, d := range o.Depths {
			fmt.Fprintf(tw, "depth %.0f%%\t", 100*d)
		}
		fmt.Fprintln(tw)
		for li, L := range o.NeedleLengths {
			fmt.Fprintf(tw, "L=%d\t", L)
			for _, a := range r.Accuracy[li] {
				fmt.Fprintf(tw, "%.2f\t", a)
			}
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "mean\t%.3f\t\n", r.Mean)
		tw.Flush()
	}
	return r, nil
}

// passkeyPlan holds every trial's prompt: prompts[li][t].
type passkeyPlan struct{ prompts [][]*data.Prompt }

func preparePasskey(m Model, o *Options, mem *memory) (*passkeyPlan, error) {
	if err := checkLengths(SuitePasskey, "PasskeyLengths", o.PasskeyLengths); err != nil {
		return nil, err
	}
	if err := checkTokenizer(SuitePasskey, m, o); err != nil {
		return nil, err
	}
	pk, err := data.NewPasskey(o.Tokenizer, o.PasskeyFiller)
	if err != nil {
		return nil, err
	}
	p := &passkeyPlan{}
	for li, L := range o.PasskeyLengths {
		ps := make([]*data.Prompt, o.Trials)
		for t := range ps {
			if ps[t], err = pk.Prompt(L, trialSeed(o.Seed, 2, uint64(li), uint64(t))); err != nil {
				return nil, fmt.Errorf("passkey: %w", err)
			}
		}
		if err := mem.fits(SuitePasskey, min(o.rows(L), o.Trials), L+answerLen(ps)); err != nil {
			return nil, err
		}
		p.prompts = append(p.prompts, ps)
	}
	return p, nil
}

// Passkey is pass-key retrieval accuracy per length over Trials prompts (random key, random
// depth), the key decoded greedily.
func Passkey(ctx context.Context, m Model, o Options) (*results.Passkey, error) {
	o.defaults()
	p, err := preparePasskey(m, &o, newMemory(m, &o))
	if err != nil {
		return nil, err
	}
	return p.run(ctx, m, &o)
}

func (p *passkeyPlan) run(ctx context.Context, m Model, o *Options) (*results.Passkey, error) {
	r := &results.Passkey{Lengths: o.PasskeyLengths, Trials: o.Trials}
	bar := newBar(o.Progress, "passkey", len(o.PasskeyLengths)*o.Trials)
	sum := 0.0
	for li, L := range o.PasskeyLengths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ps := p.prompts[li]
		gen, err := Greedy(m, promptIds(ps), answerLen(ps), o.rows(L))
		if err != nil {
			return nil, fmt.Errorf("length %d: %w", L, err)
		}
		a := float64(score(o.Tokenizer, ps, gen)) / float64(o.Trials)
		r.Accuracy = append(r.Accuracy, a)
		sum += a
		bar.add(o.Trials)
	}
	r.Mean = sum / float64(len(o.PasskeyLengths))
	if o.Out != nil {
		tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "passkey (%d trials)\taccuracy\t\n", o.Trials)
		for i, L := range o.PasskeyLengths {
			fmt.Fprintf(tw, "L=%d\t%.2f\t\n", L, r.Accuracy[i])
		}
		fmt.Fprintf(tw, "mean\t%.3f\t\n", r.Mean)
		tw.Flush()
	}
	return r, nil
}
