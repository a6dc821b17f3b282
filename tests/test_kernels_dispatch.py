"""Dispatch between Triton kernels and references: the ATOMMEM_KERNELS switch and its one-line log.

Run: TRITON_INTERPRET=1 .venv/bin/python -m pytest -n 2 tests/test_kernels_dispatch.py
"""
import logging

import pytest
import torch

import kernels
from kernels import dispatch, reference

from kernel_checks import INTERPRET

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy noise from the interpreter
# Triton runs CPU tensors only when the kernels were compiled for the interpreter, i.e. TRITON_INTERPRET=1 was set
# before they were imported; setting it later (monkeypatch) changes the dispatcher's choice, not the compiled kernels.
needs_interpreter = pytest.mark.skipif(not INTERPRET, reason="Triton on CPU tensors needs TRITON_INTERPRET=1 at import")


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def logged():
    """Collect what the dispatcher logs during one test, starting from a clean slate."""
    handler = _Lines()
    dispatch.log.addHandler(handler)
    dispatch.reset_log()
    yield handler.lines
    dispatch.log.removeHandler(handler)
    dispatch.reset_log()


def inputs(seed, T=20, D=16):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 2, T, D, generator=g) for _ in range(3)]  # (B, H, T, D) each


def test_reference_mode_forces_references(monkeypatch, logged):
    monkeypatch.setenv("ATOMMEM_KERNELS", "reference")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    q, k, v = inputs(1)
    assert dispatch.choose("attention", q) == "reference"
    out = kernels.attention(q, k, v)
    assert torch.equal(out, reference.attention_sdpa(q, k, v))
    x, w = torch.randn(3, 16), torch.randn(16)
    assert torch.equal(kernels.rms_norm(x, w), reference.rms_norm_ref(x, w))
    assert logged == ["attention -> reference (ATOMMEM_KERNELS=reference)",
                      "rms_norm -> reference (ATOMMEM_KERNELS=reference)"]


def test_choice_is_logged_once_per_kernel(monkeypatch, logged):
    monkeypatch.setenv("ATOMMEM_KERNELS", "reference")
    q, k, v = inputs(2)
    for _ in range(3):
        kernels.attention(q, k, v)
    assert len(logged) == 1 and logged[0].startswith("attention -> reference")


def test_auto_on_cpu_without_interpreter_uses_reference(monkeypatch, logged):
    monkeypatch.setenv("ATOMMEM_KERNELS", "auto")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert dispatch.choose("attention", torch.zeros(1)) == "reference"
    assert "Triton needs a GPU" in logged[0]


@needs_interpreter
def test_auto_on_cpu_with_interpreter_runs_triton(monkeypatch, logged):
    monkeypatch.delenv("ATOMMEM_KERNELS", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    q, k, v = inputs(3)
    out = kernels.attention(q, k, v, causal=True)
    assert logged[0].startswith("attention -> triton")
    want = reference.attention_ref(q.double(), k.double(), v.double(), causal=True)
    assert ((out.double() - want).norm() / want.norm()).item() < 1e-5


def test_unsupported_head_dim_degrades_to_reference(monkeypatch, logged):
    monkeypatch.setenv("ATOMMEM_KERNELS", "triton")
    q, k, v = inputs(4, D=8)
    out = kernels.attention(q, k, v)
    assert torch.allclose(out, reference.attention_ref(q, k, v), atol=1e-6)
    assert logged[0].startswith("attention -> reference") and "D=8" in logged[0]


def test_bad_mode_is_rejected(monkeypatch):
    monkeypatch.setenv("ATOMMEM_KERNELS", "fast")
    with pytest.raises(ValueError):
        dispatch.mode()


@pytest.mark.parametrize("mode", ["reference", pytest.param("triton", marks=needs_interpreter)])
def test_public_api_agrees_across_backends(monkeypatch, mode):
    """Every public function gives the same answer whichever backend runs it."""
    monkeypatch.setenv("ATOMMEM_KERNELS", mode)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(2, 2, 19, 32, generator=g, requires_grad=True) for _ in range(3))
    out = kernels.attention(q, k, v, causal=False)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    qd, kd, vd = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = reference.attention_ref(qd, kd, vd, causal=False)
    ref_grads = torch.autograd.grad(ref.square().sum(), (qd, kd, vd))
    for a, b in zip((out, *grads), (ref, *ref_grads)):
        assert ((a.double() - b).norm() / b.norm()).item() < 1e-5

    lengths = torch.tensor([19, 4])
    dec = kernels.decode_attention(q[:, :, -1].detach(), k.detach(), v.detach(), lengths)
    want = reference.decode_attention_ref(q[:, :, -1].double(), k.double(), v.double(), lengths)
    assert ((dec.double() - want).norm() / want.norm()).item() < 1e-5

    x = torch.randn(5, 32, generator=g, requires_grad=True)
    w = torch.randn(32, generator=g, requires_grad=True)
    y = kernels.rms_norm(x, w)
    gx, gw = torch.autograd.grad(y.square().sum(), (x, w))
    xd, wd = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    yr = reference.rms_norm_ref(xd, wd)
    rx, rw = torch.autograd.grad(yr.square().sum(), (xd, wd))
    for a, b in ((y, yr), (gx, rx), (gw, rw)):
        assert ((a.double() - b).norm() / b.norm()).item() < 1e-5

    logits = torch.randn(6, 300, generator=g, requires_grad=True)
    targets = torch.tensor([3, -100, 299, 0, 17, -100])
    loss = kernels.cross_entropy(logits, targets)
    (dlogits,) = torch.autograd.grad(loss, (logits,))
    ld = logits.detach().double().requires_grad_()
    ref_loss = reference.cross_entropy_ref(ld, targets)
    (ref_dlogits,) = torch.autograd.grad(ref_loss, (ld,))
    assert abs(loss.item() - ref_loss.item()) < 1e-5 * abs(ref_loss.item())
    assert ((dlogits.double() - ref_dlogits).norm() / ref_dlogits.norm()).item() < 1e-5


def test_public_names_survive_submodule_imports():
    import importlib
    for module in ("flash_attention", "flash_decode", "rmsnorm", "fused_cross_entropy", "reference", "dispatch"):
        importlib.import_module(f"kernels.{module}")
    for name in kernels.__all__:
        assert callable(getattr(kernels, name)) and not isinstance(getattr(kernels, name), type(kernels)), name
