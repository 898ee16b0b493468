//go:build !amd64 || purego

package attention

const useAVX2 = false

func expSubAVX2(x []float32, m float32) float32 { panic("unreachable") }

func rowMaxAVX2(x []float32) float32 { panic("unreachable") }
