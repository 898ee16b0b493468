// Fused cross-entropy over logits (R, V) with an ignore index: one block per row.
// Forward: lse (R) = log Σ exp(logits), rowloss (R) = lse − logit[target] (0 and lse = 0 for
// ignored rows); the host sums rowloss in float64 and divides by the scored count.
// Backward: dlogits = scale·(softmax − onehot) for scored rows, 0 for ignored rows, where
// scale = dloss / count is computed on the host.
#include "common.cuh"

KERNEL ce_fwd(float *lse, float *rowloss, const float *logits, const int *targets, int r, int v, int ignore) {
  __shared__ float sh[32];
  int row = blockIdx.x;
  if (row >= r) return;
  int t = targets[row];
  if (t == ignore) {
    if (threadIdx.x == 0) lse[row] = rowloss[row] = 0;
    return;
  }
  const float *x = logits + (i64)row * v;
  float m = -F_INF;
  for (int j = threadIdx.x; j < v; j += blockDim.x) m = f_max(m, x[j]);
  m = block_max(m, sh);
  float s = 0;
  for (int j = threadIdx.x; j < v; j += blockDim.x) s += f_exp(x[j] - m);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) {
    float l = m + f_log(s);
    lse[row] = l;
    rowloss[row] = l - x[t];
  }
}

KERNEL ce_bwd(float *dlogits, const float *logits, const int *targets, const float *lse, int r, int v, int ignore,
              float scale) {
  int row = blockIdx.x;
  if (row >= r) return;
  int t = targets[row];
  float *dl = dlogits + (i64)row * v;
  if (t == ignore) {
    for (int j = threadIdx.x; j < v; j += blockDim.x) dl[j] = 0;
    return;
  }
  const float *x = logits + (i64)row * v;
  float l = lse[row];
  for (int j = threadIdx.x; j < v; j += blockDim.x) {
    float p = f_exp(x[j] - l);
    dl[j] = (j == t ? p - 1.0f : p) * scale;
  }
}
