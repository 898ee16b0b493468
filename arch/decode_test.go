package arch_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hybridlab/hybrid/arch"
	"github.com/hybridlab/hybrid/internal/ceiling"
	"github.com/hybridlab/hybrid/internal/numtest"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/kernels/openblas"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/tensor"
)

// decodeCases are the gradient-check cases (every mixer kind and intra variant) plus mixed
// inter-layer stacks and a window without sinks. Every stack has at least two mixer layers:
// Prefill returns only the last position, and with one layer a wrong output at an earlier
// prompt position would never reach it (keys and values come from the embeddings); a second
// layer builds its keys from the first layer's outputs at every position.
func decodeCases() []struct {
	name string
	cfg  arch.Config
} {
	cs := gradCases()
	for i := range cs {
		c := &cs[i].cfg
		c.Layout.Pattern += c.Layout.Pattern
		c.NLayers = len(c.Layout.Pattern)
	}
	add := func(name, pattern string, edit func(c *arch.Config)) {
		c := tiny(pattern)
		if edit != nil {
			edit(&c)
		}
		cs = append(cs, struct {
			name string
			cfg  arch.Config
		}{name, c})
	}
	add("swa/no-sinks", "S", func(c *arch.Config) { c.Attention.Sinks = 0 })
	add("inter/MASM", "MASM", nil)
	add("inter/mamba1-AMSW", "AMSW", func(c *arch.Config) { c.Mamba.Version, c.Mamba.DtRank = 1, 3 })
	for i := range cs {
		cs[i].cfg.InitStd = 0.3 // large weights: logits far from 0, so mismatches show
	}
	return cs
}

// forwardLogits is Forward on a no-grad tape: the reference of the inference paths.
func forwardLogits(t *testing.T, m *arch.Model, ids []int32, B, T int) []float32 {
	t.Helper()
	tp := tensor.NewTape(m.Backend())
	tp.SetNoGrad(true)
	out := m.Forward(tp, ids, B, T)
	if err := tp.Err(); err != nil {
		t.Fatal(err)
	}
	v := make([]float32, out.Size())
	if err := m.Backend().Download(v, out.Buf()); err != nil {
		t.Fatal(err)
	}
	return v
}

// at returns the logits of position p of every stream, (B, V), from (B, T, V).
func at(lg []float32, B, T, V, p int) []float32 {
	out := make([]float32, 0, B*V)
	for b := range B {
		out = append(out, lg[(b*T+p)*V:(b*T+p+1)*V]...)
	}
	return out
}

// cols returns columns [lo, hi) of the (B, T) ids.
func cols(ids []int32, B, T, lo, hi int) []int32 {
	var out []int32
	for b := range B {
		out = append(out, ids[b*T+lo:b*T+hi]...)
	}
	return out
}

// decTol: the decoder splits the same sums differently (SSD chunks restart at each piece, the
// states are carried across calls, single-token kernels replace the chunked ones), so values
// differ by float32 rounding of reductions over the sequence and d_model.
var decTol = numtest.F32.Scaled(64)

// TestDecodeMatchesForward checks, for every layer kind, that Logits, Prefill + Step, Prefill in
// two calls and Prefill in small internal pieces all give Forward's logits.
func TestDecodeMatchesForward(t *testing.T) {
	const B, T, k = 2, 13, 5 // T spans several SSD chunks (4) and windows (3 + 1 sink)
	for _, tc := range decodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := numtest.Rand(t)
			cfg := tc.cfg
			V := cfg.VocabSize
			m, err := arch.Build(cfg, cpu.New(), 3)
			if err != nil {
				t.Fatal(err)
			}
			ids, _ := batch(r, V, B*T)
			want := forwardLogits(t, m, ids, B, T)

			got, err := m.Logits(ids, B, T)
			if err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, "Logits", got, want, decTol)

			// Prefill k tokens, then Step one at a time.
			d, err := m.NewDecoder(B, T)
			if err != nil {
				t.Fatal(err)
			}
			lg, err := d.Prefill(cols(ids, B, T, 0, k), k)
			if err != nil {
				t.Fatal(err)
			}
			numtest.Check(t, fmt.Sprintf("Prefill(%d)", k), lg, at(want, B, T, V, k-1), decTol)
			for p := k; p < T; p++ {
				if lg, err = d.Step(cols(ids, B, T, p, p+1)); err != nil {
					t.Fatal(err)
				}
				numtest.Check(t, fmt.Sprintf("Step at %d", p), lg, at(want, B, T, V, p), decTol)
			}
			if d.Len() != T {
				t.Errorf("Len = %d after %d tokens", d.Len(), T)
			}

			// Reset, then Prefill in two calls (a 1-token prompt first: the step kernels), then in
			// internal pieces of 2 after a Reset; each continues with Steps.
			for _, split := range []struct {
				name   string
				cuts   []int
				pieces int
			}{{"two calls", []int{1, 9}, 0}, {"pieces of 2", []int{9}, 2}, {"calls and pieces", []int{4, 11}, 3}} {
				d.Reset()
				d.Piece = split.pieces
				if d.Len() != 0 {
					t.Fatalf("Len = %d after Reset", d.Len())
				}
				lo := 0
				for _, hi := range split.cuts {
					if lg, err = d.Prefill(cols(ids, B, T, lo, hi), hi-lo); err != nil {
						t.Fatal(err)
					}
					numtest.Check(t, fmt.Sprintf("%s: Prefill [%d, %d)", split.name, lo, hi), lg, at(want, B, T, V, hi-1), decTol)
					lo = hi
				}
				for p := lo; p < T; p++ {
					if lg, err = d.Step(cols(ids, B, T, p, p+1)); err != nil {
						t.Fatal(err)
					}
					numtest.Check(t, fmt.Sprintf("%s: Step at %d", split.name, p), lg, at(want, B, T, V, p), decTol)
				}
			}
		})
	}
}

// TestLogitsLong runs Logits past one piece (DefaultPiece tokens), so the second piece attends to
// the first through the caches, and checks it against Forward; and that it records no gradients.
func TestLogitsLong(t *testing.T) {
	cfg := tiny("MSAI")
	cfg.InitStd = 0.3
	m, err := arch.Build(cfg, cpu.New(), 4)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := numtest.Rand(t)
	const B, T = 1, arch.DefaultPiece + 37
	ids, _ := batch(r, cfg.VocabSize, B*T)
	got, err := m.Logits(ids, B, T)
	if err != nil {
		t.Fatal(err)
	}
	numtest.Check(t, "Logits", got, forwardLogits(t, m, ids, B, T), decTol)
	for _, p := range m.Params() {
		if p.Grad() != nil {
			t.Errorf("%s has a gradient buffer after Logits", p.Name())
		}
	}
}

// TestDecoderBytes compares the measured cache with the accounting (Count.CacheBytes) at several
// context lengths, for every layer kind, and checks the growth laws: sliding windows constant
// once full, global attention linear, Mamba constant.
func TestDecoderBytes(t *testing.T) {
	const B, capacity = 3, 24
	steps := []int{1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 24} // Len after each call
	for _, tc := range decodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			m, err := arch.Build(cfg, cpu.New(), 1)
			if err != nil {
				t.Fatal(err)
			}
			d, err := m.NewDecoder(B, capacity)
			if err != nil {
				t.Fatal(err)
			}
			bytes := map[int]int64{}
			for i, n := range steps {
				for pass := range 2 { // before and after a Reset: kept room must not show in Bytes
					if pass == 1 && i == 0 {
						d.Reset()
					}
					if pass == 1 && i > 0 {
						continue
					}
					add := n - d.Len()
					ids := make([]int32, B*add)
					for j := range ids {
						ids[j] = int32(j % cfg.VocabSize)
					}
					if add == 1 && n%2 == 0 {
						_, err = d.Step(ids)
					} else {
						_, err = d.Prefill(ids, add)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				want, err := cfg.CacheBytes(n, arch.Float32)
				if err != nil {
					t.Fatal(err)
				}
				if got := d.Bytes(); got != B*want {
					t.Errorf("Len %d: Bytes = %d, accounting says B·%d = %d", n, got, want, B*want)
				}
				if d.Reserved() < d.Bytes() {
					t.Errorf("Len %d: Reserved %d < Bytes %d", n, d.Reserved(), d.Bytes())
				}
				bytes[n] = d.Bytes()
			}
			a := cfg.Attention
			full := a.Window + a.Sinks
			switch tc.name {
			case "swa", "swa/no-sinks":
				for _, n := range steps {
					if n >= full && bytes[n] != bytes[full] {
						t.Errorf("window full at %d: Bytes %d at Len %d, %d at %d", full, bytes[full], n, bytes[n], full)
					}
					if n < full && bytes[n] >= bytes[full] {
						t.Errorf("Bytes %d at Len %d, not below %d at full window", bytes[n], n, bytes[full])
					}
				}
			case "attention":
				per := bytes[2] - bytes[1]
				for _, n := range steps {
					if bytes[n] != int64(n)*per {
						t.Errorf("Bytes %d at Len %d, want %d·%d", bytes[n], n, n, per)
					}
				}
			case "mamba1", "mamba2":
				for _, n := range steps {
					if bytes[n] != bytes[1] {
						t.Errorf("Bytes %d at Len %d, %d at Len 1", bytes[n], n, bytes[1])
					}
				}
			}
		})
	}
}

// TestDecoderErrors checks that bad input is an error, not a panic, and leaves the decoder usable.
func TestDecoderErrors(t *testing.T) {
	cfg := tiny("MSA")
	V := int32(cfg.VocabSize)
	m, err := arch.Build(cfg, cpu.New(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, bc := range []struct{ b, c int }{{0, 4}, {2, 0}, {-1, 4}} {
		if _, err := m.NewDecoder(bc.b, bc.c); err == nil {
			t.Errorf("NewDecoder(%d, %d) accepted", bc.b, bc.c)
		}
	}
	d, err := m.NewDecoder(2, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		call       func() error
	}{
		{"Prefill: 3 ids for B=2, T=2", "ids", func() error { _, err := d.Prefill([]int32{1, 2, 3}, 2); return err }},
		{"Prefill: T=0", "T=0", func() error { _, err := d.Prefill(nil, 0); return err }},
		{"Prefill: id = V", "vocabulary", func() error { _, err := d.Prefill([]int32{1, V}, 1); return err }},
		{"Prefill: id < 0", "vocabulary", func() error { _, err := d.Prefill([]int32{-1, 0}, 1); return err }},
		{"Prefill: over capacity", "capacity", func() error { _, err := d.Prefill(make([]int32, 12), 6); return err }},
		{"Step: 1 id for B=2", "ids", func() error { _, err := d.Step([]int32{1}); return err }},
		{"Step: id = V", "vocabulary", func() error { _, err := d.Step([]int32{0, V}); return err }},
		{"Logits: 3 ids for B=2, T=2", "ids", func() error { _, err := m.Logits([]int32{1, 2, 3}, 2, 2); return err }},
		{"Logits: B=0", "B=0", func() error { _, err := m.Logits(nil, 0, 2); return err }},
		{"Logits: id = V", "vocabulary", func() error { _, err := m.Logits([]int32{1, V}, 1, 2); return err }},
	} {
		err := tc.call()
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
	if d.Len() != 0 || d.Bytes() != d.Bytes() {
		t.Fatalf("rejected calls changed the decoder: Len %d", d.Len())
	}
	if _, err := d.Prefill(make([]int32, 8), 4); err != nil {
		t.Fatalf("decoder unusable after rejected calls: %v", err)
	}
	if _, err := d.Step([]int32{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Step([]int32{1, 2}); err == nil || !strings.Contains(err.Error(), "capacity") {
		t.Errorf("Step past capacity 5: err = %v", err)
	}
	if d.Len() != 5 {
		t.Errorf("Len = %d, want 5", d.Len())
	}
}

// BenchmarkDecode times Step on recipes/bench/cpu-inter after a prompt of ctx tokens, and
// reports tokens/s (all streams) and the bytes a step must read (weights + caches) per second,
// against the machine's copy bandwidth: single-token decode is memory-bound.
func BenchmarkDecode(b *testing.B) {
	if _, err := openblas.Use(); err != nil {
		b.Logf("openblas: %v", err)
	}
	rc, err := recipes.Load("bench/cpu-inter", nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := rc.Model
	m, err := arch.Build(cfg, cpu.New(), 1)
	if err != nil {
		b.Fatal(err)
	}
	bw := ceiling.CopyBandwidth()
	const room = 256 // steps before the decoder is refilled
	for _, ctx := range []int{1024, 4096} {
		for _, B := range []int{1, 4} {
			b.Run(fmt.Sprintf("B=%d/ctx=%dK", B, ctx/1024), func(b *testing.B) {
				d, err := m.NewDecoder(B, ctx+room)
				if err != nil {
					b.Fatal(err)
				}
				prompt := make([]int32, B*ctx)
				for i := range prompt {
					prompt[i] = int32(i * 7 % cfg.VocabSize)
				}
				fill := func() {
					d.Reset()
					if _, err := d.Prefill(prompt, ctx); err != nil {
						b.Fatal(err)
					}
				}
				fill()
				ids := make([]int32, B)
				var read float64 // bytes read by the timed steps
				b.ResetTimer()
				start, paused := time.Now(), time.Duration(0)
				for i := range b.N {
					if d.Len() == ctx+room {
						p := time.Now()
						b.StopTimer()
						fill()
						b.StartTimer()
						paused += time.Since(p)
					}
					read += float64(4*m.NumParams() + d.Bytes())
					ids[0] = int32(i % cfg.VocabSize)
					if _, err := d.Step(ids); err != nil {
						b.Fatal(err)
					}
				}
				sec := (time.Since(start) - paused).Seconds()
				b.ReportMetric(float64(b.N*B)/sec, "tok/s")
				b.ReportMetric(read/sec/1e9, "GB/s")
				b.ReportMetric(read/sec/1e9/bw, "frac-copy")
			})
		}
	}
}
