"""bAbI-format transfer: exact match of a trained policy (and of the teacher) on stories in the published bAbI
tasks 1-3's names and phrasing, read from bAbI-format files as a user's would be, hidden in background text.

The names (Mary, John, Sandra, Daniel) never occur in training, so this measures whether the policy copies what it
reads rather than a closed vocabulary. Files are written by `atommem.tasks.babi_style` into a temporary folder and
read back with `read_babi`; episode i of a length uses background seed SEED + i. Prints a Markdown table per
policy and one JSON line; asserts nothing.

    .venv/bin/python bench/bench_babi.py [--ckpt runs/latest] [--n 100] [--lengths 512,2k]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from atommem.agent import AgentConfig
from atommem.evaluate import evaluate, markdown_table
from atommem.model_policy import load_policy
from atommem.tasks.babi import read_babi
from atommem.tasks.babi_style import FAMILIES, babi_style_text
from atommem.tasks.episode import parse_length
from atommem.teacher import TeacherPolicy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", default="runs/latest")
    ap.add_argument("--n", type=int, default=100, help="stories (episodes) per family and length")
    ap.add_argument("--lengths", default="512,2k")
    ap.add_argument("--seed", type=int, default=1_000_000_000, help="story and background seed")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [parse_length(x) for x in args.lengths.split(",")]
    policy, agent = load_policy(args.ckpt, device="cpu")
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            path = Path(tmp) / f"{family}.txt"
            path.write_text(babi_style_text(family, args.n, args.seed))
            for length in lengths:
                cells += [(f"babi-{family}", length, ep) for ep in read_babi(path, target_tokens=length, seed=args.seed)]
    families = [f"babi-{f}" for f in FAMILIES]
    out = {}
    for name, pol in (("teacher", TeacherPolicy()), (args.ckpt, policy)):
        res = evaluate(pol, families, lengths, args.n, args.seed, AgentConfig(**agent), episodes=cells)
        print(f"\n{name}: {len(cells)} episodes in {res.seconds:.0f} s\n{markdown_table(res)}\nmean {res.mean_accuracy():.3f}")
        out[name] = res.accuracy
    print(json.dumps(out))


if __name__ == "__main__":
    main()
