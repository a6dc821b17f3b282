"""Metrics JSONL: roundtrip, truncated-line tolerance, value conversion; plots produce PNGs per key group."""
import json
import math

import numpy as np
import pytest
import torch

from rl.metrics import MetricsLogger, read_metrics
from rl.plots import ema, group_keys, plot_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_roundtrip_and_conversion(tmp_path):
    path = tmp_path / "sub" / "metrics.jsonl"
    with MetricsLogger(path) as log:
        r0 = log.log("sft", 0, loss=torch.tensor(1.5), lr=np.float32(0.25), note="warm", time=10.0)
        log.log("sft", 1, loss=float("nan"), grad_norm=math.inf, counts=[1, 2], ops={"create": 3})
        log.log("rl", 0, reward=0.5)
    assert r0 == {"stage": "sft", "step": 0, "time": 10.0, "loss": 1.5, "lr": 0.25, "note": "warm"}
    rows = read_metrics(path)
    assert [(r["stage"], r["step"]) for r in rows] == [("sft", 0), ("sft", 1), ("rl", 0)]
    assert rows[0] == r0
    assert rows[1]["loss"] is None and rows[1]["grad_norm"] is None  # non-finite -> null
    assert rows[1]["counts"] == [1, 2] and rows[1]["ops"] == {"create": 3}
    assert isinstance(rows[2]["time"], float)
    assert [r["step"] for r in read_metrics(path, stage="sft")] == [0, 1]
    for line in path.read_text().splitlines():  # every line is standard JSON
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))
    assert read_metrics(tmp_path / "missing.jsonl") == []
    with pytest.raises(TypeError):
        MetricsLogger(tmp_path / "m2.jsonl").log("sft", 0, bad=object())


def test_each_line_is_flushed_before_close(tmp_path):
    path = tmp_path / "m.jsonl"
    log = MetricsLogger(path)
    log.log("sft", 3, loss=0.1)
    assert read_metrics(path)[0]["step"] == 3
    log.close()
    log.close()


def test_truncated_last_line_is_skipped_and_appending_recovers(tmp_path):
    path = tmp_path / "m.jsonl"
    with MetricsLogger(path) as log:
        log.log("rl", 1, reward=0.1)
        log.log("rl", 2, reward=0.2)
    text = path.read_text()
    path.write_text(text + '{"stage": "rl", "step": 3, "rew')  # crash mid-write
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
    with MetricsLogger(path) as log:  # resumed run appends after the broken line
        log.log("rl", 3, reward=0.3)
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]
    path.write_bytes(path.read_bytes() + '{"stage": "rl", "note": "caf\u00e9'.encode()[:-1])  # split UTF-8 char
    assert len(read_metrics(path)) == 3


def test_ema_and_grouping():
    assert ema([1.0, 1.0, 1.0], 5) == pytest.approx([1.0, 1.0, 1.0])  # debiased: no warm-up bias
    assert ema([0.0, 2.0], 1) == [0.0, 2.0]
    # span 3: beta = .5; step 1: acc .5*0 + .5*2 = 1, weight .5 -> 2; step 2: acc .5*1 + .5*4 = 2.5, w .75 -> 3.3333
    assert ema([2.0, 4.0], 3) == pytest.approx([2.0, 10 / 3])
    groups = dict((g.name, keys) for g, keys in group_keys(
        {"loss", "kl_loss", "ops/read", "ops/create", "ops/answer", "reward", "accuracy/qa1", "approx_kl",
         "clip_frac_low", "store_size", "invalid_op_rate", "wrong_writes", "grad_norm", "tokens_per_s", "lr"}))
    assert groups["ops"] == ["ops/create", "ops/read", "ops/answer"]
    assert groups["loss"] == ["loss", "kl_loss"]
    assert groups["reward"] == ["reward", "accuracy/qa1"]
    assert groups["kl_entropy"] == ["approx_kl"]
    assert groups["wrong_writes"] == ["wrong_writes"]
    assert set(groups) == {"ops", "loss", "reward", "kl_entropy", "clip", "store", "invalid", "wrong_writes",
                           "grad_norm", "throughput"}  # "lr" belongs to no group


def test_plot_metrics_writes_pngs_for_present_groups_only(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rng = np.random.default_rng(0)
    with MetricsLogger(path) as log:
        for step in range(40):
            log.log("sft", step, loss=2.0 / (step + 1), grad_norm=float(rng.random()), tokens_per_s=1000.0)
        for step in range(30):
            ops = {f"ops/{k}": float(rng.random() * 4) for k in ("create", "read", "update", "delete", "scratch")}
            log.log("rl", step, loss=float(rng.random()), reward=step / 30, accuracy=step / 35, store_size=step,
                    invalid_op_rate=0.1, approx_kl=0.01, entropy=1.2, clip_frac_low=0.01, clip_frac_high=0.02,
                    **ops)
        log.log("rl", 30, loss=None, reward="n/a")  # non-numeric values are skipped
    out = tmp_path / "plots"
    rl_paths = plot_metrics(path, out, "rl")
    assert sorted(p.name for p in rl_paths) == sorted(
        f"rl_{g}.png" for g in ("ops", "reward", "kl_entropy", "clip", "store", "invalid", "loss"))
    for p in rl_paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 1000
    sft_paths = plot_metrics(path, out, "sft")
    assert sorted(p.name for p in sft_paths) == ["sft_grad_norm.png", "sft_loss.png", "sft_throughput.png"]
    assert len(plot_metrics(path, tmp_path / "all")) == len(rl_paths) + len(sft_paths)
    assert plot_metrics(path, tmp_path / "none", "base") == []
