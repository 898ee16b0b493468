// Mamba-2 state-space dual (SSD), chunked, as selectivescan.SSDForward / SSDBackward / SSDStep:
//   Δ_t = softplus(Dt_t + DtBias),  S_t = exp(Δ_t·A_h)·S_{t−1} + Δ_t·x_t⊗B_t,  y_t = S_t·C_t + Dskip_h·x_t.
// Shapes: X, y (B, L, H, P); Dt (B, L, H); A, DtBias, Dskip (H); Bm, Cm (B, L, G, N), head h reads
// group h/(H/G); H0, hLast (B, H, P, N). Chunks of Q tokens, nC = ⌈L/Q⌉ (the last may be short).
//
// Per chunk, with a_i = Δ_i·A_h, acum_i = Σ_{k≤i} a_k (chunk-local), CB_ij = C_i·B_j (shared by the
// heads of a group) and S0 the state at the chunk start:
//   Y_i   = e^{acum_i}·C_i·S0ᵀ + Σ_{j≤i} CB_ij·e^{acum_i−acum_j}·Δ_j·x_j + D·x_i      (steps 1 and 4)
//   Sloc  = Σ_j e^{acum_last−acum_j}·Δ_j·x_j⊗B_j                                      (step 2)
//   S0[c+1] = e^{acum_last}·S0[c] + Sloc[c]                                            (step 3)
// Steps 1, 2, 4 are chunk matrix products (one thread per output element, operands from L1/L2);
// step 3 is a short sequential pass per (b, h). Every exponent is ≤ 0 for decaying A, so no factor
// leaves float32 range. saved = S0 of every chunk, (B, nC, H, P, N) (P-major like H0: this is
// the CUDA backend's own layout; the CPU backend stores (B, nC, H, N, P)).
// Backward: the same decomposition in reverse (dS passed back chunk by chunk), then per chunk
// dX/dΔ/dA (per head), dCB summed over the group's heads, and dB/dC per group (deterministic:
// no atomics in global memory; per-block parameter partials are reduced by col_sum_acc).
// Storage: the kernels that touch X, Bm, Cm, y, dy, dX, dBm, dCm come as fp32 (name), bf16
// (name_bf16) and fp16 (name_f16) storage; Δ, decays, states, C·Bᵀ and all sums stay fp32.
#include "common.cuh"

struct SsdDims {
  int B, L, H, P, G, N, Q, nC;
};

DEV SsdDims ssd_dims(int B, int L, int H, int P, int G, int N, int Q) {
  SsdDims d = {B, L, H, P, G, N, Q, (L + Q - 1) / Q};
  return d;
}
DEV int ssd_q(const SsdDims &d, int c) { return c * d.Q + d.Q <= d.L ? d.Q : d.L - c * d.Q; }
DEV i64 ix_x(const SsdDims &d, int b, int t, int h, int p) { return (((i64)b * d.L + t) * d.H + h) * d.P + p; }
DEV i64 ix_dt(const SsdDims &d, int b, int t, int h) { return ((i64)b * d.L + t) * d.H + h; }
DEV i64 ix_bc(const SsdDims &d, int b, int t, int g, int n) { return (((i64)b * d.L + t) * d.G + g) * d.N + n; }
DEV i64 ix_st(const SsdDims &d, int b, int c, int h) { return (((i64)b * d.nC + c) * d.H + h) * d.P * d.N; }
DEV i64 ix_cb(const SsdDims &d, int b, int c, int g) { return (((i64)b * d.nC + c) * d.G + g) * d.Q * d.Q; }

// ssd_prep: dt (B, L, H) = softplus(Dt + bias), acum (B, L, H) = chunk-local inclusive Σ dt·A.
// One thread per (b, chunk, head).
KERNEL ssd_prep(float *dt, float *acum, const float *Dt, const float *dtBias, const float *A, int B, int L, int H, int P,
                int G, int N, int Q) {
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  i64 total = (i64)B * d.nC * H;
  for (i64 id = gtid(); id < total; id += gstride()) {
    int h = (int)(id % H);
    i64 bc = id / H;
    int c = (int)(bc % d.nC), b = (int)(bc / d.nC);
    float s = 0, a = A[h], bias = dtBias ? dtBias[h] : 0.0f;
    for (int i = 0; i < ssd_q(d, c); i++) {
      i64 k = ix_dt(d, b, c * Q + i, h);
      float v = f_softplus(Dt[k] + bias);
      dt[k] = v;
      s += v * a;
      acum[k] = s;
    }
  }
}

// ssd_cb: CB (B, nC, G, Q, Q), CB_ij = C_i·B_j for j ≤ i < q, else 0. Block per (c, g, b).
template <typename T>
DEV void ssd_cb_t(float *cb, const T *Bm, const T *Cm, int B, int L, int H, int P, int G, int N, int Q) {
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  int c = blockIdx.x, g = blockIdx.y, b = blockIdx.z, q = ssd_q(d, c);
  float *o = cb + ix_cb(d, b, c, g);
  for (int e = threadIdx.x; e < Q * Q; e += blockDim.x) {
    int i = e / Q, j = e - i * Q;
    float s = 0;
    if (j <= i && i < q) {
      const T *ci = Cm + ix_bc(d, b, c * Q + i, g, 0), *bj = Bm + ix_bc(d, b, c * Q + j, g, 0);
      for (int n = 0; n < N; n++) s += ld(ci[n]) * ld(bj[n]);
    }
    o[e] = s;
  }
}
#define P_CB(T) (float *cb, const T *Bm, const T *Cm, int B, int L, int H, int P, int G, int N, int Q)
STORAGE3(ssd_cb, P_CB, (cb, Bm, Cm, B, L, H, P, G, N, Q))

// ssd_chunk_state: Sloc (B, nC, H, P, N). Block per (c, h, b), threads over (p, n).
template <typename T>
DEV void ssd_chunk_state_t(float *sloc, const T *X, const T *Bm, const float *dt, const float *acum, int B, int L, int H,
                           int P, int G, int N, int Q) {
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z, q = ssd_q(d, c), g = h / (H / G);
  float last = acum[ix_dt(d, b, c * Q + q - 1, h)];
  for (int e = threadIdx.x; e < P * N; e += blockDim.x) {
    int p = e / N, n = e - p * N;
    float s = 0;
    for (int j = 0; j < q; j++) {
      int t = c * Q + j;
      i64 k = ix_dt(d, b, t, h);
      s += f_exp(last - acum[k]) * dt[k] * ld(X[ix_x(d, b, t, h, p)]) * ld(Bm[ix_bc(d, b, t, g, n)]);
    }
    sloc[ix_st(d, b, c, h) + e] = s;
  }
}
#define P_CS(T) \
  (float *sloc, const T *X, const T *Bm, const float *dt, const float *acum, int B, int L, int H, int P, int G, int N, int Q)
STORAGE3(ssd_chunk_state, P_CS, (sloc, X, Bm, dt, acum, B, L, H, P, G, N, Q))

// ssd_state_pass: states (B, nC, H, P, N) = S0 of each chunk; hLast (B, H, P, N) or null.
// Block per (h, b), threads over (p, n).
KERNEL ssd_state_pass(float *states, float *hLast, const float *sloc, const float *H0, const float *acum, int B, int L,
                      int H, int P, int G, int N, int Q) {
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  int h = blockIdx.x, b = blockIdx.y;
  for (int e = threadIdx.x; e < P * N; e += blockDim.x) {
    float s = H0 ? H0[((i64)b * H + h) * P * N + e] : 0.0f;
    for (int c = 0; c < d.nC; c++) {
      states[ix_st(d, b, c, h) + e] = s;
      float E = f_exp(acum[ix_dt(d, b, c * Q + ssd_q(d, c) - 1, h)]);
      s = E * s + sloc[ix_st(d, b, c, h) + e];
    }
    if (hLast) hLast[((i64)b * H + h) * P * N + e] = s;
  }
}

// ssd_chunk_out: y. Block per (c, h, b), threads over (i, p).
template <typename T>
DEV void ssd_chunk_out_t(T *y, const T *X, const T *Cm, const float *cb, const float *states, const float *dt,
                         const float *acum, const float *Dskip, int B, int L, int H, int P, int G, int N, int Q) {
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z, q = ssd_q(d, c), g = h / (H / G);
  const float *S0 = states + ix_st(d, b, c, h), *CB = cb + ix_cb(d, b, c, g);
  float dsk = Dskip ? Dskip[h] : 0.0f;
  for (int e = threadIdx.x; e < q * P; e += blockDim.x) {
    int i = e / P, p = e - i * P, t = c * Q + i;
    float ai = acum[ix_dt(d, b, t, h)];
    const T *ci = Cm + ix_bc(d, b, t, g, 0);
    float off = 0;
    for (int n = 0; n < N; n++) off += ld(ci[n]) * S0[p * N + n];
    float s = f_exp(ai) * off;
    for (int j = 0; j <= i; j++) {
      i64 k = ix_dt(d, b, c * Q + j, h);
      s += CB[i * Q + j] * f_exp(ai - acum[k]) * dt[k] * ld(X[ix_x(d, b, c * Q + j, h, p)]);
    }
    i64 xi = ix_x(d, b, t, h, p);
    st(&y[xi], s + dsk * ld(X[xi]));
  }
}
#define P_CO(T)                                                                                          \
  (T * y, const T *X, const T *Cm, const float *cb, const float *states, const float *dt, const float *acum, \
   const float *Dskip, int B, int L, int H, int P, int G, int N, int Q)
STORAGE3(ssd_chunk_out, P_CO, (y, X, Cm, cb, states, dt, acum, Dskip, B, L, H, P, G, N, Q))

// ---- backward ----

// ssd_dstate_local: dSloc (B, nC, H, P, N) = Σ_i e^{acum_i}·dy_i⊗C_i (the chunk's output
// gradient with respect to its start state, before the decay of later chunks).
template <typename T>
DEV void ssd_dstate_local_t(float *dsloc, const T *dy, const T *Cm, const float *acum, int B, int L, int H, int P, int G,
                            int N, int Q) {
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z, q = ssd_q(d, c), g = h / (H / G);
  for (int e = threadIdx.x; e < P * N; e += blockDim.x) {
    int p = e / N, n = e - p * N;
    float s = 0;
    for (int i = 0; i < q; i++) {
      int t = c * Q + i;
      s += f_exp(acum[ix_dt(d, b, t, h)]) * ld(dy[ix_x(d, b, t, h, p)]) * ld(Cm[ix_bc(d, b, t, g, n)]);
    }
    dsloc[ix_st(d, b, c, h) + e] = s;
  }
}
#define P_DL(T) (float *dsloc, const T *dy, const T *Cm, const float *acum, int B, int L, int H, int P, int G, int N, int Q)
STORAGE3(ssd_dstate_local, P_DL, (dsloc, dy, Cm, acum, B, L, H, P, G, N, Q))

// ssd_dstate_pass: dSend (B, nC, H, P, N) = gradient of each chunk's end state; dH0 or null.
KERNEL ssd_dstate_pass(float *dsend, float *dH0, const float *dsloc, const float *dhLast, const float *acum, int B, int L,
                       int H, int P, int G, int N, int Q) {
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  int h = blockIdx.x, b = blockIdx.y;
  for (int e = threadIdx.x; e < P * N; e += blockDim.x) {
    float s = dhLast ? dhLast[((i64)b * H + h) * P * N + e] : 0.0f;
    for (int c = d.nC - 1; c >= 0; c--) {
      dsend[ix_st(d, b, c, h) + e] = s;
      float E = f_exp(acum[ix_dt(d, b, c * Q + ssd_q(d, c) - 1, h)]);
      s = E * s + dsloc[ix_st(d, b, c, h) + e];
    }
    if (dH0) dH0[((i64)b * H + h) * P * N + e] = s;
  }
}

// ssd_bwd_x: per (c, h, b) block: dX (assigned), dDt (assigned), and the block's partials of
// dA, dDtBias, dDskip into part[(b·nC + c), {0, H, 2H} + h]. Dynamic shared memory: 3·Q floats.
template <typename T>
DEV void ssd_bwd_x_t(T *dX, float *dDt, float *part, const T *dy, const T *X, const T *Bm, const T *Cm, const float *cb,
                     const float *states, const float *dsend, const float *dt, const float *acum, const float *Dt,
                     const float *dtBias, const float *A, const float *Dskip, int B, int L, int H, int P, int G, int N,
                     int Q) {
  DYN_SHARED(float, smem);
  __shared__ float red[32];
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z, q = ssd_q(d, c), g = h / (H / G);
  float *dac = smem, *ddt = smem + Q, *sac = smem + 2 * Q;
  for (int i = threadIdx.x; i < q; i += blockDim.x) {
    dac[i] = 0;
    ddt[i] = 0;
    sac[i] = acum[ix_dt(d, b, c * Q + i, h)];
  }
  __syncthreads();
  const float *S0 = states + ix_st(d, b, c, h), *dSe = dsend + ix_st(d, b, c, h), *CB = cb + ix_cb(d, b, c, g);
  float last = sac[q - 1], dsk = Dskip ? Dskip[h] : 0.0f;
  float dD = 0, dLast = 0;
  // (1) dx_j[p] = Δ_j·gx + D·dy_j with gx = Σ_{i≥j} CB_ij·e^{acum_i−acum_j}·dy_i + e^{last−acum_j}·dSend·B_j,
  //     ddt_j += x·gx; the state term also moves acum_last (+) and acum_j (−).
  //     Also the off-diagonal term of acum_j: dy_j·Yoff_j, and dD += dy·x.
  for (int e = threadIdx.x; e < q * P; e += blockDim.x) {
    int j = e / P, p = e - j * P, t = c * Q + j;
    float aj = sac[j], dtj = dt[ix_dt(d, b, t, h)];
    float gi = 0;
    for (int i = j; i < q; i++) gi += CB[i * Q + j] * f_exp(sac[i] - aj) * ld(dy[ix_x(d, b, c * Q + i, h, p)]);
    const T *bj = Bm + ix_bc(d, b, t, g, 0), *cj = Cm + ix_bc(d, b, t, g, 0);
    float sb = 0, cs = 0;
    for (int n = 0; n < N; n++) {
      sb += dSe[p * N + n] * ld(bj[n]);
      cs += ld(cj[n]) * S0[p * N + n];
    }
    float gs = f_exp(last - aj) * sb;
    i64 xi = ix_x(d, b, t, h, p);
    float xv = ld(X[xi]), gyv = ld(dy[xi]);
    if (dX) st(&dX[xi], dtj * (gi + gs) + dsk * gyv);
    atomic_add(&ddt[j], xv * (gi + gs));
    float t3 = dtj * xv * gs;
    atomic_add(&dac[j], gyv * f_exp(aj) * cs - t3);
    dLast += t3;
    dD += gyv * xv;
  }
  // E·⟨dSend, S0⟩ also moves acum_last.
  for (int e = threadIdx.x; e < P * N; e += blockDim.x) dLast += f_exp(last) * dSe[e] * S0[e];
  // (2) intra-chunk pairs j < i: M_ij = CB_ij·e^{acum_i−acum_j}·Δ_j·Σ_p dy_i·x_j moves acum_i (+), acum_j (−).
  for (int e = threadIdx.x; e < q * q; e += blockDim.x) {
    int i = e / q, j = e - i * q;
    if (j >= i) continue;
    float gij = 0;
    for (int p = 0; p < P; p++) gij += ld(dy[ix_x(d, b, c * Q + i, h, p)]) * ld(X[ix_x(d, b, c * Q + j, h, p)]);
    float m = CB[i * Q + j] * f_exp(sac[i] - sac[j]) * dt[ix_dt(d, b, c * Q + j, h)] * gij;
    atomic_add(&dac[i], m);
    atomic_add(&dac[j], -m);
  }
  dLast = block_sum(dLast, red);
  dD = block_sum(dD, red);
  if (threadIdx.x == 0) dac[q - 1] += dLast;
  __syncthreads();
  // (3) da_k = Σ_{i≥k} dacum_i; dΔ_k = ddt_k + da_k·A; dA += da_k·Δ_k; through softplus.
  float dAp = 0, dBp = 0;
  if (threadIdx.x == 0) {
    float a = A[h], bias = dtBias ? dtBias[h] : 0.0f, run = 0;
    for (int k = q - 1; k >= 0; k--) {
      run += dac[k];
      i64 ki = ix_dt(d, b, c * Q + k, h);
      float raw = Dt[ki] + bias;
      float g = ddt[k] + run * a;
      dAp += run * dt[ki];
      if (raw <= 20.0f) g *= f_sigmoid(raw);
      if (dDt) dDt[ki] = g;
      dBp += g;
    }
    float *pp = part + ((i64)b * d.nC + c) * 3 * H;
    pp[h] = dAp;
    pp[H + h] = dBp;
    pp[2 * H + h] = dD;
  }
}
#define P_BX(T)                                                                                                      \
  (T * dX, float *dDt, float *part, const T *dy, const T *X, const T *Bm, const T *Cm, const float *cb,                \
   const float *states, const float *dsend, const float *dt, const float *acum, const float *Dt, const float *dtBias, \
   const float *A, const float *Dskip, int B, int L, int H, int P, int G, int N, int Q)
STORAGE3(ssd_bwd_x, P_BX,
         (dX, dDt, part, dy, X, Bm, Cm, cb, states, dsend, dt, acum, Dt, dtBias, A, Dskip, B, L, H, P, G, N, Q))

// ssd_dcb: dCB (B, nC, G, Q, Q) = Σ_{h∈g} e^{acum_i−acum_j}·Δ_j·Σ_p dy_i·x_j for j ≤ i. Block per (c, g, b).
template <typename T>
DEV void ssd_dcb_t(float *dcb, const T *dy, const T *X, const float *dt, const float *acum, int B, int L, int H, int P,
                   int G, int N, int Q) {
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  int c = blockIdx.x, g = blockIdx.y, b = blockIdx.z, q = ssd_q(d, c), hpg = H / G;
  float *o = dcb + ix_cb(d, b, c, g);
  for (int e = threadIdx.x; e < Q * Q; e += blockDim.x) {
    int i = e / Q, j = e - i * Q;
    float s = 0;
    if (j <= i && i < q) {
      for (int h = g * hpg; h < (g + 1) * hpg; h++) {
        i64 ki = ix_dt(d, b, c * Q + i, h), kj = ix_dt(d, b, c * Q + j, h);
        float gij = 0;
        for (int p = 0; p < P; p++) gij += ld(dy[ix_x(d, b, c * Q + i, h, p)]) * ld(X[ix_x(d, b, c * Q + j, h, p)]);
        s += f_exp(acum[ki] - acum[kj]) * dt[kj] * gij;
      }
    }
    o[e] = s;
  }
}
#define P_DCB(T) (float *dcb, const T *dy, const T *X, const float *dt, const float *acum, int B, int L, int H, int P, int G, int N, int Q)
STORAGE3(ssd_dcb, P_DCB, (dcb, dy, X, dt, acum, B, L, H, P, G, N, Q))

// ssd_bwd_bc: dC, dB (B, L, G, N) assigned. Block per (c, g, b), threads over (i, n):
//   dC_i = Σ_{j≤i} dCB_ij·B_j + Σ_h e^{acum_i}·Σ_p dy_i[p]·S0[p, :]
//   dB_j = Σ_{i≥j} dCB_ij·C_i + Σ_h e^{last−acum_j}·Δ_j·Σ_p x_j[p]·dSend[p, :]
template <typename T>
DEV void ssd_bwd_bc_t(T *dBm, T *dCm, const float *dcb, const T *dy, const T *X, const T *Bm, const T *Cm,
                      const float *states, const float *dsend, const float *dt, const float *acum, int B, int L, int H,
                      int P, int G, int N, int Q) {
  SsdDims d = ssd_dims(B, L, H, P, G, N, Q);
  int c = blockIdx.x, g = blockIdx.y, b = blockIdx.z, q = ssd_q(d, c), hpg = H / G;
  const float *DCB = dcb + ix_cb(d, b, c, g);
  for (int e = threadIdx.x; e < q * N; e += blockDim.x) {
    int i = e / N, n = e - i * N, t = c * Q + i;
    float sc = 0, sb = 0;
    for (int j = 0; j <= i; j++) sc += DCB[i * Q + j] * ld(Bm[ix_bc(d, b, c * Q + j, g, n)]);
    for (int k = i; k < q; k++) sb += DCB[k * Q + i] * ld(Cm[ix_bc(d, b, c * Q + k, g, n)]);
    for (int h = g * hpg; h < (g + 1) * hpg; h++) {
      const float *S0 = states + ix_st(d, b, c, h), *dSe = dsend + ix_st(d, b, c, h);
      i64 ki = ix_dt(d, b, t, h);
      float last = acum[ix_dt(d, b, c * Q + q - 1, h)];
      float a = 0, s = 0;
      for (int p = 0; p < P; p++) {
        i64 xi = ix_x(d, b, t, h, p);
        a += ld(dy[xi]) * S0[p * N + n];
        s += ld(X[xi]) * dSe[p * N + n];
      }
      sc += f_exp(acum[ki]) * a;
      sb += f_exp(last - acum[ki]) * dt[ki] * s;
    }
    i64 o = ix_bc(d, b, t, g, n);
    if (dCm) st(&dCm[o], sc);
    if (dBm) st(&dBm[o], sb);
  }
}
#define P_BC(T)                                                                                                     \
  (T * dBm, T * dCm, const float *dcb, const T *dy, const T *X, const T *Bm, const T *Cm, const float *states,        \
   const float *dsend, const float *dt, const float *acum, int B, int L, int H, int P, int G, int N, int Q)
STORAGE3(ssd_bwd_bc, P_BC, (dBm, dCm, dcb, dy, X, Bm, Cm, states, dsend, dt, acum, B, L, H, P, G, N, Q))

// ssd_step: one decode token. state (B, H, P, N) updated in place, y (B, H, P) assigned; x (B, H, P),
// dt (B, H), bm, cm (B, G, N). One thread per (b, h, p): it owns the N entries of its row.
KERNEL ssd_step(float *state, float *y, const float *x, const float *dtr, const float *bm, const float *cm, const float *A,
                const float *dtBias, const float *Dskip, int B, int H, int P, int G, int N) {
  i64 total = (i64)B * H * P;
  for (i64 id = gtid(); id < total; id += gstride()) {
    int p = (int)(id % P);
    i64 bh = id / P;
    int h = (int)(bh % H), b = (int)(bh / H), g = h / (H / G);
    float dl = f_softplus(dtr[bh] + (dtBias ? dtBias[h] : 0.0f));
    float al = f_exp(dl * A[h]), xv = x[id];
    float *s = state + id * N;
    const float *bb = bm + ((i64)b * G + g) * N, *cc = cm + ((i64)b * G + g) * N;
    float acc = 0;
    for (int n = 0; n < N; n++) {
      float v = al * s[n] + dl * xv * bb[n];
      s[n] = v;
      acc += v * cc[n];
    }
    y[id] = acc + (Dskip ? Dskip[h] * xv : 0.0f);
  }
}
