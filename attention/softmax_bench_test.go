package attention

import "testing"

func BenchmarkExpSubRow(b *testing.B) {
	x, src := make([]float32, 512), make([]float32, 512)
	for i := range src {
		src[i] = float32(i%13) * -0.1
	}
	for b.Loop() {
		copy(x, src)
		expSub(x, 0.5)
	}
	b.SetBytes(4 * 512)
}

func BenchmarkRowMax(b *testing.B) {
	x := make([]float32, 512)
	for i := range x {
		x[i] = float32(i%13) * -0.1
	}
	for b.Loop() {
		rowMax(x)
	}
	b.SetBytes(4 * 512)
}
