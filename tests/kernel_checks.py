"""Shared settings of the Triton kernel tests: where they run, their tolerances, and the relative error.

The NaN-poisoning `poison` fixture lives in conftest.py so pytest finds it for every test file.
"""
import os

import torch

CUDA = torch.cuda.is_available()
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
DEVICE = "cuda" if CUDA and not INTERPRET else "cpu"
# fp32 dots are full fp32 on both (kernels/flash_attention.py: _dot_precision); a GPU sums in another order.
TOL = {torch.float32: 1e-5 if DEVICE == "cpu" else 1e-4, torch.float16: 3e-3, torch.bfloat16: 2e-2}


def rel_err(got, want, floor=1e-12):
    """Relative Frobenius error, the reference's norm floored at `floor` (a floor of 1 keeps all-zero
    references, e.g. T=1 attention gradients, meaningful)."""
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    return ((got - want).norm() / want.norm().clamp_min(floor)).item()
