// Mamba-1 selective scan, as selectivescan.ScanForward / ScanBackward / ScanStep:
//   δ_t = softplus(Δ_t + Δbias) (or Δ_t + Δbias),  h_t = exp(δ_t·A[d,:])⊙h_{t−1} + δ_t·u_t·Bm_t,
//   y_t = ⟨h_t, Cm_t⟩ + Dskip·u_t,  out = y·silu(z) when Z is given.
// Shapes: u, Δ, z, out (B, L, D); A (D, N); Bm, Cm (B, L, G, N), channel d reads group d/(D/G);
// H0, hLast (B, D, N); saved (B, ⌈L/Q⌉, D, N) = the state at the START of every chunk of Q tokens
// (the same layout as the CPU backend).
//
// GPU layout: a channel (b, d) is a segment of S lanes (S = min(32, next power of two ≥ N)),
// each lane holds NPL = ⌈N/S⌉ state entries in registers; the reduction over N is a segment
// shuffle. Blocks of 128 threads hold 128/S channels. Tokens are walked in order (B·D·N threads
// are plenty of parallelism at training sizes). Every lane of a warp runs the same loop count
// (lanes past B·D compute on zeros) because the shuffles need the full warp.
// Backward: chunks in reverse; inside a chunk, sub-blocks of SCAN_SB tokens in reverse; each
// sub-block's states are recomputed from the saved chunk-start state into per-thread local memory,
// then the reverse recurrence runs over it. dBm/dCm (summed over the channels of a group) and
// the parameter gradients use float atomics: their summation order is not deterministic.
// Storage: u, Δ, Bm, Cm, z, out and dout, dU, dΔ, dZ come in fp32 (scan_fwd), bf16 (scan_fwd_bf16)
// and fp16 (scan_fwd_f16); A, Dskip, biases, states and the dBm/dCm accumulators are fp32 (the Go
// side converts dBm/dCm to 16-bit afterwards).
#include "common.cuh"

#define SCAN_MAXNPL 8  // N ≤ 256
#define SCAN_SB 16
#define SCAN_BLOCK 128

struct ScanCtx {
  int b, c, g, ln, S, npl;
  bool valid;
};

DEV ScanCtx scan_ctx(int B, int D, int N, int G) {
  ScanCtx k;
  int S = 1;
  while (S < N && S < 32) S <<= 1;
  k.S = S;
  k.npl = (N + S - 1) / S;
  int seg = threadIdx.x / S;
  k.ln = threadIdx.x - seg * S;
  i64 ch = (i64)blockIdx.x * (SCAN_BLOCK / S) + seg;
  k.valid = ch < (i64)B * D;
  if (!k.valid) ch = 0;
  k.b = (int)(ch / D);
  k.c = (int)(ch % D);
  k.g = k.c / (D / G);
  return k;
}

DEV float scan_delta(float r, int softplus, float *dr) {
  if (!softplus || r > 20.0f) {
    *dr = 1.0f;
    return r;
  }
  *dr = f_sigmoid(r);
  return f_softplus(r);
}

template <typename T>
DEV void scan_fwd_t(T *out, float *hLast, float *saved, const T *u, const T *delta, const float *A, const T *Bm,
                    const T *Cm, const float *Dskip, const T *Z, const float *dbias, const float *H0, int softplus, int B,
                    int L, int D, int N, int G, int chunk) {
  ScanCtx k = scan_ctx(B, D, N, G);
  float h[SCAN_MAXNPL], a[SCAN_MAXNPL];
  int nC = saved ? (L + chunk - 1) / chunk : 0;
#pragma unroll
  for (int q = 0; q < SCAN_MAXNPL; q++) {
    int n = k.ln + q * k.S;
    bool on = k.valid && q < k.npl && n < N;
    h[q] = on && H0 ? H0[((i64)k.b * D + k.c) * N + n] : 0.0f;
    a[q] = on ? A[k.c * N + n] : 0.0f;
  }
  float bias = k.valid && dbias ? dbias[k.c] : 0.0f;
  float dsk = k.valid && Dskip ? Dskip[k.c] : 0.0f;
  for (int t = 0; t < L; t++) {
    i64 i = ((i64)k.b * L + t) * D + k.c;
    i64 bc = (((i64)k.b * L + t) * G + k.g) * N;
    if (saved && t % chunk == 0 && k.valid) {
#pragma unroll
      for (int q = 0; q < SCAN_MAXNPL; q++) {
        int n = k.ln + q * k.S;
        if (q < k.npl && n < N) saved[(((i64)k.b * nC + t / chunk) * D + k.c) * N + n] = h[q];
      }
    }
    float x = k.valid ? ld(u[i]) : 0.0f, dr;
    float dt = scan_delta(k.valid ? ld(delta[i]) + bias : 0.0f, softplus, &dr);
    float yp = 0;
#pragma unroll
    for (int q = 0; q < SCAN_MAXNPL; q++) {
      int n = k.ln + q * k.S;
      if (k.valid && q < k.npl && n < N) {
        h[q] = f_exp(dt * a[q]) * h[q] + dt * x * ld(Bm[bc + n]);
        yp += h[q] * ld(Cm[bc + n]);
      }
    }
    float y = seg_sum(yp, k.S) + dsk * x;
    if (k.valid && k.ln == 0) {
      if (Z) y *= f_silu(ld(Z[i]));
      st(&out[i], y);
    }
  }
  if (hLast && k.valid) {
#pragma unroll
    for (int q = 0; q < SCAN_MAXNPL; q++) {
      int n = k.ln + q * k.S;
      if (q < k.npl && n < N) hLast[((i64)k.b * D + k.c) * N + n] = h[q];
    }
  }
}
#define P_SF(T)                                                                                                    \
  (T * out, float *hLast, float *saved, const T *u, const T *delta, const float *A, const T *Bm, const T *Cm,        \
   const float *Dskip, const T *Z, const float *dbias, const float *H0, int softplus, int B, int L, int D, int N, int G, \
   int chunk)
STORAGE3(scan_fwd, P_SF, (out, hLast, saved, u, delta, A, Bm, Cm, Dskip, Z, dbias, H0, softplus, B, L, D, N, G, chunk))

template <typename T>
DEV void scan_bwd_t(T *dU, T *dDelta, float *dA, float *dBm, float *dCm, float *dDskip, T *dZ, float *dDbias, float *dH0,
                    const T *dout, const float *dhLast, const float *saved, const T *u, const T *delta, const float *A,
                    const T *Bm, const T *Cm, const float *Dskip, const T *Z, const float *dbias, int softplus, int B,
                    int L, int D, int N, int G, int chunk) {
  ScanCtx k = scan_ctx(B, D, N, G);
  int nC = (L + chunk - 1) / chunk;
  float a[SCAN_MAXNPL], dh[SCAN_MAXNPL], dAacc[SCAN_MAXNPL], h[SCAN_MAXNPL];
  float hs[SCAN_SB + 1][SCAN_MAXNPL];  // hs[0] = h before the sub-block, hs[j+1] = h after token j
#pragma unroll
  for (int q = 0; q < SCAN_MAXNPL; q++) {
    int n = k.ln + q * k.S;
    bool on = k.valid && q < k.npl && n < N;
    a[q] = on ? A[k.c * N + n] : 0.0f;
    dh[q] = on && dhLast ? dhLast[((i64)k.b * D + k.c) * N + n] : 0.0f;
    dAacc[q] = 0;
  }
  float bias = k.valid && dbias ? dbias[k.c] : 0.0f;
  float dsk = k.valid && Dskip ? Dskip[k.c] : 0.0f;
  float dDacc = 0, dBiasAcc = 0;
  for (int ci = nC - 1; ci >= 0; ci--) {
    int t0 = ci * chunk, t1 = t0 + chunk < L ? t0 + chunk : L;
    int nsb = (t1 - t0 + SCAN_SB - 1) / SCAN_SB;
    for (int sb = nsb - 1; sb >= 0; sb--) {
      int s0 = t0 + sb * SCAN_SB, s1 = s0 + SCAN_SB < t1 ? s0 + SCAN_SB : t1;
      // Recompute from the chunk start to s1, keeping the states of [s0, s1).
#pragma unroll
      for (int q = 0; q < SCAN_MAXNPL; q++) {
        int n = k.ln + q * k.S;
        bool on = k.valid && q < k.npl && n < N;
        h[q] = on ? saved[(((i64)k.b * nC + ci) * D + k.c) * N + n] : 0.0f;
      }
      for (int t = t0; t < s1; t++) {
        if (t == s0) {
#pragma unroll
          for (int q = 0; q < SCAN_MAXNPL; q++) hs[0][q] = h[q];
        }
        i64 i = ((i64)k.b * L + t) * D + k.c;
        i64 bc = (((i64)k.b * L + t) * G + k.g) * N;
        float x = k.valid ? ld(u[i]) : 0.0f, dr;
        float dt = scan_delta(k.valid ? ld(delta[i]) + bias : 0.0f, softplus, &dr);
#pragma unroll
        for (int q = 0; q < SCAN_MAXNPL; q++) {
          int n = k.ln + q * k.S;
          if (k.valid && q < k.npl && n < N) h[q] = f_exp(dt * a[q]) * h[q] + dt * x * ld(Bm[bc + n]);
        }
        if (t >= s0) {
#pragma unroll
          for (int q = 0; q < SCAN_MAXNPL; q++) hs[t - s0 + 1][q] = h[q];
        }
      }
      // Reverse over the sub-block.
      for (int t = s1 - 1; t >= s0; t--) {
        i64 i = ((i64)k.b * L + t) * D + k.c;
        i64 bc = (((i64)k.b * L + t) * G + k.g) * N;
        float x = k.valid ? ld(u[i]) : 0.0f, ddr;
        float dt = scan_delta(k.valid ? ld(delta[i]) + bias : 0.0f, softplus, &ddr);
        float dy = k.valid ? ld(dout[i]) : 0.0f;
        if (Z) {
          float yp = 0;
#pragma unroll
          for (int q = 0; q < SCAN_MAXNPL; q++) {
            int n = k.ln + q * k.S;
            if (k.valid && q < k.npl && n < N) yp += hs[t - s0 + 1][q] * ld(Cm[bc + n]);
          }
          float y = seg_sum(yp, k.S) + dsk * x;
          float z = k.valid ? ld(Z[i]) : 0.0f, s = f_sigmoid(z);
          if (dZ && k.valid && k.ln == 0) st(&dZ[i], dy * y * s * (1.0f + z * (1.0f - s)));
          dy *= z * s;
        }
        dDacc += dy * x;
        float du = 0, dd = 0;
#pragma unroll
        for (int q = 0; q < SCAN_MAXNPL; q++) {
          int n = k.ln + q * k.S;
          if (k.valid && q < k.npl && n < N) {
            float bn = ld(Bm[bc + n]), cn = ld(Cm[bc + n]);
            if (dCm) atomic_add(dCm + bc + n, dy * hs[t - s0 + 1][q]);
            dh[q] += dy * cn;
            float e = f_exp(dt * a[q]), hp = hs[t - s0][q];
            dAacc[q] += dh[q] * hp * e * dt;
            dd += dh[q] * (hp * e * a[q] + x * bn);
            du += dh[q] * dt * bn;
            if (dBm) atomic_add(dBm + bc + n, dh[q] * dt * x);
            dh[q] *= e;
          }
        }
        du = seg_sum(du, k.S) + dy * dsk;
        float dr = seg_sum(dd, k.S) * ddr;
        dBiasAcc += dr;
        if (k.valid && k.ln == 0) {
          if (dU) st(&dU[i], du);
          if (dDelta) st(&dDelta[i], dr);
        }
      }
    }
  }
  if (!k.valid) return;
#pragma unroll
  for (int q = 0; q < SCAN_MAXNPL; q++) {
    int n = k.ln + q * k.S;
    if (q < k.npl && n < N) {
      if (dH0) dH0[((i64)k.b * D + k.c) * N + n] = dh[q];
      if (dA) atomic_add(dA + k.c * N + n, dAacc[q]);
    }
  }
  if (k.ln == 0) {
    if (dDskip) atomic_add(dDskip + k.c, dDacc);
    if (dDbias) atomic_add(dDbias + k.c, dBiasAcc);
  }
}
#define P_SB(T)                                                                                                      \
  (T * dU, T * dDelta, float *dA, float *dBm, float *dCm, float *dDskip, T *dZ, float *dDbias, float *dH0, const T *dout, \
   const float *dhLast, const float *saved, const T *u, const T *delta, const float *A, const T *Bm, const T *Cm,        \
   const float *Dskip, const T *Z, const float *dbias, int softplus, int B, int L, int D, int N, int G, int chunk)
STORAGE3(scan_bwd, P_SB,
         (dU, dDelta, dA, dBm, dCm, dDskip, dZ, dDbias, dH0, dout, dhLast, saved, u, delta, A, Bm, Cm, Dskip, Z, dbias,
          softplus, B, L, D, N, G, chunk))
