#!/usr/bin/env python3
"""Float64 PyTorch reference of every layer kind arch.Build supports, for model-level goldens.

The model is written functionally over a dict of named parameters (arch/model.go's names), so
weights written by our Go code load by name with no module tree to match. It follows the
published definitions, not the Go code:

    ids -> embed -> blocks -> norm_f -> head (embed.weight when tied, else lm_head.weight)
    block:   x += Mixer(Norm(x));  x += FFN(FFNNorm(x))       ('-' layers: FFN only)
    attn:    q = RoPE(x W_qᵀ), k = RoPE(x W_kᵀ), v = x W_vᵀ; RoPE rotate-half (pairs (i, i+dh/2),
             GPT-NeoX/Llama), angle t·θ^(−2i/dh); GQA: query head h reads KV head h // (H/HKV);
             scores q·k/√d_qk; query t sees key j ≤ t, and with a window w only t−w < j or j < sinks
    Mamba-2: [z, xBC, dt] = in_proj(x); [x, B, C] = silu(causal conv(xBC));
             S_t = exp(Δ_t A) S_{t−1} + Δ_t x_t ⊗ B_t, y_t = S_t C_t + D x_t (head h reads B/C
             group h // (H/G)), Δ = softplus(dt + dt_bias), A = −exp(A_log);
             out = out_proj(RMSNorm_G(y ⊙ silu(z)) ⊙ w)       (mamba_ssm Mamba2, norm_before_gate=False)
    Mamba-1: [x, z] = in_proj(x); x = silu(causal conv(x)); [δ, B, C] = x_proj(x);
             Δ = softplus(dt_proj.weight δ + dt_proj.bias); h_t = exp(Δ A) h + Δ x B, y = h·C + D x;
             out = out_proj(y ⊙ silu(z))                       (mamba_ssm Mamba / selective_scan_fn)
    intra:   f = W_out(α_s Norm(SSM(x)) ⊕ α_a Norm(Attn(x))) (arch/intra.go's documented options)

The Mamba-2 SSD and the RoPE tables come from cpu_inter.py (the benchmark twin), the SSD as the
token-by-token recurrence (its --check oracle); `check_twin` runs cpu_inter.HybridLM itself on
configs it can express, so the benchmark twin is tied to the Go model too.
"""

import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu_inter  # noqa: E402

DT = torch.float64


# ---------------------------------------------------------------------------------------------
# safetensors (own reader: 8-byte LE header length, JSON header, raw little-endian data).

_DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8)}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) with tensors in their stored dtype."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        dtype, size = _DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        count = math.prod(e["shape"])
        assert end - b == count * size, f"{name}: {end - b} bytes for shape {e['shape']}"
        t = torch.frombuffer(bytearray(data[b:end]), dtype=dtype) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


# ---------------------------------------------------------------------------------------------
# Pieces.


def linear(x, w):
    return x @ w.transpose(0, 1)


def rmsnorm(x, w, eps, groups=1):
    s = x.shape
    y = x.reshape(*s[:-1], groups, s[-1] // groups)
    y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps)
    return y.reshape(s) * w


def groupnorm(x, w, b, eps, groups=1):
    """Per-token GroupNorm (LayerNorm when groups = 1): biased variance, eps inside the root."""
    s = x.shape
    y = x.reshape(*s[:-1], groups, s[-1] // groups)
    mu = y.mean(-1, keepdim=True)
    var = (y - mu).pow(2).mean(-1, keepdim=True)
    y = (y - mu) * torch.rsqrt(var + eps)
    return y.reshape(s) * w + b


def model_norm(P, name, x, cfg):
    eps = cfg["norm"]["eps"]
    if cfg["norm"]["type"] == "layernorm":
        return groupnorm(x, P[name + ".weight"], P[name + ".bias"], eps)
    return rmsnorm(x, P[name + ".weight"], eps)


def ffn(P, pre, x):
    return linear(F.silu(linear(x, P[pre + ".gate.weight"])) * linear(x, P[pre + ".up.weight"]),
                  P[pre + ".down.weight"])


def causal_conv(x, w, b):
    """x (B, L, C), w (C, W) with w[:, W−1] on the current token, b (C)."""
    width = w.shape[1]
    xp = F.pad(x, (0, 0, width - 1, 0))  # W−1 zeros before the first token
    L = x.shape[1]
    y = b.expand_as(x).clone()
    for k in range(width):
        y = y + xp[:, k:k + L, :] * w[:, k]
    return y


def rope(x, theta):
    """x (B, T, heads, dh), positions 0…T−1, rotate-half."""
    t, dh = x.shape[1], x.shape[3]
    cos, sin = cpu_inter.rope_tables(t, dh, theta, DT)
    return cpu_inter.apply_rope(x, cos, sin)


def attention_core(q, k, v, window, sinks, scale):
    """q (B, T, H, dq), k (B, T, HKV, dq), v (B, T, HKV, dv) -> (B, T, H, dv)."""
    B, T, H, _ = q.shape
    hkv = k.shape[2]
    rep = H // hkv
    kv_of = torch.arange(H) // rep  # query head h reads KV head h // (H/HKV)
    kh, vh = k[:, :, kv_of], v[:, :, kv_of]
    s = torch.einsum("bthd,bshd->bhts", q, kh) * scale
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    visible = j <= i
    if window > 0:
        visible = visible & ((i - j < window) | (j < sinks))
    p = torch.softmax(s.masked_fill(~visible, float("-inf")), dim=-1)
    return torch.einsum("bhts,bshd->bthd", p, vh)


def attention_inner(P, pre, x, h, kh, qk, hd, theta, window, sinks):
    """Returns (o (B, T, h·hd) before o_proj, v (B, T, kh·hd))."""
    B, T, _ = x.shape
    q = rope(linear(x, P[pre + ".q_proj.weight"]).reshape(B, T, h, qk), theta)
    k = rope(linear(x, P[pre + ".k_proj.weight"]).reshape(B, T, kh, qk), theta)
    vflat = linear(x, P[pre + ".v_proj.weight"])
    o = attention_core(q, k, vflat.reshape(B, T, kh, hd), window, sinks, 1 / math.sqrt(qk))
    return o.reshape(B, T, h * hd), vflat


def mamba2_inner(P, pre, x, xv, cfg, di):
    m = cfg["mamba"]
    B, T, _ = x.shape
    p, g, n = m["head_dim"], m["n_groups"], m["d_state"]
    H, gn = di // p, g * n
    proj = linear(x, P[pre + ".in_proj.weight"])
    if xv is None:
        z, xbc, dt = torch.split(proj, [di, di + 2 * gn, H], dim=-1)
    else:
        z, bc, dt = torch.split(proj, [di, 2 * gn, H], dim=-1)
        xbc = torch.cat([xv, bc], dim=-1)
    xs, Bm, Cm = torch.split(F.silu(causal_conv(xbc, P[pre + ".conv1d.weight"], P[pre + ".conv1d.bias"])),
                             [di, gn, gn], dim=-1)
    xs = xs.reshape(B, T, H, p)
    delta = F.softplus(dt + P[pre + ".dt_bias"])
    A = -torch.exp(P[pre + ".A_log"])
    Bm, Cm = Bm.reshape(B, T, g, n), Cm.reshape(B, T, g, n)
    y = cpu_inter.ssd_sequential(xs, delta, A, Bm, Cm)
    if os.environ.get("GOLDEN_CHECK_CHUNKED", "1") == "1":  # the twin's chunked SSD agrees
        yc = cpu_inter.ssd_chunked(xs, delta, A, Bm, Cm, m["chunk_size"])
        assert torch.allclose(y, yc, rtol=1e-9, atol=1e-11), "chunked SSD differs from the recurrence"
    y = y + xs * P[pre + ".D"].view(1, 1, -1, 1)
    y = y.reshape(B, T, di) * F.silu(z)
    return rmsnorm(y, P[pre + ".norm.weight"], cfg["norm"]["eps"], groups=g)


def dt_rank(cfg):
    r = cfg["mamba"].get("dt_rank", 0)
    return r if r > 0 else math.ceil(cfg["d_model"] / 16)


def mamba1_inner(P, pre, x, xv, cfg, di):
    n, R = cfg["mamba"]["d_state"], dt_rank(cfg)
    B, T, _ = x.shape
    proj = linear(x, P[pre + ".in_proj.weight"])
    if xv is None:
        xs, z = torch.split(proj, [di, di], dim=-1)
    else:
        xs, z = xv, proj
    xs = F.silu(causal_conv(xs, P[pre + ".conv1d.weight"], P[pre + ".conv1d.bias"]))
    delta_r, Bm, Cm = torch.split(linear(xs, P[pre + ".x_proj.weight"]), [R, n, n], dim=-1)
    delta = F.softplus(linear(delta_r, P[pre + ".dt_proj.weight"]) + P[pre + ".dt_proj.bias"])  # (B, T, di)
    A = -torch.exp(P[pre + ".A_log"])  # (di, n)
    h = x.new_zeros(B, di, n)
    ys = []
    for t in range(T):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * xs[:, t])[..., None] * Bm[:, t, None, :]
        ys.append((h * Cm[:, t, None, :]).sum(-1))
    y = torch.stack(ys, dim=1) + xs * P[pre + ".D"]
    return y * F.silu(z)


def ssm_inner(P, pre, x, xv, cfg, di):
    if cfg["mamba"]["version"] == 1:
        return mamba1_inner(P, pre, x, xv, cfg, di)
    return mamba2_inner(P, pre, x, xv, cfg, di)


def attn_params(cfg, windowed):
    a = cfg["attention"]
    theta = a["rope_theta"]
    window = sinks = 0
    if windowed:
        window, sinks = a["window"], a["sinks"]
        if a.get("window_rope_theta", 0) > 0:
            theta = a["window_rope_theta"]
    return theta, window, sinks


def head_dim(cfg):
    a = cfg["attention"]
    return a["head_dim"] if a["head_dim"] > 0 else cfg["d_model"] // a["heads"]


def exact(v):
    r = round(v)
    assert abs(v - r) < 1e-9 and r > 0, v
    return int(r)


def intra(P, pre, x, cfg, windowed):
    a, m, it = cfg["attention"], cfg["mamba"], cfg["intra"]
    s_ = it["attn_share"]
    hd = head_dim(cfg)
    h, kh = exact(a["heads"] * s_), exact(a["kv_heads"] * s_)
    di = exact(m["expand"] * cfg["d_model"] * (1 - s_))
    qk = it.get("qk_head_dim", 0) or hd
    theta, window, sinks = attn_params(cfg, windowed)
    ao, v = attention_inner(P, pre + ".attn", x, h, kh, qk, hd, theta, window, sinks)
    so = ssm_inner(P, pre + ".ssm", x, v if it.get("share_value") else None, cfg, di)
    eps = cfg["norm"]["eps"]
    if it["norm"] == "groupnorm":
        sg = di // m["head_dim"] if m["version"] == 2 else (h if di % h == 0 else 1)
        ao = groupnorm(ao, P[pre + ".attn_norm.weight"], P[pre + ".attn_norm.bias"], eps, groups=h)
        so = groupnorm(so, P[pre + ".ssm_norm.weight"], P[pre + ".ssm_norm.bias"], eps, groups=sg)
    elif it["norm"] == "rmsnorm":
        ao = rmsnorm(ao, P[pre + ".attn_norm.weight"], eps)
        so = rmsnorm(so, P[pre + ".ssm_norm.weight"], eps)
    if it.get("scales"):
        ao, so = ao * P[pre + ".attn_scale"], so * P[pre + ".ssm_scale"]
    if not it.get("share_out"):
        ao, so = linear(ao, P[pre + ".attn.o_proj.weight"]), linear(so, P[pre + ".ssm.out_proj.weight"])
    fusion = it["fusion"]
    if fusion == "add":
        f = so + ao
    elif fusion == "diff":
        f = so - ao
    elif fusion == "mean":
        f = (so + ao) / 2
    elif fusion == "concat":
        f = torch.cat([ao, so], dim=-1)
    else:
        raise ValueError(fusion)
    if it.get("share_out"):
        f = linear(f, P[pre + ".out_proj.weight"])
    return f


def mixer(P, pre, kind, x, cfg):
    a = cfg["attention"]
    if kind in "AS":
        theta, window, sinks = attn_params(cfg, kind == "S")
        hd = head_dim(cfg)
        o, _ = attention_inner(P, pre, x, a["heads"], a["kv_heads"], hd, hd, theta, window, sinks)
        return linear(o, P[pre + ".o_proj.weight"])
    if kind == "M":
        di = cfg["mamba"]["expand"] * cfg["d_model"]
        return linear(ssm_inner(P, pre, x, None, cfg, di), P[pre + ".out_proj.weight"])
    if kind in "IW":
        return intra(P, pre, x, cfg, kind == "W")
    raise ValueError(kind)


def forward(P, cfg, ids):
    """ids (B, T) long -> logits (B, T, V)."""
    pattern = cfg["layout"]["pattern"].replace("*", "A")
    assert len(pattern) == cfg["n_layers"], "only explicit patterns"
    x = P["embed.weight"][ids]
    ffn_on = cfg["ffn"]["type"] == "swiglu"
    for i, kind in enumerate(pattern):
        pre = f"layers.{i}"
        if kind != "-":
            x = x + mixer(P, pre + ".mixer", kind, model_norm(P, pre + ".norm", x, cfg), cfg)
        if ffn_on and (kind == "-" or cfg["ffn"]["mode"] == "block"):
            x = x + ffn(P, pre + ".ffn", model_norm(P, pre + ".ffn_norm", x, cfg))
    head = P["embed.weight"] if cfg["tied_embeddings"] else P["lm_head.weight"]
    return linear(model_norm(P, "norm_f", x, cfg), head)


def loss_fn(logits, targets):
    """Mean cross-entropy over targets ≠ −1; returns (loss, scored)."""
    lg, tg = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    keep = tg != -1
    return F.cross_entropy(lg[keep], tg[keep], reduction="mean"), int(keep.sum())


# ---------------------------------------------------------------------------------------------
# The benchmark twin on the same weights.


def twin_config(cfg):
    """cpu_inter.CONFIG for cfg, or None when the twin cannot express it."""
    pattern = cfg["layout"].get("pattern", "")
    m, a = cfg["mamba"], cfg["attention"]
    if (not pattern or set(pattern) - set("MA") or ("M" in pattern and m["version"] != 2)
            or cfg["norm"]["type"] != "rmsnorm" or not cfg["tied_embeddings"]
            or cfg["ffn"]["type"] != "swiglu" or cfg["ffn"]["mode"] != "block"):
        return None
    return dict(vocab_size=cfg["vocab_size"], d_model=cfg["d_model"], pattern=pattern,
                attn_heads=a["heads"], attn_kv_heads=a["kv_heads"], attn_head_dim=head_dim(cfg),
                rope_theta=a["rope_theta"], mamba_expand=m["expand"], mamba_head_dim=m["head_dim"],
                d_state=m["d_state"], n_groups=m["n_groups"], conv_width=m["conv_width"],
                chunk_size=m["chunk_size"], a_init=tuple(m["a_init"]), ffn_hidden=cfg["ffn"]["hidden"],
                norm_eps=cfg["norm"]["eps"], tied_embeddings=True, init_std=cfg["init_std"])


def check_twin(cfg, weights, ids, logits):
    """Runs cpu_inter.HybridLM in float64 on the weights; returns its max |Δlogits| or None."""
    tc = twin_config(cfg)
    if tc is None:
        return None
    model = cpu_inter.HybridLM(tc).to(DT)
    names = dict(model.named_parameters())
    assert set(names) == set(weights), sorted(set(names) ^ set(weights))
    with torch.no_grad():
        for k, p in names.items():
            p.copy_(weights[k].to(DT))
        return float((model(ids) - logits).abs().max())
