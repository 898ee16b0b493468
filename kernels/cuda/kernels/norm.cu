// Norms over rows of D channels split in G groups of dg = D/G consecutive channels, as package ops:
// RMSNorm (G = 1), gated RMSNorm (Mamba-2's RMSNormGated, norm_before_gate = False: the input is
// y = x·silu(z)), LayerNorm (G = 1) and GroupNorm (biased variance). One warp per (row, group).
// Weight gradients: each backward writes per-row products into a (R, D) scratch that
// col_sum_acc reduces (deterministic); the bias gradient is col_sum_acc of dout itself.
#include "common.cuh"

DEV int warp_id() { return (int)(blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)); }

DEV float gated(const float *x, const float *z, i64 i) { return z ? x[i] * f_silu(z[i]) : x[i]; }

// rms_fwd: out = y·rstd·w, rstd = 1/√(mean(y²) + eps); rstd (R, G).
KERNEL rms_fwd(float *out, float *rstd, const float *x, const float *z, const float *w, int r, int d, int g, float eps) {
  int wid = warp_id(), lane = threadIdx.x & 31;
  if (wid >= r * g) return;
  int row = wid / g, q = wid - row * g, dg = d / g;
  i64 o = (i64)row * d + (i64)q * dg;
  float ss = 0;
  for (int j = lane; j < dg; j += 32) {
    float y = gated(x, z, o + j);
    ss += y * y;
  }
  ss = warp_sum(ss);
  float rs = 1.0f / f_sqrt(ss / (float)dg + eps);
  if (lane == 0) rstd[wid] = rs;
  for (int j = lane; j < dg; j += 32) out[o + j] = gated(x, z, o + j) * rs * w[q * dg + j];
}

// rms_bwd: dy = dout·w·rs − rs³·y·Σ(dout·w·y)/dg, then through the gate. dwpart (R, D) or null.
KERNEL rms_bwd(float *dx, float *dz, float *dwpart, const float *dout, const float *x, const float *z, const float *w,
               const float *rstd, int r, int d, int g) {
  int wid = warp_id(), lane = threadIdx.x & 31;
  if (wid >= r * g) return;
  int row = wid / g, q = wid - row * g, dg = d / g;
  i64 o = (i64)row * d + (i64)q * dg;
  float rs = rstd[wid];
  float s = 0;
  for (int j = lane; j < dg; j += 32) s += dout[o + j] * w[q * dg + j] * gated(x, z, o + j);
  s = warp_sum(s);
  float c = rs * rs * rs * s / (float)dg;
  for (int j = lane; j < dg; j += 32) {
    i64 i = o + j;
    float y = gated(x, z, i), go = dout[i];
    if (dwpart) dwpart[i] = go * y * rs;
    float dy = go * w[q * dg + j] * rs - c * y;
    if (!z) {
      if (dx) dx[i] = dy;
      continue;
    }
    float zv = z[i], sg = f_sigmoid(zv);
    if (dx) dx[i] = dy * zv * sg;
    if (dz) dz[i] = dy * x[i] * (sg + zv * sg * (1.0f - sg));
  }
}

// norm_fwd (LayerNorm G = 1, GroupNorm): two passes (mean, then centred variance).
KERNEL norm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int r, int d, int g,
                float eps) {
  int wid = warp_id(), lane = threadIdx.x & 31;
  if (wid >= r * g) return;
  int row = wid / g, q = wid - row * g, dg = d / g;
  i64 o = (i64)row * d + (i64)q * dg;
  float m = 0;
  for (int j = lane; j < dg; j += 32) m += x[o + j];
  m = warp_sum(m) / (float)dg;
  float v = 0;
  for (int j = lane; j < dg; j += 32) {
    float c = x[o + j] - m;
    v += c * c;
  }
  v = warp_sum(v);
  float rs = 1.0f / f_sqrt(v / (float)dg + eps);
  if (lane == 0) {
    mean[wid] = m;
    rstd[wid] = rs;
  }
  for (int j = lane; j < dg; j += 32) {
    float y = (x[o + j] - m) * rs * w[q * dg + j];
    out[o + j] = b ? y + b[q * dg + j] : y;
  }
}

// norm_bwd: dx = rs·(dout·w − mean(dout·w) − x̂·mean(dout·w·x̂)); dwpart (R, D) = dout·x̂ or null.
KERNEL norm_bwd(float *dx, float *dwpart, const float *dout, const float *x, const float *w, const float *mean,
                const float *rstd, int r, int d, int g) {
  int wid = warp_id(), lane = threadIdx.x & 31;
  if (wid >= r * g) return;
  int row = wid / g, q = wid - row * g, dg = d / g;
  i64 o = (i64)row * d + (i64)q * dg;
  float m = mean[wid], rs = rstd[wid];
  float s1 = 0, s2 = 0;
  for (int j = lane; j < dg; j += 32) {
    float gw = dout[o + j] * w[q * dg + j];
    s1 += gw;
    s2 += gw * (x[o + j] - m) * rs;
  }
  s1 = warp_sum(s1) / (float)dg;
  s2 = warp_sum(s2) / (float)dg;
  for (int j = lane; j < dg; j += 32) {
    i64 i = o + j;
    float xh = (x[i] - m) * rs;
    if (dwpart) dwpart[i] = dout[i] * xh;
    if (dx) dx[i] = rs * (dout[i] * w[q * dg + j] - s1 - xh * s2);
  }
}
