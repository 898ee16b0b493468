package eval

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/data"
	"github.com/hybridlab/hybrid/results"
)

// prose is held-out text with sentence ends every few words.
func prose(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "Line %d of the held-out text says little. Another sentence ends here! ", i)
	}
	return b.String()
}

func byteStream(t *testing.T, s string) *data.Stream {
	t.Helper()
	st, err := data.NewStream(data.ByteTokenizer{}.Encode(s), 256)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mqarSet(t *testing.T, n int) *data.MQAREval {
	t.Helper()
	ev, err := data.NewMQAREval(data.MQAR{Vocab: 256, T: 64, Pairs: 8}, 16, n, 5)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// retrieval are options for the retrieval suites on byte-tokenised prose.
func retrieval(t *testing.T) Options {
	return Options{
		Val: byteStream(t, prose(20000)), Tokenizer: data.ByteTokenizer{}, SeqLen: 64, Batch: 4,
		NeedleLengths: []int{300, 700}, Depths: []float64{0, 0.5, 1}, Trials: 4,
		PasskeyLengths: []int{200, 500}, MQAR: mqarSet(t, 40), Seed: 3,
	}
}

func TestCopierScoresPerfectly(t *testing.T) {
	ctx := context.Background()
	m := &copier{V: 256}
	o := retrieval(t)
	n, err := Needle(ctx, m, o)
	if err != nil {
		t.Fatal(err)
	}
	if n.Mean != 1 || len(n.Accuracy) != 2 || len(n.Accuracy[0]) != 3 {
		t.Fatalf("needle: %+v, want every cell 1", n)
	}
	p, err := Passkey(ctx, m, o)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mean != 1 || len(p.Accuracy) != 2 {
		t.Fatalf("passkey: %+v, want 1", p)
	}
	q, err := MQAR(ctx, m, o)
	if err != nil {
		t.Fatal(err)
	}
	if q.Accuracy != 1 || q.Examples != 40 || q.Pairs != 8 {
		t.Fatalf("mqar: %+v, want accuracy 1", q)
	}
}

func TestNoiseScoresChance(t *testing.T) {
	ctx := context.Background()
	m := newNoise(256)
	o := retrieval(t)
	o.MQAR = mqarSet(t, 300) // 2400 scored tokens
	n, err := Needle(ctx, m, o)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Passkey(ctx, m, o)
	if err != nil {
		t.Fatal(err)
	}
	q, err := MQAR(ctx, m, o)
	if err != nil {
		t.Fatal(err)
	}
	// Chance: 7 (5) random digits in a row for needle (passkey), 1/256 per MQAR value
	// (mean 9.4 hits of 2400; 30 is beyond 6 standard deviations).
	if n.Mean != 0 || p.Mean != 0 || q.Accuracy > 30.0/2400 {
		t.Fatalf("noise scored needle %.3f, passkey %.3f, mqar %.4f", n.Mean, p.Mean, q.Accuracy)
	}
}

func TestLMUniform(t *testing.T) {
	ctx := context.Background()
	m := &ramp{V: 256} // all logits 0
	o := Options{Val: byteStream(t, prose(5000)), Tokenizer: data.ByteTokenizer{}, SeqLen: 64, Batch: 4}
	r, err := LM(ctx, m, o)
	if err != nil {
		t.Fatal(err)
	}
	want := math.Log(256)
	if math.Abs(r.NLL-want) > 1e-9 || math.Abs(r.Perplexity-256) > 1e-6 || math.Abs(r.BitsPerByte-8) > 1e-9 {
		t.Fatalf("nll %.12g ppl %g bpb %g, want log 256, 256, 8", r.NLL, r.Perplexity, r.BitsPerByte)
	}
	if r.Tokens%64 != 0 || r.Tokens != r.Bytes || r.SeqLen != 64 || r.Split != "val" {
		t.Fatalf("tokens %d bytes %d seq %d split %q", r.Tokens, r.Bytes, r.SeqLen, r.Split)
	}
	o.BytesPerToken, o.LMBatches = 2, 3
	r, err = LM(ctx, m, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Tokens != 3*4*64 || math.Abs(r.BitsPerByte-4) > 1e-9 {
		t.Fatalf("tokens %d bpb %g, want 768 and 4", r.Tokens, r.BitsPerByte)
	}
}

// A BPE token of k bytes counts k bytes: bits per byte = total nats / ln 2 / bytes of text.
func TestLMBytesFromTokenizer(t *testing.T) {
	text := prose(6000)
	tok, err := data.TrainBPE(data.Texts{text}, 300)
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode(text)
	s, _ := data.NewStream(ids, tok.VocabSize())
	m := &ramp{V: tok.VocabSize()}
	r, err := LM(context.Background(), m, Options{Val: s, Tokenizer: tok, SeqLen: 32, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	n := (len(ids) - 1) / 32 * 32 // scored targets: ids[1 : n+1]
	want := int64(len(tok.Decode(ids[1 : n+1])))
	if r.Bytes != want || r.Tokens != int64(n) {
		t.Fatalf("bytes %d tokens %d, want %d and %d", r.Bytes, r.Tokens, want, n)
	}
	if bpb := r.NLL * float64(r.Tokens) / math.Ln2 / float64(want); math.Abs(bpb-r.BitsPerByte) > 1e-9 {
		t.Fatalf("bpb %g, want %g", r.BitsPerByte, bpb)
	}
}

func TestBuckets(t *testing.T) {
	sum := []float64{1, 2, 3, 4, 5, 6, 7}
	count := []int64{1, 1, 1, 1, 2, 2, 1}
	got := Buckets(sum, count, 3)
	want := []results.Bucket{{Start: 0, End: 3, NLL: 2, Count: 3}, {Start: 3, End: 6, NLL: 15.0 / 5, Count: 5}, {Start: 6, End: 7, NLL: 7, Count: 1}}
	if len(got) != len(want) {
		t.Fatalf("%+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("bucket %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestLongContextByPosition(t *testing.T) {
	ids := make([]int32, 2000)
	for i := range ids {
		ids[i] = int32(1 + i%7) // never 0, the ramp's favourite
	}
	s, _ := data.NewStream(ids, 8)
	m := &ramp{V: 8, slope: 0.05}
	o := Options{Val: s, SeqLen: 16, Batch: 2, LongLengths: []int{16, 32}, LongSeqs: 5, BucketWidth: 5}
	r, err := LongContext(context.Background(), m, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.TrainLen != 16 || len(r.Curves) != 2 {
		t.Fatalf("%+v", r)
	}
	for _, c := range r.Curves {
		all := 0.0
		for t := range c.Length {
			all += math.Log(math.Exp(float64(float32(0.05)*float32(t))) + 7)
		}
		if math.Abs(c.NLL-all/float64(c.Length)) > 1e-6 {
			t.Fatalf("length %d: mean nll %g, want %g", c.Length, c.NLL, all/float64(c.Length))
		}
		if n := (c.Length + 4) / 5; len(c.Buckets) != n || c.Buckets[n-1].End != c.Length {
			t.Fatalf("length %d: buckets %+v", c.Length, c.Buckets)
		}
		for _, b := range c.Buckets {
			w := 0.0
			for t := b.Start; t < b.End; t++ {
				w += math.Log(math.Exp(float64(float32(0.05)*float32(t))) + 7)
			}
			w /= float64(b.End - b.Start)
			if math.Abs(b.NLL-w) > 1e-6 || b.Count != int64(5*(b.End-b.Start)) {
				t.Fatalf("length %d bucket %+v: want nll %g count %d", c.Length, b, w, 5*(b.End-b.Start))
			}
		}
	}
}

func TestEfficiency(t *testing.T) {
	m := &copier{V: 16}
	steps := 0
	var out bytes.Buffer
	o := Options{
		TrainStep: func() error { steps++; return nil }, TokensPerStep: 1000, FLOPsPerToken: 1e6,
		Warmup: 3, Steps: 4, PeakGFLOPS: 100, Contexts: []int{32, 64, 128}, MaxContext: 64, DecodeSteps: 5,
		CacheBytes: func(c int) int64 { return int64(8 * c) }, Out: &out,
	}
	r, err := Efficiency(context.Background(), m, o)
	if err != nil {
		t.Fatal(err)
	}
	if steps != 7 {
		t.Fatalf("%d train steps, want 3 warmup + 4 timed", steps)
	}
	if r.TrainStepSeconds <= 0 || math.Abs(r.TrainTokensPerSec*r.TrainStepSeconds-1000) > 1e-6*1000 ||
		math.Abs(r.MFU-1e6*r.TrainTokensPerSec/100e9) > 1e-12 || r.SGEMMGFLOPS != 100 || r.PeakBytes <= 0 {
		t.Fatalf("%+v", r)
	}
	if len(r.Decode) != 4 || r.PrefillTokensPerSec <= 0 {
		t.Fatalf("decode %+v, want contexts 32, 64 × batches 1, 4", r.Decode)
	}
	for _, d := range r.Decode {
		if d.Context > 64 || d.CacheBytes != d.AnalyticBytes || d.CacheBytes != int64(8*d.Batch*(d.Context+6)) || d.TokensPerSec <= 0 {
			t.Fatalf("decode %+v: cache should be 8 bytes a token (prompt + 6 steps) per row", d)
		}
	}
	if !strings.Contains(out.String(), "above MaxContext 64") {
		t.Fatalf("table does not say why 128 was skipped:\n%s", out.String())
	}
}

func TestRunFillsResults(t *testing.T) {
	m := &copier{V: 256}
	o := retrieval(t)
	var out, prog bytes.Buffer
	o.Out, o.Progress = &out, &prog
	o.Suites = []string{"lm", "long_context", "needle", "passkey", "recall", "efficiency"}
	o.LongLengths, o.LMBatches, o.LongSeqs = []int{64, 128}, 2, 2
	o.Contexts, o.DecodeSteps = []int{64}, 2
	res := &results.Results{}
	if err := Run(context.Background(), m, o, res); err != nil {
		t.Fatal(err)
	}
	if res.LM == nil || res.LongContext == nil || res.Needle == nil || res.Passkey == nil || res.MQAR == nil || res.Efficiency == nil {
		t.Fatalf("sections missing: %+v", res)
	}
	for _, k := range []string{"lm.bpb", "needle.accuracy", "passkey.accuracy", "mqar.accuracy", "long_context.nll@128"} {
		if _, ok := res.Metrics[k]; !ok {
			t.Fatalf("metric %s missing from %v", k, res.Metrics)
		}
	}
	for _, s := range []string{"bits/byte", "depth 50%", "passkey", "mqar", "decode"} {
		if !strings.Contains(out.String(), s) {
			t.Fatalf("tables lack %q:\n%s", s, out.String())
		}
	}
	if !strings.Contains(prog.String(), "needle") || !strings.Contains(prog.String(), "100%") {
		t.Fatalf("no progress lines:\n%s", prog.String())
	}
}

func TestRunFailsFast(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Options)
		want []string
	}{
		{"unknown suite", func(o *Options) { o.Suites = []string{"lm", "needles"} }, []string{`"needles"`, "long_context", "passkey"}},
		{"no text", func(o *Options) { o.Suites = []string{"passkey", "lm"}; o.Val = nil }, []string{"lm: no held-out text"}},
		{"no tokenizer", func(o *Options) { o.Suites = []string{"needle"}; o.Tokenizer = nil }, []string{"needle", "Tokenizer"}},
		{"no mqar set", func(o *Options) { o.Suites = []string{"mqar"}; o.MQAR = nil }, []string{"mqar", "held-out set"}},
		{"haystack too short", func(o *Options) { o.Suites = []string{"needle"}; o.NeedleLengths = []int{30000} }, []string{"needs", "haystack"}},
		{"prompt too short", func(o *Options) { o.Suites = []string{"passkey"}; o.PasskeyLengths = []int{20} }, []string{"no room"}},
		{"memory", func(o *Options) {
			o.Suites = []string{"lm", "long_context"}
			o.LongLengths = []int{64, 8192}
			o.Val = byteStream(t, prose(20000))
			o.MemoryBytes = 16 << 20 // length 8192 needs 3·4·8192·256 bytes of logits = 24 MiB
		}, []string{"long_context: length 8192", "available"}},
		{"long text", func(o *Options) { o.Suites = []string{"long_context"}; o.LongLengths = []int{64, 50000} }, []string{"held-out text has"}},
		{"train step", func(o *Options) {
			o.Suites = []string{"efficiency"}
			o.TrainStep = func() error { panic("ran") }
		}, []string{"TokensPerStep"}},
		{"nothing fits", func(o *Options) { o.Suites = []string{"efficiency"}; o.MaxContext = 10 }, []string{"nothing to measure"}},
		{"depth", func(o *Options) { o.Suites = []string{"needle"}; o.Depths = []float64{0.5, 2} }, []string{"depth 2"}},
		{"vocab", func(o *Options) {
			o.Suites = []string{"mqar"}
			o.MQAR, _ = data.NewMQAREval(data.MQAR{Vocab: 512, T: 64, Pairs: 4}, 2, 2, 1)
		}, []string{"512"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &copier{V: 256}
			o := retrieval(t)
			c.edit(&o)
			res := &results.Results{}
			err := Run(context.Background(), m, o, res)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
			if m.calls != 0 || res.LM != nil {
				t.Fatalf("the model was called %d times before the error", m.calls)
			}
		})
	}
}

func TestGreedyBadInput(t *testing.T) {
	m := &copier{V: 16}
	if _, err := Greedy(m, [][]int32{{1, 2}, {1}}, 2, 2); err == nil {
		t.Error("prompts of unequal length accepted")
	}
	if _, err := Greedy(m, nil, 2, 2); err == nil {
		t.Error("no prompts accepted")
	}
	// Short last batch: 3 prompts in batches of 2, each continued correctly.
	got, err := Greedy(m, [][]int32{{5, 6, 7, 5}, {1, 2, 3, 1}, {9, 8, 7, 9}}, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int32{{6, 7}, {2, 3}, {8, 7}}
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("prompt %d: %v, want %v", i, got[i], want[i])
		}
	}
}
