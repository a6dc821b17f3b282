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


@pytest.fixture(scope="module")
def smoke_data():
    """The smoke preset's config, tokenizer and SFT rows from 20 teacher episodes (training and data tests)."""
    from rl.config import TrainConfig
    from rl.data import sft_rows, teacher_trajectories, train_tokenizer, training_episodes
    cfg = TrainConfig.preset_named("smoke", sft_steps=20, ckpt_every=10, eval_every=1000)
    trajs = teacher_trajectories(cfg, training_episodes(cfg, 20, stream=1))
    tok = train_tokenizer(cfg, trajs)
    return cfg, tok, sft_rows(cfg, tok, trajs)
