"""Flash attention in Triton: forward and backward, causal or not, any length, head dims 16..128.

Algorithm: FlashAttention-2 (Dao, 2023, arXiv:2307.08691). The score matrix S = Q K^T / sqrt(D) is never
materialised. Each program owns BLOCK_M query rows and streams over key blocks with the online softmax:

    m_new = max(m, rowmax(S_j))          running row maximum
    alpha = exp(m - m_new)               rescales what was accumulated so far
    l     = alpha * l + rowsum(exp(S_j - m_new))
    acc   = alpha * acc + exp(S_j - m_new) V_j
    O     = acc / l,   LSE = m + log(l)  (stored for the backward)

We work in base 2 (exp2, with the scale multiplied by log2(e)), so the stored LSE is log2-sum-exp2 of
the log2e-scaled scores; only this file reads it.

Backward (FlashAttention-2, section 3.2), with P = exp(S - LSE) recomputed block by block:
    Delta_i = rowsum(dO_i * O_i)                                   (_attn_bwd_delta)
    dV = P^T dO,  dS = P * (dO V^T - Delta),  dK = dS^T Q / sqrt(D)   (_attn_bwd_dkdv, one program per key block)
    dQ = dS K / sqrt(D)                                              (_attn_bwd_dq, one program per query block)
dK/dV and dQ are separate kernels, so no atomics are needed; the price is computing P twice.

Departures from the paper: none in the math. Head dims that are not a power of two are padded to the
next one with masked loads; lengths that are not a multiple of the block are masked too. Causal attention
requires T == S (query t sees keys 0..t). Under the Triton interpreter (TRITON_INTERPRET=1) bf16 dot
operands are upcast to fp32 by the compile-time flag UPCAST, because the interpreter computes bf16
arithmetic on raw bit patterns; on a GPU the flag is off. fp32 operands are multiplied in full fp32 (DOT_PREC,
see _dot_precision), not Triton's default TF32.

Knows nothing about dispatch; `kernels.attention` decides when this runs.
Test: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels_attention.py
"""
import math
import os

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _attn_fwd(Q, K, V, O, LSE,
              sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd, sob, soh, sot, sod,
              H, T, S, qk_scale,
              HEAD_D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
              CAUSAL: tl.constexpr, UPCAST: tl.constexpr, DOT_PREC: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    Q += b * sqb + h * sqh
    K += b * skb + h * skh
    V += b * svb + h * svh
    O += b * sob + h * soh
    LSE += bh.to(tl.int64) * T

    offs_m = start_m + tl.arange(0, BLOCK_M)  # (BLOCK_M,) query rows
    offs_n = tl.arange(0, BLOCK_N)  # (BLOCK_N,) key rows within a block
    offs_d = tl.arange(0, BLOCK_D)  # (BLOCK_D,) head dim, padded to a power of two
    row_ok = offs_m < T
    d_ok = offs_d < HEAD_D

    q = tl.load(Q + offs_m[:, None] * sqt + offs_d[None, :] * sqd,
                mask=row_ok[:, None] & d_ok[None, :], other=0.0)  # (BLOCK_M, BLOCK_D)
    if UPCAST:
        q = q.to(tl.float32)

    m_i = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M,), tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)

    # Causal: keys beyond the last query row of this block are never seen.
    hi = tl.minimum(S, start_m + BLOCK_M) if CAUSAL else S
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + offs_n  # (BLOCK_N,)
        col_ok = cols < S
        kt = tl.load(K + cols[None, :] * skt + offs_d[:, None] * skd,
                     mask=col_ok[None, :] & d_ok[:, None], other=0.0)  # (BLOCK_D, BLOCK_N), K^T
        v = tl.load(V + cols[:, None] * svt + offs_d[None, :] * svd,
                    mask=col_ok[:, None] & d_ok[None, :], other=0.0)  # (BLOCK_N, BLOCK_D)
        if UPCAST:
            kt = kt.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.dot(q, kt, input_precision=DOT_PREC) * qk_scale  # (BLOCK_M, BLOCK_N), log2 units
        keep = col_ok[None, :]
        if CAUSAL:
            keep = keep & (offs_m[:, None] >= cols[None, :])
        s = tl.where(keep, s, float("-inf"))
        # Key 0 is in the first block and visible to every row, so m_new is finite from the start.
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.exp2(s - m_new[:, None])  # (BLOCK_M, BLOCK_N)
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PREC)
        m_i = m_new

    out = acc / l_i[:, None]
    tl.store(O + offs_m[:, None] * sot + offs_d[None, :] * sod, out.to(O.dtype.element_ty),
             mask=row_ok[:, None] & d_ok[None, :])
    tl.store(LSE + offs_m, m_i + tl.log2(l_i), mask=row_ok)


@triton.jit
def _attn_bwd_delta(O, DO, DELTA, sob, soh, sot, sod, sdb, sdh, sdt, sdd, H, T,
                    HEAD_D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr):
    """Delta_i = sum_d dO[i, d] * O[i, d], the correction term of the softmax backward."""
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m < T)[:, None] & (offs_d < HEAD_D)[None, :]
    o = tl.load(O + b * sob + h * soh + offs_m[:, None] * sot + offs_d[None, :] * sod, mask=mask, other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdt + offs_d[None, :] * sdd, mask=mask, other=0.0)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)  # (BLOCK_M,)
    tl.store(DELTA + bh.to(tl.int64) * T + offs_m, delta, mask=offs_m < T)


@triton.jit
def _attn_bwd_dkdv(Q, K, V, DO, LSE, DELTA, DK, DV,
                   sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd, sdb, sdh, sdt, sdd,
                   sgb, sgh, sgt, sgd,
                   H, T, S, qk_scale, sm_scale,
                   HEAD_D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   CAUSAL: tl.constexpr, UPCAST: tl.constexpr, DOT_PREC: tl.constexpr):
    """One program per key block: dV = P^T dO and dK = dS^T Q * sm_scale, looping over query blocks."""
    start_n = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    Q += b * sqb + h * sqh
    DO += b * sdb + h * sdh
    LSE += bh.to(tl.int64) * T
    DELTA += bh.to(tl.int64) * T
    K += b * skb + h * skh
    V += b * svb + h * svh
    goff = b * sgb + h * sgh  # dK and dV are contiguous buffers with strides sg*

    offs_n = start_n + tl.arange(0, BLOCK_N)  # (BLOCK_N,) key rows owned here
    offs_m = tl.arange(0, BLOCK_M)  # (BLOCK_M,)
    offs_d = tl.arange(0, BLOCK_D)
    col_ok = offs_n < S
    d_ok = offs_d < HEAD_D
    kv_mask = col_ok[:, None] & d_ok[None, :]
    k = tl.load(K + offs_n[:, None] * skt + offs_d[None, :] * skd, mask=kv_mask, other=0.0)  # (BLOCK_N, BLOCK_D)
    v = tl.load(V + offs_n[:, None] * svt + offs_d[None, :] * svd, mask=kv_mask, other=0.0)  # (BLOCK_N, BLOCK_D)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    dk = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    dv = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)

    # Causal: query rows before this key block never see it.
    lo = (start_n // BLOCK_M) * BLOCK_M if CAUSAL else 0
    for start_m in range(lo, T, BLOCK_M):
        rows = start_m + offs_m  # (BLOCK_M,)
        row_ok = rows < T
        qt = tl.load(Q + rows[None, :] * sqt + offs_d[:, None] * sqd,
                     mask=row_ok[None, :] & d_ok[:, None], other=0.0)  # (BLOCK_D, BLOCK_M), Q^T
        do = tl.load(DO + rows[:, None] * sdt + offs_d[None, :] * sdd,
                     mask=row_ok[:, None] & d_ok[None, :], other=0.0)  # (BLOCK_M, BLOCK_D)
        if UPCAST:
            qt = qt.to(tl.float32)
            do = do.to(tl.float32)
        lse = tl.load(LSE + rows, mask=row_ok, other=0.0)  # (BLOCK_M,)
        delta = tl.load(DELTA + rows, mask=row_ok, other=0.0)  # (BLOCK_M,)
        st = tl.dot(k, qt, input_precision=DOT_PREC) * qk_scale  # (BLOCK_N, BLOCK_M), S^T in log2 units
        keep = col_ok[:, None] & row_ok[None, :]
        if CAUSAL:
            keep = keep & (rows[None, :] >= offs_n[:, None])
        pt = tl.where(keep, tl.exp2(st - lse[None, :]), 0.0)  # (BLOCK_N, BLOCK_M), P^T
        dv += tl.dot(pt.to(do.dtype), do, input_precision=DOT_PREC)
        dpt = tl.dot(v, tl.trans(do), input_precision=DOT_PREC)  # (BLOCK_N, BLOCK_M), (dO V^T)^T
        dst = pt * (dpt - delta[None, :])  # (BLOCK_N, BLOCK_M), dS^T
        dk += tl.dot(dst.to(qt.dtype), tl.trans(qt), input_precision=DOT_PREC)

    g = goff + offs_n[:, None] * sgt + offs_d[None, :] * sgd  # (BLOCK_N, BLOCK_D) offsets into dK and dV
    tl.store(DK + g, (dk * sm_scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + g, dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _attn_bwd_dq(Q, K, V, DO, LSE, DELTA, DQ,
                 sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd, sdb, sdh, sdt, sdd,
                 sgb, sgh, sgt, sgd,
                 H, T, S, qk_scale, sm_scale,
                 HEAD_D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                 CAUSAL: tl.constexpr, UPCAST: tl.constexpr, DOT_PREC: tl.constexpr):
    """One program per query block: dQ = dS K * sm_scale, looping over key blocks."""
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    Q += b * sqb + h * sqh
    DQ += b * sgb + h * sgh  # dQ is a contiguous buffer with strides sg*
    K += b * skb + h * skh
    V += b * svb + h * svh
    DO += b * sdb + h * sdh
    LSE += bh.to(tl.int64) * T
    DELTA += bh.to(tl.int64) * T

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < T
    d_ok = offs_d < HEAD_D
    q_mask = row_ok[:, None] & d_ok[None, :]
    q = tl.load(Q + offs_m[:, None] * sqt + offs_d[None, :] * sqd, mask=q_mask, other=0.0)  # (BLOCK_M, BLOCK_D)
    do = tl.load(DO + offs_m[:, None] * sdt + offs_d[None, :] * sdd, mask=q_mask, other=0.0)  # (BLOCK_M, BLOCK_D)
    if UPCAST:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    lse = tl.load(LSE + offs_m, mask=row_ok, other=0.0)
    delta = tl.load(DELTA + offs_m, mask=row_ok, other=0.0)
    dq = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)

    hi = tl.minimum(S, start_m + BLOCK_M) if CAUSAL else S
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + offs_n
        col_ok = cols < S
        kt = tl.load(K + cols[None, :] * skt + offs_d[:, None] * skd,
                     mask=col_ok[None, :] & d_ok[:, None], other=0.0)  # (BLOCK_D, BLOCK_N), K^T
        vt = tl.load(V + cols[None, :] * svt + offs_d[:, None] * svd,
                     mask=col_ok[None, :] & d_ok[:, None], other=0.0)  # (BLOCK_D, BLOCK_N), V^T
        if UPCAST:
            kt = kt.to(tl.float32)
            vt = vt.to(tl.float32)
        s = tl.dot(q, kt, input_precision=DOT_PREC) * qk_scale  # (BLOCK_M, BLOCK_N)
        keep = row_ok[:, None] & col_ok[None, :]
        if CAUSAL:
            keep = keep & (offs_m[:, None] >= cols[None, :])
        p = tl.where(keep, tl.exp2(s - lse[:, None]), 0.0)  # (BLOCK_M, BLOCK_N)
        dp = tl.dot(do, vt, input_precision=DOT_PREC)  # (BLOCK_M, BLOCK_N)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(kt.dtype), tl.trans(kt), input_precision=DOT_PREC)

    tl.store(DQ + offs_m[:, None] * sgt + offs_d[None, :] * sgd, (dq * sm_scale).to(DQ.dtype.element_ty),
             mask=q_mask)


def _interpreting():
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _dot_precision(dtype):
    """How tl.dot treats fp32 operands: full fp32 ("ieee"), as torch's own fp32 matmuls do by default, or TF32 when
    torch.backends.cuda.matmul.allow_tf32 asks for it. TF32 rounding is not harmless here: dS = P * (dP - Delta)
    cancels, and with TF32 dP a one-key row (where dQ is exactly 0) came out with errors of 5e-3 to 7e-3 (H100).
    16-bit operands ignore the setting."""
    return "tf32" if dtype != torch.float32 or torch.backends.cuda.matmul.allow_tf32 else "ieee"


def _config(D, dtype, backward):
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) for this head dim and dtype; fixed, never autotuned.

    Under the interpreter, 64x64 blocks are the cheapest to run. On a GPU the 16-bit forward uses 128
    query rows per program; head dim 128 gets 8 warps and one pipeline stage less, and fp32 tiles (twice
    the bytes) stay at 64 rows. The backward keeps 64x64 because each program holds two accumulators.
    These are sensible starting points for an H100, not tuned values.
    """
    if _interpreting():
        return 64, 64, 4, 1
    wide, fp32 = D > 64, dtype == torch.float32
    warps = 8 if wide else 4
    if backward:
        return 64, 64, warps, 1 if (wide and fp32) else 2
    if fp32:
        return 64, 64, warps, 2
    return 128, 64, warps, 2 if wide else 3


def _strides(x):
    return x.stride(0), x.stride(1), x.stride(2), x.stride(3)


class _FlashAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal):
        B, H, T, D = q.shape
        S = k.shape[2]
        if causal and T != S:
            raise ValueError(f"causal attention needs equal query/key lengths, got T={T}, S={S}")
        if S == 0:
            raise ValueError("attention over an empty key sequence")
        sm_scale = 1.0 / math.sqrt(D)
        o = torch.empty((B, H, T, D), device=q.device, dtype=q.dtype)
        lse = torch.empty((B, H, T), device=q.device, dtype=torch.float32)
        BLOCK_M, BLOCK_N, warps, stages = _config(D, q.dtype, backward=False)
        BLOCK_D = max(16, triton.next_power_of_2(D))
        upcast = _interpreting() and q.dtype == torch.bfloat16
        grid = (triton.cdiv(T, BLOCK_M), B * H)
        _attn_fwd[grid](q, k, v, o, lse, *_strides(q), *_strides(k), *_strides(v), *_strides(o),
                        H, T, S, sm_scale * LOG2E,
                        HEAD_D=D, BLOCK_D=BLOCK_D, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N,
                        CAUSAL=causal, UPCAST=upcast, DOT_PREC=_dot_precision(q.dtype), num_warps=warps,
                        num_stages=stages)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.causal = causal
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        B, H, T, D = q.shape
        S = k.shape[2]
        sm_scale = 1.0 / math.sqrt(D)
        BLOCK_M, BLOCK_N, warps, stages = _config(D, q.dtype, backward=True)
        BLOCK_D = max(16, triton.next_power_of_2(D))
        upcast = _interpreting() and q.dtype == torch.bfloat16
        do = do.to(q.dtype)
        delta = torch.empty((B, H, T), device=q.device, dtype=torch.float32)
        _attn_bwd_delta[(triton.cdiv(T, BLOCK_M), B * H)](o, do, delta, *_strides(o), *_strides(do), H, T,
                                                          HEAD_D=D, BLOCK_D=BLOCK_D, BLOCK_M=BLOCK_M)
        dq = torch.empty((B, H, T, D), device=q.device, dtype=q.dtype)
        dk = torch.empty((B, H, S, D), device=q.device, dtype=k.dtype)
        dv = torch.empty_like(dk)
        args = (*_strides(q), *_strides(k), *_strides(v), *_strides(do))
        scalars = (H, T, S, sm_scale * LOG2E, sm_scale)
        meta = dict(HEAD_D=D, BLOCK_D=BLOCK_D, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, CAUSAL=ctx.causal, UPCAST=upcast,
                    DOT_PREC=_dot_precision(q.dtype), num_warps=warps, num_stages=stages)
        _attn_bwd_dkdv[(triton.cdiv(S, BLOCK_N), B * H)](q, k, v, do, lse, delta, dk, dv, *args, *_strides(dk),
                                                         *scalars, **meta)
        _attn_bwd_dq[(triton.cdiv(T, BLOCK_M), B * H)](q, k, v, do, lse, delta, dq, *args, *_strides(dq),
                                                       *scalars, **meta)
        return dq, dk, dv, None


def flash_attention(q, k, v, causal=True):
    """Triton flash attention. q (B, H, T, D); k, v (B, H, S, D); returns (B, H, T, D)."""
    return _FlashAttention.apply(q, k, v, causal)
