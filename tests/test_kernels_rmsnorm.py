"""RMSNorm (Triton) vs the float64 reference: output, dx and dweight, with NaN-poisoned buffers.

Run: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels_rmsnorm.py
"""
import pytest
import torch

from kernels.reference import rms_norm_ref
from kernels.rmsnorm import rms_norm

from kernel_checks import CUDA, DEVICE, TOL, rel_err

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy noise from the interpreter


def check(shape, dtype, eps, seed, w_dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = (3 * torch.randn(*shape, generator=g)).to(DEVICE, dtype).requires_grad_()
    w = (1 + 0.3 * torch.randn(shape[-1], generator=g)).to(DEVICE, w_dtype).requires_grad_()
    dy = torch.randn(*shape, generator=g).to(DEVICE, dtype)
    y = rms_norm(x, w, eps)
    y.backward(dy)
    xr, wr = x.detach().cpu().double().requires_grad_(), w.detach().cpu().double().requires_grad_()
    yr = rms_norm_ref(xr, wr, eps)
    yr.backward(dy.cpu().double())
    tol = TOL[dtype]
    for name, got, want, dt in [("y", y, yr, dtype), ("dx", x.grad, xr.grad, dtype), ("dw", w.grad, wr.grad, w_dtype)]:
        assert got.shape == want.shape and got.dtype == dt, name
        assert torch.isfinite(got).all(), f"{name} has non-finite values"
        err = rel_err(got, want)
        assert err <= tol, f"{name}: relative error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("shape", [(1, 16), (3, 7, 48), (2, 130, 64), (5, 1000), (3, 4096)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_forward_backward(poison, shape, dtype):
    check(shape, dtype, eps=1e-6, seed=sum(shape) + (dtype == torch.float16))


def test_large_eps_and_fp16_weight(poison):
    check((4, 33, 96), torch.float16, eps=1e-2, seed=3, w_dtype=torch.float16)


def test_non_contiguous_input(poison):
    g = torch.Generator().manual_seed(8)
    base = torch.randn(40, 2, 64, generator=g).to(DEVICE).requires_grad_()
    x = base.transpose(0, 1)  # (2, 40, 64), rows not contiguous in memory order
    w = torch.randn(64, generator=g).to(DEVICE)
    y = rms_norm(x, w)
    want = rms_norm_ref(x.detach().cpu().double(), w.cpu().double())
    y.sum().backward()
    assert torch.isfinite(base.grad).all()
    assert rel_err(y, want) <= TOL[torch.float32]


@pytest.mark.skipif(not CUDA, reason="bf16 needs a GPU: the interpreter computes bf16 on raw bit patterns")
@pytest.mark.parametrize("shape", [(3, 7, 48), (4, 4096)])
def test_bf16_gpu(poison, shape):
    check(shape, torch.bfloat16, eps=1e-6, seed=2)
