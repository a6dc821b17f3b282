"""Checkpoints of the whole training state: weights, optimizer, loop state, RNG; atomic, complete, resumable.

Owns the on-disk layout of one checkpoint directory and of `run_dir/ckpt/`. Knows nothing about models, configs or
the training loop: it stores dicts of tensors, an optimizer's state_dict, and JSON-able dicts. No pickle anywhere:
tensors go to safetensors, everything else to JSON.

One checkpoint directory holds
    model.safetensors       the model tensors given by the caller (tied/shared tensors are stored as copies)
    optimizer.safetensors   every tensor of optimizer.state_dict(), keyed `state.{param_idx}.{name}` (and
                            `param_groups.{i}.{key}` for tensor hyper-parameters)
    optimizer.json          everything else of the state_dict (param_groups, non-tensor state), tuples kept
    loop.json               the caller's loop state (step, stage, epoch, metrics, configs...)
    rng.safetensors, .json  torch CPU (and CUDA, if initialised) generator states as uint8 tensors; numpy's
                            global and python `random`'s states as JSON
    <extra files>           caller-named text files (e.g. config.json)
    COMPLETE                written last: a manifest {file: size in bytes}
Each file goes to a temporary name, is fsynced and moved into place with os.replace (model.checkpoint's
write_bytes_atomic, the project's one atomic writer); COMPLETE is removed first when a directory is overwritten and
written last, so a crash at any point leaves a directory that loading refuses and
`latest_checkpoint` skips. Checkpoints live in `run_dir/ckpt/step_XXXXXXXX/`; pruning renames a directory out of
the `step_*` namespace before deleting it, so a half-deleted checkpoint never looks like one.
No departure from the paper (its released code saves weights only); resumption here is bit-exact.
Run the tests: `.venv/bin/python -m pytest tests/test_train_state.py -q`.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from model.checkpoint import write_bytes_atomic

__all__ = ["TrainStateError", "save_train_state", "load_train_state", "is_complete", "capture_rng", "restore_rng",
           "checkpoint_dir", "list_checkpoints", "latest_checkpoint", "prune_checkpoints", "save_checkpoint",
           "update_symlink"]

MODEL, OPT_TENSORS, OPT_JSON, LOOP = "model.safetensors", "optimizer.safetensors", "optimizer.json", "loop.json"
RNG_TENSORS, RNG_JSON, COMPLETE = "rng.safetensors", "rng.json", "COMPLETE"
_RESERVED = {MODEL, OPT_TENSORS, OPT_JSON, LOOP, RNG_TENSORS, RNG_JSON, COMPLETE}
_STEP_DIR = re.compile(r"^step_(\d+)$")


class TrainStateError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt or does not fit the given optimizer."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # POSIX: makes renames inside the directory durable
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def _write_json(path: Path, obj: Any) -> None:
    _write_text(path, json.dumps(obj, sort_keys=True))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    seen, out = set(), {}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel() > 0:  # safetensors refuses tensors sharing memory (tied weights)
            t = t.clone()
        seen.add(ptr)
        out[name] = t
    write_bytes_atomic(path, st_save(out))


def _encode(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of value; tensors are moved into `tensors[key]` and replaced by a reference. Keys of nested
    values are dotted paths: optimizer.state_dict()["state"][3]["exp_avg"] -> "state.3.exp_avg"."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value
        return {"__tensor__": key}
    sub = (lambda k: f"{key}.{k}") if key else str
    if isinstance(value, (list, tuple)):
        items = [_encode(v, sub(i), tensors) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {str(k): _encode(v, sub(k), tensors) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TrainStateError(f"cannot store {key!r} of type {type(value).__name__} without pickle")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def capture_rng() -> dict[str, Any]:
    """States of torch's CPU and (if initialised) CUDA generators, numpy's global generator, python's `random`."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return {"torch": torch.get_rng_state(), "cuda": cuda, "numpy": np.random.get_state(), "python": random.getstate()}


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of capture_rng; missing entries (or CUDA states on a machine without CUDA) are left untouched."""
    for key, setter in (("torch", torch.set_rng_state), ("numpy", np.random.set_state), ("python", random.setstate)):
        if state.get(key) is not None:
            setter(state[key])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _rng_to_files(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    cuda = state.get("cuda") or []
    tensors = {"torch": state["torch"], **{f"cuda.{i}": s for i, s in enumerate(cuda)}}
    name, keys, pos, has_gauss, cached = state["numpy"]
    version, internal, gauss_next = state["python"]
    meta = {"numpy": {"bit_generator": name, "keys": np.asarray(keys).tolist(), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
            "num_cuda": len(cuda)}
    return tensors, meta


def _rng_from_files(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, Any]:
    n, p = meta["numpy"], meta["python"]
    return {"torch": tensors["torch"],
            "cuda": [tensors[f"cuda.{i}"] for i in range(meta["num_cuda"])] or None,
            "numpy": (n["bit_generator"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                      n["cached_gaussian"]),
            "python": (p["version"], tuple(p["internal"]), p["gauss_next"])}


def save_train_state(dir: str | os.PathLike, *, model_tensors: dict[str, torch.Tensor],
                     optimizer: torch.optim.Optimizer | None, loop_state: dict[str, Any],
                     rng_state: dict[str, Any] | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """Write a complete checkpoint into `dir` (created if needed). `rng_state=None` captures the RNG now.
    `extra_files` maps plain file names to text contents. Returns the directory."""
    d = Path(dir)
    d.mkdir(parents=True, exist_ok=True)
    extra_files = extra_files or {}
    for name in extra_files:
        if name in _RESERVED or os.sep in name or "/" in name or name.startswith("."):
            raise TrainStateError(f"extra file name {name!r} is reserved or not a plain file name")
    if (d / COMPLETE).exists():  # from here until the end the directory is visibly incomplete
        (d / COMPLETE).unlink()
        _fsync_dir(d)
    _write_tensors(d / MODEL, model_tensors)
    written = [MODEL]
    if optimizer is not None:
        opt_tensors: dict[str, torch.Tensor] = {}
        opt_meta = _encode(optimizer.state_dict(), "", opt_tensors)
        _write_tensors(d / OPT_TENSORS, opt_tensors)
        _write_json(d / OPT_JSON, opt_meta)
        written += [OPT_TENSORS, OPT_JSON]
    _write_json(d / LOOP, loop_state)
    rng_tensors, rng_meta = _rng_to_files(capture_rng() if rng_state is None else rng_state)
    _write_tensors(d / RNG_TENSORS, rng_tensors)
    _write_json(d / RNG_JSON, rng_meta)
    for name, text in extra_files.items():
        _write_text(d / name, text)
    written += [LOOP, RNG_TENSORS, RNG_JSON, *extra_files]
    _fsync_dir(d)
    _write_json(d / COMPLETE, {"format": 1, "files": {n: (d / n).stat().st_size for n in written}})
    _fsync_dir(d)
    return d


def _manifest(d: Path) -> dict | None:
    try:
        manifest = _read_json(d / COMPLETE)
        ok = all((d / name).stat().st_size == size for name, size in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest if ok else None


def is_complete(dir: str | os.PathLike) -> bool:
    """True when `dir` holds a COMPLETE manifest and every listed file with its recorded size."""
    return _manifest(Path(dir)) is not None


def load_train_state(dir: str | os.PathLike, optimizer: torch.optim.Optimizer | None = None, *,
                     rng: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint: returns (model tensors on CPU, loop state). Restores `optimizer`'s state in place when
    given and the RNG states when `rng` is True. Raises TrainStateError for an incomplete or corrupt checkpoint."""
    d = Path(dir)
    manifest = _manifest(d)
    if manifest is None:
        raise TrainStateError(f"checkpoint {d} is incomplete or corrupt (missing/invalid {COMPLETE} or a file of "
                              f"the wrong size): a save was interrupted; resume from an earlier checkpoint")
    if optimizer is not None and OPT_JSON not in manifest["files"]:
        raise TrainStateError(f"checkpoint {d} holds no optimizer state")
    try:
        model_tensors = load_file(str(d / MODEL))
        loop_state = _read_json(d / LOOP)
        if optimizer is not None:
            sd = _decode(_read_json(d / OPT_JSON), load_file(str(d / OPT_TENSORS)))
            sd["state"] = {int(idx): s for idx, s in sd["state"].items()}  # JSON object keys are strings
            optimizer.load_state_dict(sd)
        if rng:
            restore_rng(_rng_from_files(load_file(str(d / RNG_TENSORS)), _read_json(d / RNG_JSON)))
    except (OSError, ValueError, KeyError) as e:
        raise TrainStateError(f"checkpoint {d} could not be restored: {e}") from e
    return model_tensors, loop_state


def checkpoint_dir(run_dir: str | os.PathLike, step: int) -> Path:
    """run_dir/ckpt/step_XXXXXXXX (zero-padded to 8 digits)."""
    return Path(run_dir) / "ckpt" / f"step_{step:08d}"


def _step_dirs(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    root = Path(run_dir) / "ckpt"
    paths = root.iterdir() if root.is_dir() else []
    return sorted((int(m.group(1)), p) for p in paths if p.is_dir() and (m := _STEP_DIR.match(p.name)))


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    return [p for _, p in _step_dirs(run_dir) if is_complete(p)]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    done = list_checkpoints(run_dir)
    return done[-1] if done else None


def prune_checkpoints(run_dir: str | os.PathLike, keep: int = 3) -> list[Path]:
    """Keep the newest `keep` (>= 1) complete checkpoints; remove older complete ones and incomplete ones older
    than the newest complete one (leftovers of crashed saves). Newer incomplete directories are left alone.
    Returns the removed paths."""
    if keep < 1:
        raise ValueError("keep must be >= 1: pruning never removes the newest complete checkpoint")
    entries = _step_dirs(run_dir)
    complete = [(s, p) for s, p in entries if is_complete(p)]
    kept = {p for _, p in complete[-keep:]}
    removed = [p for s, p in entries if complete and p not in kept and s < complete[-1][0]]
    for p in removed:  # rename first (atomic): a half-deleted directory leaves the step_* namespace at once
        os.replace(p, p.with_name(f".trash-{p.name}-{os.getpid()}"))
    _fsync_dir(Path(run_dir) / "ckpt")
    for stale in (Path(run_dir) / "ckpt").glob(".trash-*"):  # these and interrupted earlier removals
        shutil.rmtree(stale, ignore_errors=True)
    return removed


def save_checkpoint(run_dir: str | os.PathLike, step: int, *, keep: int = 3, **state: Any) -> Path:
    """save_train_state into checkpoint_dir(run_dir, step), then prune to the newest `keep`."""
    path = save_train_state(checkpoint_dir(run_dir, step), **state)
    prune_checkpoints(run_dir, keep)
    return path


def update_symlink(link: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Atomically point `link` at `target` (stored relative to the link's folder, so the tree can move)."""
    link = Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(Path(target).absolute(), link.parent.absolute())
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(rel, tmp)
    try:
        os.replace(tmp, link)
    except OSError as e:
        tmp.unlink()
        raise TrainStateError(f"cannot replace {link} with a symlink (is it a real directory?): {e}") from e
    _fsync_dir(link.parent)
    return link
