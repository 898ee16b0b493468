package train_test

import (
	"fmt"

	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/train"
)

// A warmup–stable–decay schedule over 10 steps: 2 of warmup, decay over the last 30%.
func ExampleLR() {
	s := recipes.Schedule{Kind: "wsd", Warmup: 2, DecayFraction: 0.3, MinLRRatio: 0.1}
	for step := 0; step <= 10; step++ {
		fmt.Printf("%.2f ", train.LR(s, 1, step, 10))
	}
	fmt.Println()
	// Output: 0.50 1.00 1.00 1.00 1.00 1.00 1.00 1.00 0.70 0.40 0.10
}

// A FLOP budget becomes steps through the model's training FLOPs per token.
func ExampleSteps() {
	const flopsPerToken = 6 * 10e6 // about 6·N for a 10M-parameter model
	steps, _ := train.Steps(recipes.Budget{FLOPs: 1e15}, 8*256, flopsPerToken)
	fmt.Println(steps)
	// Output: 8138
}
