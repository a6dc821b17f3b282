"""Training metrics as JSON Lines: one object per logged step, appended and flushed line by line.

Owns the metrics file format; knows nothing about what is being trained. A record looks like
    {"stage": "rl", "step": 12, "time": 1767000000.0, "loss": 0.41, "reward": 0.62, "ops/create": 3.1, ...}
`stage` and `step` are always present; `time` is wall-clock seconds since the epoch (set at logging time unless the
caller passes one). Values are numbers, strings, booleans, lists or dicts; one-element tensors and numpy scalars are
converted to numbers; non-finite floats (NaN, inf) are written as null so every line is standard JSON.

Key names that `rl/plots.py` groups into figures (any others are logged but not plotted):
    loss, *_loss, loss/*            reward, accuracy, reward/*, accuracy/*
    ops/create ops/read ops/update ops/delete ops/scratch (mean operations per step; other ops/* too)
    store_size, store/*             invalid_op_rate, invalid/*      wrong_writes
    kl, approx_kl, entropy, kl/*    clip_frac, clip_frac_low, clip_frac_high, dual_clip_frac
    grad_norm                       tokens_per_s, throughput/*

Crash tolerance: a process killed mid-write can leave a truncated last line. `read_metrics` skips any line that is
not a JSON object, and a new MetricsLogger first terminates such a line, so appending after a crash never glues a
new record onto the broken one. Run the tests: `.venv/bin/python -m pytest tests/test_metrics.py -q`.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["MetricsLogger", "read_metrics", "to_json_value"]


def to_json_value(value: Any) -> Any:
    """A JSON-safe copy of value: tensors / numpy scalars -> python numbers, non-finite floats -> None."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple, dict, str)):
        value = value.tolist()  # torch tensors and numpy arrays/scalars; one element becomes a number
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"metric value of type {type(value).__name__} is not JSON-able")


class MetricsLogger:
    """Append-only JSONL writer. Use as a context manager or call close(); each record is flushed at once
    (and fsynced too when `fsync=True`)."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        needs_newline = False
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                needs_newline = f.read(1) != b"\n"
        self._file = open(self.path, "a", encoding="utf-8")
        if needs_newline:  # isolate a line truncated by a crash
            self._file.write("\n")
            self._file.flush()

    def log(self, stage: str, step: int, **values: Any) -> dict[str, Any]:
        """Append {"stage", "step", "time", **values} as one line; returns the record written."""
        record: dict[str, Any] = {"stage": str(stage), "step": int(step)}
        record["time"] = to_json_value(values.pop("time", time.time()))
        record.update(to_json_value(values))
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        return record

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: str | os.PathLike, stage: str | None = None) -> list[dict[str, Any]]:
    """All well-formed records of a metrics file, in order (only `stage`'s when given). A missing file gives [];
    lines that are not JSON objects (a truncated last line) are skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and (stage is None or record.get("stage") == stage):
                records.append(record)
    return records
