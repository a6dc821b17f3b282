"""The short causal depthwise convolution over time that GPT applies to q, k and v (config.qkv_conv).

    out[:, t] = sum_i w[i] * u[:, t - i],  i = 0 .. c,   u = 0 before position 0,   u (B, T, N), w (c + 1, N)

`causal_conv` is an autograd function with a hand-written backward; `causal_conv_reference` is the same sum written
with shifted slices and left to autograd (the test compares both in float64). The reason for the hand-written one:
the gradient that reaches the convolution comes through the heads' view and permute, so it is strided, and autograd's
element-wise backward over strided tensors made the convolution ~13% of a CPU training step; this one makes the
gradient contiguous once and works in place.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class _CausalConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(u, w)
        out = u * w[0]
        for i in range(1, min(w.shape[0], u.shape[1] + 1)):
            out[:, i:].addcmul_(u[:, :-i], w[i])
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        u, w = ctx.saved_tensors
        grad = grad.contiguous()
        grad_u = grad * w[0] if ctx.needs_input_grad[0] else None
        acc = torch.promote_types(w.dtype, torch.float32)  # bf16 tap gradients are summed in fp32
        grad_w = torch.zeros(w.shape, dtype=acc, device=w.device) if ctx.needs_input_grad[1] else None
        for i in range(w.shape[0]):
            if i >= u.shape[1]:
                break
            g, x = (grad, u) if i == 0 else (grad[:, i:], u[:, :-i])
            if grad_u is not None and i > 0:
                grad_u[:, :-i].addcmul_(g, w[i])
            if grad_w is not None:
                grad_w[i] = (g * x).sum((0, 1), dtype=acc)
        return grad_u, None if grad_w is None else grad_w.to(w.dtype)


def causal_conv(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """u (B, T, N), w (c + 1, N) -> (B, T, N): position t gets sum_i w[i] * u[t - i]."""
    return _CausalConv.apply(u, w.to(u.dtype))


def causal_conv_last(window: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The output at a window's last position only (cached decoding): window (B, c + 1, N) holds positions
    t - c .. t, w (c + 1, N) -> (B, N)."""
    return (window * w.to(window.dtype).flip(0)).sum(1)


def causal_conv_reference(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The same, as shifted slices of a zero-padded u (autograd differentiates it)."""
    T, c = u.shape[1], w.shape[0] - 1
    padded = F.pad(u, (0, 0, c, 0))
    w = w.to(u.dtype)
    out = w[0] * u
    for i in range(1, c + 1):
        out = out + w[i] * padded[:, c - i: c - i + T]
    return out
