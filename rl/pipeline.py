"""The whole recipe behind `make train`: teacher data, tokenizer, SFT, GRPO, evaluation, comparison table.

Run directory layout (every file written atomically; `--resume` continues from the newest complete checkpoint):
    config.json            the TrainConfig
    tokenizer.json         trained first, on the run's own teacher episodes
    metrics.jsonl          one JSON object per logged step (stage sft | rl | eval)
    sft/ckpt/step_*/       SFT checkpoints (weights, optimizer, loop position, RNG states)
    rl/ckpt/step_*/        GRPO checkpoints
    policy_sft/            the SFT policy (model + tokenizer + agent settings), usable by eval and chat
    policy/                the final policy (after GRPO)
    results.md, results.json, accuracy.png, plots/*.png
and a `latest` link beside the run (`runs/latest` for a run under runs/) points at the run's `policy/`.
Under torchrun (rl/ddp_train.py, rl/distributed.py) every process prepares the same data and trains its share;
only rank 0 writes any of these files and runs the final evaluation.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from atommem.evaluate import cell_labels, episodes_for, evaluate, markdown_table, plot_accuracy
from atommem.model_policy import ModelPolicy, save_policy
from atommem.step_errors import first_divergences
from atommem.teacher import TeacherPolicy
from model.checkpoint import write_json_atomic
from model.config import GPTConfig
from model.gpt import GPT
from model.tokenizer import Tokenizer
from rl import distributed as dist
from rl.config import TrainConfig
from rl.data import (agent_config, copy_drill_rows, decision_token_ids, decoding, episode_workers, sft_rows,
                     teacher_trajectories, train_tokenizer, training_episodes)
from rl.grpo import run_grpo
from rl.metrics import MetricsLogger
from rl.plots import plot_metrics
from rl.sft import run_sft
from rl.train_state import update_symlink


def log(msg: str) -> None:
    if dist.is_main():
        print(f"[train] {msg}", flush=True)


def quick_eval(cfg: TrainConfig, tok: Tokenizer):
    """A small greedy evaluation at the training length (seeds from the evaluation range)."""
    def run(model) -> dict:
        policy = ModelPolicy(model, tok, decoding(cfg))
        res = evaluate(policy, cfg.families, [cfg.train_tokens], cfg.eval_during_n, cfg.eval_seed + 777_000,
                       agent_config(cfg), workers=episode_workers(cfg))
        out = {f"acc/{f}": next(iter(row.values())) for f, row in res.accuracy.items()}
        out["accuracy"] = res.mean_accuracy()
        return out
    return run


def build_model(cfg: TrainConfig, vocab_size: int) -> GPT:
    torch.manual_seed(cfg.seed)
    shape = {k: v for k, v in (("d_model", cfg.d_model), ("n_layers", cfg.n_layers), ("n_heads", cfg.n_heads)) if v}
    return GPT(GPTConfig.preset(cfg.model_preset, vocab_size=vocab_size, max_seq_len=cfg.max_seq_len,
                                prev_token=cfg.prev_token, qkv_conv=cfg.qkv_conv, **shape))


def final_evaluation(cfg: TrainConfig, out: Path, tok: Tokenizer, policies: dict) -> dict:
    """Every policy on the same fresh episodes at each evaluation length; for the learned ones, also where each
    episode they got wrong first departed from the teacher (atommem/step_errors.py first_divergences)."""
    lengths = [cfg.train_tokens * m for m in cfg.eval_multiples]
    cells = episodes_for(cfg.families, lengths, cfg.eval_n, cfg.eval_seed)
    labels = cell_labels(cells)
    results, tables = {}, []
    for name, policy in policies.items():
        log(f"evaluating {name} on {cfg.eval_n} fresh episodes per family at {lengths} tokens")
        res = evaluate(policy, cfg.families, lengths, cfg.eval_n, cfg.eval_seed, agent_config(cfg),
                       episodes=cells, workers=episode_workers(cfg))
        results[name] = res.to_json()
        tables.append(f"### {name} (mean {res.mean_accuracy():.3f}, {res.seconds:.0f} s)\n\n{markdown_table(res)}\n")
        if isinstance(policy, ModelPolicy):
            departures = first_divergences(res.trajectories, labels)
            if departures.first:
                tables.append(f"Where the {sum(departures.failed.values())} episodes {name} got wrong first "
                              f"departed from what the teacher would do on the same observation:\n\n"
                              f"{departures.markdown()}\n")
        plot_accuracy(res, out / f"accuracy_{name}.png", f"{name}: exact match vs context length")
    summary = "| policy | " + " | ".join(f"{m}x" for m in cfg.eval_multiples) + " | mean |\n"
    summary += "|---" * (len(cfg.eval_multiples) + 2) + "|\n"
    for name, res in results.items():
        per_len = [sum(row[lab] for row in res["accuracy"].values()) / len(res["accuracy"])
                   for lab in next(iter(res["accuracy"].values()))]
        summary += f"| {name} | " + " | ".join(f"{v:.3f}" for v in per_len) + f" | {res['mean_accuracy']:.3f} |\n"
    text = (f"# Results of run {out.name}\n\nTraining length {cfg.train_tokens} tokens; evaluation on seeds from "
            f"{cfg.eval_seed} (never used in training).\n\n## Mean exact match by length\n\n{summary}\n"
            + "\n".join(tables))
    (out / "results.md").write_text(text)
    write_json_atomic(out / "results.json", results)
    print(text, flush=True)
    return results


def train(cfg: TrainConfig, out_dir, stage: str = "all", resume: bool = False, progress: bool = True) -> dict:
    t_start = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if resume and (out / "config.json").exists():
        saved = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
        if saved != cfg:
            log("note: resuming with the configuration saved in the run directory")
        cfg = saved
    if dist.is_main():
        write_json_atomic(out / "config.json", cfg.to_dict())
    torch.set_num_threads(max(1, torch.get_num_threads()))
    logger = MetricsLogger(out / "metrics.jsonl") if dist.is_main() else None
    t0 = time.time()
    episodes = training_episodes(cfg, cfg.sft_episodes, stream=1)
    trajs = teacher_trajectories(cfg, episodes)
    teacher_acc = sum(t.reward for t in trajs) / len(trajs)
    log(f"teacher: {len(trajs)} episodes, accuracy {teacher_acc:.3f} ({time.time() - t0:.0f} s)")
    have_tokenizer = (out / "tokenizer.json").exists()
    dist.barrier()                          # every process has looked before rank 0 writes one
    if have_tokenizer:
        tok = Tokenizer.load(out / "tokenizer.json")
    elif dist.is_main():
        tok = train_tokenizer(cfg, trajs[: cfg.tokenizer_episodes])
        tok.save(out / "tokenizer.json")
    dist.barrier()
    if not have_tokenizer and not dist.is_main():
        tok = Tokenizer.load(out / "tokenizer.json")
    rows = sft_rows(cfg, tok, trajs, seed=cfg.seed)
    if cfg.copy_drill > 0:
        rows += copy_drill_rows(cfg, tok, round(cfg.copy_drill * len(rows)), seed=cfg.seed)
    log(f"tokenizer: {tok.vocab_size} tokens; SFT rows: {len(rows)}")
    model = build_model(cfg, tok.vocab_size).to(dist.device())
    log(f"model: {cfg.model_preset}, {model.num_params() / 1e6:.2f}M parameters")
    agent = agent_config(cfg).to_dict()
    quick = quick_eval(cfg, tok)
    if stage in ("all", "sft") or not (out / "policy_sft").exists():
        run_sft(cfg, model, rows, out / "sft", logger, evaluate=quick, resume=resume, progress=progress,
                decision_ids=decision_token_ids(tok))
        if dist.is_main():
            save_policy(out / "policy_sft", model, tok, agent, cfg.max_action_tokens, cfg.constrained)
    else:
        from model.checkpoint import load_model
        model = load_model(out / "policy_sft", dist.device())
    sft_model = model
    if stage in ("all", "rl") and cfg.rl_iters > 0:
        import copy
        model = run_grpo(cfg, copy.deepcopy(sft_model), tok, out / "rl", logger, evaluate=quick, resume=resume,
                         progress=progress)
    if not dist.is_main():
        return {}
    save_policy(out / "policy", model, tok, agent, cfg.max_action_tokens, cfg.constrained)
    plot_metrics(out / "metrics.jsonl", out / "plots")
    policies = {"teacher": TeacherPolicy(), "sft": ModelPolicy(sft_model, tok, decoding(cfg))}
    if model is not sft_model:
        policies["sft+grpo"] = ModelPolicy(model, tok, decoding(cfg))
    if cfg.constrained:  # what the constraint adds: the final policy decoded free
        policies[f"{list(policies)[-1]}-free"] = ModelPolicy(model, tok, decoding(cfg, constrained=False))
    results = final_evaluation(cfg, out, tok, policies)
    logger.log("eval", 0, **{f"mean/{k}": v["mean_accuracy"] for k, v in results.items()})
    update_symlink(out.parent / "latest", out / "policy")
    log(f"done in {(time.time() - t_start) / 60:.1f} min; policy in {out / 'policy'} ({out.parent / 'latest'})")
    return results
