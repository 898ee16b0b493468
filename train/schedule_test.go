package train

import (
	"math"
	"strings"
	"testing"

	"github.com/hybridlab/hybrid/recipes"
)

func TestLR(t *testing.T) {
	const lr = 1.0
	cos := recipes.Schedule{Kind: "cosine", Warmup: 10, MinLRRatio: 0.1}
	wsd := recipes.Schedule{Kind: "wsd", Warmup: 10, DecayFraction: 0.2, MinLRRatio: 0}
	wsdMin := recipes.Schedule{Kind: "wsd", Warmup: 0, DecayFraction: 0.5, MinLRRatio: 0.5}
	con := recipes.Schedule{Kind: "constant", Warmup: 4}
	for _, c := range []struct {
		name        string
		s           recipes.Schedule
		step, total int
		want        float64
	}{
		{"cosine first warmup step", cos, 0, 110, 0.1},
		{"cosine warmup middle", cos, 4, 110, 0.5},
		{"cosine peak", cos, 10, 110, 1},
		{"cosine half way", cos, 60, 110, 0.55},
		{"cosine end", cos, 110, 110, 0.1},
		{"cosine past end", cos, 200, 110, 0.1},
		{"wsd warmup", wsd, 1, 100, 0.2},
		{"wsd stable", wsd, 50, 100, 1},
		{"wsd last stable", wsd, 79, 100, 1},
		{"wsd decay start", wsd, 80, 100, 1},
		{"wsd decay middle", wsd, 90, 100, 0.5},
		{"wsd last step", wsd, 99, 100, 0.05},
		{"wsd end", wsd, 100, 100, 0},
		{"wsd to min ratio", wsdMin, 15, 20, 0.75},
		{"wsd overlap with warmup", recipes.Schedule{Kind: "wsd", Warmup: 4, DecayFraction: 1}, 1, 4, 0.5 * 0.75},
		{"constant warmup", con, 1, 100, 0.5},
		{"constant", con, 50, 100, 1},
		{"constant end", con, 100, 100, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := LR(c.s, lr, c.step, c.total); math.Abs(got-c.want) > 1e-12 {
				t.Errorf("LR(step %d of %d) = %v, want %v", c.step, c.total, got, c.want)
			}
		})
	}
}

// The schedules never rise after warmup and stay within [min, lr].
func TestLRShape(t *testing.T) {
	for _, s := range []recipes.Schedule{
		{Kind: "cosine", Warmup: 7, MinLRRatio: 0.1},
		{Kind: "wsd", Warmup: 7, DecayFraction: 0.3, MinLRRatio: 0.1},
		{Kind: "constant", Warmup: 7},
	} {
		prev := math.Inf(1)
		for step := s.Warmup; step <= 57; step++ {
			got := LR(s, 2, step, 57)
			if got > prev+1e-15 || got < 0.2-1e-12 || got > 2 {
				t.Fatalf("%s: LR(%d) = %v after %v", s.Kind, step, got, prev)
			}
			prev = got
		}
	}
}

func TestCheckSchedule(t *testing.T) {
	for _, s := range []recipes.Schedule{{Kind: "linear"}, {Kind: "wsd"}, {Kind: "cosine", MinLRRatio: 2}} {
		if err := CheckSchedule(s); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	if err := CheckSchedule(recipes.Schedule{Kind: "wsd", DecayFraction: 0.2}); err != nil {
		t.Error(err)
	}
}

func TestBudget(t *testing.T) {
	for _, c := range []struct {
		name    string
		b       recipes.Budget
		perStep int64
		fpt     float64
		want    int
		err     string
	}{
		{"steps", recipes.Budget{Steps: 12}, 1000, 0, 12, ""},
		{"tokens round down", recipes.Budget{Tokens: 12_999}, 1000, 0, 12, ""},
		{"flops", recipes.Budget{FLOPs: 6e9}, 1000, 1e6, 6, ""},
		// A design twice as expensive per token gets half the tokens at equal compute.
		{"flops costly model", recipes.Budget{FLOPs: 6e9}, 1000, 2e6, 3, ""},
		{"flops without cost", recipes.Budget{FLOPs: 6e9}, 1000, 0, 0, "FLOPs per token"},
		{"less than a step", recipes.Budget{Tokens: 999}, 1000, 0, 0, "less than one step"},
		{"two set", recipes.Budget{Tokens: 5000, Steps: 3}, 1000, 0, 0, "exactly one"},
		{"none set", recipes.Budget{}, 1000, 0, 0, "exactly one"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Steps(c.b, c.perStep, c.fpt)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Steps = %d, %v; want %d", got, err, c.want)
			}
		})
	}
	if n, err := TokensForFLOPs(1e12, 3*2*1e6); err != nil || n != 166_666 {
		t.Errorf("TokensForFLOPs = %d, %v; want 166666", n, err)
	}
}
