package data

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// goSplit is the real Go corpus, or a skip.
func goSplit(b *testing.B) *Split {
	s, err := GoSource()
	if err != nil {
		b.Skip(err)
	}
	return s
}

// BenchmarkPackGoSource packs the whole training part with the byte tokenizer.
func BenchmarkPackGoSource(b *testing.B) {
	src := goSplit(b)
	for b.Loop() {
		s, err := Pack(src.Train, ByteTokenizer{}, NoSep)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(src.Train.Bytes())
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(s.Len()), "tokens")
		b.ReportMetric(float64(ms.HeapAlloc)/float64(s.Len()), "live-B/token")
	}
}

// BenchmarkTrainBPE trains on a hash-chosen subset of the Go corpus of about MB megabytes.
func BenchmarkTrainBPE(b *testing.B) {
	src := goSplit(b)
	for _, c := range []struct {
		frac  float64
		vocab int
	}{{0.02, 4096}, {0.06, 4096}, {0.06, 16384}} {
		sub := src.Train.Subset(c.frac, "bench")
		b.Run(fmt.Sprintf("MB=%.1f/vocab=%d", float64(sub.Bytes())/1e6, c.vocab), func(b *testing.B) {
			for b.Loop() {
				t0 := time.Now()
				tok, err := TrainBPE(sub, c.vocab)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(sub.Bytes())/1e6/time.Since(t0).Seconds(), "MB/s")
				b.ReportMetric(float64(tok.VocabSize()), "vocab")
			}
		})
	}
}

// BenchmarkPackBPE tokenises the validation part with a BPE trained on 2% of the training part.
func BenchmarkPackBPE(b *testing.B) {
	src := goSplit(b)
	tok, err := TrainBPE(src.Train.Subset(0.02, "bench"), 4096)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Pack(src.Val, tok, NoSep)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(src.Val.Bytes())
		b.ReportMetric(float64(src.Val.Bytes())/float64(s.Len()), "bytes/token")
	}
}

// BenchmarkLoader draws (B, T) batches from a 10M-token stream.
func BenchmarkLoader(b *testing.B) {
	ids := make([]int32, 10_000_000)
	for i := range ids {
		ids[i] = int32(i % 256)
	}
	s, _ := NewStream(ids, 256)
	for _, bt := range [][2]int{{8, 256}, {32, 1024}} {
		b.Run(fmt.Sprintf("B=%d/T=%d", bt[0], bt[1]), func(b *testing.B) {
			l, _ := NewLoader(s, bt[0], bt[1], 1)
			var batch Batch
			for b.Loop() {
				l.Next(&batch)
			}
			b.ReportMetric(float64(b.N*bt[0]*bt[1])/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
