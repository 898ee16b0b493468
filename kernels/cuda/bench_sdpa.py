"""PyTorch scaled_dot_product_attention at the shapes of BenchmarkAttention (kernels/cuda/cuda_test.go),
forward and forward+backward, fp32 and bf16, with the same FLOP count (4·B·H·Dh·visible pairs; backward
2.5× forward), so the table lines up with bench_gpu.sh's. Run by bench_gpu.sh on the GPU machine."""
import time

import torch
import torch.nn.functional as F

SHAPES = [  # B, L, H, HKV, Dh, window, sinks (causal, S = L)
    (4, 2048, 16, 16, 64, 0, 0),
    (4, 2048, 16, 4, 128, 0, 0),
    (2, 4096, 16, 4, 128, 1024, 4),
]


def mask(L, window, sinks, dev):
    i = torch.arange(L, device=dev)[:, None]
    j = torch.arange(L, device=dev)[None, :]
    return (j <= i) & ((i - j < window) | (j < sinks))


def timed(fn, iters=10):
    fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / iters


def main():
    dev = "cuda"
    print(torch.__version__, torch.cuda.get_device_name())
    print(f"{'shape':44} {'dtype':8} {'fwd ms':>8} {'TFLOP/s':>8} {'fwd+bwd ms':>11} {'TFLOP/s':>8}")
    for B, L, H, HKV, Dh, W, S in SHAPES:
        pairs = L * L / 2 if W == 0 else L * W
        fl = 4 * B * H * Dh * pairs
        for dt in (torch.float32, torch.bfloat16):
            q = torch.randn(B, H, L, Dh, device=dev, dtype=dt, requires_grad=True)
            k = torch.randn(B, HKV, L, Dh, device=dev, dtype=dt, requires_grad=True)
            v = torch.randn(B, HKV, L, Dh, device=dev, dtype=dt, requires_grad=True)
            kk, vv = k.repeat_interleave(H // HKV, 1), v.repeat_interleave(H // HKV, 1)
            if W == 0:
                f = lambda: F.scaled_dot_product_attention(q, kk, vv, is_causal=True)
            else:
                m = mask(L, W, S, dev)
                f = lambda: F.scaled_dot_product_attention(q, kk, vv, attn_mask=m)
            try:
                with torch.no_grad():
                    tf = timed(f)
                o = f()
                g = torch.randn_like(o)
                tb = timed(lambda: torch.autograd.grad(f(), (q, k, v), g))
                name = f"B={B} L={L} H={H} HKV={HKV} Dh={Dh} W={W}"
                print(f"{name:44} {str(dt)[6:]:8} {tf*1e3:8.3f} {fl/tf/1e12:8.2f} {tb*1e3:11.3f} {3.5*fl/tb/1e12:8.2f}")
            except RuntimeError as e:  # out of memory for the masked fp32 path, old torch
                print(f"B={B} L={L} Dh={Dh} W={W} {dt}: {e}".splitlines()[0])
            del q, k, v, kk, vv
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
