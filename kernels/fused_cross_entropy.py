"""Cross-entropy fused over the vocabulary in Triton: forward and backward without an fp32 softmax copy.

For logits x (N, V) and targets t (N,), with rows whose target equals ignore_index left out:

    loss_i = logsumexp_j(x_ij) - x_{i, t_i},       loss = sum_i loss_i / n_valid
    dloss/dx_ij = (softmax(x_i)_j - [j == t_i]) / n_valid     (0 for ignored rows)

One program per row streams over the vocabulary in BLOCK_V chunks with an online logsumexp (the
running-max rescaling of FlashAttention-2, arXiv:2307.08691), so the forward reads the logits once and
keeps one fp32 number per row (its logsumexp) for the backward, which reads them once more and writes
the gradient in the logits' dtype. Peak extra memory is O(N), not O(N V) as with an fp32 upcast.

Knows nothing about dispatch; `kernels.cross_entropy` decides when this runs.
Test: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels_cross_entropy.py
"""
import os

import torch
import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)  # a jit kernel may only read constexpr globals


@triton.jit
def _ce_fwd(X, TARGET, LOSS, LSE, sx, V, ignore_index, BLOCK_V: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    X += row * sx
    offs = tl.arange(0, BLOCK_V)
    # Lane-wise running max and sum (BLOCK_V,), merged at the end: no scalar carried across blocks.
    m = tl.full((BLOCK_V,), float("-inf"), tl.float32)
    s = tl.zeros((BLOCK_V,), tl.float32)
    for start in range(0, V, BLOCK_V):
        cols = start + offs
        x = tl.load(X + cols, mask=cols < V, other=float("-inf")).to(tl.float32) * LOG2E  # (BLOCK_V,), log2 units
        m_new = tl.maximum(m, x)
        # Lanes past the end of a short vocabulary stay at m = -inf; shift them by 0 to avoid -inf - -inf.
        shift = tl.where(m_new > float("-inf"), m_new, 0.0)
        s = s * tl.exp2(m - shift) + tl.exp2(x - shift)
        m = m_new
    m_all = tl.max(m, 0)
    lse = (m_all + tl.log2(tl.sum(s * tl.exp2(m - m_all), 0))) / LOG2E  # natural-log logsumexp
    target = tl.load(TARGET + row)
    valid = target != ignore_index
    x_t = tl.load(X + tl.where(valid, target, 0)).to(tl.float32)
    tl.store(LOSS + row, tl.where(valid, lse - x_t, 0.0))
    tl.store(LSE + row, lse)


@triton.jit
def _ce_bwd(X, TARGET, LSE, DX, GRAD, N_VALID, sx, sdx, V, ignore_index, BLOCK_V: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    X += row * sx
    DX += row * sdx
    offs = tl.arange(0, BLOCK_V)
    target = tl.load(TARGET + row)
    scale = tl.where(target != ignore_index, tl.load(GRAD) / tl.load(N_VALID), 0.0)  # dloss / n_valid
    lse = tl.load(LSE + row)
    for start in range(0, V, BLOCK_V):
        cols = start + offs
        ok = cols < V
        x = tl.load(X + cols, mask=ok, other=0.0).to(tl.float32)
        p = tl.exp2((x - lse) * LOG2E)  # softmax
        dx = (p - tl.where(cols == target, 1.0, 0.0)) * scale
        tl.store(DX + cols, dx.to(DX.dtype.element_ty), mask=ok)


def _block_v(V):
    interpreting = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    return min(triton.next_power_of_2(V), 1024 if interpreting else 4096)


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets, ignore_index):
        N, V = logits.shape
        if logits.stride(1) != 1:
            logits = logits.contiguous()
        targets = targets.to(torch.int64).contiguous()
        loss_rows = torch.empty((N,), device=logits.device, dtype=torch.float32)
        lse = torch.empty((N,), device=logits.device, dtype=torch.float32)
        BLOCK_V = _block_v(V)
        _ce_fwd[(N,)](logits, targets, loss_rows, lse, logits.stride(0), V, ignore_index,
                      BLOCK_V=BLOCK_V, num_warps=8 if BLOCK_V >= 4096 else 4)
        n_valid = (targets != ignore_index).sum().to(torch.float32)  # stays on device: no host sync
        ctx.save_for_backward(logits, targets, lse, n_valid)
        ctx.ignore_index = ignore_index
        return loss_rows.sum() / n_valid  # 0/0 = nan when every row is ignored, as in torch

    @staticmethod
    def backward(ctx, grad):
        logits, targets, lse, n_valid = ctx.saved_tensors
        N, V = logits.shape
        dx = torch.empty((N, V), device=logits.device, dtype=logits.dtype)
        BLOCK_V = _block_v(V)
        _ce_bwd[(N,)](logits, targets, lse, dx, grad.to(torch.float32).reshape(1), n_valid.reshape(1),
                      logits.stride(0), dx.stride(0), V, ctx.ignore_index,
                      BLOCK_V=BLOCK_V, num_warps=8 if BLOCK_V >= 4096 else 4)
        return dx, None, None


def cross_entropy(logits, targets, ignore_index=-100):
    """Triton cross-entropy. logits (N, V), targets (N,) -> mean loss over non-ignored rows (0-dim fp32)."""
    return _CrossEntropy.apply(logits, targets, ignore_index)
