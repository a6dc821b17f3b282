"""PNG plots of a metrics JSONL file: one figure per group of related keys, per training stage.

Owns the figure layout only; reads records through `rl.metrics.read_metrics` and knows nothing about training.
Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch), so it is safe on headless machines and
inside other programs. Each series is drawn twice: the raw values as a faint line and a debiased exponential moving
average on top. Groups with no key present are skipped; so are non-numeric and null values.

The operation-rate figure mirrors the paper's training-dynamics plot: mean Create / Read / Update / Delete /
Scratchpad operations per step against the training step.

Usage: `.venv/bin/python -m rl.plots runs/tiny/metrics.jsonl runs/tiny/plots [stage]`.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rl.metrics import read_metrics

__all__ = ["PlotGroup", "GROUPS", "ema", "group_keys", "plot_metrics"]


@dataclass(frozen=True)
class PlotGroup:
    """A figure: its file stem, title, exact keys (plotted in this order) and key prefixes/suffixes it claims."""
    name: str
    title: str
    keys: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    def claims(self, key: str) -> bool:
        return key in self.keys or key.startswith(self.prefixes) or key.endswith(self.suffixes)


GROUPS: tuple[PlotGroup, ...] = (
    PlotGroup("ops", "Operations per step", ("ops/create", "ops/read", "ops/update", "ops/delete", "ops/scratch"),
              ("ops/",)),
    PlotGroup("reward", "Reward and accuracy", ("reward", "accuracy"), ("reward/", "accuracy/")),
    PlotGroup("kl_entropy", "KL and entropy", ("kl", "approx_kl", "entropy"), ("kl/", "entropy/")),
    PlotGroup("clip", "Clip fraction",
              ("clip_frac", "clip_frac_low", "clip_frac_high", "dual_clip_frac"), ("clip_frac/",)),
    PlotGroup("store", "Store size (entries)", ("store_size",), ("store/",)),
    PlotGroup("invalid", "Invalid-operation rate", ("invalid_op_rate",), ("invalid/",)),
    PlotGroup("wrong_writes", "Entries left wrong per episode", ("wrong_writes",)),
    PlotGroup("grad_norm", "Gradient norm", ("grad_norm",), ("grad_norm/",)),
    PlotGroup("throughput", "Tokens per second", ("tokens_per_s",), ("throughput/",)),
    PlotGroup("loss", "Loss", ("loss",), ("loss/",), ("_loss",)),
)


def ema(values: list[float], span: float) -> list[float]:
    """Debiased exponential moving average with alpha = 2 / (span + 1) (span <= 1 returns the values)."""
    if span <= 1:
        return list(values)
    beta = 1.0 - 2.0 / (span + 1.0)
    out, acc, weight = [], 0.0, 0.0
    for v in values:
        acc = beta * acc + (1.0 - beta) * v
        weight = beta * weight + (1.0 - beta)
        out.append(acc / weight)
    return out


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def group_keys(keys: set[str]) -> list[tuple[PlotGroup, list[str]]]:
    """Assign each key to the first group that claims it; groups in GROUPS order, listed keys first."""
    taken: set[str] = set()
    result = []
    for group in GROUPS:
        mine = [k for k in group.keys if k in keys and k not in taken]
        mine += sorted(k for k in keys if k not in taken and k not in mine and group.claims(k))
        taken.update(mine)
        if mine:
            result.append((group, mine))
    return result


def _plot_group(records: list[dict], group: PlotGroup, keys: list[str], stage: str, path: Path) -> None:
    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, key in enumerate(keys):
        pts = [(r["step"], r[key]) for r in records if _is_number(r.get(key)) and _is_number(r.get("step"))]
        if not pts:
            continue
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        color = f"C{i % 10}"
        ax.plot(xs, ys, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(xs, ema(ys, max(1.0, len(ys) / 20)), color=color, linewidth=1.8, label=key)
    ax.set_title(f"{stage}: {group.title}")
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")


def plot_metrics(jsonl_path: str | os.PathLike, out_dir: str | os.PathLike, stage: str | None = None) -> list[Path]:
    """Write `{out_dir}/{stage}_{group}.png` for every group with at least one numeric value; `stage=None` plots
    each stage found in the file. Returns the written paths."""
    records = read_metrics(jsonl_path)
    stages = [stage] if stage is not None else list(dict.fromkeys(str(r.get("stage")) for r in records))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for st in stages:
        mine = [r for r in records if str(r.get("stage")) == st]
        present = {k for r in mine for k, v in r.items() if k not in ("stage", "step", "time") and _is_number(v)}
        for group, keys in group_keys(present):
            path = out / f"{st}_{group.name}.png"
            _plot_group(mine, group, keys, st, path)
            written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m rl.plots METRICS.jsonl OUT_DIR [STAGE]")
    for p in plot_metrics(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None):
        print(p)
