package attention_test

import (
	"fmt"

	"github.com/hybridlab/hybrid/attention"
)

// Causal grouped-query attention with a sliding window: forward, then backward from the
// gradient of the output.
func Example() {
	d := attention.Dims{B: 1, L: 4, S: 4, H: 2, HKV: 1, Dh: 2, Causal: true, Window: 2, Sinks: 1}
	q := []float32{1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0} // (B, L, H, Dh)
	k := []float32{1, 0, 0, 1, 1, 1, 0, 0}                         // (B, S, HKV, Dh)
	v := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	o, lse := make([]float32, len(q)), make([]float32, d.B*d.H*d.L)
	if err := attention.Forward(o, lse, q, k, v, d); err != nil {
		panic(err)
	}
	fmt.Printf("o[token 0] = %.3f\n", o[:4])
	dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
	if err := attention.Backward(dq, dk, dv, o, q, k, v, o, lse, d); err != nil {
		panic(err)
	}
	// Output:
	// o[token 0] = [1.000 2.000 1.000 2.000]
}

// Decoding with a sliding-window cache: memory stays O(Sinks+Window) however many tokens pass.
func ExampleDecode() {
	c, _ := attention.NewKVCache(attention.CacheDims{B: 1, HKV: 1, Dh: 2, Window: 4, Sinks: 1})
	o := make([]float32, 2)
	for t := range 100 {
		kv := []float32{float32(t % 3), 1}
		if err := c.Append(kv, kv, 1); err != nil {
			panic(err)
		}
		if err := attention.Decode(o, []float32{1, 0}, c, attention.DecodeDims{H: 1}); err != nil {
			panic(err)
		}
	}
	fmt.Println(c.Len(), "tokens,", c.Bytes(), "bytes")
	// Output: 100 tokens, 80 bytes
}
