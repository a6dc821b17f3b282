"""`make ablations`: the same training budget for every workflow and ablation, one comparison table.

For each workflow the full recipe (rl/pipeline.py) runs into runs/ablations/WORKFLOW with the same preset and seeds;
a workflow whose run already finished (results.json present) is skipped and an interrupted one resumes, so the whole
table can be built over several sittings. The table (task family x workflow, at 1x and 4x the training length) is
written to runs/ablations/ABLATIONS.md with a bar plot. The teacher's accuracy under each workflow is listed too: it
bounds what imitation alone can reach.

    .venv/bin/python -m rl.ablations [--preset tiny] [--workflows atommem,memagent,...] [--teacher-only]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from atommem.evaluate import evaluate
from atommem.teacher import TeacherPolicy
from rl.config import TrainConfig
from rl.data import agent_config
from rl.pipeline import train

WORKFLOWS = ("atommem", "memagent", "append", "rag", "no-update", "no-delete", "no-scratch", "no-store", "k6",
             "cap8")


def teacher_row(cfg: TrainConfig) -> dict:
    lengths = [cfg.train_tokens * m for m in cfg.eval_multiples[:2]]
    res = evaluate(TeacherPolicy(), cfg.families, lengths, cfg.eval_n, cfg.eval_seed, agent_config(cfg))
    return res.accuracy


def table(rows: dict, families, labels) -> str:
    head = "| workflow | policy | " + " | ".join(f"{f} {lab}" for f in families for lab in labels) + " | mean |"
    lines = [head, "|---" * (len(families) * len(labels) + 3) + "|"]
    for (wf, who), acc in rows.items():
        vals = [acc.get(f, {}).get(lab) for f in families for lab in labels]
        nums = [v for v in vals if v is not None]
        cells = " | ".join("-" if v is None else f"{v:.2f}" for v in vals)
        lines.append(f"| {wf} | {who} | {cells} | {sum(nums) / max(len(nums), 1):.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--workflows", default=",".join(WORKFLOWS))
    ap.add_argument("--teacher-only", action="store_true", help="only the teacher rows (seconds, no training)")
    ap.add_argument("--out", default="runs/ablations")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for wf in args.workflows.split(","):
        cfg = TrainConfig.preset_named(args.preset, workflow=wf)
        rows[(wf, "teacher")] = teacher_row(cfg)
        if args.teacher_only:
            continue
        run = out / wf
        done = run / "results.json"
        if not done.exists():
            train(cfg, run, resume=(run / "config.json").exists())
        res = json.loads(done.read_text())
        rows[(wf, "sft+grpo" if "sft+grpo" in res else "sft")] = res.get("sft+grpo", res["sft"])["accuracy"]
    cfg = TrainConfig.preset_named(args.preset)
    labels = list(next(iter(rows.values()))[cfg.families[0]])[:2]
    text = f"# Ablations ({args.preset} preset, same budget and seeds)\n\n" + table(rows, cfg.families, labels) + "\n"
    (out / "ABLATIONS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
