"""Evaluation: exact match per task family and context length, with operation statistics, for any policy.

All (family, length) cells run in one lockstep batch (one per worker process with `workers` > 1, atommem/parallel.py).
Seeds start at `seed` and are consecutive per cell, so a training run that keeps its seeds below the evaluation seed
never sees an evaluation episode.
Knows nothing about training.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from atommem.agent import AgentConfig, Trajectory
from atommem.parallel import run_episodes
from atommem.tasks.registry import generate

STAT_KEYS = ("ops/create", "ops/read", "ops/update", "ops/delete", "ops/scratch", "steps", "store_size",
             "invalid_rate")


def length_label(n: int) -> str:
    if n % (1 << 20) == 0:
        return f"{n >> 20}m"
    if n % 1024 == 0:
        return f"{n >> 10}k"
    return str(n)


@dataclass
class EvalResult:
    accuracy: dict = field(default_factory=dict)     # family -> length label -> exact match in [0, 1]
    stats: dict = field(default_factory=dict)        # family -> length label -> {stat: mean}
    seconds: float = 0.0
    trajectories: list = field(default_factory=list)

    def mean_accuracy(self) -> float:
        values = [v for row in self.accuracy.values() for v in row.values()]
        return sum(values) / len(values) if values else 0.0

    def to_json(self) -> dict:
        return {"accuracy": self.accuracy, "stats": self.stats, "seconds": self.seconds,
                "mean_accuracy": self.mean_accuracy()}


def cell_labels(cells) -> list[str]:
    """`family length` for each (family, length, episode) cell, e.g. `qa1 2k`."""
    return [f"{family} {length_label(length)}" for family, length, _ in cells]


def episodes_for(families, lengths, n: int, seed: int, haystack=None) -> list[tuple[str, int, object]]:
    cells = []
    for family in families:
        for length in lengths:
            for i in range(n):
                cells.append((family, length, generate(family, length, seed + i, haystack=haystack)))
    return cells


def summarise(cells, trajectories: list[Trajectory]) -> EvalResult:
    result = EvalResult()
    groups: dict = {}
    for (family, length, _), traj in zip(cells, trajectories):
        groups.setdefault(family, {}).setdefault(length_label(length), []).append(traj)
    for family, by_len in groups.items():
        for label, trajs in by_len.items():
            result.accuracy.setdefault(family, {})[label] = sum(t.reward for t in trajs) / len(trajs)
            result.stats.setdefault(family, {})[label] = {
                k: sum(t.stats[k] for t in trajs) / len(trajs) for k in STAT_KEYS}
    result.trajectories = trajectories
    return result


def evaluate(policy, families, lengths, n: int, seed: int, config: AgentConfig, haystack=None,
             episodes=None, progress=None, workers: int = 1) -> EvalResult:
    """Run `policy` on n fresh episodes per (family, length) (or on the given (family, length, episode) cells),
    in `workers` processes on a CPU (atommem/parallel.py)."""
    t0 = time.time()
    cells = episodes if episodes is not None else episodes_for(families, lengths, n, seed, haystack)
    trajectories = run_episodes([c[2] for c in cells], policy, config, workers, progress)
    result = summarise(cells, trajectories)
    result.seconds = time.time() - t0
    return result


def markdown_table(result: EvalResult) -> str:
    labels = []
    for row in result.accuracy.values():
        labels += [lab for lab in row if lab not in labels]
    lines = ["| task | " + " | ".join(labels) + " | ops/step (c/r/u/d/s) | store | invalid |",
             "|---" * (len(labels) + 4) + "|"]
    for family, row in result.accuracy.items():
        cells = [f"{row[lab]:.3f}" if lab in row else "-" for lab in labels]
        st = result.stats[family][labels[0]] if labels[0] in result.stats[family] else {}
        ops = "/".join(f"{st.get(f'ops/{k}', 0):.2f}" for k in ("create", "read", "update", "delete", "scratch"))
        lines.append(f"| {family} | " + " | ".join(cells) +
                     f" | {ops} | {st.get('store_size', 0):.1f} | {st.get('invalid_rate', 0):.3f} |")
    return "\n".join(lines)


def plot_accuracy(result: EvalResult, path, title: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for family, row in result.accuracy.items():
        ax.plot(list(row), list(row.values()), marker="o", label=family)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("exact match")
    ax.set_title(title or "accuracy vs context length")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
