"""Test configuration: the Triton interpreter must be chosen before anything imports triton."""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest


@pytest.fixture
def reference_kernels(monkeypatch):
    """Model-level tests run the PyTorch references: the interpreted Triton kernels are tested on their own."""
    monkeypatch.setenv("ATOMMEM_KERNELS", "reference")


@pytest.fixture
def poison(monkeypatch):
    """Make torch.empty / empty_like return NaN-filled floating tensors for the duration of a test."""
    import torch

    real_empty, real_like = torch.empty, torch.empty_like

    def nan_fill(t):
        return t.fill_(float("nan")) if t.is_floating_point() else t

    monkeypatch.setattr(torch, "empty", lambda *a, **kw: nan_fill(real_empty(*a, **kw)))
    monkeypatch.setattr(torch, "empty_like", lambda *a, **kw: nan_fill(real_like(*a, **kw)))
