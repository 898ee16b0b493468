// Package selectivescan holds the sequence-mixing kernels of the Mamba blocks on the CPU: the
// Mamba-1 selective scan (scan*.go), the causal depthwise conv1d that precedes it (conv1d*.go)
// and the Mamba-2 state-space dual (ssd*.go). Each fast float32 kernel has a float64 reference
// beside it (the ...Ref functions: plain sequential loops, the oracle of the tests), a backward
// pass and a one-token decode step.
//
// Glossary (letters used in shape comments):
//
//	B  batch
//	L  sequence length (tokens)
//	D  channels (d_inner of a Mamba-1 block)
//	N  state size per channel (d_state)
//	G  groups sharing the input-dependent B and C: channel d reads group d/(D/G); G divides D
//	Q  chunk length (ScanDims.Chunk): the backward pass recomputes states one chunk at a time
//	W  conv width (taps per channel, usually 2–4)
//	H, P  heads and head dimension (Mamba-2)
//
// Paper symbols: Δ (delta, the input-dependent step), A (the (D, N) state matrix, negative),
// B and C (named Bm and Cm here, input-dependent input and output maps), D (named Dskip, the skip
// term), z (the gate: out = y·silu(z)), h (the state: N values per channel).
//
// Layout. Activations are token-major, (B, L, D) row-major: element (b, t, d) is at
// (b·L + t)·D + d, so one token's D channels are contiguous. This is the transpose of the CUDA
// kernels' (B, D, L): on a CPU the scan walks tokens in order and keeps a block of channel states
// in cache, and token-major rows make that walk contiguous. Bm and Cm are (B, L, G, N); states
// (initial H0, final hLast, decode state) are (B, D, N); the conv decode state is (B, W−1, D),
// the last W−1 inputs, oldest first.
//
// Gradients follow the project rule: parameter gradients (dA, dDskip, dDeltaBias, conv dw and
// dbias) accumulate into the caller's buffers; activation gradients are assigned. A nil gradient
// buffer means "not wanted".
package selectivescan
