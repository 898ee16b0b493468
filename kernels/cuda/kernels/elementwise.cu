// Elementwise and memory kernels: fill, axpby, mul, sum of squares, row-block copies, column sums,
// activations (SiLU, softplus, SwiGLU) and their gradients, AdamW, embedding gather/scatter, and
// fp32 ↔ bf16/fp16 storage conversion. Grid-stride loops over flat (i64) indices.
#include "common.cuh"

KERNEL fill_f32(float *x, i64 n, float v) {
  for (i64 i = gtid(); i < n; i += gstride()) x[i] = v;
}

// dst = a·x + b·y (dst may alias x or y: each element is read before it is written).
KERNEL axpby_f32(float *dst, float a, const float *x, float b, const float *y, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) dst[i] = a * x[i] + b * y[i];
}

KERNEL mul_f32(float *dst, const float *x, const float *y, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) dst[i] = x[i] * y[i];
}

// sumsq_partial writes one float64 partial Σx² per block to part[blockIdx.x]; the host adds the
// partials in order, so the result is deterministic for a fixed grid.
KERNEL sumsq_partial(double *part, const float *x, i64 n) {
  __shared__ double sh[32];
  double s = 0;
  for (i64 i = gtid(); i < n; i += gstride()) s += (double)x[i] * (double)x[i];
  for (int o = 16; o > 0; o >>= 1) s += shfl_xor_d(s, o);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) sh[w] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) t += sh[i];
    part[blockIdx.x] = t;
  }
}

// copy_rows: dst[r, dOff+j] (=|+=) src[r, sOff+j] for r < rows, j < n; one thread per element.
KERNEL copy_rows(float *dst, int dCols, int dOff, const float *src, int sCols, int sOff, int rows, int n, int acc) {
  i64 total = (i64)rows * n;
  for (i64 i = gtid(); i < total; i += gstride()) {
    i64 r = i / n;
    int j = (int)(i - r * n);
    float v = src[r * sCols + sOff + j];
    float *d = dst + r * dCols + dOff + j;
    *d = acc ? *d + v : v;
  }
}

// col_sum_acc: dst[j] += Σ_r src[r·ld + j] for j < cols. Block (32, 8): x walks columns, y rows;
// the 8 row partials are added in a fixed order (deterministic).
KERNEL col_sum_acc(float *dst, const float *src, int rows, int cols, int ld) {
  __shared__ float sh[8][33];
  int j = blockIdx.x * 32 + threadIdx.x;
  float s = 0;
  if (j < cols)
    for (int r = threadIdx.y; r < rows; r += 8) s += src[(i64)r * ld + j];
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    float t = 0;
    for (int k = 0; k < 8; k++) t += sh[k][threadIdx.x];
    dst[j] += t;
  }
}

// add_bias_rows: y[r, j] += bias[j] (Linear's bias after the GEMM).
KERNEL add_bias_rows(float *y, const float *bias, int rows, int cols) {
  i64 total = (i64)rows * cols;
  for (i64 i = gtid(); i < total; i += gstride()) y[i] += bias[i % cols];
}

KERNEL silu_fwd(float *out, const float *x, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) out[i] = f_silu(x[i]);
}
KERNEL silu_bwd(float *dx, const float *dout, const float *x, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) dx[i] = dout[i] * f_dsilu(x[i]);
}
KERNEL softplus_fwd(float *out, const float *x, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) out[i] = f_softplus(x[i]);
}
KERNEL softplus_bwd(float *dx, const float *dout, const float *x, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) dx[i] = x[i] > 20.0f ? dout[i] : dout[i] * f_sigmoid(x[i]);
}
// SwiGLU: out = silu(a)·b.
KERNEL swiglu_fwd(float *out, const float *a, const float *b, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) out[i] = f_silu(a[i]) * b[i];
}
KERNEL swiglu_bwd(float *da, float *db, const float *dout, const float *a, const float *b, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) {
    float av = a[i], g = dout[i];
    float s = f_sigmoid(av);
    da[i] = g * b[i] * s * (1.0f + av * (1.0f - s));
    db[i] = g * av * s;
  }
}

// AdamW step (torch.optim.AdamW); the host folds the bias corrections into stepSize and invBC2
// in float64, as ops.AdamW does.
KERNEL adamw_f32(float *p, float *m, float *v, const float *g, i64 n, float b1, float b2, float decay,
                 float stepSize, float invBC2, float eps) {
  for (i64 i = gtid(); i < n; i += gstride()) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float den = f_sqrt(vi) * invBC2 + eps;
    p[i] = p[i] * decay - stepSize * mi / den;
  }
}

// Embedding: out[r, :] = table[ids[r], :] (ids validated on the host).
KERNEL embedding_fwd(float *out, const int *ids, const float *table, int rows, int d) {
  i64 total = (i64)rows * d;
  for (i64 i = gtid(); i < total; i += gstride()) {
    i64 r = i / d;
    out[i] = table[(i64)ids[r] * d + (i - r * d)];
  }
}
// EmbeddingBackward: dtable[ids[r], :] += dout[r, :]. Repeated ids meet in float atomics, so the
// summation order (last bits) is not deterministic.
KERNEL embedding_bwd(float *dtable, const float *dout, const int *ids, int rows, int d) {
  i64 total = (i64)rows * d;
  for (i64 i = gtid(); i < total; i += gstride()) {
    i64 r = i / d;
    atomic_add(dtable + (i64)ids[r] * d + (i - r * d), dout[i]);
  }
}

// Storage conversion for the 16-bit variants (round to nearest even).
KERNEL f32_to_bf16(u16 *dst, const float *src, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) dst[i] = f_to_bf16(src[i]);
}
KERNEL bf16_to_f32(float *dst, const u16 *src, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) dst[i] = bf16_to_f(src[i]);
}
KERNEL f32_to_f16(u16 *dst, const float *src, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) dst[i] = f_to_f16(src[i]);
}
KERNEL f16_to_f32(float *dst, const u16 *src, i64 n) {
  for (i64 i = gtid(); i < n; i += gstride()) dst[i] = f16_to_f(src[i]);
}
