"""Test configuration: the Triton interpreter must be chosen before anything imports triton."""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest


@pytest.fixture
def reference_kernels(monkeypatch):
    """Model-level tests run the PyTorch references: the interpreted Triton kernels are tested on their own."""
    monkeypatch.setenv("ATOMMEM_KERNELS", "reference")
