"""Checkpoints: exact roundtrip, atomic helpers, and clear CheckpointErrors for every broken input."""
import json
import os

import pytest
import torch

from model.checkpoint import (CONFIG_FILE, WEIGHTS_FILE, CheckpointError, default_device, load_model, load_tensors,
                              read_json, save_model, save_tensors_atomic, write_json_atomic)
from model.config import GPTConfig
from model.gpt import GPT


@pytest.fixture(autouse=True)
def _reference_kernels(monkeypatch):
    monkeypatch.setenv("ATOMMEM_KERNELS", "reference")


def _model(**overrides):
    torch.manual_seed(0)
    return GPT(GPTConfig.preset("smoke", vocab_size=50, max_seq_len=32, **overrides))


def test_roundtrip_is_exact(tmp_path):
    model = _model(mlp="gelu", rope_theta=500.0)
    save_model(tmp_path / "ck", model)
    assert sorted(os.listdir(tmp_path / "ck")) == [CONFIG_FILE, WEIGHTS_FILE]  # no temp files left over
    loaded = load_model(tmp_path / "ck")
    assert loaded.config == model.config
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    idx = torch.randint(0, 50, (2, 7))
    assert torch.equal(model(idx), loaded(idx))
    stored = load_tensors(tmp_path / "ck" / WEIGHTS_FILE)
    assert set(stored) == set(a)  # the tied head is stored once, as wte.weight
    assert read_json(tmp_path / "ck" / CONFIG_FILE)["model"] == model.config.to_dict()


def test_save_overwrites_atomically(tmp_path):
    save_model(tmp_path, _model())
    other = _model()
    with torch.no_grad():
        other.norm.fill_(2.0)
    save_model(tmp_path, other)
    assert torch.equal(load_model(tmp_path).norm, other.norm)
    assert sorted(os.listdir(tmp_path)) == [CONFIG_FILE, WEIGHTS_FILE]


def _tamper(tmp_path, change):
    save_model(tmp_path, _model())
    tensors = load_tensors(tmp_path / WEIGHTS_FILE)
    change(tensors)
    save_tensors_atomic(tmp_path / WEIGHTS_FILE, tensors)


def test_missing_tensor(tmp_path):
    _tamper(tmp_path, lambda t: t.pop("blocks.1.proj.weight"))
    with pytest.raises(CheckpointError, match=r"missing tensor 'blocks.1.proj.weight' \(expected shape \(64, 64\)\)"):
        load_model(tmp_path)


def test_mismatched_shape(tmp_path):
    _tamper(tmp_path, lambda t: t.update({"blocks.0.qkv.weight": torch.zeros(10, 64)}))
    with pytest.raises(CheckpointError, match=r"'blocks.0.qkv.weight' has shape \(10, 64\), expected \(192, 64\)"):
        load_model(tmp_path)


def test_extra_tensor(tmp_path):
    _tamper(tmp_path, lambda t: t.update({"lm_head.weight": torch.zeros(50, 64)}))
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'lm_head.weight' with shape \(50, 64\)"):
        load_model(tmp_path)


def test_corrupt_weights(tmp_path):
    save_model(tmp_path, _model())
    data = (tmp_path / WEIGHTS_FILE).read_bytes()
    (tmp_path / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(tmp_path)
    os.remove(tmp_path / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="missing file"):
        load_model(tmp_path)


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"hello": 1}), "expected keys"),
    ("config-with-extra-field", "unknown GPTConfig fields"),
    ("config-with-bad-heads", "divisible"),
])
def test_bad_config(tmp_path, content, message):
    model = _model()
    save_model(tmp_path, model)
    data = read_json(tmp_path / CONFIG_FILE)
    if content == "config-with-extra-field":
        data["model"]["dropout"] = 0.1
        content = json.dumps(data)
    elif content == "config-with-bad-heads":
        data["model"]["n_heads"] = 3
        content = json.dumps(data)
    (tmp_path / CONFIG_FILE).write_text(content)
    with pytest.raises(CheckpointError, match=message):
        load_model(tmp_path)


def test_config_of_another_size(tmp_path):
    save_model(tmp_path, _model())
    data = read_json(tmp_path / CONFIG_FILE)
    data["model"]["vocab_size"] = 51
    write_json_atomic(tmp_path / CONFIG_FILE, data)
    with pytest.raises(CheckpointError, match=r"'wte.weight' has shape \(50, 64\), expected \(51, 64\)"):
        load_model(tmp_path)


def test_generic_helpers(tmp_path):
    base = torch.arange(12.0)
    tensors = {"a": base, "b": base.view(3, 4), "step": torch.tensor(7), "empty": torch.zeros(0)}
    save_tensors_atomic(tmp_path / "sub" / "opt.safetensors", tensors, metadata={"kind": "adamw"})
    back = load_tensors(tmp_path / "sub" / "opt.safetensors")
    assert set(back) == set(tensors) and all(torch.equal(back[k], tensors[k]) for k in tensors)
    write_json_atomic(tmp_path / "state.json", {"step": 3, "lr": 1e-3, "name": "ü"})
    assert read_json(tmp_path / "state.json") == {"step": 3, "lr": 1e-3, "name": "ü"}
    assert sorted(os.listdir(tmp_path)) == ["state.json", "sub"]
    with pytest.raises(TypeError, match="not a torch.Tensor"):
        save_tensors_atomic(tmp_path / "x.safetensors", {"a": [1, 2]})
    assert not (tmp_path / "x.safetensors").exists()


def test_default_device_follows_the_switch(monkeypatch):
    monkeypatch.setenv("ATOMMEM_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.setenv("ATOMMEM_DEVICE", "auto")
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("ATOMMEM_DEVICE", "tpu")
    with pytest.raises(ValueError, match="expected auto, cpu or cuda"):
        default_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("ATOMMEM_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA device"):
            default_device()
