#!/usr/bin/python3
"""Golden vectors for the Mamba-2 SSD (selective_scan/ssd.go).

Run from this directory with Debian's torch:  /usr/bin/python3 gen_golden_ssd.py
Writes golden_ssd_*.json: inputs, outputs (y, final state) and the gradients of
loss = sum(y * dy) + sum(h_last * dh_last) from torch autograd, all float64, computed with the
plain sequential recurrence (no chunks):

    delta_t = softplus(dt_t + dt_bias)            (threshold 20: identity above)
    S_t     = exp(delta_t * A_h) * S_{t-1} + delta_t * x_t (outer) B_t
    y_t     = S_t @ C_t + D_h * x_t

Shapes (token-major): x (B, L, H, P); dt (B, L, H); dt_bias, A, D (H); B, C (B, L, G, N);
h0 / h_last (B, H, P, N). Inputs are rounded to float32 so the Go kernel sees the same values.
"""
import json

import torch
import torch.nn.functional as F


def ssd_sequential(x, dt, dt_bias, A, Bm, Cm, D, h0):
    Bsz, L, H, P = x.shape
    G = Bm.shape[2]
    hpg = H // G
    delta = F.softplus(dt + dt_bias, beta=1.0, threshold=20.0)  # (B, L, H)
    Bh = Bm.repeat_interleave(hpg, dim=2)  # (B, L, H, N): head h reads group h // hpg
    Ch = Cm.repeat_interleave(hpg, dim=2)
    S = h0
    ys = []
    for t in range(L):
        alpha = torch.exp(delta[:, t] * A)  # (B, H)
        S = alpha[:, :, None, None] * S + delta[:, t, :, None, None] * x[:, t, :, :, None] * Bh[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", S, Ch[:, t]) + D[None, :, None] * x[:, t])
    return torch.stack(ys, dim=1), S


def case(name, B, L, H, P, G, N, Q, seed, dt_mean=-1.0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0, mean=0.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale + mean).float().double()

    inputs = {
        "x": r(B, L, H, P),
        "dt": r(B, L, H, scale=0.7, mean=dt_mean),
        "dt_bias": r(H, scale=0.5),
        "A": -(torch.rand(H, generator=g, dtype=torch.float64) * 1.7 + 0.3).float().double(),
        "B": r(B, L, G, N),
        "C": r(B, L, G, N),
        "D": r(H),
        "h0": r(B, H, P, N),
    }
    for v in inputs.values():
        v.requires_grad_(True)
    y, h_last = ssd_sequential(inputs["x"], inputs["dt"], inputs["dt_bias"], inputs["A"],
                               inputs["B"], inputs["C"], inputs["D"], inputs["h0"])
    dy = r(*y.shape)
    dh = r(*h_last.shape)
    loss = (y * dy).sum() + (h_last * dh).sum()
    loss.backward()
    tensors = {k: v.detach() for k, v in inputs.items()}
    tensors.update({"y": y.detach(), "h_last": h_last.detach(), "dy": dy, "dh_last": dh})
    tensors.update({"grad_" + k: v.grad for k, v in inputs.items()})
    out = {
        "shapes": {"B": B, "L": L, "H": H, "P": P, "G": G, "N": N, "Q": Q},
        "tensors": {k: {"shape": list(v.shape), "data": v.reshape(-1).tolist()} for k, v in tensors.items()},
    }
    with open("golden_ssd_%s.json" % name, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    # L not a multiple of Q, one group shared by three heads.
    case("g1", B=2, L=11, H=3, P=4, G=1, N=5, Q=4, seed=1)
    # Groups between 1 and H, odd sizes, several chunks plus a partial one.
    case("g2", B=1, L=13, H=4, P=3, G=2, N=3, Q=5, seed=2)
    # Large steps: some raw dt above the softplus threshold and fast decay.
    case("big", B=1, L=9, H=2, P=3, G=2, N=2, Q=4, seed=3, dt_mean=15.0)
