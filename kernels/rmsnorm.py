"""RMSNorm in Triton: forward and backward over the last dimension.

RMSNorm (Zhang & Sennrich, 2019, arXiv:1910.07467) rescales each row by its root mean square:

    r = 1 / sqrt(mean_j x_j^2 + eps),   y = x * r * w

Backward, with x_hat = x * r and g = dy * w (all per row, D = row length):

    dx = r * (g - x_hat * mean_j(g_j * x_hat_j))
    dw = sum over rows of dy * x_hat

The forward stores r (one fp32 per row) for the backward. Each program handles a tile of BLOCK_R rows
(many rows per program when D is small). The backward launches a fixed number of programs; each walks
over row tiles with a stride, accumulates its partial dw in fp32 and writes it to a (programs, D)
buffer that torch sums, so no atomics are needed. All arithmetic is fp32 whatever the input dtype;
y and dx take the dtype of x, dw the dtype of w.

Knows nothing about dispatch; `kernels.rms_norm` decides when this runs.
Test: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels_rmsnorm.py
"""
import os

import torch
import triton
import triton.language as tl


@triton.jit
def _rms_fwd(X, W, Y, RSTD, sx, sy, R, eps,
             D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_R: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # (BLOCK_R,)
    cols = tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    row_ok = rows < R
    mask = row_ok[:, None] & (cols < D)[None, :]
    rows64 = rows.to(tl.int64)
    x = tl.load(X + rows64[:, None] * sx + cols[None, :], mask=mask, other=0.0).to(tl.float32)  # (BLOCK_R, BLOCK_D)
    w = tl.load(W + cols, mask=cols < D, other=0.0).to(tl.float32)  # (BLOCK_D,)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, 1) / D + eps)  # (BLOCK_R,)
    y = x * rstd[:, None] * w[None, :]
    tl.store(Y + rows64[:, None] * sy + cols[None, :], y.to(Y.dtype.element_ty), mask=mask)
    tl.store(RSTD + rows, rstd, mask=row_ok)


@triton.jit
def _rms_bwd(X, W, DY, RSTD, DX, DW_PART, sx, sdy, sdx, R,
             D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_R: tl.constexpr):
    pid = tl.program_id(0)
    programs = tl.num_programs(0)
    cols = tl.arange(0, BLOCK_D)
    col_ok = cols < D
    w = tl.load(W + cols, mask=col_ok, other=0.0).to(tl.float32)  # (BLOCK_D,)
    dw = tl.zeros((BLOCK_D,), tl.float32)
    for start in range(pid * BLOCK_R, R, programs * BLOCK_R):
        rows = start + tl.arange(0, BLOCK_R)
        row_ok = rows < R
        mask = row_ok[:, None] & col_ok[None, :]
        rows64 = rows.to(tl.int64)
        x = tl.load(X + rows64[:, None] * sx + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(DY + rows64[:, None] * sdy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(RSTD + rows, mask=row_ok, other=0.0)  # (BLOCK_R,)
        x_hat = x * rstd[:, None]  # (BLOCK_R, BLOCK_D)
        g = dy * w[None, :]
        c = tl.sum(g * x_hat, 1) / D  # (BLOCK_R,)
        dx = rstd[:, None] * (g - x_hat * c[:, None])
        tl.store(DX + rows64[:, None] * sdx + cols[None, :], dx.to(DX.dtype.element_ty), mask=mask)
        dw += tl.sum(dy * x_hat, 0)  # masked rows contribute 0 because x and dy load as 0
    tl.store(DW_PART + pid * D + cols, dw, mask=col_ok)


def _interpreting():
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _tiles(D):
    """(BLOCK_D, BLOCK_R, num_warps): about 4096 elements per tile, whole rows always."""
    BLOCK_D = triton.next_power_of_2(D)
    BLOCK_R = max(1, min(64, 4096 // BLOCK_D))
    warps = 4 if BLOCK_D * BLOCK_R <= 4096 else 8
    return BLOCK_D, BLOCK_R, warps


def _rows(t, D):
    t = t.reshape(-1, D)  # (R, D)
    return t if t.stride(-1) == 1 else t.contiguous()


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        D = x.shape[-1]
        x2 = _rows(x, D)  # (R, D)
        R = x2.shape[0]
        y = torch.empty((R, D), device=x.device, dtype=x.dtype)
        rstd = torch.empty((R,), device=x.device, dtype=torch.float32)
        BLOCK_D, BLOCK_R, warps = _tiles(D)
        _rms_fwd[(triton.cdiv(R, BLOCK_R),)](x2, weight, y, rstd, x2.stride(0), y.stride(0), R, eps,
                                             D=D, BLOCK_D=BLOCK_D, BLOCK_R=BLOCK_R, num_warps=warps)
        ctx.save_for_backward(x2, weight, rstd)
        ctx.shape = x.shape
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy):
        x2, weight, rstd = ctx.saved_tensors
        R, D = x2.shape
        dy2 = _rows(dy, D)  # (R, D)
        dx = torch.empty((R, D), device=x2.device, dtype=x2.dtype)
        BLOCK_D, BLOCK_R, warps = _tiles(D)
        tiles = triton.cdiv(R, BLOCK_R)
        sms = 1 if _interpreting() else torch.cuda.get_device_properties(x2.device).multi_processor_count
        programs = min(tiles, 4 * sms)  # partial dw rows to sum; 4 under the interpreter
        dw_part = torch.empty((programs, D), device=x2.device, dtype=torch.float32)
        _rms_bwd[(programs,)](x2, weight, dy2, rstd, dx, dw_part, x2.stride(0), dy2.stride(0), dx.stride(0), R,
                              D=D, BLOCK_D=BLOCK_D, BLOCK_R=BLOCK_R, num_warps=warps)
        dw = dw_part.sum(0).to(weight.dtype)
        return dx.view(ctx.shape), dw, None


def rms_norm(x, weight, eps=1e-6):
    """Triton RMSNorm. x (..., D), weight (D,) -> (..., D) in the dtype of x."""
    return _RMSNorm.apply(x, weight.contiguous(), eps)
