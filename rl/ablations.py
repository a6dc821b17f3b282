"""`make ablations`: the same training budget for every workflow and ablation, one comparison table.

For each workflow the full recipe (rl/pipeline.py) runs into runs/ablations/WORKFLOW with the same preset and seeds;
a workflow whose run already finished (results.json present) is skipped and an interrupted one resumes, so the whole
table can be built over several sittings; a run directory trained under another preset is refused, never mixed in.
The table (task family x workflow, at 1x and 4x the training length, with each run's wall-clock minutes from its
metrics log) is written to runs/ablations/ABLATIONS.md with a bar plot (ablations.png). The teacher's accuracy under
each workflow is listed too: it bounds what imitation alone can reach.

    .venv/bin/python -m rl.ablations [--preset ablate] [--workflows atommem,memagent,...] [--jobs 2] [--teacher-only]

`--jobs N` trains N workflows at a time, each in its own process with 1/N of the cores (logs in OUT/jobs/): the model
is small, so on a 2-core CPU two single-thread runs make about a third more SFT steps per second in all than one run
on both cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from atommem.evaluate import evaluate
from atommem.teacher import TeacherPolicy
from rl.config import TrainConfig
from rl.data import agent_config
from rl.pipeline import train

# `full` (the whole context in the window) is left out: its rows are the whole 320-token window, so its SFT steps
# cost about five times as much (70 min at this budget on 2 cores), and beyond 320 tokens it only sees the tail.
WORKFLOWS = ("atommem", "memagent", "append", "rag", "no-update", "no-delete", "no-scratch", "no-store", "k6", "k12",
             "cap8")


def teacher_row(cfg: TrainConfig) -> dict:
    lengths = [cfg.train_tokens * m for m in cfg.eval_multiples[:2]]
    res = evaluate(TeacherPolicy(), cfg.families, lengths, cfg.eval_n, cfg.eval_seed, agent_config(cfg))
    return res.accuracy


def mean_of(acc: dict, families, labels) -> float:
    nums = [acc[f][lab] for f in families for lab in labels if lab in acc.get(f, {})]
    return sum(nums) / max(len(nums), 1)


def table(rows: dict, families, labels, minutes: dict | None = None) -> str:
    minutes = minutes or {}
    head = ("| workflow | policy | " + " | ".join(f"{f} {lab}" for f in families for lab in labels)
            + " | mean | minutes |")
    lines = [head, "|---" * (len(families) * len(labels) + 4) + "|"]
    for (wf, who), acc in rows.items():
        vals = [acc.get(f, {}).get(lab) for f in families for lab in labels]
        cells = " | ".join("-" if v is None else f"{v:.2f}" for v in vals)
        mins = f"{minutes[wf]:.0f}" if who != "teacher" and wf in minutes else "-"
        lines.append(f"| {wf} | {who} | {cells} | {mean_of(acc, families, labels):.3f} | {mins} |")
    return "\n".join(lines)


def run_minutes(run: Path) -> float | None:
    """Wall-clock span of a run's metrics log (data preparation before the first record excluded)."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return None
    times = [json.loads(line)["time"] for line in path.read_text().splitlines() if line.strip()]
    return (max(times) - min(times)) / 60 if times else None


def plot(rows: dict, families, labels, path) -> None:
    """Mean exact match per workflow and length: the learned policy as bars, the teacher as a tick above it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    wfs = list(dict.fromkeys(wf for wf, _ in rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(wfs)), 4))
    width = 0.8 / len(labels)
    for j, lab in enumerate(labels):
        xs = [i + (j - (len(labels) - 1) / 2) * width for i in range(len(wfs))]
        learned = [next((mean_of(acc, families, [lab]) for (w, who), acc in rows.items()
                         if w == wf and who != "teacher"), 0.0) for wf in wfs]
        teacher = [mean_of(rows[(wf, "teacher")], families, [lab]) if (wf, "teacher") in rows else 0.0
                   for wf in wfs]
        ax.bar(xs, learned, width, label=f"learned, {lab} tokens")
        ax.scatter(xs, teacher, marker="_", s=200, color="black", label="teacher" if j == 0 else None)
    ax.set_xticks(range(len(wfs)), wfs, rotation=30)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"mean exact match ({', '.join(families)})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels) + 1, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def check_run(run: Path, workflow: str, preset: str) -> None:
    """Refuse an unknown workflow, or a run directory trained under another preset (budgets must match)."""
    if workflow not in WORKFLOWS:
        raise SystemExit(f"unknown workflow {workflow!r}; choose from: {', '.join(WORKFLOWS)}")
    if (run / "config.json").exists():
        saved = json.loads((run / "config.json").read_text())
        if saved.get("preset") != preset or saved.get("workflow") != workflow:
            raise SystemExit(f"{run} holds workflow {saved.get('workflow')!r} under preset {saved.get('preset')!r}, "
                             f"not {workflow!r} under {preset!r}: pass another --out, or remove it to compare "
                             f"like with like")


def train_in_parallel(workflows: list[str], preset: str, out: Path, jobs: int) -> None:
    """The unfinished workflows, dealt round-robin over `jobs` child processes with cores / jobs threads each."""
    todo = [wf for wf in workflows if not (out / wf / "results.json").exists()]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    procs = []
    for j in range(min(jobs, len(todo))):
        share = todo[j::jobs]
        log = out / "jobs" / f"job{j}.log"
        print(f"job {j}: {', '.join(share)} (log: {log})", flush=True)
        with open(log, "a") as f:
            procs.append(subprocess.Popen([sys.executable, "-m", "rl.ablations", "--preset", preset, "--out",
                                           str(out), "--workflows", ",".join(share), "--train-only"],
                                          env=env, stdout=f, stderr=subprocess.STDOUT))
    failed = [j for j, p in enumerate(procs) if p.wait() != 0]
    if failed:
        raise SystemExit(f"job(s) {failed} failed: see {out / 'jobs'}; rerun to resume where they stopped")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ablate", help="TrainConfig preset shared by every workflow (rl/config.py)")
    ap.add_argument("--workflows", default=",".join(WORKFLOWS), help="comma-separated, from: %(default)s")
    ap.add_argument("--teacher-only", action="store_true", help="only the teacher rows (seconds, no training)")
    ap.add_argument("--out", default="runs/ablations", help="one run directory per workflow, table and plot")
    ap.add_argument("--jobs", type=int, default=1, help="workflows trained at a time, each on cores / jobs threads")
    ap.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)   # a --jobs child: no table
    args = ap.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    workflows = args.workflows.split(",")
    for wf in workflows:
        check_run(out / wf, wf, args.preset)
    if args.jobs > 1 and not args.teacher_only:
        train_in_parallel(workflows, args.preset, out, args.jobs)
    rows, minutes = {}, {}
    for wf in workflows:
        cfg = TrainConfig.preset_named(args.preset, workflow=wf)
        run = out / wf
        done = run / "results.json"
        if not args.teacher_only and not done.exists():
            train(cfg, run, resume=(run / "config.json").exists())
        if args.train_only:
            continue
        rows[(wf, "teacher")] = teacher_row(cfg)
        if args.teacher_only:
            continue
        res = json.loads(done.read_text())
        minutes[wf] = run_minutes(run)
        rows[(wf, "sft+grpo" if "sft+grpo" in res else "sft")] = res.get("sft+grpo", res["sft"])["accuracy"]
    if args.train_only:
        return
    cfg = TrainConfig.preset_named(args.preset)
    labels = list(next(iter(rows.values()))[cfg.families[0]])[:2]
    text = (f"# Ablations ({args.preset} preset, same budget and seeds)\n\n"
            + table(rows, cfg.families, labels, {k: v for k, v in minutes.items() if v is not None}) + "\n")
    (out / "ABLATIONS.md").write_text(text)
    plot(rows, cfg.families, labels, out / "ablations.png")
    print(text)


if __name__ == "__main__":
    main()
