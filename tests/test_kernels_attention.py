"""Flash attention (Triton) vs the float64 plain-math reference: forward and the three gradients.

Covers odd lengths (1, 17, 100, 130), causal and not, key length != query length, head dims 16..128
(powers of two and padded ones), fp32 and fp16; bf16 on CUDA only, plus one interpreted bf16 case that
checks the fp32 upcast. Every buffer that torch.empty hands out during a run is filled with NaN first,
so an element the kernel forgets to write shows up as non-finite.
Run: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels_attention.py
"""
import pytest
import torch

from kernels.flash_attention import flash_attention
from kernels.reference import attention_ref, attention_sdpa

from kernel_checks import CUDA, DEVICE, INTERPRET, TOL, rel_err

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy noise from the interpreter


def check(B, H, T, S, D, causal, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, n, D, generator=g) for n in (T, S, S))  # (B, H, T|S, D)
    do = torch.randn(B, H, T, D, generator=g)  # (B, H, T, D)
    leaves = [x.to(DEVICE, dtype).requires_grad_() for x in (q, k, v)]
    out = flash_attention(*leaves, causal=causal)
    out.backward(do.to(DEVICE, dtype))

    ref_leaves = [x.detach().cpu().double().requires_grad_() for x in leaves]
    ref = attention_ref(*ref_leaves, causal=causal)
    ref.backward(do.to(dtype).double())

    tol = TOL[dtype]
    for name, got, want in [("out", out, ref)] + [(f"d{n}", a.grad, b.grad)
                                                  for n, a, b in zip("qkv", leaves, ref_leaves)]:
        assert got.dtype == dtype and got.shape == want.shape, name
        assert torch.isfinite(got).all(), f"{name} has non-finite values"
        err = rel_err(got, want, floor=1.0)
        assert err <= tol, f"{name}: relative error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("T", [1, 17, 100, 130])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("D", [16, 32, 64])
def test_fp32_self_attention(poison, T, causal, D):
    check(B=2, H=2, T=T, S=T, D=D, causal=causal, dtype=torch.float32, seed=1000 * D + 10 * T + causal)


@pytest.mark.parametrize("causal", [True, False])
def test_fp32_longest(poison, causal):
    check(B=1, H=2, T=256, S=256, D=64, causal=causal, dtype=torch.float32, seed=256 + causal)


@pytest.mark.parametrize("T,S", [(17, 100), (100, 33), (1, 130), (130, 3)])
def test_fp32_cross_attention_lengths_differ(poison, T, S):
    check(B=1, H=3, T=T, S=S, D=32, causal=False, dtype=torch.float32, seed=T * 131 + S)


@pytest.mark.parametrize("D", [24, 40, 80])
def test_fp32_head_dim_padded(poison, D):
    check(B=1, H=2, T=70, S=70, D=D, causal=True, dtype=torch.float32, seed=D)


def test_fp32_head_dim_128(poison):
    check(B=1, H=2, T=65, S=65, D=128, causal=True, dtype=torch.float32, seed=128)


@pytest.mark.parametrize("T", [17, 130])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("D", [32, 64])
def test_fp16(poison, T, causal, D):
    check(B=2, H=2, T=T, S=T, D=D, causal=causal, dtype=torch.float16, seed=7 * T + D + causal)


@pytest.mark.skipif(not CUDA, reason="bf16 needs a GPU: the interpreter computes bf16 on raw bit patterns")
@pytest.mark.parametrize("T", [17, 130])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("D", [64, 128])
def test_bf16_gpu(poison, T, causal, D):
    check(B=2, H=2, T=T, S=T, D=D, causal=causal, dtype=torch.bfloat16, seed=11 * T + D + causal)


@pytest.mark.skipif(not INTERPRET, reason="checks the interpreter-only fp32 upcast of bf16 dots")
def test_bf16_upcast_under_interpreter(poison):
    check(B=1, H=2, T=70, S=70, D=32, causal=True, dtype=torch.bfloat16, seed=70)


def test_strided_inputs_from_fused_projection(poison):
    """q, k, v as non-contiguous slices of one (B, T, 3, H, D) projection, as a model produces them."""
    g = torch.Generator().manual_seed(5)
    B, T, H, D = 2, 45, 2, 32
    qkv = torch.randn(B, T, 3, H, D, generator=g).to(DEVICE).requires_grad_()
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, D), strided
    out = flash_attention(q, k, v, causal=True)
    out.square().sum().backward()
    ref_qkv = qkv.detach().cpu().double().requires_grad_()
    ref = attention_ref(*ref_qkv.permute(2, 0, 3, 1, 4).unbind(0), causal=True)
    ref.square().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(qkv.grad).all()
    assert rel_err(out, ref, floor=1.0) <= TOL[torch.float32]
    assert rel_err(qkv.grad, ref_qkv.grad, floor=1.0) <= TOL[torch.float32]


def test_causal_requires_equal_lengths():
    q, k = torch.randn(1, 1, 4, 16), torch.randn(1, 1, 6, 16)
    with pytest.raises(ValueError):
        flash_attention(q, k, k, causal=True)
    with pytest.raises(ValueError):
        attention_ref(q, k, k, causal=True)


@pytest.mark.parametrize("causal", [True, False])
def test_sdpa_fast_path_matches_plain_math(causal):
    """The CPU training path (torch SDPA) and the plain-math reference agree, forward and backward."""
    g = torch.Generator().manual_seed(3 + causal)
    q, k, v = (torch.randn(2, 3, 33, 16, generator=g, requires_grad=True) for _ in range(3))  # (B, H, T, D)
    out = attention_sdpa(q, k, v, causal)
    grads = torch.autograd.grad(out.sum(), (q, k, v))
    ref = attention_ref(q, k, v, causal)
    ref_grads = torch.autograd.grad(ref.sum(), (q, k, v))
    assert rel_err(out, ref, floor=1.0) < 1e-5
    for a, b in zip(grads, ref_grads):
        assert rel_err(a, b, floor=1.0) < 1e-5
