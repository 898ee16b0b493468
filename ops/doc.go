// Package ops holds the small fused ops of a hybrid Mamba–attention language model, each a
// float32 forward/backward pair with a float64 reference (the ...Ref functions, plain loops, the
// test oracle) of the same shapes:
//
//   - Embedding, Linear (and MatMul), RMSNorm, LayerNorm, GroupNorm, GatedRMSNorm (Mamba-2),
//   - elementwise SiLU, Softplus, SwiGLU, Add, Scale,
//   - CrossEntropy fused with log-softmax (and CrossEntropyFused, forward and backward in one pass),
//   - AdamW and global-norm gradient clipping.
//
// Glossary (all activations are token-major rows, index r*D + d):
//
//	R  rows = B·L tokens
//	D  channels of a row
//	G  groups of D/G consecutive channels (GroupNorm, GatedRMSNorm)
//	V  vocabulary size (embedding table rows, logits columns)
//	In, Out  input and output features of a Linear; W is stored (Out, In) as PyTorch does
//	N  length of a flat elementwise slice
//
// Argument order is outputs, inputs, saved tensors, sizes, hyperparameters. Parameter gradients
// (dw, db, dtable, dweight) ACCUMULATE into the caller's buffers; activation gradients (dx, dz,
// dlogits...) are ASSIGNED. Every function validates its sizes and slice lengths first and returns
// an error naming the op, the argument and the shapes; nothing panics on bad input.
//
// Kernels split rows over cores with internal/par once an input is big enough, and allocate only
// per-core partial sums of parameter gradients (none when one core does the work).
package ops
