#!/usr/bin/env python3
"""Writes the model-level goldens golden_model_<case>.json from golden_model_<case>.safetensors.

The .safetensors files are written by our Go code (go test ./arch -run TestGoldenModel
-golden.weights): arch.Build's parameters by name, and in the metadata the arch.Config as JSON,
the token ids, the targets and B, T. This script runs the float64 PyTorch reference of
bench/torch/golden_model.py on them and stores

    loss, scored         mean next-token cross-entropy over targets ≠ −1, and their count
    logits               (B, T, V) row-major
    grads                full gradients of a few parameters (embedding, a q projection, A_log,
                         out projections, …: see CHOSEN)
    grad_summary         every parameter: [‖g‖₂, Σ g_i·sin(0.37 i + 1)]

arch/golden_test.go compares them with the Go model. Not needed to run the tests.

    /usr/bin/python3 arch/testdata/gen_golden_model.py [case …]
"""

import glob
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "torch"))

import torch  # noqa: E402

import golden_model as gm  # noqa: E402

# Parameters whose whole gradient is stored (when the case has them).
CHOSEN = (
    "embed.weight",
    "lm_head.weight",
    "layers.0.mixer.q_proj.weight",
    "layers.0.mixer.k_proj.weight",
    "layers.1.mixer.q_proj.weight",
    "layers.1.mixer.k_proj.weight",
    "layers.0.mixer.A_log",
    "layers.0.mixer.dt_bias",
    "layers.0.mixer.D",
    "layers.1.mixer.A_log",
    "layers.0.mixer.out_proj.weight",
    "layers.1.mixer.o_proj.weight",
    "layers.0.mixer.attn.q_proj.weight",
    "layers.0.mixer.ssm.A_log",
    "layers.0.mixer.out_proj.weight",
    "layers.0.mixer.attn_norm.weight",
    "layers.0.mixer.ssm_scale",
    "norm_f.weight",
)


def proj(n):
    return torch.sin(0.37 * torch.arange(n, dtype=torch.float64) + 1)


def f9(v):
    """v to 9 significant digits (float32 resolution and more; the test's tolerance is 2e-5)."""
    return float(f"{float(v):.9g}")


def run(path):
    weights, meta = gm.read_safetensors(path)
    cfg = json.loads(meta["config"])
    B, T = int(meta["B"]), int(meta["T"])
    ids = torch.tensor(json.loads(meta["ids"]), dtype=torch.long).reshape(B, T)
    targets = torch.tensor(json.loads(meta["targets"]), dtype=torch.long).reshape(B, T)

    P = {k: v.to(gm.DT).requires_grad_() for k, v in weights.items()}
    logits = gm.forward(P, cfg, ids)
    loss, scored = gm.loss_fn(logits, targets)
    loss.backward()
    missing = [k for k, p in P.items() if p.grad is None]
    assert not missing, f"no gradient for {missing}"

    twin = gm.check_twin(cfg, weights, ids, logits.detach())
    if twin is not None:
        assert twin < 1e-10, f"cpu_inter.HybridLM differs from golden_model by {twin}"

    out = {
        "case": meta["case"],
        "loss": float(loss),  # full precision
        "scored": scored,
        "logits": [f9(v) for v in logits.detach().reshape(-1)],
        "grads": {k: [f9(v) for v in P[k].grad.reshape(-1)] for k in CHOSEN if k in P},
        "grad_summary": {k: [f9(p.grad.norm()), f9(p.grad.reshape(-1) @ proj(p.numel()))] for k, p in P.items()},
    }
    dst = path[: -len(".safetensors")] + ".json"
    with open(dst, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"{os.path.basename(dst)}: loss {out['loss']:.6f} over {scored} tokens, "
          f"max|logit| {logits.abs().max():.3f}, {len(out['grads'])} full grads"
          + ("" if twin is None else f", cpu_inter twin max|Δlogit| {twin:.1e}"))


def main():
    torch.set_default_dtype(torch.float64)
    names = sys.argv[1:]
    paths = sorted(glob.glob(os.path.join(HERE, "golden_model_*.safetensors")))
    if names:
        paths = [p for p in paths if os.path.basename(p)[len("golden_model_"):-len(".safetensors")] in names]
    if not paths:
        sys.exit("no golden_model_*.safetensors: run go test ./arch -run TestGoldenModel -golden.weights")
    for p in paths:
        run(p)


if __name__ == "__main__":
    main()
