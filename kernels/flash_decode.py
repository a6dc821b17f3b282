"""Decode attention in Triton: one new query per (batch, head) against a KV cache with per-row lengths.

During generation each row b has a cache k_cache[b], v_cache[b] of capacity S_max, of which the first
lengths[b] positions are valid. The new query attends to exactly those positions:

    out[b, h] = softmax(q[b, h] . k_cache[b, h, :L]^T / sqrt(D)) v_cache[b, h, :L],   L = lengths[b]

A single query row is too small for `tl.dot` (a GPU needs every dot dimension >= 16), so the scores are
an elementwise product and a sum over D. The keys are streamed in blocks with the online softmax of
FlashAttention-2 (arXiv:2307.08691); a running max m, sum l and weighted sum acc are kept per program.

Split-K ("flash-decoding"): with few rows and a long cache, one program per (b, h) leaves most of a GPU
idle, so the cache positions are cut into NUM_SPLITS chunks, one program each. Every program writes a
partial (m, l, acc); `_combine` merges them with the same rescaling as the online softmax:

    M = max_s m_s,   out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s

A row with length 0 attends to nothing and returns zeros. Inference only: no autograd.
Under the interpreter bf16 inputs are upcast to fp32 (compile-time flag UPCAST), as in flash_attention.py.
Test: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels_decode.py
"""
import math
import os

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _decode_split(Q, K, V, LENGTHS, M_OUT, L_OUT, ACC_OUT,
                  sqb, sqh, sqd, skb, skh, skt, skd, svb, svh, svt, svd,
                  H, chunk, qk_scale,
                  HEAD_D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
                  NUM_SPLITS: tl.constexpr, UPCAST: tl.constexpr):
    """Program (b*H + h, split) handles cache positions [split*chunk, min((split+1)*chunk, L))."""
    bh = tl.program_id(0)
    split = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    length = tl.load(LENGTHS + b).to(tl.int32)
    lo = split * chunk
    hi = tl.minimum(lo + chunk, length)

    offs_d = tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    d_ok = offs_d < HEAD_D
    q = tl.load(Q + b * sqb + h * sqh + offs_d * sqd, mask=d_ok, other=0.0).to(tl.float32)  # (BLOCK_D,)
    K += b * skb + h * skh
    V += b * svb + h * svh

    m_i = -float("inf")
    l_i = 0.0
    acc = tl.zeros((BLOCK_D,), tl.float32)
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n  # (BLOCK_N,)
        col_ok = cols < hi
        mask = col_ok[:, None] & d_ok[None, :]
        k = tl.load(K + cols[:, None] * skt + offs_d[None, :] * skd, mask=mask, other=0.0)  # (BLOCK_N, BLOCK_D)
        v = tl.load(V + cols[:, None] * svt + offs_d[None, :] * svd, mask=mask, other=0.0)  # (BLOCK_N, BLOCK_D)
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.sum(q[None, :] * k.to(tl.float32), 1) * qk_scale  # (BLOCK_N,), log2 units
        s = tl.where(col_ok, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 0))  # finite: position start_n < hi is always valid
        p = tl.exp2(s - m_new)  # (BLOCK_N,)
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 0)
        acc = acc * alpha + tl.sum(p[:, None] * v.to(tl.float32), 0)
        m_i = m_new

    part = bh * NUM_SPLITS + split
    tl.store(M_OUT + part, m_i)
    tl.store(L_OUT + part, l_i)
    tl.store(ACC_OUT + part * BLOCK_D + offs_d, acc)


@triton.jit
def _combine(M_IN, L_IN, ACC_IN, OUT, sob, soh, sod, H,
             HEAD_D: tl.constexpr, BLOCK_D: tl.constexpr, NUM_SPLITS: tl.constexpr, BLOCK_S: tl.constexpr):
    """One program per (b, h): merge the NUM_SPLITS partial softmaxes into the output row."""
    bh = tl.program_id(0)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, BLOCK_D)
    s_ok = offs_s < NUM_SPLITS
    base = bh * NUM_SPLITS
    m = tl.load(M_IN + base + offs_s, mask=s_ok, other=float("-inf"))  # (BLOCK_S,)
    l = tl.load(L_IN + base + offs_s, mask=s_ok, other=0.0)  # (BLOCK_S,)
    acc = tl.load(ACC_IN + (base + offs_s)[:, None] * BLOCK_D + offs_d[None, :],
                  mask=s_ok[:, None], other=0.0)  # (BLOCK_S, BLOCK_D)
    m_max = tl.max(m, 0)
    # Empty splits (and empty rows) have m = -inf; give them weight 0 without computing inf - inf.
    w = tl.where(m > float("-inf"), tl.exp2(m - tl.where(m_max > float("-inf"), m_max, 0.0)), 0.0)
    denom = tl.sum(w * l, 0)
    num = tl.sum(w[:, None] * acc, 0)  # (BLOCK_D,)
    out = tl.where(denom > 0, num / tl.where(denom > 0, denom, 1.0), 0.0)
    tl.store(OUT + b * sob + h * soh + offs_d * sod, out.to(OUT.dtype.element_ty), mask=offs_d < HEAD_D)


def _interpreting():
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _num_splits(rows, s_max):
    """Enough programs to fill a GPU (about 2 per SM of an H100) without chunks under 256 positions."""
    if _interpreting():
        return 1
    return max(1, min(triton.cdiv(s_max, 256), triton.cdiv(264, rows), 64))


@torch.no_grad()
def decode_attention(q, k_cache, v_cache, lengths, num_splits=None):
    """q (B, H, D); k_cache, v_cache (B, H, S_max, D); lengths (B,) -> (B, H, D)."""
    B, H, D = q.shape
    S_max = k_cache.shape[2]
    lengths = lengths.to(device=q.device, dtype=torch.int32).contiguous()
    if num_splits is None:
        num_splits = _num_splits(B * H, S_max)
    BLOCK_N = 64
    chunk = triton.cdiv(triton.cdiv(max(S_max, 1), num_splits), BLOCK_N) * BLOCK_N  # positions per split
    BLOCK_D = max(16, triton.next_power_of_2(D))
    upcast = _interpreting() and q.dtype == torch.bfloat16
    m = torch.empty((B * H * num_splits,), device=q.device, dtype=torch.float32)
    l = torch.empty_like(m)
    acc = torch.empty((B * H * num_splits, BLOCK_D), device=q.device, dtype=torch.float32)
    _decode_split[(B * H, num_splits)](
        q, k_cache, v_cache, lengths, m, l, acc,
        q.stride(0), q.stride(1), q.stride(2), *k_cache.stride(), *v_cache.stride(),
        H, chunk, LOG2E / math.sqrt(D),
        HEAD_D=D, BLOCK_D=BLOCK_D, BLOCK_N=BLOCK_N, NUM_SPLITS=num_splits, UPCAST=upcast,
        num_warps=4 if BLOCK_D <= 64 else 8)
    out = torch.empty((B, H, D), device=q.device, dtype=q.dtype)
    _combine[(B * H,)](m, l, acc, out, *out.stride(), H, HEAD_D=D, BLOCK_D=BLOCK_D, NUM_SPLITS=num_splits,
                       BLOCK_S=max(2, triton.next_power_of_2(num_splits)))
    return out
