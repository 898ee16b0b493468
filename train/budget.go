package train

import (
	"fmt"
	"math"

	"github.com/hybridlab/hybrid/recipes"
)

// TokensForFLOPs converts a training-compute budget to tokens: flops / flopsPerToken, where
// flopsPerToken is the model's training FLOPs per token (arch.Config.Count(T).TrainFLOPs()).
// Budgets given in FLOPs let designs of different cost per token be compared at equal compute:
// a model twice as expensive per token sees half the tokens.
func TokensForFLOPs(flops, flopsPerToken float64) (int64, error) {
	if !(flopsPerToken > 0) || math.IsInf(flopsPerToken, 0) {
		return 0, fmt.Errorf("train: a FLOP budget needs the model's training FLOPs per token, have %g", flopsPerToken)
	}
	if !(flops > 0) || math.IsInf(flops, 0) {
		return 0, fmt.Errorf("train: FLOP budget %g, want a finite value > 0", flops)
	}
	return int64(flops / flopsPerToken), nil
}

// Steps returns how many optimizer steps a budget allows, each of tokensPerStep tokens
// (A·B·T). Token and FLOP budgets round down (a run never exceeds its budget) and must allow at
// least one step; flopsPerToken is needed only for a FLOP budget.
func Steps(b recipes.Budget, tokensPerStep int64, flopsPerToken float64) (int, error) {
	if tokensPerStep <= 0 {
		return 0, fmt.Errorf("train: %d tokens per step, want > 0", tokensPerStep)
	}
	var tokens int64
	switch {
	case b.Steps > 0 && b.Tokens == 0 && b.FLOPs == 0:
		return b.Steps, nil
	case b.Tokens > 0 && b.Steps == 0 && b.FLOPs == 0:
		tokens = b.Tokens
	case b.FLOPs > 0 && b.Steps == 0 && b.Tokens == 0:
		t, err := TokensForFLOPs(b.FLOPs, flopsPerToken)
		if err != nil {
			return 0, err
		}
		tokens = t
	default:
		return 0, fmt.Errorf("train: budget %+v: set exactly one of tokens, flops, steps, positive", b)
	}
	n := tokens / tokensPerStep
	if n < 1 {
		return 0, fmt.Errorf("train: budget of %d tokens is less than one step of %d tokens", tokens, tokensPerStep)
	}
	return int(n), nil
}
