package data

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// checkMQAR verifies one example against the task's definition and returns the query slots.
func checkMQAR(t *testing.T, q MQAR, in, tg []int32) []int {
	t.Helper()
	K, half := q.Pairs, int32(q.Vocab/2)
	kv := map[int32]int32{}
	seenV := map[int32]bool{}
	for j := range K {
		k, v := in[2*j], in[2*j+1]
		if k < 1 || k >= half {
			t.Fatalf("key %d at %d outside [1, %d)", k, 2*j, half)
		}
		if v < half || int(v) >= q.Vocab {
			t.Fatalf("value %d at %d outside [%d, %d)", v, 2*j+1, half, q.Vocab)
		}
		if _, dup := kv[k]; dup || seenV[v] {
			t.Fatalf("key %d or value %d repeated", k, v)
		}
		kv[k], seenV[v] = v, true
		if tg[2*j] != -1 || tg[2*j+1] != -1 {
			t.Fatalf("kv position %d is scored", 2*j)
		}
	}
	var slots []int
	queried := map[int32]bool{}
	for p := 2 * K; p < q.T; p++ {
		if in[p] == 0 {
			if tg[p] != -1 {
				t.Fatalf("position %d: filler scored with target %d", p, tg[p])
			}
			continue
		}
		if (p-2*K)%2 != 0 {
			t.Fatalf("query at odd offset %d", p)
		}
		v, ok := kv[in[p]]
		if !ok || queried[in[p]] {
			t.Fatalf("position %d: %d is not an unqueried key", p, in[p])
		}
		if tg[p] != v {
			t.Fatalf("position %d: target %d, want the value %d of key %d", p, tg[p], v, in[p])
		}
		queried[in[p]] = true
		slots = append(slots, (p-2*K)/2)
	}
	if len(queried) != K {
		t.Fatalf("%d keys queried, want all %d", len(queried), K)
	}
	return slots
}

func TestMQARExample(t *testing.T) {
	for _, q := range []MQAR{{Vocab: 256, T: 64, Pairs: 8}, {Vocab: 8192, T: 128, Pairs: 8}, {Vocab: 17, T: 16, Pairs: 4}, {Vocab: 9, T: 8, Pairs: 2}} {
		t.Run(q.String(), func(t *testing.T) {
			in, tg := make([]int32, q.T), make([]int32, q.T)
			for i := range uint64(200) {
				if err := q.Example(in, tg, 3, i); err != nil {
					t.Fatal(err)
				}
				checkMQAR(t, q, in, tg)
				scored := 0
				for _, x := range tg {
					if x >= 0 {
						scored++
					}
				}
				if scored != q.Pairs {
					t.Fatalf("%d scored positions, want %d", scored, q.Pairs)
				}
			}
		})
	}
}

func TestMQARDeterministic(t *testing.T) {
	q := MQAR{Vocab: 256, T: 64, Pairs: 8}
	a, at := make([]int32, 64), make([]int32, 64)
	b, bt := make([]int32, 64), make([]int32, 64)
	_ = q.Example(a, at, 1, 5)
	_ = q.Example(b, bt, 1, 5)
	if !slices.Equal(a, b) || !slices.Equal(at, bt) {
		t.Fatal("same seed and index gave different examples")
	}
	_ = q.Example(b, bt, 1, 6)
	if slices.Equal(a, b) {
		t.Fatal("examples 5 and 6 are equal")
	}
	_ = q.Example(b, bt, 2, 5)
	if slices.Equal(a, b) {
		t.Fatal("seeds 1 and 2 gave the same example")
	}
}

// The query slots follow the power law: slot 0 is drawn first far more often than uniform.
func TestMQARGapPowerLaw(t *testing.T) {
	q := MQAR{Vocab: 256, T: 64, Pairs: 4} // 28 slots
	in, tg := make([]int32, 64), make([]int32, 64)
	counts := make([]int, (q.T-2*q.Pairs)/2)
	const n = 4000
	for i := range uint64(n) {
		_ = q.Example(in, tg, 9, i)
		for _, s := range checkMQAR(t, q, in, tg) {
			counts[s]++
		}
	}
	// Expected count of slot s is at most K·n and at least n·p_s; check the ratio of the first
	// to the last slot against the power law's p_0/p_last = 28^0.99 ≈ 27 (without replacement
	// flattens it; well above 4 either way), and that every slot is reachable.
	if counts[0] < 4*counts[len(counts)-1] {
		t.Fatalf("slot counts %v: near slots not favoured", counts)
	}
	w := newGapWeights(q)
	if math.Abs(w[0]/w[1]-math.Pow(2, 1-MQARPower)) > 1e-12 {
		t.Fatalf("weights %v do not follow a·i^(a−1)", w[:2])
	}
}

func TestMQARBadInput(t *testing.T) {
	for _, c := range []struct {
		q    MQAR
		want string
	}{
		{MQAR{Vocab: 256, T: 63, Pairs: 8}, "odd"},
		{MQAR{Vocab: 256, T: 64, Pairs: 17}, "4·pairs"},
		{MQAR{Vocab: 64, T: 64, Pairs: 8}, "exceed"},
		{MQAR{Vocab: 0, T: 64, Pairs: 8}, "> 0"},
		{MQAR{Vocab: 256, T: 64, Pairs: 8, Power: 2}, "power"},
	} {
		if err := c.q.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.q, err, c.want)
		}
	}
	q := MQAR{Vocab: 256, T: 64, Pairs: 8}
	if err := q.Example(make([]int32, 63), make([]int32, 64), 0, 0); err == nil {
		t.Error("short inputs accepted")
	}
	if _, err := NewMQARLoader(q, 0, 0, 1); err == nil {
		t.Error("B=0 accepted")
	}
	if _, err := NewMQAREval(q, 4, 0, 1); err == nil {
		t.Error("n=0 accepted")
	}
}

func TestMQARLoaderResume(t *testing.T) {
	q := MQAR{Vocab: 256, T: 64, Pairs: 8}
	for _, n := range []int{0, 10} {
		a, _ := NewMQARLoader(q, 3, n, 42)
		var b1, b2 Batch
		for range 5 {
			a.Next(&b1)
			for r := range b1.B {
				checkMQAR(t, q, b1.Inputs[r*64:(r+1)*64], b1.Targets[r*64:(r+1)*64])
			}
		}
		st := a.State()
		b, _ := NewMQARLoader(q, 3, n, 42)
		if err := b.Restore(st); err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			a.Next(&b1)
			b.Next(&b2)
			if !slices.Equal(b1.Inputs, b2.Inputs) || !slices.Equal(b1.Targets, b2.Targets) {
				t.Fatalf("examples=%d: batch %d after restore differs", n, i)
			}
		}
		other, _ := NewMQARLoader(q, 3, n, 43)
		if err := other.Restore(st); err == nil {
			t.Fatal("restore onto another seed accepted")
		}
	}
	// A fixed set of 10 examples: every epoch serves each of them once.
	l, _ := NewMQARLoader(q, 5, 10, 1)
	set := map[string]int{}
	var b Batch
	for range 4 { // two epochs
		l.Next(&b)
		for r := range 5 {
			set[string(rune32(b.Inputs[r*64:(r+1)*64]))]++
		}
	}
	if len(set) != 10 {
		t.Fatalf("%d distinct examples over two epochs of 10", len(set))
	}
	for k, c := range set {
		if c != 2 {
			t.Fatalf("example %.8q served %d times in two epochs", k, c)
		}
	}
}

func rune32(ids []int32) []rune {
	r := make([]rune, len(ids))
	for i, id := range ids {
		r[i] = rune(id)
	}
	return r
}

// The held-out set is fixed and disjoint in seed stream from training.
func TestMQAREval(t *testing.T) {
	q := MQAR{Vocab: 256, T: 64, Pairs: 8}
	ev, err := NewMQAREval(q, 4, 10, 42)
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	var first []int32
	rows := 0
	for ev.Next(&b) {
		if first == nil {
			first = slices.Clone(b.Inputs)
		}
		rows += b.B
	}
	if rows != 10 || ev.Len() != 3 || b.B != 2 {
		t.Fatalf("rows %d, batches %d, last batch %d; want 10, 3, 2", rows, ev.Len(), b.B)
	}
	ev.Reset()
	ev.Next(&b)
	if !slices.Equal(first, b.Inputs) {
		t.Fatal("second pass differs")
	}
	tr, _ := NewMQARLoader(q, 4, 0, 42)
	var tb Batch
	tr.Next(&tb)
	if slices.Equal(tb.Inputs, b.Inputs) {
		t.Fatal("held-out set repeats the training stream")
	}
}
