"""Data-parallel training on 2 CPU processes (gloo, localhost) matches one process.

SFT: a few steps of the smoke model on fixed rows with the same global batch give the one-process weights (within
float rounding); only rank 0 logs, evaluates and writes checkpoints; a 2-process checkpoint resumes in one process.
GRPO: one policy_update on rows split by whole groups gives the one-process gradient and statistics.
Also the pure helpers (shard, row_quota) and the cross-process metric reduction.
"""
import contextlib
import os
import random
import shutil
import socket

import pytest
import torch
import torch.multiprocessing as mp

from rl import distributed as dist
from rl.batching import action_logprobs, collate
from rl.config import TrainConfig
from rl.data import sft_rows, teacher_trajectories, train_tokenizer, training_episodes
from rl.grpo import RLRow, policy_update
from rl.metrics import MetricsLogger, read_metrics
from rl.pipeline import build_model
from rl.sft import make_optimizer, run_sft
from rl.train_state import checkpoint_dir, latest_checkpoint

pytestmark = pytest.mark.usefixtures("reference_kernels")

SFT_CFG = dict(sft_steps=6, ckpt_every=3, eval_every=3, sft_batch=8, sft_warmup=2)
RL_CFG = dict(rl_microbatch=4, ppo_epochs=2, entropy_coef=0.01, kl_coef=0.05, rl_optimizer="adamw", rl_lr=1e-4)


class FileOnFirstLog:
    """A MetricsLogger that creates its file only when something is logged."""

    def __init__(self, path):
        self.path, self.inner = path, None

    def log(self, stage, step, **values):
        self.inner = self.inner or MetricsLogger(self.path)
        return self.inner.log(stage, step, **values)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rl_rows(cfg, model, rows, n_groups=4, per_group=3):
    """Fixed GRPO rows: groups of `per_group` rows with advantages summing to 0, old log-probs near the current ones."""
    g = torch.Generator().manual_seed(5)
    out, groups = [], []
    chosen = rows[: n_groups * per_group]
    with torch.no_grad():
        idx, pos, targets, mask = collate(chosen)
        logp, _ = action_logprobs(model, idx, pos, targets, cfg.temperature)
    for i, r in enumerate(chosen):
        n = len(r.action_ids)
        old = (logp[i, :n] + 0.3 * torch.randn(n, generator=g)).tolist()
        out.append(RLRow(r.obs_ids, r.action_ids, old, [1.0, -0.5, -0.5][i % per_group]))
        groups.append(i // per_group)
    return out, groups


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _worker(rank, world, port, tmp, rows, vocab, rl_rows, groups):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), ATOMMEM_KERNELS="reference", CUDA_VISIBLE_DEVICES="")
    torch.set_num_threads(1)
    info = dist.init(timeout_minutes=5)
    assert info["backend"] == "gloo" and info["world"] == world and info["precision"] == "fp32"
    try:
        out = {"rank": dist.rank()}
        # metrics: weighted means, sums, keys missing on some processes
        local = {"reward": float(rank), "rows": rank + 1, "only0": 7.0} if rank == 0 else {"reward": 1.0, "rows": 2}
        out["metrics"] = dist.reduce_metrics(local, weight=rank + 1, sum_keys=("rows",))
        # SFT
        cfg = TrainConfig.preset_named("smoke", **SFT_CFG)
        model = build_model(cfg, vocab)
        evals = []

        def evaluate(m):
            evals.append(1)
            return {"accuracy": 0.0}

        run_sft(cfg, model, rows, tmp / f"sft{rank}", FileOnFirstLog(tmp / f"metrics{rank}.jsonl"),
                evaluate=evaluate, progress=False)
        out["sft"], out["evals"] = _weights(model), len(evals)
        # GRPO: this process keeps the rows of its own whole groups
        rl_cfg = TrainConfig.preset_named("smoke", **RL_CFG)
        model = build_model(rl_cfg, vocab)
        ref = build_model(rl_cfg, vocab)
        mine = set(dist.shard(sorted(set(groups))))
        local_rows = [r for r, g in zip(rl_rows, groups) if g in mine]
        opt = make_optimizer(model, rl_cfg.rl_lr, 0.0, rl_cfg.rl_optimizer)
        out["rl_stats"] = policy_update(rl_cfg, model, ref, opt, local_rows)
        out["rl_grads"], out["rl_weights"] = _grads(model), _weights(model)
        torch.save(out, tmp / f"out{rank}.pt")
    finally:
        dist.cleanup()


@pytest.fixture(scope="module")
def smoke_rows():
    cfg = TrainConfig.preset_named("smoke")
    trajs = teacher_trajectories(cfg, training_episodes(cfg, 12, stream=1))
    tok = train_tokenizer(cfg, trajs)
    rows = sft_rows(cfg, tok, trajs)
    return rows[:41], tok.vocab_size   # 41 rows: the last batch of an epoch has 1 row, rank 0 gets none of it


def _close(a: dict, b: dict, atol: float, rtol: float = 1e-4) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=rtol, msg=lambda m: f"{k}: {m}")


def test_two_processes_match_one(tmp_path, smoke_rows):
    torch.set_num_threads(1)
    rows, vocab = smoke_rows
    base = build_model(TrainConfig.preset_named("smoke", **RL_CFG), vocab)
    rl_rows, groups = _rl_rows(TrainConfig.preset_named("smoke", **RL_CFG), base, rows)
    mp.spawn(_worker, args=(2, _free_port(), tmp_path, rows, vocab, rl_rows, groups), nprocs=2, join=True)
    outs = [torch.load(tmp_path / f"out{r}.pt", weights_only=False) for r in range(2)]

    # reductions: reward weighted by (1, 2); rows summed; a key only rank 0 has keeps its value
    for o in outs:
        assert o["metrics"]["rows"] == 3 and isinstance(o["metrics"]["rows"], int)
        assert o["metrics"]["reward"] == pytest.approx(2 / 3) and o["metrics"]["only0"] == pytest.approx(7.0)

    # SFT: one process on the same global batches
    cfg = TrainConfig.preset_named("smoke", **SFT_CFG)
    single = build_model(cfg, vocab)
    run_sft(cfg, single, rows, tmp_path / "single", MetricsLogger(tmp_path / "single.jsonl"), progress=False)
    ref = _weights(single)
    assert all(torch.equal(outs[0]["sft"][k], outs[1]["sft"][k]) for k in ref), "processes must stay identical"
    _close(outs[0]["sft"], ref, atol=1e-5)
    # only rank 0 logged, evaluated and saved
    assert outs[0]["evals"] == 2 and outs[1]["evals"] == 0
    assert latest_checkpoint(tmp_path / "sft0") == checkpoint_dir(tmp_path / "sft0", 6)
    assert not (tmp_path / "sft1").exists() and not (tmp_path / "metrics1.jsonl").exists()
    logged = [m for m in read_metrics(tmp_path / "metrics0.jsonl") if "loss" in m]
    single_logged = [m for m in read_metrics(tmp_path / "single.jsonl") if "loss" in m]
    assert logged[-1]["loss"] == pytest.approx(single_logged[-1]["loss"], rel=1e-4)

    # a 2-process checkpoint resumes in one process and ends where the others did
    shutil.rmtree(checkpoint_dir(tmp_path / "sft0", 6))
    resumed = build_model(cfg, vocab)
    run_sft(cfg, resumed, rows, tmp_path / "sft0", MetricsLogger(tmp_path / "resumed.jsonl"), resume=True,
            progress=False)
    _close(_weights(resumed), ref, atol=1e-5)

    # GRPO: one update on all rows in one process
    rl_cfg = TrainConfig.preset_named("smoke", **RL_CFG)
    model, ref_model = build_model(rl_cfg, vocab), build_model(rl_cfg, vocab)
    opt = make_optimizer(model, rl_cfg.rl_lr, 0.0, rl_cfg.rl_optimizer)
    stats = policy_update(rl_cfg, model, ref_model, opt, rl_rows)
    _close(outs[0]["rl_grads"], _grads(model), atol=1e-6)
    _close(outs[0]["rl_weights"], _weights(model), atol=1e-5)
    assert all(torch.equal(outs[0]["rl_grads"][k], outs[1]["rl_grads"][k]) for k in outs[0]["rl_grads"])
    assert outs[0]["rl_stats"].keys() == stats.keys()
    for k, v in stats.items():   # token means; pg_loss and ratio_max are per micro-batch: they depend on the split
        if k in ("pg_loss", "ratio_max"):
            continue
        assert outs[0]["rl_stats"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k


def test_shard_and_row_quota():
    items = list(range(10))
    for world in (1, 2, 3, 4):
        parts = [dist.shard(items, r, world) for r in range(world)]
        assert sum(parts, []) == items and max(map(len, parts)) - min(map(len, parts)) <= 1
    assert dist.shard(items) == items   # one process: everything
    rng = random.Random(0)
    for _ in range(200):
        counts = [rng.randint(0, 50) for _ in range(rng.randint(1, 4))]
        cap = rng.randint(1, 120)
        quotas = [dist.row_quota(counts, cap, r) for r in range(len(counts))]
        assert sum(quotas) == min(cap, sum(counts)) and all(0 <= q <= n for q, n in zip(quotas, counts))
    assert dist.row_quota([30], 20) == 20 and dist.row_quota([10], 20) == 10


def test_one_process_helpers_are_no_ops():
    assert (dist.rank(), dist.world(), dist.is_main()) == (0, 1, True)
    t = torch.tensor([1.5, 2.0])
    assert dist.all_reduce_sum(t) is t and dist.all_reduce_mean(t) is t and dist.all_gather_ints(3) == [3]
    metrics = {"loss": 0.5, "name": "x"}
    assert dist.reduce_metrics(metrics, weight=4, sum_keys=("loss",)) == metrics
    model = torch.nn.Linear(2, 2)
    model(torch.ones(1, 2)).sum().backward()
    grad = model.weight.grad.clone()
    dist.sum_gradients(model)
    dist.average_gradients(model)
    assert torch.equal(model.weight.grad, grad)
    assert isinstance(dist.autocast("cpu"), contextlib.nullcontext)   # CPU numerics untouched
    assert dist.precision("cpu") == "fp32"
