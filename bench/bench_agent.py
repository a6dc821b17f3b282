"""Agent benchmark: inference speed of the learned policy, and cost per episode as the context grows.

Part 1 (throughput): agent steps/s and generated+prefilled tokens/s of the learned policy with 1 and 64 episodes in
lockstep, and 64 shared by one worker process per core (atommem/parallel.py). Part 2 (scaling): seconds and peak
memory (resident memory after the episode minus before it; the trajectory record itself grows with the steps) per
episode at 1k ... 128k tokens (add 1m with --long): cost should grow linearly with length and memory stay flat,
since the agent only ever holds one chunk.
Uses runs/latest when a trained policy exists (else a randomly initialised tiny model: the same cost, meaningless
answers). Prints tables and ends with one JSON line. Never asserts timings.

    .venv/bin/python bench/bench_agent.py [--ckpt runs/latest] [--long]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import torch

from atommem.agent import AgentConfig
from atommem.evaluate import length_label
from atommem.model_policy import ModelPolicy, PolicyLoadError, SamplingConfig, load_policy
from atommem.parallel import default_workers, run_episodes
from atommem.tasks.registry import generate
from atommem.teacher import TeacherPolicy


def load(ckpt: str):
    try:
        policy, agent = load_policy(ckpt)
        return policy, AgentConfig(**agent), f"trained policy {ckpt}"
    except PolicyLoadError:
        from model.config import GPTConfig
        from model.gpt import GPT
        from rl.config import TrainConfig
        from rl.data import teacher_trajectories, train_tokenizer, training_episodes
        cfg = TrainConfig.preset_named("tiny")
        tok = train_tokenizer(cfg, teacher_trajectories(cfg, training_episodes(cfg, 40, stream=9)))
        model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=cfg.max_seq_len)).eval()
        return ModelPolicy(model, tok, SamplingConfig()), AgentConfig(), "untrained tiny model (no runs/latest)"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def throughput(policy, agent, batch: int, workers: int = 1) -> dict:
    eps = [generate(("qa1", "kv", "vt")[i % 3], 1024, 70_000 + i) for i in range(batch)]
    t0 = time.time()
    trajs = run_episodes(eps, policy, agent, workers)
    dt = time.time() - t0
    steps = [s.action for t in trajs for s in t.steps]
    tokens = sum(len(a.obs_ids) + len(a.action_ids) for a in steps)
    return {"batch": batch, "workers": workers, "steps_per_s": len(steps) / dt, "tokens_per_s": tokens / dt,
            "seconds": dt}


def scaling(policy, agent, lengths, name: str) -> list[dict]:
    rows = []
    for n in lengths:
        ep = generate("kv", n, 90_000 + n)
        base = rss_mb()
        t0 = time.time()
        traj = run_episodes([ep], policy, agent)[0]
        dt = time.time() - t0
        rows.append({"policy": name, "length": length_label(n), "tokens": n, "seconds": dt, "steps": len(traj.steps),
                     "ms_per_1k_tokens": 1000 * dt / n * 1024, "rss_growth_mb": rss_mb() - base, "reward": traj.reward})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="runs/latest")
    ap.add_argument("--long", action="store_true", help="add the 1m-token episode (minutes on a CPU)")
    ap.add_argument("--max-len", default="128k")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    policy, agent, what = load(args.ckpt)
    print(f"# agent benchmark: {what}; {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads, {time.strftime('%Y-%m-%d')}")
    workers = default_workers()
    tp = [throughput(policy, agent, b) for b in (1, 64)]
    if workers > 1:
        tp.append(throughput(policy, agent, 64, workers))
    print("\n| episodes | worker processes | agent steps/s | tokens/s | seconds |\n|---|---|---|---|---|")
    for r in tp:
        print(f"| {r['batch']} | {r['workers']} | {r['steps_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
              f"{r['seconds']:.1f} |")
    from atommem.tasks.episode import parse_length
    top = parse_length(args.max_len)
    lengths = [n for n in (1024, 4096, 16384, 131072) if n <= top] + ([1 << 20] if args.long else [])
    sc = scaling(policy, agent, lengths, "learned") + scaling(TeacherPolicy(), agent, lengths, "teacher")
    print("\n| policy | length | steps | seconds | ms per 1k tokens | RSS growth MB | reward |\n"
          "|---|---|---|---|---|---|---|")
    for r in sc:
        print(f"| {r['policy']} | {r['length']} | {r['steps']} | {r['seconds']:.2f} | {r['ms_per_1k_tokens']:.1f} | "
              f"{r['rss_growth_mb']:.1f} | {r['reward']:.2f} |")
    print(json.dumps({"bench": "agent", "policy": what, "throughput": tp, "scaling": sc}))


if __name__ == "__main__":
    main()
