"""Checkpoints without pickle: safetensors for tensors, JSON for everything else, all writes atomic.

Owns:
    save_model(dir, model) / load_model(dir, device)   model.safetensors + config.json
    default_device()                                    the GPU if there is one (ATOMMEM_DEVICE=cpu|cuda|auto)
    save_tensors_atomic(path, tensors) / load_tensors(path)
    write_json_atomic(path, obj) / read_json(path)
    write_bytes_atomic(path, data)                      the one atomic writer (tokenizer and trainer use it too)
    CheckpointError                                     every way a checkpoint can be unusable
An atomic write goes to a temporary file in the target's directory, is fsync'ed, then os.replace'd over
the target, so a crash leaves either the old file or the new one, never half of one. The tied output
head shares the embedding's tensor and is stored once (as `wte.weight`).
Knows nothing about optimizers or training loops; the trainer reuses the helpers for its own state.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from model.config import GPTConfig
from model.gpt import GPT

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "atommem-gpt-v1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not match the model it is loaded into."""


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write data to path atomically: a temporary file in the same directory (created if needed), fsync'ed,
    os.replace'd over path, then the directory fsync'ed. A crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write obj as indented JSON, atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_json(path: str | os.PathLike):
    """Read a JSON file; a missing or malformed file raises CheckpointError."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"missing file {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None


def save_tensors_atomic(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                        metadata: dict[str, str] | None = None) -> None:
    """Write a flat name -> tensor dict as one safetensors file, atomically.

    Tensors are detached, moved to the CPU and made contiguous; entries that share memory are copied
    so that each name owns its bytes (safetensors refuses aliases).
    """
    out, seen = {}, set()
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensor {name!r} is a {type(t).__name__}, not a torch.Tensor")
        t = t.detach().to("cpu").contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset()) if t.numel() else None
        if key is not None and key in seen:
            t = t.clone()
        elif key is not None:
            seen.add(key)
        out[name] = t
    write_bytes_atomic(path, st_save(out, metadata=metadata))


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing or corrupt file raises CheckpointError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"missing file {path}") from None
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from None
    return {k: v.to(device) for k, v in tensors.items()}


def save_model(directory: str | os.PathLike, model: GPT) -> None:
    """Write model.safetensors and config.json into directory (created if needed)."""
    directory = Path(directory)
    state = model.state_dict()  # the tied head has no entry of its own: wte.weight is stored once
    save_tensors_atomic(directory / WEIGHTS_FILE, state, metadata={"format": FORMAT})
    write_json_atomic(directory / CONFIG_FILE, {"format": FORMAT, "model": model.config.to_dict()})


def load_config(directory: str | os.PathLike) -> GPTConfig:
    """The GPTConfig stored in a checkpoint directory; a bad config raises CheckpointError."""
    path = Path(directory) / CONFIG_FILE
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT or "model" not in data:
        raise CheckpointError(f"{path} is not an {FORMAT} config (expected keys 'format' and 'model')")
    try:
        return GPTConfig.from_dict(data["model"])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: bad model config: {e}") from None


def check_state(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], where: str) -> None:
    """Raise CheckpointError listing every missing, unexpected or mis-shaped tensor.

    A floating-point tensor may be stored in another float dtype (it is cast on load); any other dtype
    change is an error.
    """
    problems = []
    for name in sorted(set(expected) - set(found)):
        problems.append(f"missing tensor {name!r} (expected shape {tuple(expected[name].shape)})")
    for name in sorted(set(found) - set(expected)):
        problems.append(f"unexpected tensor {name!r} with shape {tuple(found[name].shape)}")
    for name in sorted(set(expected) & set(found)):
        e, f = expected[name], found[name]
        if tuple(e.shape) != tuple(f.shape):
            problems.append(f"tensor {name!r} has shape {tuple(f.shape)}, expected {tuple(e.shape)}")
        elif e.dtype != f.dtype and not (e.is_floating_point() and f.is_floating_point()):
            problems.append(f"tensor {name!r} has dtype {f.dtype}, expected {e.dtype}")
    if problems:
        raise CheckpointError(f"{where} does not match the model:\n  " + "\n  ".join(problems))


def default_device() -> torch.device:
    """Where a model runs unless told otherwise: the GPU when there is one, unless ATOMMEM_DEVICE=cpu asks for the
    CPU (ATOMMEM_DEVICE=cuda insists on the GPU and fails clearly without one)."""
    choice = os.environ.get("ATOMMEM_DEVICE", "auto").strip().lower() or "auto"
    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"ATOMMEM_DEVICE={choice!r}; expected auto, cpu or cuda")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("ATOMMEM_DEVICE=cuda but PyTorch sees no CUDA device")
    return torch.device("cuda", 0) if choice != "cpu" and torch.cuda.is_available() else torch.device("cpu")


def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu") -> GPT:
    """Rebuild a GPT (float32 weights) from save_model's output; names and shapes must match exactly."""
    directory = Path(directory)
    config = load_config(directory)
    model = GPT(config)
    path = directory / WEIGHTS_FILE
    tensors = load_tensors(path)
    check_state(model.state_dict(), tensors, str(path))
    model.load_state_dict(tensors, strict=True)
    return model.to(device)
