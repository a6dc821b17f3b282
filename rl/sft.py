"""Supervised fine-tuning on teacher trajectories (the warm start).

Objective, per batch of rows (observation o, teacher action a = a_1..a_n, end token included):
    L = - (1 / sum_rows n) * sum_rows sum_t log p_theta(a_t | o, a_<t)
i.e. the loss is on action tokens, averaged over the batch's action tokens; with `obs_loss` > 0 it adds that weight
times the mean next-token loss over the observation tokens (a dense signal from the same forward pass: the
observation repeats names and codes, so predicting it trains the copying that the actions need; measured at 3,000
steps: weight 0 -> 0.33 mean exact match, 0.5 -> 0.46, 1.0 -> 0.51, the default). With `obs_loss_stride` = s > 1 that
mean is taken over every s-th observation position only (offset by the step number, so each position is scored once
every s steps): the output head then runs over a third of the positions for s = 3. With `cpu_bf16` the forward pass
runs in bf16 autocast on a CPU with native bf16 (weights, gradients and optimizer stay fp32). With
`decision_weight` != 1 the action tokens that choose an operation (its opening tag, or the end of the action) weigh
that much in the action loss. AdamW, linear warmup then cosine decay to min_lr_ratio, gradient clipping. With
`sft_ema` = d > 0 an exponential moving average of the weights, ema <- d * ema + (1 - d) * theta after every step, is
kept beside them (and in every checkpoint, under "ema." names) and becomes the SFT policy at the end.
Batches are drawn from length-sorted pools (little padding), in an order fixed by (seed, epoch), so a resumed run
replays exactly the batches an uninterrupted one would see.
Data-parallel (rl/distributed.py): each process takes its slice of every global batch and divides by the batch's
global token count; summed gradients equal the one-process gradient. With one process nothing changes.
"""
from __future__ import annotations

import math
import random
import time

import torch
from tqdm import tqdm

from rl import distributed as dist
from rl.batching import action_logprobs, collate, length_batches, observation_logprobs, observation_targets
from rl.losses import sft_loss
from rl.train_state import latest_checkpoint, load_train_state, save_checkpoint


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf: the run stops, the last good checkpoint stays as it was."""


def lr_at(step: int, total: int, warmup: int, base: float, min_ratio: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model, lr: float, weight_decay: float, kind: str = "adamw") -> torch.optim.Optimizer:
    """AdamW (weight decay on matrices only), or plain SGD: a step proportional to the gradient. Over a few RL
    steps from a fresh state, Adam's step is about lr * sign(gradient) for every parameter, noise included."""
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    if kind != "adamw":
        raise ValueError(f"unknown optimizer {kind!r}; expected adamw or sgd")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95))


def check_finite(loss: torch.Tensor, stage: str, step: int) -> None:
    if not torch.isfinite(loss):
        raise NonFiniteLoss(f"{stage}: loss is {loss.item()} at step {step}; stopping. The last good checkpoint "
                            f"is intact: lower the learning rate or inspect the batch, then resume with --resume.")


def run_sft(cfg, model, rows, ckpt_dir, logger, evaluate=None, resume: bool = False, progress: bool = True,
            decision_ids=None):
    """Train `model` in place on `rows`; checkpoints under ckpt_dir; returns the model. `decision_ids`: the token
    ids weighted by cfg.decision_weight in the action loss."""
    if cfg.obs_loss_stride < 1:
        raise ValueError(f"obs_loss_stride must be a whole number >= 1 (1: every position), got {cfg.obs_loss_stride}")
    opt = make_optimizer(model, cfg.sft_lr, cfg.weight_decay)
    step, epoch, cursor = 0, 0, 0
    ema = WeightAverage(model, cfg.sft_ema) if cfg.sft_ema > 0 else None
    last = latest_checkpoint(ckpt_dir) if resume else None
    if last is not None:
        tensors, loop = load_train_state(last, opt)
        if ema is not None:
            tensors = ema.load(tensors)
        model.load_state_dict(tensors)
        step, epoch, cursor = loop["step"], loop["epoch"], loop["cursor"]
    batches = length_batches(rows, cfg.sft_batch, random.Random(cfg.seed * 1000 + epoch))
    bar = tqdm(total=cfg.sft_steps, initial=step, desc="sft", disable=not progress or not dist.is_main(),
               dynamic_ncols=True)
    tokens, t0 = 0, time.time()
    model.train()
    while step < cfg.sft_steps:
        if cursor >= len(batches):
            epoch, cursor = epoch + 1, 0
            batches = length_batches(rows, cfg.sft_batch, random.Random(cfg.seed * 1000 + epoch))
        batch = [rows[i] for i in batches[cursor]]
        cursor += 1
        lr = lr_at(step, cfg.sft_steps, cfg.sft_warmup, cfg.sft_lr, cfg.min_lr_ratio)
        for group in opt.param_groups:
            group["lr"] = lr
        n_tok, loss = _batch_loss(model, batch, cfg.obs_loss, decision_ids, cfg.decision_weight, cfg.cpu_bf16,
                                  obs_stride=cfg.obs_loss_stride, obs_offset=step)
        check_finite(loss, "sft", step)
        opt.zero_grad(set_to_none=True)
        if loss.requires_grad:
            loss.backward()
        dist.sum_gradients(model)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).item()
        opt.step()
        if ema is not None:
            ema.update(model)
        step += 1
        tokens += n_tok
        bar.update(1)
        if (step % 10 == 0 or step == cfg.sft_steps) and dist.is_main():
            elapsed = time.time() - t0
            logger.log("sft", step, loss=loss.item(), lr=lr, grad_norm=grad_norm, tokens_per_s=tokens / elapsed)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.sft_steps) and dist.is_main():
            model.eval()
            metrics = evaluate(model)
            model.train()
            logger.log("sft", step, **metrics)
            bar.write(f"sft step {step}: " + " ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
        if (step % cfg.ckpt_every == 0 or step == cfg.sft_steps) and dist.is_main():
            tensors = model.state_dict() if ema is None else {**model.state_dict(), **ema.tensors()}
            save_checkpoint(ckpt_dir, step, model_tensors=tensors, optimizer=opt,
                            loop_state={"stage": "sft", "step": step, "epoch": epoch, "cursor": cursor})
    bar.close()
    dist.barrier()
    model.eval()
    if ema is not None:
        ema.copy_to(model)
        if evaluate is not None and dist.is_main():
            metrics = evaluate(model)
            logger.log("sft", step, **{f"ema/{k}": v for k, v in metrics.items()})
            bar.write("sft ema weights: " + " ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    return model


class WeightAverage:
    """An exponential moving average of a model's parameters (copies, updated in place after each step)."""

    PREFIX = "ema."

    def __init__(self, model, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"sft_ema must lie in (0, 1), got {decay}")
        self.decay = decay
        self.avg = {n: p.detach().clone() for n, p in model.named_parameters()}
        self._slots = list(self.avg.values())      # in the order of model.parameters()

    @torch.no_grad()
    def update(self, model) -> None:
        torch._foreach_lerp_(self._slots, [p.detach() for p in model.parameters()], 1.0 - self.decay)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {self.PREFIX + n: t for n, t in self.avg.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Take the averages out of a checkpoint's tensors; returns the model's own."""
        if any(self.PREFIX + n not in tensors for n in self.avg):
            raise ValueError("the checkpoint holds no weight average (sft_ema was 0 when it was written)")
        for n, t in self.avg.items():
            t.copy_(tensors[self.PREFIX + n])
        return {k: v for k, v in tensors.items() if not k.startswith(self.PREFIX)}

    @torch.no_grad()
    def copy_to(self, model) -> None:
        for n, p in model.named_parameters():
            p.copy_(self.avg[n])


def _batch_loss(model, batch, obs_weight: float = 0.0, decision_ids=None, decision_weight: float = 1.0,
                cpu_bf16: bool = False, obs_stride: int = 1, obs_offset: int = 0):
    """The SFT loss of a global batch: (padded tokens of all processes, loss). Data-parallel, each process takes
    its slice and divides its summed token losses by the batch's global token counts (the sum over processes is
    the one-process loss); the returned loss's value is the global loss, its gradient this process's part."""
    local = dist.shard(batch)
    denom = float(sum(len(r.action_ids) for r in batch))
    obs_denom = float(sum(observation_targets(len(r.obs_ids), obs_stride, obs_offset) for r in batch))
    loss, numel = torch.zeros((), device=model.device), 0
    if local:
        idx, pos, targets, mask = (t.to(model.device) for t in collate(local))
        with dist.autocast(model.device, cpu_bf16):
            h = model.hidden(idx)
            logp, _ = action_logprobs(model, idx, pos, targets, hidden=h)
            if decision_ids is not None and decision_weight != 1.0:
                is_decision = torch.isin(targets, torch.as_tensor(decision_ids, device=targets.device))
                logp = logp * torch.where(is_decision, decision_weight, 1.0)
            loss, numel = sft_loss(logp, mask, denom), int(idx.numel())
            if obs_weight > 0:
                obs_logp = observation_logprobs(model, h, idx, [len(r.obs_ids) for r in local], obs_stride, obs_offset)
                loss = loss + obs_weight * (-obs_logp.sum() / max(obs_denom, 1.0))
    if dist.world() == 1:
        return numel, loss
    both = torch.stack([loss.detach().double(), torch.tensor(float(numel), dtype=torch.float64, device=loss.device)])
    total, n_tok = dist.all_reduce_sum(both).tolist()
    return int(n_tok), loss + (total - loss.detach())
