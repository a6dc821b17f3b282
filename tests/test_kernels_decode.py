"""Decode attention (Triton) vs full causal attention at every prefix length, and vs its reference.

One call covers every prefix: row b of the batch holds the same sequence with length b + 1, so its
query is position b and its answer must equal row b of full causal attention. Cache slots past a row's
length are filled with large random junk, so reading them would show. Output buffers are NaN-poisoned.
Run: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels_decode.py
"""
import pytest
import torch

from kernels.flash_decode import decode_attention
from kernels.flash_attention import flash_attention
from kernels.reference import attention_ref, decode_attention_ref

from kernel_checks import CUDA, DEVICE, TOL, rel_err

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy noise from the interpreter


def prefix_batch(T, H, D, S_max, dtype, seed):
    """A (1, H, T, D) sequence and a decode batch of T rows, row b seeing the first b + 1 positions."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, H, T, D, generator=g) for _ in range(3))  # (1, H, T, D)
    k_cache = 100 * torch.randn(T, H, S_max, D, generator=g)  # (T, H, S_max, D), junk past the length
    v_cache = 100 * torch.randn(T, H, S_max, D, generator=g)
    k_cache[:, :, :T] = k[0]
    v_cache[:, :, :T] = v[0]
    q_rows = q[0].transpose(0, 1)  # (T, H, D): row b is query position b
    lengths = torch.arange(1, T + 1)  # (T,)
    cast = [x.to(dtype) for x in (q, k, v, q_rows, k_cache, v_cache)]
    return cast, lengths


@pytest.mark.parametrize("dtype,D,num_splits", [
    (torch.float32, 16, 1), (torch.float32, 32, 1), (torch.float32, 32, 3), (torch.float32, 64, 2),
    (torch.float32, 128, 1), (torch.float16, 32, 1), (torch.float16, 64, 3)])
def test_every_prefix_matches_full_causal_attention(poison, dtype, D, num_splits):
    T, H = 70, 1
    (q, k, v, q_rows, k_cache, v_cache), lengths = prefix_batch(T, H, D, S_max=T + 9, dtype=dtype, seed=D + num_splits)
    full = attention_ref(q.double(), k.double(), v.double(), causal=True)  # (1, H, T, D)
    want = full[0].transpose(0, 1)  # (T, H, D): row b = output at position b
    got = decode_attention(q_rows.to(DEVICE), k_cache.to(DEVICE), v_cache.to(DEVICE), lengths.to(DEVICE),
                           num_splits=num_splits)
    assert got.shape == (T, H, D) and got.dtype == dtype
    assert torch.isfinite(got).all()
    assert rel_err(got, want) <= TOL[dtype]
    for L in (1, 2, T // 2, T):  # spot-check single rows too, so one bad row cannot hide in the norm
        assert rel_err(got[L - 1], want[L - 1]) <= 3 * TOL[dtype]


def test_matches_triton_flash_attention_last_row(poison):
    """The decode kernel agrees with the flash kernel's last row (same fp32 inputs, both Triton)."""
    T, H, D = 45, 2, 32
    (q, k, v, q_rows, k_cache, v_cache), lengths = prefix_batch(T, H, D, S_max=64, dtype=torch.float32, seed=9)
    full = flash_attention(q.to(DEVICE), k.to(DEVICE), v.to(DEVICE), causal=True)  # (1, H, T, D)
    got = decode_attention(q_rows[-1:].to(DEVICE), k_cache[-1:].to(DEVICE), v_cache[-1:].to(DEVICE),
                           lengths[-1:].to(DEVICE))
    assert rel_err(got[0], full[0, :, -1]) <= TOL[torch.float32]


@pytest.mark.parametrize("num_splits", [1, 4])
def test_mixed_lengths_and_empty_row(poison, num_splits):
    """Rows with lengths 0, 1, S_max and in between; a row of length 0 returns zeros."""
    g = torch.Generator().manual_seed(21 + num_splits)
    B, H, S_max, D = 5, 3, 200, 48
    q = torch.randn(B, H, D, generator=g)
    k_cache, v_cache = torch.randn(B, H, S_max, D, generator=g), torch.randn(B, H, S_max, D, generator=g)
    lengths = torch.tensor([0, 1, 200, 65, 129])
    got = decode_attention(q.to(DEVICE), k_cache.to(DEVICE), v_cache.to(DEVICE), lengths.to(DEVICE),
                           num_splits=num_splits)
    want = decode_attention_ref(q.double(), k_cache.double(), v_cache.double(), lengths)
    assert torch.isfinite(got).all()
    assert (got[0] == 0).all()
    assert rel_err(got, want) <= TOL[torch.float32]


@pytest.mark.skipif(not CUDA, reason="bf16 needs a GPU: the interpreter computes bf16 on raw bit patterns")
def test_bf16_gpu(poison):
    (q, k, v, q_rows, k_cache, v_cache), lengths = prefix_batch(100, 2, 64, S_max=128, dtype=torch.bfloat16, seed=4)
    want = attention_ref(q.double(), k.double(), v.double(), causal=True)[0].transpose(0, 1)
    got = decode_attention(q_rows.cuda(), k_cache.cuda(), v_cache.cuda(), lengths.cuda())
    assert torch.isfinite(got).all() and rel_err(got, want) <= TOL[torch.bfloat16]


def test_reference_empty_row_is_zero():
    q, cache = torch.randn(2, 1, 16), torch.randn(2, 1, 8, 16)
    out = decode_attention_ref(q, cache, cache, torch.tensor([0, 8]))
    assert (out[0] == 0).all() and torch.isfinite(out).all()
