"""Rotary position embeddings (RoPE, Su et al. 2021, "RoFormer"), half-split layout.

Owns the cos/sin tables and the rotation. A head vector x of size D is split into halves (x1, x2) and
pair i = (x1[i], x2[i]) is rotated by the angle p * theta^(-2i/D) at position p:
    rope(x, p) = [x1 * cos - x2 * sin,  x2 * cos + x1 * sin]
so that <rope(q, p), rope(k, s)> depends only on p - s. Knows nothing about attention or caches.
"""
from __future__ import annotations

import torch


def rope_tables(head_dim: int, max_len: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each (max_len, head_dim // 2), float32."""
    half = head_dim // 2
    inv_freq = theta ** (-torch.arange(half, dtype=torch.float64, device=device) / half)  # (half,)
    pos = torch.arange(max_len, dtype=torch.float64, device=device)  # (max_len,)
    angles = torch.outer(pos, inv_freq)  # (max_len, half)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the last dim of x. cos/sin broadcast against x[..., :D/2].

    Full sequences: x (..., T, D) with cos/sin (T, D/2).
    One token per row at its own position: x (..., B, H, D) with cos/sin (B, 1, D/2).
    Returns a new contiguous tensor with x's dtype.
    """
    half = x.shape[-1] // 2
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
