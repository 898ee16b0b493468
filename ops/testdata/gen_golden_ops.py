#!/usr/bin/python3
"""Golden vectors for package ops, from PyTorch in float64 on the CPU (Debian python3-torch 1.13).

Run from the repository root:  /usr/bin/python3 ops/testdata/gen_golden_ops.py
Writes ops/testdata/golden_*.json: {"shapes": {...}, "tensors": {"name": {"shape": [...], "data": [...]}}}.
Gradients are torch autograd of loss = sum(out * cot) with a random cotangent cot (also stored).
The math is PyTorch's own functional ops, or the definition written out where torch has no op
(RMSNorm, Mamba-2's gated RMSNorm); none of it follows the Go kernels' algorithm.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))


def t(x):
    x = x.detach()
    return {"shape": list(x.shape), "data": [float(v) for v in x.reshape(-1).tolist()]}


def write(name, shapes, tensors):
    path = os.path.join(HERE, "golden_%s.json" % name)
    with open(path, "w") as f:
        json.dump({"shapes": shapes, "tensors": {k: t(v) for k, v in tensors.items()}}, f)
    print(path, os.path.getsize(path), "bytes")


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_()


def grads(out, *xs):
    cot = torch.randn_like(out)
    gs = torch.autograd.grad((out * cot).sum(), xs)
    return cot, gs


# Embedding: repeated ids accumulate into the table gradient.
R, V, D = 6, 7, 5
ids = torch.tensor([3, 0, 6, 3, 1, 3])
table = leaf(V, D)
out = F.embedding(ids, table)
cot, (dtable,) = grads(out, table)
write("embedding", {"R": R, "V": V, "D": D},
      {"ids": ids.double(), "table": table, "out": out, "cot": cot, "dtable": dtable})

# Linear with bias: y = x·Wᵀ + b.
R, In, Out = 3, 5, 4
x, w, b = leaf(R, In), leaf(Out, In), leaf(Out)
y = F.linear(x, w, b)
cot, (dx, dw, db) = grads(y, x, w, b)
write("linear", {"R": R, "In": In, "Out": Out},
      {"x": x, "w": w, "bias": b, "y": y, "cot": cot, "dx": dx, "dw": dw, "dbias": db})

# Norms.
tensors, shapes = {}, {}
eps = 1e-5
shapes["eps"] = eps

# RMSNorm written out: x / sqrt(mean(x²) + eps) · w.
R, D = 3, 5
shapes.update({"rms_R": R, "rms_D": D})
x, w = leaf(R, D), leaf(D)
out = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
cot, (dx, dw) = grads(out, x, w)
tensors.update({"rms_x": x, "rms_w": w, "rms_out": out, "rms_cot": cot, "rms_dx": dx, "rms_dw": dw})

# LayerNorm, with an offset so the mean matters.
R, D = 3, 5
shapes.update({"ln_R": R, "ln_D": D})
x, w, b = (torch.randn(R, D) + 3).requires_grad_(), leaf(D), leaf(D)
out = F.layer_norm(x, (D,), w, b, eps)
cot, (dx, dw, db) = grads(out, x, w, b)
tensors.update({"ln_x": x, "ln_w": w, "ln_b": b, "ln_out": out, "ln_cot": cot, "ln_dx": dx, "ln_dw": dw, "ln_db": db})

# GroupNorm per token: rows viewed as (N=R, C=D) with G groups.
R, D, G = 4, 6, 3
shapes.update({"gn_R": R, "gn_D": D, "gn_G": G})
x, w, b = leaf(R, D, scale=2.0), leaf(D), leaf(D)
out = F.group_norm(x, G, w, b, eps)
cot, (dx, dw, db) = grads(out, x, w, b)
tensors.update({"gn_x": x, "gn_w": w, "gn_b": b, "gn_out": out, "gn_cot": cot, "gn_dx": dx, "gn_dw": dw, "gn_db": db})

# Mamba-2 gated RMSNorm (norm_before_gate=False), as mamba_ssm's rms_norm_ref with group_size D/G:
# y = x·silu(z); out = y / sqrt(mean over each group of y² + eps) · w.
R, D, G = 3, 6, 2
shapes.update({"grms_R": R, "grms_D": D, "grms_G": G})
x, z, w = leaf(R, D), leaf(R, D), leaf(D)
y = x * F.silu(z)
yg = y.reshape(R, G, D // G)
out = (yg * torch.rsqrt(yg.pow(2).mean(-1, keepdim=True) + eps)).reshape(R, D) * w
cot, (dx, dz, dw) = grads(out, x, z, w)
tensors.update({"grms_x": x, "grms_z": z, "grms_w": w, "grms_out": out, "grms_cot": cot,
                "grms_dx": dx, "grms_dz": dz, "grms_dw": dw})
write("norms", shapes, tensors)

# Elementwise: silu, softplus (threshold 20, inputs on both sides), swiglu = silu(a)·b.
N = 9
x = torch.tensor([-30.0, -5.0, -1.0, -0.1, 0.0, 0.3, 2.0, 19.5, 25.0]).requires_grad_()
out = F.silu(x)
cot, (dx,) = grads(out, x)
sp = F.softplus(x, beta=1, threshold=20)
spcot, (spdx,) = grads(sp, x)
a, b = leaf(N, scale=2.0), leaf(N)
sw = F.silu(a) * b
swcot, (da, db) = grads(sw, a, b)
write("elementwise", {"N": N},
      {"x": x, "silu": out, "silu_cot": cot, "silu_dx": dx,
       "softplus": sp, "softplus_cot": spcot, "softplus_dx": spdx,
       "a": a, "b": b, "swiglu": sw, "swiglu_cot": swcot, "swiglu_da": da, "swiglu_db": db})

# Cross-entropy with ignored rows (ignore_index = -1), mean over scored rows.
R, V = 6, 7
logits = leaf(R, V, scale=3.0)
targets = torch.tensor([2, -1, 6, 0, -1, 2])
loss = F.cross_entropy(logits, targets, ignore_index=-1, reduction="mean")
(dlogits,) = torch.autograd.grad(loss, logits)
lse = torch.logsumexp(logits, -1)
write("cross_entropy", {"R": R, "V": V, "ignore": -1},
      {"logits": logits, "targets": targets.double(), "loss": loss.reshape(1), "lse": lse, "dlogits": dlogits})

# AdamW: two steps of torch.optim.AdamW (the second exercises bias correction at t = 2).
N = 7
lr, b1, b2, aeps, wd = 1e-2, 0.9, 0.95, 1e-8, 0.1
p0 = torch.randn(N)
g1, g2 = torch.randn(N), torch.randn(N)
p = p0.clone().requires_grad_()
opt = torch.optim.AdamW([p], lr=lr, betas=(b1, b2), eps=aeps, weight_decay=wd)
p.grad = g1.clone()
opt.step()
p1 = p.detach().clone()
st = opt.state[p]
m1, v1 = st["exp_avg"].clone(), st["exp_avg_sq"].clone()
p.grad = g2.clone()
opt.step()
p2 = p.detach().clone()
m2, v2 = st["exp_avg"].clone(), st["exp_avg_sq"].clone()
write("adamw", {"N": N, "lr": lr, "beta1": b1, "beta2": b2, "eps": aeps, "weight_decay": wd},
      {"p0": p0, "g1": g1, "g2": g2, "p1": p1, "m1": m1, "v1": v1, "p2": p2, "m2": m2, "v2": v2})

# Gradient clipping: torch.nn.utils.clip_grad_norm_ over two tensors.
ga, gb = torch.randn(5) * 3, torch.randn(4) * 3
pa, pb = torch.zeros(5, requires_grad=True), torch.zeros(4, requires_grad=True)
pa.grad, pb.grad = ga.clone(), gb.clone()
norm = torch.nn.utils.clip_grad_norm_([pa, pb], max_norm=1.0)
write("clip", {"max_norm": 1.0},
      {"ga": ga, "gb": gb, "norm": norm.reshape(1), "ca": pa.grad, "cb": pb.grad})
