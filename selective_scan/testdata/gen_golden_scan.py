#!/usr/bin/python3
"""Golden vectors for the selective scan and the causal depthwise conv1d (package selectivescan).

Run with Debian's torch (CPU, float64):  /usr/bin/python3 testdata/gen_golden_scan.py
from the selective_scan directory. It writes testdata/golden_scan_*.json and golden_conv_*.json:
{"shapes": {...}, "tensors": {"name": {"shape": [...], "data": [...]}}} in token-major layout
(activations (B, L, D), Bm/Cm (B, L, G, N), states (B, D, N), conv states (B, W-1, D)).

The math is the definitional one: a sequential loop over tokens for the scan, F.conv1d with
groups=D on the left-padded input for the conv, and torch autograd for every gradient, with the
loss sum(out*dout) + sum(final_state*dstate).
"""
import json
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))


def f32(t):
    """Round to float32 values so that float32 kernels see exactly these inputs."""
    return t.float().double()


def dump(name, shapes, tensors):
    out = {"shapes": shapes, "tensors": {}}
    for k, v in tensors.items():
        if v is None:
            continue
        v = v.detach().contiguous()
        out["tensors"][k] = {"shape": list(v.shape), "data": [float(x) for x in v.reshape(-1).tolist()]}
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(path, os.path.getsize(path), "bytes")


def scan(u, delta, A, Bm, Cm, Dskip, z, delta_bias, h0, softplus, G):
    """Sequential selective scan; u, delta, z (B,L,D); A (D,N); Bm, Cm (B,L,G,N); h0 (B,D,N)."""
    B, L, D = u.shape
    N = A.shape[1]
    grp = torch.arange(D) // (D // G)  # group of each channel
    h = h0 if h0 is not None else torch.zeros(B, D, N)
    ys = []
    for t in range(L):
        dt = delta[:, t, :]
        if delta_bias is not None:
            dt = dt + delta_bias
        if softplus:
            dt = torch.where(dt > 20, dt, torch.log1p(torch.exp(dt)))
        Bt = Bm[:, t, grp, :]  # (B, D, N)
        Ct = Cm[:, t, grp, :]
        h = torch.exp(dt[..., None] * A) * h + (dt * u[:, t, :])[..., None] * Bt
        y = (h * Ct).sum(-1)
        if Dskip is not None:
            y = y + Dskip * u[:, t, :]
        if z is not None:
            y = y * F.silu(z[:, t, :])
        ys.append(y)
    return torch.stack(ys, 1), h


def scan_case(name, B, L, D, N, G, chunk, full, seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, scale=1.0: f32(torch.randn(*s, generator=g) * scale)
    u = r(B, L, D)
    A = f32(-(0.2 + 1.8 * torch.rand(D, N, generator=g)))
    Bm, Cm = r(B, L, G, N), r(B, L, G, N)
    if full:
        delta = f32(-3 + 4 * torch.rand(B, L, D, generator=g))
        Dskip, z, delta_bias, h0 = r(D), r(B, L, D), r(D, scale=0.3), r(B, D, N)
    else:
        delta = f32(0.05 + 0.95 * torch.rand(B, L, D, generator=g))
        Dskip = z = delta_bias = h0 = None
    inputs = dict(u=u, delta=delta, A=A, Bm=Bm, Cm=Cm, Dskip=Dskip, z=z, delta_bias=delta_bias, h0=h0)
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items() if v is not None}
    args = {k: leaves.get(k) for k in inputs}
    if not full:  # the gradient of a zero initial state is still defined: feed an explicit zero leaf
        args["h0"] = leaves["h0"] = torch.zeros(B, D, N, requires_grad=True)
    out, hlast = scan(**args, softplus=full, G=G)
    dout = r(B, L, D)
    dhlast = r(B, D, N) if full else None
    loss = (out * dout).sum()
    if dhlast is not None:
        loss = loss + (hlast * dhlast).sum()
    loss.backward()
    tensors = dict(inputs)
    tensors.update(out=out, hlast=hlast, dout=dout, dhlast=dhlast)
    for k, v in leaves.items():
        tensors["d" + k] = v.grad
    shapes = dict(B=B, L=L, D=D, N=N, G=G, chunk=chunk, softplus=full)
    dump(name, shapes, tensors)


def conv_case(name, B, L, D, W, bias, silu, state, seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: f32(torch.randn(*s, generator=g))
    x, w = r(B, L, D), r(D, W)
    b = r(D) if bias else None
    s0 = r(B, W - 1, D) if state else None
    leaves = {k: v.clone().requires_grad_(True) for k, v in dict(x=x, w=w, bias=b, state0=s0).items() if v is not None}
    xt = leaves["x"].transpose(1, 2)  # (B, D, L)
    if state:
        xp = torch.cat([leaves["state0"].transpose(1, 2), xt], 2)
    else:
        xp = F.pad(xt, (W - 1, 0))
    out = F.conv1d(xp, leaves["w"].unsqueeze(1), leaves.get("bias"), groups=D).transpose(1, 2)
    if silu:
        out = F.silu(out)
    state_out = xp[:, :, xp.shape[2] - (W - 1):].transpose(1, 2)  # (B, W-1, D)
    dout, dstate = r(B, L, D), r(B, W - 1, D)
    ((out * dout).sum() + (state_out * dstate).sum()).backward()
    tensors = dict(x=x, w=w, bias=b, state0=s0, out=out, state_out=state_out, dout=dout, dstate_out=dstate)
    for k, v in leaves.items():
        tensors["d" + k] = v.grad
    dump(name, dict(B=B, L=L, D=D, W=W, silu=silu), tensors)


if __name__ == "__main__":
    scan_case("golden_scan_full.json", B=2, L=9, D=4, N=3, G=2, chunk=4, full=True, seed=1)
    scan_case("golden_scan_plain.json", B=1, L=6, D=3, N=2, G=1, chunk=2, full=False, seed=2)
    conv_case("golden_conv_w4.json", B=2, L=7, D=3, W=4, bias=True, silu=True, state=True, seed=3)
    conv_case("golden_conv_w2.json", B=1, L=5, D=4, W=2, bias=False, silu=False, state=False, seed=4)
    conv_case("golden_conv_w4_short.json", B=1, L=2, D=2, W=4, bias=True, silu=True, state=True, seed=5)
    conv_case("golden_conv_w3.json", B=2, L=6, D=5, W=3, bias=True, silu=False, state=False, seed=6)
