"""Golden vectors for package attention, from the definitional math in torch float64.

Run with Debian's torch 1.13 (no scaled_dot_product_attention, so the math is written out):

    /usr/bin/python3 attention/testdata/gen_golden_attn.py

Writes golden_attn_<name>.json and golden_rope.json next to this script:
{"shapes": {...}, "tensors": {"name": {"shape": [...], "data": [...]}}}. Attention tensors are
token-major: q, o, do (B, L, H, Dh); k, v (B, S, HKV, Dh); lse (B, H, L). Query i sits at
position S-L+i; key j is visible when (not causal or j <= p) and (W == 0 or |p-j| < W or j < sinks).
"""
import json
import math
import os
import struct

import torch

torch.manual_seed(1234)
HERE = os.path.dirname(os.path.abspath(__file__))


def tensor(x):
    return {"shape": list(x.shape), "data": [float(v) for v in x.detach().reshape(-1).tolist()]}


def mask(L, S, causal, window, sinks):
    m = torch.zeros(L, S, dtype=torch.bool)
    for i in range(L):
        p = S - L + i
        for j in range(S):
            ok = (not causal) or j <= p
            if window > 0:
                ok = ok and (abs(p - j) < window or j < sinks)
            m[i, j] = ok
    return m


def attention(q, k, v, causal, window, sinks, scale):
    B, L, H, Dh = q.shape
    S, HKV = k.shape[1], k.shape[2]
    rep = H // HKV
    kk = k.repeat_interleave(rep, dim=2)  # (B, S, H, Dh): query head h reads kv head h // rep
    vv = v.repeat_interleave(rep, dim=2)
    s = torch.einsum("blhd,bshd->bhls", q, kk) * scale
    s = s.masked_fill(~mask(L, S, causal, window, sinks), float("-inf"))
    lse = torch.logsumexp(s, dim=-1)  # (B, H, L)
    p = torch.softmax(s, dim=-1)
    o = torch.einsum("bhls,bshd->blhd", p, vv)
    return o, lse


def attn_case(name, B, L, S, H, HKV, Dh, causal, window=0, sinks=0, scale=0.0):
    q = torch.randn(B, L, H, Dh, dtype=torch.float64, requires_grad=True)
    k = torch.randn(B, S, HKV, Dh, dtype=torch.float64, requires_grad=True)
    v = torch.randn(B, S, HKV, Dh, dtype=torch.float64, requires_grad=True)
    do = torch.randn(B, L, H, Dh, dtype=torch.float64)
    sc = scale if scale != 0 else 1 / math.sqrt(Dh)
    sc = struct.unpack("f", struct.pack("f", sc))[0]  # Dims.Scale is a float32
    o, lse = attention(q, k, v, causal, window, sinks, sc)
    (o * do).sum().backward()
    out = {
        "shapes": {"B": B, "L": L, "S": S, "H": H, "HKV": HKV, "Dh": Dh, "causal": causal,
                   "window": window, "sinks": sinks, "scale": scale},
        "tensors": {"q": tensor(q), "k": tensor(k), "v": tensor(v), "do": tensor(do), "o": tensor(o),
                    "lse": tensor(lse), "dq": tensor(q.grad), "dk": tensor(k.grad), "dv": tensor(v.grad)},
    }
    with open(os.path.join(HERE, "golden_attn_%s.json" % name), "w") as f:
        json.dump(out, f)


def rope(x, pos0, theta):
    B, L, H, Dh = x.shape
    half = Dh // 2
    inv = theta ** (-torch.arange(0, half, dtype=torch.float64) * 2 / Dh)
    ang = (pos0 + torch.arange(L, dtype=torch.float64))[:, None] * inv[None, :]  # (L, half)
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :]
    rot = torch.cat([-x[..., half:], x[..., :half]], -1)  # rotate_half
    return x * cos + rot * sin


def rope_case():
    B, L, H, Dh, pos0, theta = 2, 5, 3, 8, 3, 10000.0
    x = torch.randn(B, L, H, Dh, dtype=torch.float64, requires_grad=True)
    g = torch.randn(B, L, H, Dh, dtype=torch.float64)
    out = rope(x, pos0, theta)
    (out * g).sum().backward()
    res = {"shapes": {"B": B, "L": L, "H": H, "Dh": Dh, "pos0": pos0, "theta": theta},
           "tensors": {"x": tensor(x), "out": tensor(out), "g": tensor(g), "dx": tensor(x.grad)}}
    with open(os.path.join(HERE, "golden_rope.json"), "w") as f:
        json.dump(res, f)


attn_case("gqa_causal", B=1, L=6, S=6, H=4, HKV=2, Dh=8, causal=True)
attn_case("window_sinks", B=2, L=10, S=10, H=2, HKV=1, Dh=4, causal=True, window=3, sinks=2)
attn_case("cross", B=1, L=3, S=5, H=2, HKV=2, Dh=5, causal=False, scale=0.4)
attn_case("prefill_window", B=1, L=4, S=9, H=3, HKV=1, Dh=6, causal=True, window=5)
rope_case()
