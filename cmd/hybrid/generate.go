package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/hybridlab/hybrid/experiment"
)

// cmdGenerate: hybrid generate RUN_DIR|CHECKPOINT [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--seed S].
func cmdGenerate(args []string) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	prompt := fs.String("prompt", "func ", "text to continue")
	n := fs.Int("tokens", 200, "tokens to generate")
	temp := fs.Float64("temperature", 0.8, "sampling temperature; 0 is greedy")
	topK := fs.Int("top-k", 40, "sample among the k likeliest tokens (0: all)")
	seed := fs.Uint64("seed", 1, "sampling seed")
	device := fs.String("device", "", "backend (default $HYBRID_BACKEND, else cpu)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"generate needs one RUN_DIR or CHECKPOINT directory"}
	}
	if *n < 1 || *temp < 0 || *topK < 0 {
		return usageError{"--tokens must be ≥ 1, --temperature and --top-k ≥ 0"}
	}
	tr, err := experiment.Open(pos[0], *device)
	if err != nil {
		return err
	}
	tok, err := experiment.Tokenizer(tr.Recipe)
	if err != nil {
		return err
	}
	ids := tok.Encode(*prompt)
	if len(ids) == 0 {
		return usageError{"--prompt is empty after tokenisation"}
	}
	dec, err := tr.Model.NewDecoder(1, len(ids)+*n)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s, step %d, layout %s\n", tr.Checkpoint.Dir, tr.Checkpoint.State.Step, tr.Recipe.Pattern)
	start := time.Now()
	logits, err := dec.Prefill(ids, len(ids))
	if err != nil {
		return err
	}
	prefill := time.Since(start)
	fmt.Print(*prompt)
	rng := rand.New(rand.NewPCG(*seed, 0x9e3779b97f4a7c15))
	start = time.Now()
	for i := range *n {
		next := sample(logits, *temp, *topK, rng)
		fmt.Print(tok.Decode([]int32{next}))
		if i == *n-1 {
			break
		}
		if logits, err = dec.Step([]int32{next}); err != nil {
			return err
		}
	}
	gen := time.Since(start)
	fmt.Fprintf(os.Stderr, "\n\nprefill %d tokens in %v; %d tokens in %v (%.0f tokens/s); decode cache %d bytes\n",
		len(ids), prefill.Round(time.Millisecond), *n, gen.Round(time.Millisecond), float64(*n)/gen.Seconds(), dec.Bytes())
	return nil
}

// sample draws a token from softmax(logits/temp) restricted to the topK likeliest; temp 0 is
// argmax.
func sample(logits []float32, temp float64, topK int, rng *rand.Rand) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	if temp == 0 {
		return int32(best)
	}
	cut := float32(math.Inf(-1))
	if topK > 0 && topK < len(logits) {
		// the k-th largest logit, by partial selection on a copy
		c := append([]float32(nil), logits...)
		for k := range topK {
			m := k
			for j := k + 1; j < len(c); j++ {
				if c[j] > c[m] {
					m = j
				}
			}
			c[k], c[m] = c[m], c[k]
		}
		cut = c[topK-1]
	}
	p := make([]float64, len(logits))
	sum := 0.0
	for i, v := range logits {
		if v >= cut {
			p[i] = math.Exp(float64(v-logits[best]) / temp)
			sum += p[i]
		}
	}
	u := rng.Float64() * sum
	for i, w := range p {
		if u -= w; u <= 0 && w > 0 {
			return int32(i)
		}
	}
	return int32(best)
}
