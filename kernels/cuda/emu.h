// Host declarations for running the kernel sources on the CPU (build tag cudaemu): the CUDA
// keywords become plain C++, threadIdx and friends are thread-locals set by the emulator
// (emu_rt.cc), and the NVVM intrinsics the kernels use are emulated with barriers and atomics.
// One OS thread per CUDA thread, one block at a time: slow, but it runs the exact kernel code,
// so the conformance suite checks the kernels' math without a GPU. It does not model the
// memory hierarchy, timing, or warp divergence beyond what the barriers enforce.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#define __global__
#define __device__
#define __shared__ static
#define __forceinline__
#define DYN_SHARED(T, name) T *name = (T *)emu_dynsmem()

struct emu_dim3 {
  unsigned x, y, z;
};
extern thread_local emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

void *emu_dynsmem();
void __syncthreads();
void __syncwarp(unsigned mask);
float __nvvm_shfl_sync_bfly_f32(unsigned mask, float v, int laneMask, int c);
int __nvvm_shfl_sync_bfly_i32(unsigned mask, int v, int laneMask, int c);
float __nvvm_shfl_sync_idx_f32(unsigned mask, float v, int src, int c);
float __nvvm_atom_add_gen_f(float *p, float v);
double __nvvm_atom_add_gen_d(double *p, double v);
unsigned short __nvvm_f2bf16_rn(float f);
unsigned short __nvvm_f2h_rn(float f);
inline float __nvvm_sqrt_rn_f(float x) { return std::sqrt(x); }
