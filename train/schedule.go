package train

import (
	"fmt"
	"math"

	"github.com/hybridlab/hybrid/recipes"
)

// LR returns the learning rate of the step that follows `step` completed steps (step = 0 is the
// first update) out of total, for peak rate lr and schedule s. It is a pure function of its
// arguments, so a resumed run follows the same curve.
//
//   - warmup: the first s.Warmup steps rise linearly, lr·(step+1)/warmup, so the first update is
//     not wasted at rate 0.
//   - cosine: after warmup, min + ½(lr − min)(1 + cos(π·p)) with p = (step − warmup)/(total − warmup).
//   - wsd (warmup–stable–decay, the trapezoid): lr until the last ⌈decay_fraction·total⌉ steps,
//     then linear to min: min + (lr − min)·(total − step)/decay. Warmup and decay multiply when a
//     short run makes them overlap.
//   - constant: lr after warmup.
//
// min = s.MinLRRatio·lr. Both decays reach min exactly at step = total (after the last update).
func LR(s recipes.Schedule, lr float64, step, total int) float64 {
	if step < 0 {
		step = 0
	}
	f := 1.0
	if step < s.Warmup {
		f = float64(step+1) / float64(s.Warmup)
	}
	minLR := s.MinLRRatio * lr
	switch s.Kind {
	case "cosine":
		if step < s.Warmup {
			return lr * f
		}
		n := total - s.Warmup
		if n <= 0 {
			return minLR
		}
		p := min(float64(step-s.Warmup)/float64(n), 1)
		return minLR + 0.5*(lr-minLR)*(1+math.Cos(math.Pi*p))
	case "wsd":
		d := decaySteps(s.DecayFraction, total)
		if start := total - d; step >= start && d > 0 {
			w := max(float64(total-step)/float64(d), 0)
			return f * (minLR + (lr-minLR)*w)
		}
		return lr * f
	default: // constant
		return lr * f
	}
}

// decaySteps is the length of the wsd decay: ⌈fraction·total⌉.
func decaySteps(fraction float64, total int) int {
	return min(int(math.Ceil(fraction*float64(total)-1e-9)), total)
}

// CheckSchedule reports a schedule LR cannot follow.
func CheckSchedule(s recipes.Schedule) error {
	switch s.Kind {
	case "cosine", "constant":
	case "wsd":
		if !(s.DecayFraction > 0 && s.DecayFraction <= 1) {
			return fmt.Errorf("train: wsd schedule needs decay_fraction in (0, 1], have %g", s.DecayFraction)
		}
	default:
		return fmt.Errorf("train: schedule %q is not one of cosine, wsd, constant", s.Kind)
	}
	if s.Warmup < 0 || s.MinLRRatio < 0 || s.MinLRRatio > 1 {
		return fmt.Errorf("train: schedule warmup %d, min_lr_ratio %g: want warmup ≥ 0 and ratio in [0, 1]", s.Warmup, s.MinLRRatio)
	}
	return nil
}
