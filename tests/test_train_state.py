"""Checkpoints: roundtrip, bit-exact AdamW resume, RNG restore, refusal of incomplete saves, pruning, symlinks."""
import json
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

import rl.train_state as ts
from rl.train_state import (
    TrainStateError, capture_rng, checkpoint_dir, is_complete, latest_checkpoint, list_checkpoints,
    load_train_state, prune_checkpoints, restore_rng, save_checkpoint, save_train_state, update_symlink,
)


def _seed(s):
    torch.manual_seed(s)
    np.random.seed(s)
    random.seed(s)


def _make():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    return model, opt


def _train(model, opt, steps):
    for _ in range(steps):
        x = torch.randn(16, 4) * (1 + random.random())           # uses torch and python RNGs
        y = torch.from_numpy(np.random.randn(16, 1)).float()      # and numpy's
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_adamw_resume_is_bit_exact(tmp_path):
    _seed(0)
    ref_model, ref_opt = _make()
    _train(ref_model, ref_opt, 10)

    _seed(0)
    model, opt = _make()
    _train(model, opt, 4)
    save_train_state(tmp_path / "ck", model_tensors=model.state_dict(), optimizer=opt,
                     loop_state={"step": 4, "stage": "rl", "epoch": 0, "metrics": {"loss": 0.5}})
    del model, opt
    _seed(123)  # scramble every RNG and build a fresh, differently initialised model
    model, opt = _make()
    tensors, loop = load_train_state(tmp_path / "ck", optimizer=opt)
    model.load_state_dict(tensors)
    assert loop == {"step": 4, "stage": "rl", "epoch": 0, "metrics": {"loss": 0.5}}
    _train(model, opt, 6)

    for (n, a), (_, b) in zip(ref_model.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), n
    sa, sb = ref_opt.state_dict(), opt.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert isinstance(sb["param_groups"][0]["betas"], tuple)
    for i in sa["state"]:
        for k in sa["state"][i]:
            assert torch.equal(sa["state"][i][k], sb["state"][i][k]), (i, k)


def test_layout_keys_extra_files_and_shared_tensors(tmp_path):
    w = torch.randn(3, 3)
    model = nn.Linear(3, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # momentum 0: state holds a None buffer after a step
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    d = save_train_state(tmp_path / "ck", model_tensors={"emb": w, "head": w}, optimizer=opt,
                         loop_state={"step": 1}, extra_files={"config.json": '{"preset": "tiny"}'})
    names = sorted(p.name for p in d.iterdir())
    assert names == ["COMPLETE", "config.json", "loop.json", "model.safetensors", "optimizer.json",
                     "optimizer.safetensors", "rng.json", "rng.safetensors"]
    manifest = json.loads((d / "COMPLETE").read_text())
    assert set(manifest["files"]) == set(names) - {"COMPLETE"}
    tensors, _ = load_train_state(d, optimizer=opt)
    assert torch.equal(tensors["emb"], w) and torch.equal(tensors["head"], w)
    assert (d / "config.json").read_text() == '{"preset": "tiny"}'
    with pytest.raises(TrainStateError):
        save_train_state(tmp_path / "x", model_tensors={}, optimizer=None, loop_state={},
                         extra_files={"loop.json": "{}"})


def test_optimizer_tensor_keys(tmp_path):
    from safetensors.torch import load_file
    _seed(0)
    model, opt = _make()
    _train(model, opt, 1)
    save_train_state(tmp_path, model_tensors=model.state_dict(), optimizer=opt, loop_state={})
    keys = set(load_file(str(tmp_path / "optimizer.safetensors")))
    assert {"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.3.exp_avg"} <= keys
    meta = json.loads((tmp_path / "optimizer.json").read_text())
    assert meta["param_groups"][0]["params"] == [0, 1, 2, 3]


def test_rng_capture_restore_and_checkpoint(tmp_path):
    _seed(5)
    state = capture_rng()
    a = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    restore_rng(state)
    b = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]

    _seed(6)
    np.random.randn()  # leave a cached gaussian in numpy's state
    save_train_state(tmp_path, model_tensors={}, optimizer=None, loop_state={})
    a = (torch.rand(3), np.random.randn(3), random.gauss(0, 1))
    _seed(99)
    load_train_state(tmp_path)
    b = (torch.rand(3), np.random.randn(3), random.gauss(0, 1))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    _seed(99)
    load_train_state(tmp_path, rng=False)
    assert not torch.equal(torch.rand(3), a[0])


def test_incomplete_checkpoints_are_refused(tmp_path, monkeypatch):
    model, opt = _make()
    save_train_state(tmp_path / "ok", model_tensors=model.state_dict(), optimizer=opt, loop_state={"step": 1})
    assert is_complete(tmp_path / "ok")

    (tmp_path / "ok" / "COMPLETE").unlink()
    with pytest.raises(TrainStateError, match="incomplete"):
        load_train_state(tmp_path / "ok")

    # a file truncated after the manifest was written
    d = save_train_state(tmp_path / "trunc", model_tensors=model.state_dict(), optimizer=opt, loop_state={})
    with open(d / "model.safetensors", "r+b") as f:
        f.truncate(10)
    with pytest.raises(TrainStateError):
        load_train_state(d)

    # a crash in the middle of overwriting a complete checkpoint: it must stop looking complete
    d = save_train_state(tmp_path / "crash", model_tensors=model.state_dict(), optimizer=opt, loop_state={})
    real = ts._write_json

    def boom(path, obj):
        if path.name == "loop.json":
            raise KeyboardInterrupt("killed")
        real(path, obj)

    monkeypatch.setattr(ts, "_write_json", boom)
    with pytest.raises(KeyboardInterrupt):
        save_train_state(d, model_tensors=model.state_dict(), optimizer=opt, loop_state={})
    monkeypatch.setattr(ts, "_write_json", real)
    assert not is_complete(d)
    assert not [p for p in d.iterdir() if ".tmp-" in p.name]
    with pytest.raises(TrainStateError):
        load_train_state(d)
    with pytest.raises(TrainStateError):
        load_train_state(tmp_path / "does-not-exist")
    # optimizer requested from a checkpoint saved without one
    d = save_train_state(tmp_path / "noopt", model_tensors={}, optimizer=None, loop_state={})
    with pytest.raises(TrainStateError, match="no optimizer"):
        load_train_state(d, optimizer=opt)


def test_latest_and_pruning(tmp_path):
    run = tmp_path / "run"
    assert latest_checkpoint(run) is None
    model, opt = _make()
    stale = checkpoint_dir(run, 0)          # crashed save, older than any complete one
    stale.mkdir(parents=True)
    for step in range(1, 6):
        save_checkpoint(run, step, keep=2, model_tensors=model.state_dict(), optimizer=opt,
                        loop_state={"step": step})
    newer_partial = checkpoint_dir(run, 6)  # a save in progress / crashed after the newest complete one
    newer_partial.mkdir()
    assert checkpoint_dir(run, 5).name == "step_00000005"
    assert latest_checkpoint(run) == checkpoint_dir(run, 5)
    assert list_checkpoints(run) == [checkpoint_dir(run, 4), checkpoint_dir(run, 5)]
    names = sorted(p.name for p in (run / "ckpt").iterdir())
    assert names == ["step_00000004", "step_00000005", "step_00000006"]
    assert load_train_state(latest_checkpoint(run))[1] == {"step": 5}
    assert prune_checkpoints(run, keep=1) == [checkpoint_dir(run, 4)]
    with pytest.raises(ValueError):
        prune_checkpoints(run, keep=0)


def test_update_symlink_atomic_and_relative(tmp_path):
    a, b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    a.mkdir(parents=True)
    b.mkdir()
    link = tmp_path / "runs" / "latest"
    update_symlink(link, a)
    assert os.readlink(link) == "a" and link.resolve() == a.resolve()
    update_symlink(link, b)
    assert link.resolve() == b.resolve()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a", "b", "latest"]
    with pytest.raises(TrainStateError):
        update_symlink(a, b)  # a real directory is never replaced
