"""Fused cross-entropy (Triton) vs the float64 reference: loss and dlogits, with ignored rows.

Run: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels_cross_entropy.py
"""
import pytest
import torch

from kernels.fused_cross_entropy import cross_entropy
from kernels.reference import cross_entropy_ref

from kernel_checks import CUDA, DEVICE, TOL, rel_err

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy noise from the interpreter


@pytest.mark.parametrize("N,V", [(1, 17), (13, 1000), (7, 2500)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_loss_and_grad(poison, N, V, dtype):
    g = torch.Generator().manual_seed(N * V + (dtype == torch.float16))
    logits = (4 * torch.randn(N, V, generator=g)).to(DEVICE, dtype).requires_grad_()
    targets = torch.randint(0, V, (N,), generator=g)
    if N > 2:
        targets[::3] = -100  # some rows are ignored
    loss = cross_entropy(logits, targets.to(DEVICE))
    loss.backward(torch.tensor(0.7, device=DEVICE))
    ref_logits = logits.detach().cpu().double().requires_grad_()
    ref = cross_entropy_ref(ref_logits, targets)
    ref.backward(torch.tensor(0.7, dtype=torch.float64))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all() and logits.grad.dtype == dtype
    assert rel_err(loss, ref) <= TOL[dtype]
    assert rel_err(logits.grad, ref_logits.grad) <= TOL[dtype]


@pytest.mark.skipif(not CUDA, reason="bf16 needs a GPU: the interpreter computes bf16 on raw bit patterns")
def test_bf16_gpu(poison):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 5000, generator=g).cuda().bfloat16().requires_grad_()
    targets = torch.randint(0, 5000, (64,), generator=g).cuda()
    loss = cross_entropy(logits, targets)
    loss.backward()
    ref_logits = logits.detach().double().requires_grad_()
    ref = cross_entropy_ref(ref_logits, targets)
    ref.backward()
    assert rel_err(loss, ref) <= TOL[torch.bfloat16]
    assert rel_err(logits.grad, ref_logits.grad) <= TOL[torch.bfloat16]
