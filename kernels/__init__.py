"""Public kernel API of AtomMem: attention, decode attention, RMSNorm and fused cross-entropy.

Each function picks a Triton kernel or its PyTorch reference through `kernels.dispatch`
(env var ATOMMEM_KERNELS = auto | reference | triton). The Triton modules are imported lazily, so
importing this package never imports triton, and TRITON_INTERPRET can still be set afterwards.

    attention(q, k, v, causal=True)                  q (B, H, T, D), k/v (B, H, S, D) -> (B, H, T, D)
    decode_attention(q, k_cache, v_cache, lengths)   q (B, H, D), caches (B, H, S_max, D), lengths (B,) -> (B, H, D)
    rms_norm(x, weight, eps=1e-6)                    x (..., D), weight (D,) -> (..., D)
    cross_entropy(logits, targets, ignore_index=-100) logits (N, V), targets (N,) -> mean loss (0-dim, fp32)

Files: reference.py (PyTorch math), dispatch.py (the switch), flash_attention.py, flash_decode.py,
rmsnorm.py, fused_cross_entropy.py (Triton), compile_check.py (GPU compile check without a GPU).
No submodule is named like a public function: importing `kernels.<name>` would otherwise replace the
function `kernels.<name>` with the module.

Tests: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels*.py
"""
import torch

from kernels import reference
from kernels.dispatch import choose

__all__ = ["attention", "decode_attention", "rms_norm", "cross_entropy"]

_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _dtype_ok(*tensors):
    return all(t.dtype in _TRITON_DTYPES for t in tensors) and len({t.dtype for t in tensors}) == 1


def attention(q, k, v, causal=True):
    """Scaled dot-product attention with scale 1/sqrt(D); causal needs T == S. Differentiable in q, k, v."""
    D = q.shape[-1]
    ok = q.dim() == 4 and 16 <= D <= 128 and _dtype_ok(q, k, v)
    if choose("attention", q, ok, f"D={D}, dtype={q.dtype}") == "triton":
        from kernels.flash_attention import flash_attention
        return flash_attention(q, k, v, causal)
    return reference.attention_sdpa(q, k, v, causal)


def decode_attention(q, k_cache, v_cache, lengths):
    """One query per row against the first lengths[b] cache positions. Inference only (no grad)."""
    D = q.shape[-1]
    ok = q.dim() == 3 and 16 <= D <= 128 and _dtype_ok(q, k_cache, v_cache)
    if choose("decode_attention", q, ok, f"D={D}, dtype={q.dtype}") == "triton":
        from kernels.flash_decode import decode_attention as _decode
        return _decode(q, k_cache, v_cache, lengths)
    with torch.no_grad():
        return reference.decode_attention_ref(q, k_cache, v_cache, lengths)


def rms_norm(x, weight, eps=1e-6):
    """x / sqrt(mean(x^2, -1) + eps) * weight. Differentiable in x and weight."""
    ok = _dtype_ok(x) and x.shape[-1] <= 65536 and x.numel() > 0
    if choose("rms_norm", x, ok, f"dtype={x.dtype}") == "triton":
        from kernels.rmsnorm import rms_norm as _rms
        return _rms(x, weight, eps)
    return reference.rms_norm_ref(x, weight, eps)


def cross_entropy(logits, targets, ignore_index=-100):
    """Mean cross-entropy over rows with target != ignore_index, fused over the vocabulary."""
    ok = logits.dim() == 2 and _dtype_ok(logits)
    if choose("cross_entropy", logits, ok, f"shape={tuple(logits.shape)}, dtype={logits.dtype}") == "triton":
        from kernels.fused_cross_entropy import cross_entropy as _ce
        return _ce(logits, targets, ignore_index)
    return reference.cross_entropy_ref(logits, targets, ignore_index)
