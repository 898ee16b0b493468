// Causal depthwise conv1d, token-major (B, L, D), weights (D, W), state (B, W−1, D), as
// selectivescan.Conv1DForward: with xpad = state0 ++ x (zeros for a nil state0),
//   pre[b,t,d] = bias[d] + Σ_k w[d,k]·xpad[b, t−(W−1)+k, d],  out = silu(pre) or pre,
//   stateOut[b,j,d] = xpad[b, L−(W−1)+j, d].
// The decode step is conv_fwd with L = 1. stateOut may alias state0 on the Go side, so the
// state kernel writes a scratch that the host copies after conv_fwd has read state0.
#include "common.cuh"

#define CONV_MAXW 16

// xpad reads position p ∈ [−(W−1), L) of batch b, channel c.
DEV float xpad(const float *x, const float *s0, int b, int p, int c, int L, int D, int W) {
  if (p >= 0) return x[((i64)b * L + p) * D + c];
  if (!s0) return 0.0f;
  return s0[((i64)b * (W - 1) + (W - 1) + p) * D + c];
}

DEV float conv_pre(const float *x, const float *w, const float *bias, const float *s0, int b, int t, int c, int L, int D,
                   int W) {
  float v = bias ? bias[c] : 0.0f;
  for (int k = 0; k < W; k++) v += w[c * W + k] * xpad(x, s0, b, t - (W - 1) + k, c, L, D, W);
  return v;
}

KERNEL conv_fwd(float *out, const float *x, const float *w, const float *bias, const float *s0, int silu, int B, int L,
                int D, int W) {
  i64 total = (i64)B * L * D;
  for (i64 i = gtid(); i < total; i += gstride()) {
    int c = (int)(i % D);
    i64 bt = i / D;
    int t = (int)(bt % L), b = (int)(bt / L);
    float v = conv_pre(x, w, bias, s0, b, t, c, L, D, W);
    out[i] = silu ? f_silu(v) : v;
  }
}

// conv_state: stateOut (B, W−1, D) = the last W−1 entries of xpad.
KERNEL conv_state(float *stateOut, const float *x, const float *s0, int B, int L, int D, int W) {
  i64 total = (i64)B * (W - 1) * D;
  for (i64 i = gtid(); i < total; i += gstride()) {
    int c = (int)(i % D);
    i64 bj = i / D;
    int j = (int)(bj % (W - 1)), b = (int)(bj / (W - 1));
    stateOut[i] = xpad(x, s0, b, L - (W - 1) + j, c, L, D, W);
  }
}

// conv_dpre: dpre = dout·silu'(pre) (recomputing pre), or dout without silu.
KERNEL conv_dpre(float *dpre, const float *dout, const float *x, const float *w, const float *bias, const float *s0,
                 int silu, int B, int L, int D, int W) {
  i64 total = (i64)B * L * D;
  for (i64 i = gtid(); i < total; i += gstride()) {
    if (!silu) {
      dpre[i] = dout[i];
      continue;
    }
    int c = (int)(i % D);
    i64 bt = i / D;
    int t = (int)(bt % L), b = (int)(bt / L);
    dpre[i] = dout[i] * f_dsilu(conv_pre(x, w, bias, s0, b, t, c, L, D, W));
  }
}

// dxpad at position p: Σ_k w[d,k]·dpre[t = p+(W−1)−k] over t ∈ [0, L), plus dstateOut when p is
// one of the last W−1 positions.
DEV float conv_dxpad(const float *dpre, const float *dso, const float *w, int b, int p, int c, int L, int D, int W) {
  float v = 0;
  for (int k = 0; k < W; k++) {
    int t = p + (W - 1) - k;
    if (t >= 0 && t < L) v += w[c * W + k] * dpre[((i64)b * L + t) * D + c];
  }
  int jo = p - (L - (W - 1));
  if (dso && jo >= 0) v += dso[((i64)b * (W - 1) + jo) * D + c];
  return v;
}

// conv_dx: dx (B, L, D) assigned.
KERNEL conv_dx(float *dx, const float *dpre, const float *dso, const float *w, int B, int L, int D, int W) {
  i64 total = (i64)B * L * D;
  for (i64 i = gtid(); i < total; i += gstride()) {
    int c = (int)(i % D);
    i64 bt = i / D;
    int t = (int)(bt % L), b = (int)(bt / L);
    dx[i] = conv_dxpad(dpre, dso, w, b, t, c, L, D, W);
  }
}

// conv_ds0: dstate0 (B, W−1, D) assigned; state0 entry j sits at position j − (W−1).
KERNEL conv_ds0(float *ds0, const float *dpre, const float *dso, const float *w, int B, int L, int D, int W) {
  i64 total = (i64)B * (W - 1) * D;
  for (i64 i = gtid(); i < total; i += gstride()) {
    int c = (int)(i % D);
    i64 bj = i / D;
    int j = (int)(bj % (W - 1)), b = (int)(bj / (W - 1));
    ds0[i] = conv_dxpad(dpre, dso, w, b, j - (W - 1), c, L, D, W);
  }
}

// conv_dw_partial: per row stripe s = blockIdx.y, part[s, d·W + k] = Σ_rows dpre·xpad and
// part[s, D·W + d] = Σ_rows dpre. Block (32, 8): x = channel in a 32-channel tile, y = row lane.
// The host reduces the stripes with col_sum_acc into dw and dbias. W ≤ CONV_MAXW.
KERNEL conv_dw_partial(float *part, const float *dpre, const float *x, const float *s0, int B, int L, int D, int W) {
  __shared__ float sh[8][32][CONV_MAXW + 1];
  int c = blockIdx.x * 32 + threadIdx.x;
  float acc[CONV_MAXW + 1];
  for (int k = 0; k <= CONV_MAXW; k++) acc[k] = 0;
  if (c < D) {
    for (i64 bt = (i64)blockIdx.y * 8 + threadIdx.y; bt < (i64)B * L; bt += (i64)gridDim.y * 8) {
      int t = (int)(bt % L), b = (int)(bt / L);
      float g = dpre[bt * D + c];
      for (int k = 0; k < CONV_MAXW; k++)
        if (k < W) acc[k] += g * xpad(x, s0, b, t - (W - 1) + k, c, L, D, W);
      acc[CONV_MAXW] += g;
    }
  }
  for (int k = 0; k <= CONV_MAXW; k++) sh[threadIdx.y][threadIdx.x][k] = acc[k];
  __syncthreads();
  if (threadIdx.y == 0 && c < D) {
    float *row = part + (i64)blockIdx.y * D * (W + 1);
    for (int k = 0; k < W; k++) {
      float s = 0;
      for (int y = 0; y < 8; y++) s += sh[y][threadIdx.x][k];
      row[c * W + k] = s;
    }
    float s = 0;
    for (int y = 0; y < 8; y++) s += sh[y][threadIdx.x][CONV_MAXW];
    row[D * W + c] = s;
  }
}
