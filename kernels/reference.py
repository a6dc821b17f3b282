"""Plain-PyTorch references for every kernel in this package.

Owns the math that the Triton kernels must reproduce: attention (full and causal), decode attention
against a cache with per-row lengths, RMSNorm and cross-entropy. Two flavours of attention live here:

* `attention_ref`: the textbook formula, softmax(Q K^T / sqrt(D)) V, written out with matmuls and a mask.
  It is the ground truth for the tests (run it in float64).
* `attention_sdpa`: torch's `scaled_dot_product_attention`, the fast path used for real training on CPU.

Knows nothing about Triton or dispatch. Test with
    TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels*.py
"""
import math

import torch
import torch.nn.functional as F


def attention_ref(q, k, v, causal=True):
    """softmax(Q K^T / sqrt(D) + mask) V in plain math.

    q: (B, H, T, D); k, v: (B, H, S, D). With causal=True we require T == S and query t sees keys 0..t.
    """
    T, S, D = q.shape[-2], k.shape[-2], q.shape[-1]
    if causal and T != S:
        raise ValueError(f"causal attention needs equal query/key lengths, got T={T}, S={S}")
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(D))  # (B, H, T, S)
    if causal:
        future = torch.ones(T, S, dtype=torch.bool, device=q.device).triu(1)  # (T, S)
        scores = scores.masked_fill(future, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)  # (B, H, T, S)
    return torch.matmul(probs, v)  # (B, H, T, D)


def attention_sdpa(q, k, v, causal=True):
    """Same contract as `attention_ref`, computed by torch's fused CPU/GPU kernel."""
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError("causal attention needs equal query/key lengths")
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def decode_attention_ref(q, k_cache, v_cache, lengths):
    """One new query per row against a cache: row b sees positions [0, lengths[b]).

    q: (B, H, D); k_cache, v_cache: (B, H, S_max, D); lengths: (B,) integers. Returns (B, H, D).
    A row with length 0 attends to nothing and returns zeros.
    """
    D, S_max = q.shape[-1], k_cache.shape[-2]
    scores = torch.einsum("bhd,bhsd->bhs", q.float(), k_cache.float()) / math.sqrt(D)  # (B, H, S_max)
    pos = torch.arange(S_max, device=q.device)  # (S_max,)
    valid = pos[None, :] < lengths.to(q.device).long()[:, None]  # (B, S_max)
    scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
    probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # empty rows give 0/0: make them zero
    out = torch.einsum("bhs,bhsd->bhd", probs, v_cache.float())  # (B, H, D)
    return out.to(q.dtype)


def rms_norm_ref(x, weight, eps=1e-6):
    """y = x / sqrt(mean(x^2) + eps) * weight, over the last dim, accumulated in fp32 (or fp64)."""
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.to(acc)
    rstd = torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
    return (xf * rstd * weight.to(acc)).to(x.dtype)


def cross_entropy_ref(logits, targets, ignore_index=-100):
    """Mean token cross-entropy over rows whose target is not ignore_index.

    logits: (N, V); targets: (N,). Computed in fp32 (or fp64), returned as a 0-dim fp32/fp64 tensor.
    """
    acc = torch.float64 if logits.dtype == torch.float64 else torch.float32
    return F.cross_entropy(logits.to(acc), targets, ignore_index=ignore_index)
