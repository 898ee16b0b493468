package data

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// counting returns a stream 0, 1, 2, … n-1 over a vocabulary of n, so a token is its position.
func counting(t *testing.T, n int) *Stream {
	t.Helper()
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	s, err := NewStream(ids, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// draw copies the next k batches of l.
func draw(l *Loader, k int) []Batch {
	var out []Batch
	var b Batch
	for range k {
		l.Next(&b)
		out = append(out, Batch{B: b.B, T: b.T, Inputs: append([]int32{}, b.Inputs...), Targets: append([]int32{}, b.Targets...)})
	}
	return out
}

func TestLoaderWindows(t *testing.T) {
	tests := []struct{ n, B, T int }{
		{1000, 4, 16}, {17, 1, 16}, {18, 3, 16}, {100, 7, 1}, {5000, 8, 63},
	}
	for _, tt := range tests {
		s := counting(t, tt.n)
		l, err := NewLoader(s, tt.B, tt.T, 1)
		if err != nil {
			t.Fatal(err)
		}
		var b Batch
		l.Next(&b)
		if b.B != tt.B || b.T != tt.T || len(b.Inputs) != tt.B*tt.T || len(b.Targets) != tt.B*tt.T {
			t.Fatalf("batch %d×%d with %d inputs, want %d×%d", b.B, b.T, len(b.Inputs), tt.B, tt.T)
		}

		// One window a batch, over three epochs: every row is T+1 consecutive tokens (targets
		// are inputs shifted by one) and each epoch serves each of its windows once.
		l, _ = NewLoader(s, 1, tt.T, 1)
		for e := range 3 {
			starts := map[int32]int{}
			serve := func() {
				l.Next(&b)
				for i := range tt.T {
					if b.Inputs[i] != b.Inputs[0]+int32(i) || b.Targets[i] != b.Inputs[i]+1 {
						t.Fatalf("n=%d T=%d: row %v → %v is not consecutive", tt.n, tt.T, b.Inputs, b.Targets)
					}
				}
				starts[b.Inputs[0]]++
			}
			serve() // moves into epoch e
			for range l.Windows() - 1 {
				serve()
			}
			if l.Epoch() != e {
				t.Fatalf("epoch %d, want %d", l.Epoch(), e)
			}
			if want := (tt.n - 1 - l.shift) / tt.T; l.Windows() != want || len(starts) != want {
				t.Fatalf("epoch %d: %d windows, %d distinct served, want %d", e, l.Windows(), len(starts), want)
			}
			for k := range l.Windows() {
				if starts[int32(l.shift+k*tt.T)] != 1 {
					t.Fatalf("epoch %d: window %d served %d times", e, k, starts[int32(l.shift+k*tt.T)])
				}
			}
		}
	}
}

func TestLoaderSeedAndResume(t *testing.T) {
	s := counting(t, 10000)
	l1, _ := NewLoader(s, 8, 32, 42)
	l2, _ := NewLoader(s, 8, 32, 42)
	l3, _ := NewLoader(s, 8, 32, 43)
	a, b, c := draw(l1, 100), draw(l2, 100), draw(l3, 100) // 100·8 windows: past epoch 0 (≈312)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different batches")
	}
	if reflect.DeepEqual(a[0], c[0]) {
		t.Fatal("different seeds, same first batch")
	}
	if l1.Epoch() < 2 {
		t.Fatalf("epoch %d after 800 windows of ~312: test does not cross epochs", l1.Epoch())
	}

	// Save after k batches (through JSON, as a checkpoint would), restore in a fresh loader.
	for _, k := range []int{0, 1, 39, 78} {
		l, _ := NewLoader(s, 8, 32, 42)
		draw(l, k)
		js, err := json.Marshal(l.State())
		if err != nil {
			t.Fatal(err)
		}
		var st State
		json.Unmarshal(js, &st)
		r, _ := NewLoader(s, 8, 32, 42)
		draw(r, 3) // somewhere else first
		if err := r.Restore(st); err != nil {
			t.Fatal(err)
		}
		if got := draw(r, 100-k); !reflect.DeepEqual(got, a[k:]) {
			t.Fatalf("resumed after %d batches: different batches", k)
		}
	}

	// Restoring onto another seed, T or stream is an error.
	st := l1.State()
	for name, l := range map[string]*Loader{
		"seed":   must(NewLoader(s, 8, 32, 7)),
		"T":      must(NewLoader(s, 8, 16, 42)),
		"stream": must(NewLoader(counting(t, 9999), 8, 32, 42)),
	} {
		if err := l.Restore(st); err == nil {
			t.Errorf("restore onto another %s: no error", name)
		}
	}
	bad := st
	bad.Pos = 1 << 30
	if err := l1.Restore(bad); err == nil || !strings.Contains(err.Error(), "past") {
		t.Errorf("position past the epoch: err = %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestEval(t *testing.T) {
	s := counting(t, 100)
	e, err := NewEval(s, 4, 10) // 9 windows: batches of 4, 4, 1
	if err != nil {
		t.Fatal(err)
	}
	if e.Len() != 3 || e.Windows() != 9 {
		t.Fatalf("Len, Windows = %d, %d, want 3, 9", e.Len(), e.Windows())
	}
	for pass := range 2 {
		var b Batch
		var rows []int
		next := int32(0)
		for e.Next(&b) {
			rows = append(rows, b.B)
			for i := range b.B * b.T {
				if b.Inputs[i] != next || b.Targets[i] != next+1 {
					t.Fatalf("pass %d: token %d is %d→%d, want %d→%d", pass, i, b.Inputs[i], b.Targets[i], next, next+1)
				}
				next++
			}
		}
		if !reflect.DeepEqual(rows, []int{4, 4, 1}) || next != 90 {
			t.Fatalf("pass %d: rows %v, %d tokens", pass, rows, next)
		}
		e.Reset()
	}
}

func TestBatchErrors(t *testing.T) {
	s := counting(t, 10)
	tests := []struct {
		name string
		B, T int
		want string
	}{
		{"zero B", 0, 4, "B=0"},
		{"negative T", 1, -1, "T=-1"},
		{"short stream", 1, 10, "want ≥ T+1 = 11"},
	}
	for _, tt := range tests {
		if _, err := NewLoader(s, tt.B, tt.T, 0); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewLoader %s: err = %v", tt.name, err)
		}
		if _, err := NewEval(s, tt.B, tt.T); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewEval %s: err = %v", tt.name, err)
		}
	}
}
