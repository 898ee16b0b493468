// Attention, as package attention: Q, O (B, L, H, Dh); K, V (B, S, HKV, Dh); LSE (B, H, L);
// query i sits at position p = S−L+i; query head h reads kv head h/(H/HKV) (GQA/MQA).
// Mask: key j is visible from p when (!causal || j ≤ p) && (W == 0 || |p−j| < W || j < sinks).
//
// Forward (flash style): one warp per query row, keys in tiles of 32 (lane j scores key j of the
// tile), running max m and sum l, the accumulator o (lane owns channels lane + 32k) rescaled by
// e^{m−m'} per tile, normalised once; LSE = m + log l saved. Key ranges outside the mask (the
// causal future, keys between the sinks and the window) are never visited; the tiles on the
// mask edge are masked element-wise. The L×S matrix is never formed.
// Backward by recomputation: Δ_i = rowsum(dO ⊙ O); dQ: one warp per query row re-forms
// P = exp(S − LSE) tile by tile; dK, dV: one warp per key row walks the queries (all query heads
// of its kv head) that see it. No atomics: every output row has one owner (deterministic).
// Dh ≤ 256 (8 channels per lane). Q, K, V, O, dO, dQ, dK, dV come in fp32 (name), bf16 (name_bf16)
// and fp16 (name_f16) storage; LSE, Δ and every sum are fp32.
#include "common.cuh"

#define ATT_MAXC 8

struct AttDims {
  int B, L, S, H, HKV, Dh, causal, window, sinks;
  float scale;
};

DEV bool att_visible(const AttDims &d, int p, int j) {
  if (d.causal && j > p) return false;
  if (d.window == 0 || j < d.sinks) return true;
  int dist = p - j;
  return dist < d.window && -dist < d.window;
}

// The keys query position p can see lie in [0, r1) ∪ [r2lo, r2hi) (disjoint, r1 ≤ r2lo).
DEV void att_key_ranges(const AttDims &d, int p, int *r1, int *r2lo, int *r2hi) {
  int hi = d.causal ? p + 1 : d.S;
  if (d.window == 0) {
    *r1 = hi;
    *r2lo = *r2hi = hi;
    return;
  }
  int s = d.sinks < hi ? d.sinks : hi;
  int lo = p - d.window + 1;
  if (lo < s) lo = s;
  int top = p + d.window < hi ? p + d.window : hi;
  *r1 = s;
  *r2lo = lo;
  *r2hi = top > lo ? top : lo;
}

DEV i64 att_q(const AttDims &d, int b, int i, int h) { return (((i64)b * d.L + i) * d.H + h) * d.Dh; }
DEV i64 att_kv(const AttDims &d, int b, int j, int g) { return (((i64)b * d.S + j) * d.HKV + g) * d.Dh; }

// Dynamic shared memory: (blockDim.x/32)·Dh floats (each warp's query row).
template <typename T>
DEV void attn_fwd_t(T *O, float *LSE, const T *Q, const T *K, const T *V, int B, int L, int S, int H, int HKV, int Dh,
                    int causal, int window, int sinks, float scale) {
  DYN_SHARED(float, smem);
  AttDims d = {B, L, S, H, HKV, Dh, causal, window, sinks, scale};
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int i = blockIdx.x * (blockDim.x >> 5) + w, h = blockIdx.y, b = blockIdx.z;
  if (i >= L) return;  // whole warp
  int g = h / (H / HKV), p = S - L + i;
  float *qs = smem + w * Dh;
  const T *q = Q + att_q(d, b, i, h);
  for (int c = lane; c < Dh; c += 32) qs[c] = ld(q[c]) * scale;
  __syncwarp(FULL_MASK);
  float acc[ATT_MAXC];
#pragma unroll
  for (int k = 0; k < ATT_MAXC; k++) acc[k] = 0;
  float m = -F_INF, l = 0;
  int r1, r2lo, r2hi;
  att_key_ranges(d, p, &r1, &r2lo, &r2hi);
  for (int part = 0; part < 2; part++) {
    int lo = part == 0 ? 0 : r2lo, hi = part == 0 ? r1 : r2hi;
    for (int j0 = lo; j0 < hi; j0 += 32) {
      int j = j0 + lane;
      float s = -F_INF;
      if (j < hi && att_visible(d, p, j)) {
        const T *kj = K + att_kv(d, b, j, g);
        s = 0;
        for (int c = 0; c < Dh; c++) s += qs[c] * ld(kj[c]);
      }
      float mt = warp_max(s);
      if (mt == -F_INF) continue;
      float mn = f_max(m, mt);
      float pj = s == -F_INF ? 0.0f : f_exp(s - mn);
      float corr = f_exp(m - mn);
      l = l * corr + warp_sum(pj);
#pragma unroll
      for (int k = 0; k < ATT_MAXC; k++) acc[k] *= corr;
      int nj = hi - j0 < 32 ? hi - j0 : 32;
      for (int jj = 0; jj < nj; jj++) {
        float pb = shfl_idx(pj, jj);
        if (pb == 0.0f) continue;
        const T *vj = V + att_kv(d, b, j0 + jj, g);
#pragma unroll
        for (int k = 0; k < ATT_MAXC; k++) {
          int c = lane + 32 * k;
          if (c < Dh) acc[k] += pb * ld(vj[c]);
        }
      }
      m = mn;
    }
  }
  float inv = l > 0 ? 1.0f / l : 0.0f;
  T *o = O + att_q(d, b, i, h);
#pragma unroll
  for (int k = 0; k < ATT_MAXC; k++) {
    int c = lane + 32 * k;
    if (c < Dh) st(&o[c], acc[k] * inv);
  }
  if (lane == 0) LSE[((i64)b * H + h) * L + i] = l > 0 ? m + f_log(l) : -F_INF;
}
#define P_AF(T)                                                                                                  \
  (T * O, float *LSE, const T *Q, const T *K, const T *V, int B, int L, int S, int H, int HKV, int Dh, int causal, \
   int window, int sinks, float scale)
STORAGE3(attn_fwd, P_AF, (O, LSE, Q, K, V, B, L, S, H, HKV, Dh, causal, window, sinks, scale))

// attn_delta: Δ (B, H, L) = rowsum(dO ⊙ O). One warp per (b, i, h).
template <typename T>
DEV void attn_delta_t(float *delta, const T *dO, const T *O, int B, int L, int H, int Dh) {
  i64 wid = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (wid >= (i64)B * L * H) return;
  int h = (int)(wid % H);
  i64 bi = wid / H;
  int i = (int)(bi % L), b = (int)(bi / L);
  float s = 0;
  for (int c = lane; c < Dh; c += 32) s += ld(dO[wid * Dh + c]) * ld(O[wid * Dh + c]);
  s = warp_sum(s);
  if (lane == 0) delta[((i64)b * H + h) * L + i] = s;
}
#define P_AD(T) (float *delta, const T *dO, const T *O, int B, int L, int H, int Dh)
STORAGE3(attn_delta, P_AD, (delta, dO, O, B, L, H, Dh))

// attn_bwd_dq: dQ (assigned). One warp per query row; dynamic shared memory 2·(blockDim.x/32)·Dh
// floats (the warp's q and dO rows).
template <typename T>
DEV void attn_bwd_dq_t(T *dQ, const T *dO, const T *Q, const T *K, const T *V, const float *LSE, const float *delta, int B,
                       int L, int S, int H, int HKV, int Dh, int causal, int window, int sinks, float scale) {
  DYN_SHARED(float, smem);
  AttDims d = {B, L, S, H, HKV, Dh, causal, window, sinks, scale};
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int i = blockIdx.x * (blockDim.x >> 5) + w, h = blockIdx.y, b = blockIdx.z;
  if (i >= L) return;
  int g = h / (H / HKV), p = S - L + i;
  float *qs = smem + 2 * w * Dh, *ds_ = qs + Dh;
  i64 qo = att_q(d, b, i, h);
  for (int c = lane; c < Dh; c += 32) {
    qs[c] = ld(Q[qo + c]);
    ds_[c] = ld(dO[qo + c]);
  }
  __syncwarp(FULL_MASK);
  i64 li = ((i64)b * H + h) * L + i;
  float lse = LSE[li], dl = delta[li];
  float acc[ATT_MAXC];
#pragma unroll
  for (int k = 0; k < ATT_MAXC; k++) acc[k] = 0;
  int r1, r2lo, r2hi;
  att_key_ranges(d, p, &r1, &r2lo, &r2hi);
  for (int part = 0; part < 2; part++) {
    int lo = part == 0 ? 0 : r2lo, hi = part == 0 ? r1 : r2hi;
    for (int j0 = lo; j0 < hi; j0 += 32) {
      int j = j0 + lane;
      float dsj = 0;
      if (j < hi && att_visible(d, p, j)) {
        const T *kj = K + att_kv(d, b, j, g), *vj = V + att_kv(d, b, j, g);
        float s = 0, dp = 0;
        for (int c = 0; c < Dh; c++) {
          s += qs[c] * ld(kj[c]);
          dp += ds_[c] * ld(vj[c]);
        }
        float pr = f_exp(s * scale - lse);
        dsj = pr * (dp - dl) * scale;
      }
      int nj = hi - j0 < 32 ? hi - j0 : 32;
      for (int jj = 0; jj < nj; jj++) {
        float sb = shfl_idx(dsj, jj);
        if (sb == 0.0f) continue;
        const T *kj = K + att_kv(d, b, j0 + jj, g);
#pragma unroll
        for (int k = 0; k < ATT_MAXC; k++) {
          int c = lane + 32 * k;
          if (c < Dh) acc[k] += sb * ld(kj[c]);
        }
      }
    }
  }
#pragma unroll
  for (int k = 0; k < ATT_MAXC; k++) {
    int c = lane + 32 * k;
    if (c < Dh) st(&dQ[qo + c], acc[k]);
  }
}
#define P_DQ(T)                                                                                                 \
  (T * dQ, const T *dO, const T *Q, const T *K, const T *V, const float *LSE, const float *delta, int B, int L, int S, \
   int H, int HKV, int Dh, int causal, int window, int sinks, float scale)
STORAGE3(attn_bwd_dq, P_DQ, (dQ, dO, Q, K, V, LSE, delta, B, L, S, H, HKV, Dh, causal, window, sinks, scale))

// The query positions that see key j lie in [lo, hi) ∪ (all, when j is a sink).
DEV void att_query_range(const AttDims &d, int j, int *lo, int *hi) {
  int p0 = d.S - d.L, p1 = d.S;  // positions of the queries
  int a = p0, z = p1;
  if (d.causal && j > a) a = j;
  if (d.window > 0 && j >= d.sinks) {
    if (j - d.window + 1 > a) a = j - d.window + 1;
    if (j + d.window < z) z = j + d.window;
  }
  *lo = a - p0;
  *hi = z > a ? z - p0 : a - p0;
}

// attn_bwd_dkv: dK, dV (assigned). One warp per key row (b, j, g); it walks the H/HKV query heads of
// kv head g and the queries that see key j, lane i scoring query i0+i of a 32-query tile.
// Dynamic shared memory: 2·(blockDim.x/32)·Dh floats (the warp's k and v rows).
template <typename T>
DEV void attn_bwd_dkv_t(T *dK, T *dV, const T *dO, const T *Q, const T *K, const T *V, const float *LSE,
                        const float *delta, int B, int L, int S, int H, int HKV, int Dh, int causal, int window,
                        int sinks, float scale) {
  DYN_SHARED(float, smem);
  AttDims d = {B, L, S, H, HKV, Dh, causal, window, sinks, scale};
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int j = blockIdx.x * (blockDim.x >> 5) + w, g = blockIdx.y, b = blockIdx.z;
  if (j >= S) return;
  float *ks = smem + 2 * w * Dh, *vs = ks + Dh;
  i64 ko = att_kv(d, b, j, g);
  for (int c = lane; c < Dh; c += 32) {
    ks[c] = ld(K[ko + c]);
    vs[c] = ld(V[ko + c]);
  }
  __syncwarp(FULL_MASK);
  float dk[ATT_MAXC], dv[ATT_MAXC];
#pragma unroll
  for (int k = 0; k < ATT_MAXC; k++) dk[k] = dv[k] = 0;
  int qlo, qhi;
  att_query_range(d, j, &qlo, &qhi);
  int rep = H / HKV;
  for (int h = g * rep; h < (g + 1) * rep; h++) {
    for (int i0 = qlo; i0 < qhi; i0 += 32) {
      int i = i0 + lane;
      float pr = 0, dsv = 0;
      if (i < qhi && att_visible(d, S - L + i, j)) {
        i64 qo = att_q(d, b, i, h);
        float s = 0, dp = 0;
        for (int c = 0; c < Dh; c++) {
          s += ld(Q[qo + c]) * ks[c];
          dp += ld(dO[qo + c]) * vs[c];
        }
        i64 li = ((i64)b * H + h) * L + i;
        pr = f_exp(s * scale - LSE[li]);
        dsv = pr * (dp - delta[li]) * scale;
      }
      int ni = qhi - i0 < 32 ? qhi - i0 : 32;
      for (int ii = 0; ii < ni; ii++) {
        float pb = shfl_idx(pr, ii), sb = shfl_idx(dsv, ii);
        if (pb == 0.0f && sb == 0.0f) continue;
        i64 qo = att_q(d, b, i0 + ii, h);
#pragma unroll
        for (int k = 0; k < ATT_MAXC; k++) {
          int c = lane + 32 * k;
          if (c < Dh) {
            dv[k] += pb * ld(dO[qo + c]);
            dk[k] += sb * ld(Q[qo + c]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int k = 0; k < ATT_MAXC; k++) {
    int c = lane + 32 * k;
    if (c < Dh) {
      st(&dK[ko + c], dk[k]);
      st(&dV[ko + c], dv[k]);
    }
  }
}
#define P_DKV(T)                                                                                                    \
  (T * dK, T * dV, const T *dO, const T *Q, const T *K, const T *V, const float *LSE, const float *delta, int B, int L, \
   int S, int H, int HKV, int Dh, int causal, int window, int sinks, float scale)
STORAGE3(attn_bwd_dkv, P_DKV, (dK, dV, dO, Q, K, V, LSE, delta, B, L, S, H, HKV, Dh, causal, window, sinks, scale))

// ---- decode against a KV cache (attention.KVCache layout: K, V (B, slots, HKV, Dh)) ----

// kv_append writes T new tokens (B, T, HKV, Dh) at positions n0… (ring slots when window > 0).
KERNEL kv_append(float *Kc, float *Vc, const float *k, const float *v, int B, int T, int HKV, int Dh, int slots, int n0,
                 int window, int sinks) {
  int row = HKV * Dh;
  i64 total = (i64)B * T * row;
  for (i64 id = gtid(); id < total; id += gstride()) {
    int e = (int)(id % row);
    i64 bt = id / row;
    int t = (int)(bt % T), b = (int)(bt / T), pos = n0 + t;
    int slot = (window == 0 || pos < sinks) ? pos : sinks + (pos - sinks) % window;
    i64 dst = ((i64)b * slots + slot) * row + e;
    Kc[dst] = k[id];
    Vc[dst] = v[id];
  }
}

// attn_decode: o (B, H, Dh) for one query per batch row against the `filled` cache slots (all of
// them are visible to the newest token, see attention.Decode). One warp per (b, h); dynamic
// shared memory (blockDim.x/32)·Dh floats.
KERNEL attn_decode(float *O, const float *Qd, const float *Kc, const float *Vc, int B, int H, int HKV, int Dh, int slots,
                   int filled, float scale) {
  DYN_SHARED(float, smem);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  i64 bh = (i64)blockIdx.x * (blockDim.x >> 5) + w;
  if (bh >= (i64)B * H) return;
  int h = (int)(bh % H), b = (int)(bh / H), g = h / (H / HKV);
  float *qs = smem + w * Dh;
  for (int c = lane; c < Dh; c += 32) qs[c] = Qd[bh * Dh + c] * scale;
  __syncwarp(FULL_MASK);
  float acc[ATT_MAXC];
#pragma unroll
  for (int k = 0; k < ATT_MAXC; k++) acc[k] = 0;
  float m = -F_INF, l = 0;
  for (int j0 = 0; j0 < filled; j0 += 32) {
    int j = j0 + lane;
    float s = -F_INF;
    if (j < filled) {
      const float *kj = Kc + (((i64)b * slots + j) * HKV + g) * Dh;
      s = 0;
      for (int c = 0; c < Dh; c++) s += qs[c] * kj[c];
    }
    float mn = f_max(m, warp_max(s));
    float pj = s == -F_INF ? 0.0f : f_exp(s - mn);
    float corr = f_exp(m - mn);
    l = l * corr + warp_sum(pj);
#pragma unroll
    for (int k = 0; k < ATT_MAXC; k++) acc[k] *= corr;
    int nj = filled - j0 < 32 ? filled - j0 : 32;
    for (int jj = 0; jj < nj; jj++) {
      float pb = shfl_idx(pj, jj);
      const float *vj = Vc + (((i64)b * slots + j0 + jj) * HKV + g) * Dh;
#pragma unroll
      for (int k = 0; k < ATT_MAXC; k++) {
        int c = lane + 32 * k;
        if (c < Dh) acc[k] += pb * vj[c];
      }
    }
    m = mn;
  }
  float inv = l > 0 ? 1.0f / l : 0.0f;
#pragma unroll
  for (int k = 0; k < ATT_MAXC; k++) {
    int c = lane + 32 * k;
    if (c < Dh) O[bh * Dh + c] = acc[k] * inv;
  }
}
