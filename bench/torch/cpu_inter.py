#!/usr/bin/env python3
"""PyTorch (CPU, float32) baseline for recipes/bench/cpu-inter.yaml.

The same model as `hybrid bench train recipes/bench/cpu-inter.yaml` builds through arch.Build
(arch/model.go, mixers.go, layers.go, init.go, count.go), written in plain PyTorch ops the way
a PyTorch user would write it without custom kernels, so the Go trainer's tokens/s can be put
beside PyTorch's on the same CPU.

    ids (B, T) -> embed -> 8 pre-norm blocks, layout MMAMMMAM -> RMSNorm -> tied head (B, T, 256)

    block:   x += Mixer(RMSNorm(x));  x += FFN(RMSNorm(x))          (SwiGLU FFN after every mixer)
    Mamba-2: [z, xBC, dt] = in_proj(x); [x, B, C] = silu(causal depthwise conv1d(xBC));
             y = SSD(x, softplus(dt + dt_bias), A = -exp(A_log), B, C) + D*x;
             out = out_proj(RMSNorm(y * silu(z)) * norm.weight)
    attn:    GQA (4 query heads, 2 KV heads, head dim 64), RoPE rotate-half, theta 1e4, causal

Parameter names and shapes follow arch/model.go, so named_parameters() lists exactly what
`hybrid info` counts. The training step mirrors train/run.go: forward, mean cross-entropy,
backward, global grad-norm clip at 1.0, AdamW (lr 1e-3, betas 0.9/0.95, eps 1e-8, weight
decay 0.1 on parameters with two or more dimensions only, as train.Decays).

The SSD is the chunked matrix form (chunk 64): within a chunk the output is (C Bᵀ ∘ L) X with L
the masked decay matrix; chunk-end states are B-weighted sums of X, passed between chunks with a
chunk-level decay matrix, and read back with C. `--check` tests it against a token-by-token loop.

Usage:
    /usr/bin/python3 bench/torch/cpu_inter.py                 # benchmark (2 warm-up, 5 timed steps)
    /usr/bin/python3 bench/torch/cpu_inter.py --threads 1 --steps 10
    /usr/bin/python3 bench/torch/cpu_inter.py --check         # correctness checks, then exit
"""

import argparse
import ctypes
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

try:
    import torch
except ImportError:  # `hybrid bench train --torch` runs "python3" from PATH, which may lack torch
    if os.path.exists("/usr/bin/python3") and not os.environ.get("CPU_INTER_REEXEC"):
        os.environ["CPU_INTER_REEXEC"] = "1"
        print(f"note: {sys.executable} has no torch; re-running with /usr/bin/python3", file=sys.stderr)
        os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)] + sys.argv[1:])
    raise
import torch.nn as nn
import torch.nn.functional as F

# The model section of recipes/bench/cpu-inter.yaml (every field that changes the cost).
CONFIG = dict(
    vocab_size=256,
    d_model=256,
    pattern="MMAMMMAM",
    attn_heads=4,
    attn_kv_heads=2,
    attn_head_dim=64,
    rope_theta=10000.0,
    mamba_expand=2,
    mamba_head_dim=64,
    d_state=64,
    n_groups=1,
    conv_width=4,
    chunk_size=64,
    a_init=(1.0, 16.0),
    ffn_hidden=768,
    norm_eps=1e-5,
    tied_embeddings=True,
    init_std=0.02,
)
TRAIN = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, grad_clip=1.0)
SEQ_LEN, BATCH = 512, 8
GO_PARAMS = 7772304  # `go run ./cmd/hybrid info bench/cpu-inter`, total params


# ---------------------------------------------------------------------------------------------
# SSD (Mamba-2 state-space dual), chunked.


def ssd_chunked(x, dt, A, B, C, chunk):
    """Chunked SSD without the D skip.

    x (b, l, h, p); dt (b, l, h) (already softplus'ed); A (h) (negative);
    B, C (b, l, g, n), head k reads group k // (h/g). Returns y (b, l, h, p) with
        S_t = exp(dt_t A) S_{t-1} + dt_t x_t ⊗ B_t,   y_t = S_t C_t.
    """
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    hpg = h // g
    pad = (-l) % chunk
    if pad:  # zero-padded tokens have dt = 0: no decay, no input, outputs dropped below
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, 0, 0, pad))
    L = l + pad
    c, q = L // chunk, chunk

    # Head-major, chunked layouts.
    xdt = (x * dt.unsqueeze(-1)).view(b, c, q, g, hpg, p).permute(0, 3, 4, 1, 2, 5)  # (b,g,hpg,c,q,p)
    Bc = B.view(b, c, q, g, n).permute(0, 3, 1, 2, 4).unsqueeze(2)                   # (b,g,1,c,q,n)
    Cc = C.view(b, c, q, g, n).permute(0, 3, 1, 2, 4).unsqueeze(2)                   # (b,g,1,c,q,n)
    a = (dt * A).view(b, c, q, g, hpg).permute(0, 3, 4, 1, 2)                         # (b,g,hpg,c,q)
    acum = torch.cumsum(a, dim=-1)                                                    # inclusive, in chunk

    # 1. Intra-chunk (diagonal blocks): y_i = Σ_{j≤i} exp(acum_i − acum_j) (C_i·B_j) dt_j x_j.
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
    seg = (acum.unsqueeze(-1) - acum.unsqueeze(-2)).masked_fill(~causal, float("-inf"))
    Lmat = torch.exp(seg)                                                             # (b,g,hpg,c,q,q)
    CB = Cc @ Bc.transpose(-1, -2)                                                    # (b,g,1,c,q,q)
    y = (CB * Lmat) @ xdt                                                             # (b,g,hpg,c,q,p)

    # 2. Each chunk's own end state: S_c = Σ_j exp(acum_last − acum_j) dt_j x_j ⊗ B_j.
    decay_to_end = torch.exp(acum[..., -1:] - acum)                                   # (b,g,hpg,c,q)
    states = (xdt * decay_to_end.unsqueeze(-1)).transpose(-1, -2) @ Bc                # (b,g,hpg,c,p,n)

    # 3. State passing: the state entering chunk i is Σ_{j<i} exp(T_{i−1} − T_j) S_j, T the
    #    inclusive running sum of the chunk totals (a (c × c) decay matrix, one matmul).
    tot = torch.cumsum(acum[..., -1], dim=-1)                                         # (b,g,hpg,c)
    prev = F.pad(tot[..., :-1], (1, 0))                                               # T_{i−1}, T_{−1}=0
    strict = torch.ones(c, c, dtype=torch.bool, device=x.device).tril(-1)
    M = torch.exp((prev.unsqueeze(-1) - tot.unsqueeze(-2)).masked_fill(~strict, float("-inf")))
    s_in = (M @ states.reshape(b, g, hpg, c, p * n)).view(b, g, hpg, c, p, n)

    # 4. Inter-chunk (off-diagonal) output: y_i += exp(acum_i) C_i · S_in.
    y = y + (Cc @ s_in.transpose(-1, -2)) * torch.exp(acum).unsqueeze(-1)             # (b,g,hpg,c,q,p)

    y = y.permute(0, 3, 4, 1, 2, 5).reshape(b, L, h, p)
    return y[:, :l] if pad else y


def ssd_sequential(x, dt, A, B, C):
    """The SSD recurrence token by token (the --check oracle)."""
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    hpg = h // g
    Bh = B.repeat_interleave(hpg, dim=2)  # (b, l, h, n)
    Ch = C.repeat_interleave(hpg, dim=2)
    S = x.new_zeros(b, h, p, n)
    ys = []
    for t in range(l):
        alpha = torch.exp(dt[:, t] * A)  # (b, h)
        S = alpha[..., None, None] * S + (dt[:, t, :, None] * x[:, t]).unsqueeze(-1) * Bh[:, t].unsqueeze(-2)
        ys.append(S @ Ch[:, t].unsqueeze(-1))
    return torch.stack(ys, dim=1).squeeze(-1)


# ---------------------------------------------------------------------------------------------
# Layers.


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class GatedRMSNorm(nn.Module):
    """RMSNorm over g groups of y ⊙ silu(z), scaled by weight (tensor.GatedRMSNorm)."""

    def __init__(self, d, groups, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.groups, self.eps = groups, eps

    def forward(self, y, z):
        y = y * F.silu(z)
        if self.groups > 1:
            s = y.shape
            y = y.view(*s[:-1], self.groups, s[-1] // self.groups)
            y = (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)).view(s)
        else:
            y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return y * self.weight


class FFN(nn.Module):
    """SwiGLU: down(silu(gate x) ⊙ up x)."""

    def __init__(self, d, f):
        super().__init__()
        self.gate = nn.Linear(d, f, bias=False)
        self.up = nn.Linear(d, f, bias=False)
        self.down = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Conv1d(nn.Module):
    """Causal depthwise conv1d; weight (C, W) as arch stores it, w[:, W−1] the current token."""

    def __init__(self, ch, width):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ch, width))
        self.bias = nn.Parameter(torch.empty(ch))
        self.width = width

    def forward(self, x):  # (b, l, C) -> (b, l, C)
        l = x.shape[1]
        y = F.conv1d(x.transpose(1, 2), self.weight.unsqueeze(1), self.bias,
                     padding=self.width - 1, groups=x.shape[2])
        return y[..., :l].transpose(1, 2)


class Mamba2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["d_model"]
        self.di = cfg["mamba_expand"] * d
        self.p = cfg["mamba_head_dim"]
        self.h = self.di // self.p
        self.g, self.n = cfg["n_groups"], cfg["d_state"]
        self.chunk = cfg["chunk_size"]
        gn = self.g * self.n
        self.in_proj = nn.Linear(d, 2 * self.di + 2 * gn + self.h, bias=False)
        self.conv1d = Conv1d(self.di + 2 * gn, cfg["conv_width"])
        self.dt_bias = nn.Parameter(torch.empty(self.h))
        self.A_log = nn.Parameter(torch.empty(self.h))
        self.D = nn.Parameter(torch.ones(self.h))
        self.norm = GatedRMSNorm(self.di, self.g, cfg["norm_eps"])
        self.out_proj = nn.Linear(self.di, d, bias=False)

    def forward(self, u):
        b, l, _ = u.shape
        gn = self.g * self.n
        z, xbc, dt = torch.split(self.in_proj(u), [self.di, self.di + 2 * gn, self.h], dim=-1)
        x, B, C = torch.split(F.silu(self.conv1d(xbc)), [self.di, gn, gn], dim=-1)
        x = x.reshape(b, l, self.h, self.p)
        dt = F.softplus(dt + self.dt_bias)  # threshold 20, as selective_scan
        A = -torch.exp(self.A_log)
        y = ssd_chunked(x, dt, A, B.reshape(b, l, self.g, self.n), C.reshape(b, l, self.g, self.n), self.chunk)
        y = y + x * self.D.view(1, 1, -1, 1)
        return self.out_proj(self.norm(y.reshape(b, l, self.di), z))


def rope_tables(t, dim, theta, dtype):
    inv = theta ** (-2.0 * torch.arange(dim // 2, dtype=torch.float64) / dim)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]  # (t, dim/2), in float64
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def apply_rope(x, cos, sin):
    """x (b, t, heads, dim): rotate the pairs (i, i + dim/2) (rotate-half, Llama/NeoX)."""
    x1, x2 = x.chunk(2, dim=-1)
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


HAVE_SDPA = hasattr(F, "scaled_dot_product_attention")


def causal_attention(q, k, v, scale):
    """q (b, h, t, d), k, v (b, kh, t, d); query head i reads KV head i // (h/kh)."""
    b, h, t, d = q.shape
    kh = k.shape[1]
    rep = h // kh
    if HAVE_SDPA:  # torch ≥ 2.0
        if rep > 1:
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        assert abs(scale * math.sqrt(d) - 1) < 1e-12  # SDPA's default scale, 1/√d
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    # torch 1.13 has no SDPA: matmul + masked softmax, GQA by broadcasting the KV heads.
    qg = q.view(b, kh, rep, t, d)
    s = (qg @ k.unsqueeze(2).transpose(-1, -2)) * scale  # (b, kh, rep, t, t)
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    p = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
    return (p @ v.unsqueeze(2)).view(b, h, t, d)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["d_model"]
        self.h, self.kh, self.hd = cfg["attn_heads"], cfg["attn_kv_heads"], cfg["attn_head_dim"]
        self.theta = cfg["rope_theta"]
        self.q_proj = nn.Linear(d, self.h * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.kh * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kh * self.hd, bias=False)
        self.o_proj = nn.Linear(self.h * self.hd, d, bias=False)
        self._rope = None

    def forward(self, x):
        b, t, _ = x.shape
        if self._rope is None or self._rope[0].shape[0] != t:
            self._rope = rope_tables(t, self.hd, self.theta, x.dtype)
        cos, sin = self._rope
        q = apply_rope(self.q_proj(x).view(b, t, self.h, self.hd), cos, sin)
        k = apply_rope(self.k_proj(x).view(b, t, self.kh, self.hd), cos, sin)
        v = self.v_proj(x).view(b, t, self.kh, self.hd)
        o = causal_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), 1 / math.sqrt(self.hd))
        return self.o_proj(o.transpose(1, 2).reshape(b, t, self.h * self.hd))


class Block(nn.Module):
    def __init__(self, cfg, kind):
        super().__init__()
        self.norm = RMSNorm(cfg["d_model"], cfg["norm_eps"])
        self.mixer = Mamba2(cfg) if kind == "M" else Attention(cfg)
        self.ffn_norm = RMSNorm(cfg["d_model"], cfg["norm_eps"])
        self.ffn = FFN(cfg["d_model"], cfg["ffn_hidden"])

    def forward(self, x):
        x = x + self.mixer(self.norm(x))
        return x + self.ffn(self.ffn_norm(x))


class HybridLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert cfg["tied_embeddings"]
        self.embed = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.layers = nn.ModuleList(Block(cfg, k) for k in cfg["pattern"])
        self.norm_f = RMSNorm(cfg["d_model"], cfg["norm_eps"])
        self.reset_parameters(cfg)

    @torch.no_grad()
    def reset_parameters(self, cfg, seed=1):
        """The distributions of arch/init.go (not its random streams, which are Go's PCG)."""
        gen = torch.Generator().manual_seed(seed)
        std = cfg["init_std"]
        out_std = std / math.sqrt(2 * len(cfg["pattern"]))
        lo, hi = cfg["a_init"]
        for name, prm in self.named_parameters():
            leaf = name.rsplit(".", 2)
            if name.endswith(("o_proj.weight", "out_proj.weight", "ffn.down.weight")):
                prm.normal_(0, out_std, generator=gen)
            elif name.endswith(("norm.weight", "norm_f.weight", ".D")):
                prm.fill_(1.0)
            elif ".conv1d." in name:
                bound = 1 / math.sqrt(cfg["conv_width"])
                prm.uniform_(-bound, bound, generator=gen)
            elif name.endswith("A_log"):
                prm.copy_(torch.log(torch.empty_like(prm).uniform_(lo, hi, generator=gen)))
            elif name.endswith("dt_bias"):
                u = torch.rand(prm.shape, generator=gen, dtype=torch.float64)
                dt = torch.exp(math.log(1e-3) + u * (math.log(1e-1) - math.log(1e-3))).clamp(min=1e-4)
                prm.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹
            elif leaf[-1] == "weight" and prm.dim() == 2:
                prm.normal_(0, std, generator=gen)
            else:
                raise ValueError(f"no init rule for {name}")

    def forward(self, ids):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return F.linear(self.norm_f(x), self.embed.weight)  # tied head


def count_formula(cfg):
    """Total parameters by arch/count.go's formulas (a tied head counted once)."""
    d, V, F_ = cfg["d_model"], cfg["vocab_size"], cfg["ffn_hidden"]
    di = cfg["mamba_expand"] * d
    H = di // cfg["mamba_head_dim"]
    gn = cfg["n_groups"] * cfg["d_state"]
    W = cfg["conv_width"]
    h, kh, hd = cfg["attn_heads"], cfg["attn_kv_heads"], cfg["attn_head_dim"]
    ffn = d + 3 * d * F_
    mamba = d + d * (2 * di + 2 * gn + H) + (di + 2 * gn) * (W + 1) + 3 * H + di + di * d + ffn
    attn = d + d * h * hd + 2 * d * kh * hd + h * hd * d + ffn
    return V * d + d + sum(mamba if k == "M" else attn for k in cfg["pattern"])


# ---------------------------------------------------------------------------------------------
# Checks.


def run_checks():
    torch.manual_seed(0)
    dtype = torch.float64
    cases = [  # (b, l, h, p, g, n, chunk)
        (2, 37, 4, 3, 2, 5, 8),    # l not a multiple of the chunk, 2 groups
        (1, 64, 2, 4, 1, 6, 16),
        (2, 20, 3, 2, 1, 4, 64),   # one partial chunk
        (1, 48, 4, 2, 4, 3, 1),    # chunk 1: only state passing
    ]
    for b, l, h, p, g, n, chunk in cases:
        x = torch.randn(b, l, h, p, dtype=dtype, requires_grad=True)
        dt = F.softplus(torch.randn(b, l, h, dtype=dtype) - 1).requires_grad_()
        A = (-torch.exp(torch.rand(h, dtype=dtype) * math.log(16))).requires_grad_()
        B = torch.randn(b, l, g, n, dtype=dtype, requires_grad=True)
        C = torch.randn(b, l, g, n, dtype=dtype, requires_grad=True)
        dy = torch.randn(b, l, h, p, dtype=dtype)
        y1 = ssd_chunked(x, dt, A, B, C, chunk)
        g1 = torch.autograd.grad((y1 * dy).sum(), (x, dt, A, B, C))
        y2 = ssd_sequential(x, dt, A, B, C)
        g2 = torch.autograd.grad((y2 * dy).sum(), (x, dt, A, B, C))
        case = f"case b={b} l={l} h={h} p={p} g={g} n={n} chunk={chunk}"
        assert y1.shape == y2.shape, case
        assert torch.allclose(y1, y2, rtol=1e-9, atol=1e-10), f"{case}: SSD output differs"
        for name, a, e in zip(("dx", "ddt", "dA", "dB", "dC"), g1, g2):
            assert torch.allclose(a, e, rtol=1e-8, atol=1e-9), f"{case}: SSD {name} differs"

    # float32 at the benchmark's sizes: strong decay (A down to −16) must not overflow.
    b, l, h, p, n = 1, 256, 8, 64, 64
    x = torch.randn(b, l, h, p)
    dt = F.softplus(torch.randn(b, l, h) + 1)
    A = -torch.linspace(1, 16, h)
    B, C = torch.randn(b, l, 1, n), torch.randn(b, l, 1, n)
    y1 = ssd_chunked(x, dt, A, B, C, 64)
    y2 = ssd_sequential(x.double(), dt.double(), A.double(), B.double(), C.double())
    assert torch.isfinite(y1).all(), "float32 SSD not finite"
    assert (y1.double() - y2).abs().max() <= 1e-3 * y2.abs().max(), "float32 SSD differs from float64 loop"

    # GQA attention against an explicit per-head softmax loop.
    b, h, kh, t, d = 2, 4, 2, 9, 8
    q, k, v = torch.randn(b, h, t, d, dtype=dtype), torch.randn(b, kh, t, d, dtype=dtype), torch.randn(b, kh, t, d, dtype=dtype)
    o = causal_attention(q, k, v, 1 / math.sqrt(d))
    for i in range(h):
        j = i // (h // kh)
        s = q[:, i] @ k[:, j].transpose(-1, -2) / math.sqrt(d)
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        assert torch.allclose(o[:, i], torch.softmax(s, -1) @ v[:, j]), "attention head %d differs" % i

    # RoPE: pair (i, i + d/2) rotated by pos · θ^(−2i/d).
    x = torch.randn(1, 5, 2, 8, dtype=dtype)
    cos, sin = rope_tables(5, 8, 10000.0, dtype)
    r = apply_rope(x, cos, sin)
    for t in range(5):
        for i in range(4):
            ang = t * 10000.0 ** (-2 * i / 8)
            a, bb = x[0, t, :, i], x[0, t, :, i + 4]
            assert torch.allclose(r[0, t, :, i], a * math.cos(ang) - bb * math.sin(ang))
            assert torch.allclose(r[0, t, :, i + 4], bb * math.cos(ang) + a * math.sin(ang))

    # Causal conv: output t sees inputs t−3 … t with weight[:, 3] on the current token.
    conv = Conv1d(3, 4).double()
    with torch.no_grad():
        conv.weight.normal_()
        conv.bias.normal_()
    x = torch.randn(2, 7, 3, dtype=dtype)
    y = conv(x)
    xp = F.pad(x, (0, 0, 3, 0))
    want = conv.bias + sum(conv.weight[:, k] * xp[:, k:k + 7] for k in range(4))
    assert torch.allclose(y, want), "conv1d differs"

    # Model parameters: names, shapes and total as arch builds them.
    m = HybridLM(CONFIG)
    names = dict((k, tuple(v.shape)) for k, v in m.named_parameters())
    assert names["layers.0.mixer.in_proj.weight"] == (1160, 256)
    assert names["layers.0.mixer.conv1d.weight"] == (640, 4)
    assert names["layers.2.mixer.k_proj.weight"] == (128, 256)
    total = sum(p.numel() for p in m.parameters())
    assert total == count_formula(CONFIG) == GO_PARAMS, (total, count_formula(CONFIG), GO_PARAMS)
    with torch.no_grad():
        logits = m(torch.randint(0, 256, (2, 70)))
    assert logits.shape == (2, 70, 256) and torch.isfinite(logits).all()
    loss = F.cross_entropy(logits.view(-1, 256), torch.randint(0, 256, (140,)))
    assert abs(loss.item() - math.log(256)) < 0.1, loss.item()  # near-uniform at init
    print("check: ok (SSD chunked = sequential in value and gradient; attention, RoPE, conv, params)")


# ---------------------------------------------------------------------------------------------
# Benchmark.


def openblas_threads(n=None):
    """Set (if n) and return OpenBLAS's own thread count; None when torch does not use OpenBLAS.
    torch.set_num_threads sets OpenMP's count but not OpenBLAS-pthread's, which Debian's torch uses."""
    for lib in ("libopenblas.so.0", "libopenblas.so"):
        try:
            ob = ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        if n is not None and hasattr(ob, "openblas_set_num_threads"):
            ob.openblas_set_num_threads(int(n))
        if hasattr(ob, "openblas_get_num_threads"):
            return ob.openblas_get_num_threads()
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ap.add_argument("--threads", type=int, default=ncpu, help="intra-op threads (default: cores, %d)" % ncpu)
    ap.add_argument("--steps", type=int, default=5, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--seq", type=int, default=SEQ_LEN)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--foreach", action="store_true", help="AdamW(foreach=True) (default: torch's default)")
    ap.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True)")
    ap.add_argument("--check", action="store_true", help="run the correctness checks and exit")
    args = ap.parse_args()

    if args.check:
        run_checks()
        return

    torch.set_num_threads(args.threads)
    blas = openblas_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)

    model = HybridLM(CONFIG)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__}, {platform.machine()}, {ncpu} cores, threads {torch.get_num_threads()}"
          f" (OpenBLAS {blas}), attention: {'SDPA' if HAVE_SDPA else 'matmul+softmax (no SDPA in this torch)'}")
    print(f"model bench/cpu-inter: layout {CONFIG['pattern']}, params {nparams} (hybrid info: {GO_PARAMS}"
          f"{', MATCH' if nparams == GO_PARAMS else ', MISMATCH'})")
    print(f"batch {args.batch} x seq {args.seq} = {args.batch * args.seq} tokens/step;"
          f" {args.warmup} warm-up + {args.steps} timed steps")

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    kw = dict(lr=TRAIN["lr"], betas=TRAIN["betas"], eps=TRAIN["eps"])
    if args.foreach:
        kw["foreach"] = True
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": TRAIN["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], **kw)

    gen = torch.Generator().manual_seed(args.seed)
    tokens = args.batch * args.seq
    times = []
    for step in range(args.warmup + args.steps):
        data = torch.randint(0, CONFIG["vocab_size"], (args.batch, args.seq + 1), generator=gen)
        ids, targets = data[:, :-1], data[:, 1:]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(ids)
        loss = F.cross_entropy(logits.reshape(-1, CONFIG["vocab_size"]), targets.reshape(-1))
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
        opt.step()
        dt = time.perf_counter() - t0
        timed = step >= args.warmup
        if timed:
            times.append(dt)
        print(f"step {step + 1:3d}{'' if timed else ' (warm-up)'}: loss {loss.item():.4f}"
              f"  grad norm {gnorm.item():.3f}  {dt:.3f} s  {tokens / dt:.0f} tok/s", flush=True)
        if not math.isfinite(loss.item()):
            sys.exit("non-finite loss")

    med = statistics.median(times)
    sd = statistics.stdev(times) if len(times) > 1 else 0.0
    print(f"steady state: median step {med:.3f} s (mean {statistics.mean(times):.3f} ± {sd:.3f},"
          f" min {min(times):.3f}, max {max(times):.3f}) -> {tokens / med:.0f} tokens/s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(f"peak RSS {peak / 2**20:.0f} MiB")
    print(json.dumps({
        "framework": "torch", "version": torch.__version__, "threads": args.threads,
        "tokens_per_sec": round(tokens / med, 1), "step_seconds": round(med, 4),
        "step_seconds_mean": round(statistics.mean(times), 4), "step_seconds_std": round(sd, 4),
        "steps": args.steps, "warmup": args.warmup, "batch": args.batch, "seq": args.seq,
        "params": nparams, "attention": "sdpa" if HAVE_SDPA else "matmul_softmax",
        "openblas_threads": blas, "flush_denormal": args.flush_denormal, "peak_rss_bytes": peak,
    }))


if __name__ == "__main__":
    main()
