// Shared declarations of the CUDA kernels. The sources compile with clang's CUDA front end and
// -nocudainc -nocudalib (no CUDA toolkit, no libdevice), so this header declares the CUDA keywords
// itself and implements the few math functions the kernels need (exp, log, log1p, sigmoid,
// softplus) in plain float arithmetic with fma: accurate to a few ulp, no approximate
// hardware instructions. Every kernel is extern "C" so the Go side finds it by its plain name.
//
// Conventions: all sizes are int; flat offsets that can pass 2^31 are long long. Buffers are
// float32 (fp32 mode); kernels ending in _bf16/_f16 read 16-bit storage and accumulate in fp32.
#pragma once

#ifdef HYBRID_EMU
// Host build for the CPU emulator (kernels/cuda/emu_rt.cc, build tag cudaemu): the same sources
// run on CPU threads, one OS thread per CUDA thread, blocks in sequence.
#include "../emu.h"
#else
#include <__clang_cuda_builtin_vars.h>

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __forceinline__ __attribute__((always_inline))
#define DYN_SHARED(T, name) extern __shared__ T name[]
#endif
#define DEV static __device__ inline __forceinline__
#define KERNEL extern "C" __global__ void

typedef long long i64;
typedef unsigned short u16;

#define FULL_MASK 0xffffffffu
#define F_INF __builtin_huge_valf()
#define F_NAN __builtin_nanf("")

DEV float f_bits(int b) { return __builtin_bit_cast(float, b); }
DEV int i_bits(float f) { return __builtin_bit_cast(int, f); }
DEV float f_fma(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
DEV float f_sqrt(float x) { return __nvvm_sqrt_rn_f(x); }
DEV float f_rint(float x) { return __builtin_rintf(x); }
DEV float f_abs(float x) { return __builtin_fabsf(x); }
DEV float f_max(float a, float b) { return a > b ? a : b; }
DEV float f_min(float a, float b) { return a < b ? a : b; }

// f_exp: e^x with Cody–Waite range reduction x = k·ln2 + r, |r| ≤ ln2/2, a degree-7 Taylor
// polynomial for e^r (truncation ~5e-9 relative) and 2^k applied in two halves so results in the
// subnormal range come out right.
DEV float f_exp(float x) {
  if (!(x == x)) return x;
  if (x > 88.72284f) return F_INF;
  if (x < -104.0f) return 0.0f;
  float k = f_rint(x * 1.4426950408889634f);
  float r = f_fma(k, -0.693145751953125f, x);
  r = f_fma(k, -1.4286068203094172e-06f, r);
  float p = 1.0f / 5040.0f;
  p = f_fma(p, r, 1.0f / 720.0f);
  p = f_fma(p, r, 1.0f / 120.0f);
  p = f_fma(p, r, 1.0f / 24.0f);
  p = f_fma(p, r, 1.0f / 6.0f);
  p = f_fma(p, r, 0.5f);
  p = f_fma(p, r, 1.0f);
  p = f_fma(p, r, 1.0f);
  int ki = (int)k;
  int k1 = ki / 2, k2 = ki - k1;
  return p * f_bits((k1 + 127) << 23) * f_bits((k2 + 127) << 23);
}

// f_log: natural log; x = 2^e·m with m in [√½, √2), log m = 2·atanh(f), f = (m−1)/(m+1).
DEV float f_log(float x) {
  if (!(x > 0.0f)) return x == 0.0f ? -F_INF : F_NAN;
  if (x == F_INF) return x;
  int e = 0;
  if (x < 1.17549435e-38f) { x *= 8388608.0f; e = -23; }
  int b = i_bits(x);
  e += ((b >> 23) & 255) - 127;
  float m = f_bits((b & 0x007fffff) | 0x3f800000);  // [1, 2)
  if (m > 1.41421356f) { m *= 0.5f; e += 1; }
  float f = (m - 1.0f) / (m + 1.0f);
  float f2 = f * f;
  float s = 2.0f / 13.0f;
  s = f_fma(s, f2, 2.0f / 11.0f);
  s = f_fma(s, f2, 2.0f / 9.0f);
  s = f_fma(s, f2, 2.0f / 7.0f);
  s = f_fma(s, f2, 2.0f / 5.0f);
  s = f_fma(s, f2, 2.0f / 3.0f);
  s = f_fma(s, f2, 2.0f);
  float lm = s * f;
  float fe = (float)e;
  return f_fma(fe, 0.693145751953125f, f_fma(fe, 1.4286068203094172e-06f, lm));
}

// f_log1p: log(1+u) for u ≥ −1 without cancellation (Kahan: log(w)·u/(w−1) with w = 1+u).
DEV float f_log1p(float u) {
  float w = 1.0f + u;
  if (w == 1.0f) return u;
  if (w == F_INF) return w;
  return f_log(w) * (u / (w - 1.0f));
}

DEV float f_sigmoid(float x) { return 1.0f / (1.0f + f_exp(-x)); }
DEV float f_silu(float x) { return x * f_sigmoid(x); }
// softplus as PyTorch/Mamba: x above 20.
DEV float f_softplus(float x) { return x > 20.0f ? x : f_max(x, 0.0f) + f_log1p(f_exp(-f_abs(x))); }
// d silu / dx = σ(x)·(1 + x·(1 − σ(x))).
DEV float f_dsilu(float x) {
  float s = f_sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

// ---- 16-bit storage ----
DEV float bf16_to_f(u16 h) { return f_bits(((int)h) << 16); }
DEV u16 f_to_bf16(float f) { return __nvvm_f2bf16_rn(f); }
DEV float f16_to_f(u16 h) {
  // IEEE half → float by bits (normal, subnormal, inf/nan).
  int s = (h & 0x8000) << 16, e = (h >> 10) & 31, m = h & 1023;
  if (e == 0) return (s ? -1.0f : 1.0f) * (float)m * 5.9604644775390625e-08f;
  if (e == 31) return f_bits(s | 0x7f800000 | (m << 13));
  return f_bits(s | ((e + 112) << 23) | (m << 13));
}
DEV u16 f_to_f16(float f) { return __builtin_bit_cast(u16, __nvvm_f2h_rn(f)); }

// Storage types: activations may be stored in bf16 or fp16; every kernel loads them with ld()
// into fp32, accumulates in fp32 and stores with st() (round to nearest even).
struct bf16 {
  u16 v;
};
struct f16 {
  u16 v;
};
DEV float ld(float x) { return x; }
DEV float ld(bf16 x) { return bf16_to_f(x.v); }
DEV float ld(f16 x) { return f16_to_f(x.v); }
DEV void st(float *p, float v) { *p = v; }
DEV void st(bf16 *p, float v) { p->v = f_to_bf16(v); }
DEV void st(f16 *p, float v) { p->v = f_to_f16(v); }

// STORAGE3(name, PARAMS, ARGS) defines the fp32 kernel `name` and its 16-bit storage variants
// name_bf16 and name_f16 over the device template name_t; PARAMS(T) is the parameter list with
// storage type T, ARGS the argument list passed on.
#define STORAGE3(name, PARAMS, ARGS)           \
  KERNEL name PARAMS(float) { name##_t ARGS; } \
  KERNEL name##_bf16 PARAMS(bf16) { name##_t ARGS; } \
  KERNEL name##_f16 PARAMS(f16) { name##_t ARGS; }

// ---- atomics, warps, blocks ----
#ifndef HYBRID_EMU
DEV void __syncwarp(unsigned mask) { __nvvm_bar_warp_sync(mask); }
#endif
DEV float atomic_add(float *p, float v) { return __nvvm_atom_add_gen_f(p, v); }
DEV double atomic_add_d(double *p, double v) { return __nvvm_atom_add_gen_d(p, v); }
DEV float shfl_xor(float v, int lane) { return __nvvm_shfl_sync_bfly_f32(FULL_MASK, v, lane, 0x1f); }
DEV float shfl_idx(float v, int src) { return __nvvm_shfl_sync_idx_f32(FULL_MASK, v, src, 0x1f); }
DEV double shfl_xor_d(double v, int lane) {
  unsigned long long b = __builtin_bit_cast(unsigned long long, v);
  int lo = __nvvm_shfl_sync_bfly_i32(FULL_MASK, (int)(unsigned)b, lane, 0x1f);
  int hi = __nvvm_shfl_sync_bfly_i32(FULL_MASK, (int)(unsigned)(b >> 32), lane, 0x1f);
  return __builtin_bit_cast(double, ((unsigned long long)(unsigned)hi << 32) | (unsigned)lo);
}
DEV float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += shfl_xor(v, o);
  return v;
}
DEV float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = f_max(v, shfl_xor(v, o));
  return v;
}
// seg_sum sums v over aligned segments of w lanes (w a power of two ≤ 32).
DEV float seg_sum(float v, int w) {
  for (int o = w >> 1; o > 0; o >>= 1) v += shfl_xor(v, o);
  return v;
}

// block_sum: sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets it.
// sh must hold 32 floats; it is reused, so calls are separated by the trailing barrier.
DEV float block_sum(float v, float *sh) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  if (lane == 0) sh[w] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : 0.0f;
  v = warp_sum(v);
  __syncthreads();
  return v;
}
DEV float block_max(float v, float *sh) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  if (lane == 0) sh[w] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : -F_INF;
  v = warp_max(v);
  __syncthreads();
  return v;
}

DEV i64 gtid() { return (i64)blockIdx.x * blockDim.x + threadIdx.x; }
DEV i64 gstride() { return (i64)gridDim.x * blockDim.x; }
