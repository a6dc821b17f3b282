"""Advantage estimators: group-relative (GRPO) and generalised advantage estimation (PPO with a value head).

Owns pure tensor functions only; knows nothing about models, episodes, tokenisation or the trainer. Callers
broadcast an episode's advantage onto its tokens and decide what to do with skipped groups.

GRPO (paper, Sec. RL and its released code). For episode i of group g(i) with reward r_i:

    A_i = r_i - mean_{j : g(j) = g(i)} r_j                      (paper: no division by the std)
    A_i = (r_i - mean_g r) / (std_g r + eps)                    (optional, `normalize_std=True`)

where std_g is the unbiased (Bessel-corrected) sample std of the group, as in DeepSeekMath's GRPO.
Departure from the paper: a group whose rewards are all equal carries no learning signal; its rows are marked
invalid (`valid=False`, advantage exactly 0) so the caller can drop them from the batch and count them, instead
of spending compute on zero-gradient rows.

GAE (Schulman et al. 2016), used only in PPO mode with a value head. We apply it at the *step* level: index t is
one agent step of an episode (one observation -> one action), V_t is the value head's estimate for that step's
observation, and the reward is 0 at every step except the last, which carries the episode's answer reward:

    delta_t = r_t + gamma * (1 - done_t) * V_{t+1} - V_t
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}
    R_t     = A_t + V_t                                         (the value target)

Every token of step t then receives A_t. gamma = 1 by default because the reward is an undiscounted answer score.

Run the tests: `.venv/bin/python -m pytest tests/test_advantages.py -q`.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["group_advantages", "gae"]


def group_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    normalize_std: bool = False,
    eps: float = 1e-6,
) -> tuple[Tensor, Tensor]:
    """Group-relative advantages for N episodes.

    rewards: (N,) float; group_ids: (N,) long, arbitrary (not necessarily contiguous) group labels.
    Returns (adv (N,) in rewards' dtype, valid (N,) bool). `valid[i]` is False when every reward of i's group is
    equal (within `eps`), and then `adv[i] == 0` exactly. Vectorised: no Python loop over rows or groups.
    """
    if rewards.dim() != 1 or group_ids.shape != rewards.shape:
        raise ValueError(f"rewards and group_ids must both be (N,), got {tuple(rewards.shape)} "
                         f"and {tuple(group_ids.shape)}")
    n = rewards.numel()
    if n == 0:
        return rewards.clone(), torch.zeros(0, dtype=torch.bool, device=rewards.device)
    r = rewards.detach().to(torch.float64)                                   # (N,) exact sums for the means
    _, inv = torch.unique(group_ids, return_inverse=True)                    # (N,) contiguous ids 0..G-1
    num_groups = int(inv.max().item()) + 1
    count = torch.zeros(num_groups, dtype=torch.float64, device=r.device).index_add_(0, inv, torch.ones_like(r))
    total = torch.zeros(num_groups, dtype=torch.float64, device=r.device).index_add_(0, inv, r)
    mean = total / count                                                     # (G,)
    adv = r - mean[inv]                                                      # (N,)

    hi = torch.full((num_groups,), -torch.inf, dtype=torch.float64, device=r.device).scatter_reduce(0, inv, r, "amax")
    lo = torch.full((num_groups,), torch.inf, dtype=torch.float64, device=r.device).scatter_reduce(0, inv, r, "amin")
    valid = ((hi - lo) > eps)[inv]                                           # (N,) bool

    if normalize_std:
        sq = torch.zeros(num_groups, dtype=torch.float64, device=r.device).index_add_(0, inv, adv * adv)
        std = torch.sqrt(sq / (count - 1).clamp(min=1))                      # (G,) unbiased sample std
        adv = adv / (std[inv] + eps)
    adv = torch.where(valid, adv, torch.zeros_like(adv))
    return adv.to(rewards.dtype), valid


def gae(
    rewards: Tensor,
    values: Tensor,
    dones: Tensor | None = None,
    gamma: float = 1.0,
    lam: float = 0.95,
    bootstrap: float | Tensor = 0.0,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over the last axis (steps of an episode).

    rewards: (..., T). values: (..., T+1) whose last entry is the bootstrap value V(s_T), or (..., T) with the
    bootstrap value given by `bootstrap` (default 0: the episode ends after its last step). dones: (..., T) bool,
    True when the episode ends after step t (cuts both the bootstrap and the advantage recursion); None means no
    episode boundary inside the window. Returns (advantages (..., T), returns (..., T)), detached.

    The reverse scan is a Python loop over T, the number of steps of an episode (tens), not over tokens.
    """
    rewards = rewards.detach()
    values = values.detach().to(rewards.dtype)
    t_len = rewards.shape[-1]
    if values.shape[-1] == t_len:
        boot = torch.as_tensor(bootstrap, dtype=rewards.dtype, device=rewards.device)
        boot = boot.expand(values.shape[:-1]).unsqueeze(-1)                   # (..., 1)
        values = torch.cat([values, boot], dim=-1)                            # (..., T+1)
    elif values.shape[-1] != t_len + 1:
        raise ValueError(f"values must have T or T+1 entries on the last axis, got {values.shape[-1]} for T={t_len}")
    if dones is None:
        not_done = torch.ones_like(rewards)
    else:
        not_done = 1.0 - dones.to(rewards.dtype)                              # (..., T)

    advantages = torch.zeros_like(rewards)                                    # (..., T)
    running = torch.zeros_like(rewards[..., 0])                               # (...,)
    for t in range(t_len - 1, -1, -1):
        delta = rewards[..., t] + gamma * not_done[..., t] * values[..., t + 1] - values[..., t]
        running = delta + gamma * lam * not_done[..., t] * running
        advantages[..., t] = running
    returns = advantages + values[..., :t_len]
    return advantages, returns
