//go:build cudaemu

// The CPU emulator's runtime: launches run every block in turn, each with one std::thread per
// CUDA thread; __syncthreads and warp shuffles are std::barrier waits. Dynamic shared memory is
// filled with NaN bytes at every block start so a read before a write shows up in the results.
#include <barrier>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <atomic>
#include <cstdio>

#include "emu.h"
#include "emu_reg.h"

thread_local emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace {

struct Warp {
  std::barrier<> bar;
  uint64_t buf[32];
  int size;
  explicit Warp(int n) : bar(n), size(n) {}
};

struct Block {
  std::barrier<> bar;
  std::vector<std::unique_ptr<Warp>> warps;
  std::vector<unsigned char> smem;
  explicit Block(int n) : bar(n) {}
};

thread_local Block *cur;
thread_local int lane, warpIdx;

std::map<std::string, std::function<void(const uint64_t *)>> &registry() {
  static std::map<std::string, std::function<void(const uint64_t *)>> m;
  return m;
}

uint64_t exchange(uint64_t v, int src) {
  Warp &w = *cur->warps[warpIdx];
  w.buf[lane] = v;
  w.bar.arrive_and_wait();
  uint64_t r = (src >= 0 && src < w.size) ? w.buf[src] : v;
  w.bar.arrive_and_wait();
  return r;
}

uint64_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bitsf(uint64_t v) {
  uint32_t u = (uint32_t)v;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

void emu_register(const char *name, std::function<void(const uint64_t *)> fn) { registry()[name] = std::move(fn); }

void *emu_dynsmem() { return cur->smem.data(); }
void __syncthreads() { cur->bar.arrive_and_wait(); }
void __syncwarp(unsigned) { cur->warps[warpIdx]->bar.arrive_and_wait(); }

float __nvvm_shfl_sync_bfly_f32(unsigned, float v, int m, int) { return bitsf(exchange(fbits(v), lane ^ m)); }
int __nvvm_shfl_sync_bfly_i32(unsigned, int v, int m, int) { return (int)(uint32_t)exchange((uint32_t)v, lane ^ m); }
float __nvvm_shfl_sync_idx_f32(unsigned, float v, int src, int) { return bitsf(exchange(fbits(v), src & 31)); }

float __nvvm_atom_add_gen_f(float *p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
double __nvvm_atom_add_gen_d(double *p, double v) { return std::atomic_ref<double>(*p).fetch_add(v); }

unsigned short __nvvm_f2bf16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000) return (unsigned short)((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fff + ((u >> 16) & 1);
  return (unsigned short)(u >> 16);
}

unsigned short __nvvm_f2h_rn(float f) {
  _Float16 h = (_Float16)f;
  unsigned short u;
  std::memcpy(&u, &h, 2);
  return u;
}

extern "C" int emu_launch(const char *name, int gx, int gy, int gz, int bx, int by, int bz, int shmem,
                          const uint64_t *args, char *err, int errlen) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::snprintf(err, errlen, "kernel %s is not compiled into the emulator", name);
    return 1;
  }
  auto &fn = it->second;
  int nt = bx * by * bz;
  for (int z = 0; z < gz; z++)
    for (int y = 0; y < gy; y++)
      for (int x = 0; x < gx; x++) {
        Block blk(nt);
        for (int w = 0; w * 32 < nt; w++) blk.warps.emplace_back(new Warp(nt - 32 * w < 32 ? nt - 32 * w : 32));
        blk.smem.assign(shmem > 0 ? shmem : 1, 0xff);
        std::vector<std::thread> ts;
        ts.reserve(nt);
        for (int t = 0; t < nt; t++) {
          ts.emplace_back([&, t] {
            threadIdx = {(unsigned)(t % bx), (unsigned)((t / bx) % by), (unsigned)(t / (bx * by))};
            blockIdx = {(unsigned)x, (unsigned)y, (unsigned)z};
            blockDim = {(unsigned)bx, (unsigned)by, (unsigned)bz};
            gridDim = {(unsigned)gx, (unsigned)gy, (unsigned)gz};
            cur = &blk;
            lane = t % 32;
            warpIdx = t / 32;
            fn(args);
            blk.warps[warpIdx]->bar.arrive_and_drop();
            blk.bar.arrive_and_drop();
          });
        }
        for (auto &th : ts) th.join();
      }
  return 0;
}
