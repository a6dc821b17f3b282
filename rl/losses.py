"""Training losses: PPO clipped surrogate with dual clip, k3 KL, entropy, SFT and clipped value loss.

Owns pure tensor functions only; knows nothing about models, rollouts or optimisers. Every function takes
per-token tensors of shape (B, T) (B training rows, each one agent step; T action tokens) and a boolean mask of
the tokens that count (the generated action tokens). Masked positions may hold anything, even -inf or NaN: they
are replaced by 0 before any arithmetic, so they never reach a sum or a gradient.

Reduction: token mean over the batch, sum_{b,t} m_bt x_bt / sum_{b,t} m_bt (the paper's "averaged over tokens").
When a batch is split into micro-batches, pass `denom` = the token count of the whole batch so that the summed
micro-batch losses equal the full-batch token mean.

Policy loss (paper: GRPO with the PPO clipped ratio, eps_low = 0.2, eps_high = 0.28, dual clip c = 3).
With rho = exp(logp_new - logp_old) and A the advantage of the token's episode, the maximised objective is

    J = min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A)          if A >= 0
    J = max(min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A), c A)  if A < 0    (dual clip, Ye et al. 2020)

and the loss is -J, token-averaged. The dual clip bounds the loss of a negative-advantage token by c |A| however
large rho grows. Departure, for numerical safety only: log rho is clamped to [-20, 20] before exp; inside that range
nothing changes, and outside it every branch above is either clipped (zero gradient) or has |rho A| < 3e-9.

KL to the reference policy (paper: coefficient 0; released code: 0.001), k3 estimator (Schulman 2020):

    k3 = exp(logp_ref - logp_new) - (logp_ref - logp_new) - 1  >= 0, an unbiased estimate of KL(new || ref).

Value loss (PPO mode only): 0.5 max((V - R)^2, (V_old + clip(V - V_old, -eps_v, eps_v) - R)^2), token mean.

Run the tests: `.venv/bin/python -m pytest tests/test_losses.py -q`.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ppo_clip_loss", "kl_k3", "entropy_bonus", "sft_loss", "value_loss", "token_mean"]

_LOG_RATIO_LIMIT = 20.0


def token_mean(x: Tensor, mask: Tensor, denom: float | Tensor | None = None) -> Tensor:
    """sum(x over mask) / (denom or number of masked tokens, at least 1). Masked-out entries of x are ignored."""
    m = mask.to(torch.bool)
    total = torch.where(m, x, torch.zeros_like(x)).sum()
    if denom is None:
        denom = m.sum().clamp(min=1).to(x.dtype)
    return total / denom


def _masked(x: Tensor, mask: Tensor) -> Tensor:
    """x with masked-out entries replaced by 0 (so -inf / NaN padding cannot poison later arithmetic)."""
    return torch.where(mask.to(torch.bool), x, torch.zeros_like(x))


def ppo_clip_loss(
    logp_new: Tensor,
    logp_old: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    dual_clip: float | None = 3.0,
    denom: float | Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Dual-clip PPO surrogate loss, token mean over `mask`.

    logp_new: (B, T) with grad; logp_old: (B, T) sampling-time log-probs (treated as constants);
    advantages: (B,) one per row (broadcast over its tokens) or (B, T); mask: (B, T) bool.
    `dual_clip=None` disables the dual clip; otherwise it must exceed 1.
    Returns (loss scalar, stats). Stats (python floats, over valid tokens):
      clip_frac_low  - fraction with A < 0 and rho < 1 - clip_low  (lower clip active, no gradient)
      clip_frac_high - fraction with A > 0 and rho > 1 + clip_high (upper clip active, no gradient)
      dual_clip_frac - fraction with A < 0 and rho > dual_clip     (dual clip active, no gradient)
      approx_kl      - mean(logp_old - logp_new), the k1 estimate of KL(old || new)
      ratio_mean, ratio_max - of rho; pg_loss - the loss value.
    """
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
    m = mask.to(torch.bool)                                                   # (B, T)
    logp_new = logp_new.float()
    logp_old = logp_old.detach().float()
    adv = advantages.detach().float()
    if adv.dim() == 1:
        adv = adv.unsqueeze(-1)                                               # (B, 1), broadcast over T
    adv = adv.expand_as(logp_new)                                             # (B, T)
    adv = _masked(adv, m)

    log_ratio = _masked(logp_new - logp_old, m).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
    ratio = torch.exp(log_ratio)                                              # (B, T), 1 on masked tokens
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    pg = torch.maximum(-adv * ratio, -adv * clipped)                          # -min(rho A, clip(rho) A)
    negative = adv < 0
    if dual_clip is not None:
        pg = torch.where(negative, torch.minimum(pg, -adv * dual_clip), pg)  # -max(., c A) for A < 0
    loss = token_mean(pg, m, denom)

    with torch.no_grad():
        n = m.sum().clamp(min=1).float()
        r = ratio.detach()
        low = m & negative & (r < 1.0 - clip_low)
        high = m & (adv > 0) & (r > 1.0 + clip_high)
        dual = m & negative & (r > dual_clip) if dual_clip is not None else torch.zeros_like(m)
        none_valid = 1.0 - m.any().float()                                  # stats of an empty mask: ratio 1
        r_max = _masked(r, m).max() if r.numel() else torch.zeros((), device=r.device)  # r > 0: zeros never win
        values = torch.stack([                                              # one device sync for all stats
            loss.detach().float(), low.sum() / n, high.sum() / n, dual.sum() / n,
            _masked(-log_ratio.detach(), m).sum() / n, _masked(r, m).sum() / n + none_valid, r_max + none_valid,
        ]).tolist()
    keys = ("pg_loss", "clip_frac_low", "clip_frac_high", "dual_clip_frac", "approx_kl", "ratio_mean", "ratio_max")
    return loss, dict(zip(keys, values))


def kl_k3(logp_new: Tensor, logp_ref: Tensor, mask: Tensor, denom: float | Tensor | None = None) -> Tensor:
    """k3 estimate of KL(new || ref), token mean over `mask`; gradient flows into logp_new only."""
    m = mask.to(torch.bool)
    diff = _masked(logp_ref.detach().float() - logp_new.float(), m).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
    k3 = torch.exp(diff) - diff - 1.0                                         # (B, T), >= 0, 0 on masked tokens
    return token_mean(k3, m, denom)


def entropy_bonus(entropy: Tensor, mask: Tensor, denom: float | Tensor | None = None) -> Tensor:
    """Token-mean policy entropy (positive); the caller subtracts coef * this from the loss to reward entropy."""
    return token_mean(entropy.float(), mask, denom)


def sft_loss(logp: Tensor, mask: Tensor, denom: float | Tensor | None = None) -> Tensor:
    """Negative log-likelihood of the action tokens: -sum(m * logp) / sum(m)."""
    return token_mean(-logp.float(), mask, denom)


def value_loss(
    values: Tensor,
    returns: Tensor,
    mask: Tensor,
    old_values: Tensor | None = None,
    clip: float | None = 0.2,
    denom: float | Tensor | None = None,
) -> Tensor:
    """PPO value loss, token mean: 0.5 (V - R)^2, or with `old_values` and `clip` the clipped form
    0.5 max((V - R)^2, (V_old + clip(V - V_old, -clip, clip) - R)^2). All tensors (B, T) (or any equal shape)."""
    m = mask.to(torch.bool)
    v = values.float()
    ret = returns.detach().float()
    err = _masked(v - ret, m) ** 2
    if old_values is not None and clip is not None:
        old = old_values.detach().float()
        v_clipped = old + (v - old).clamp(-clip, clip)
        err = torch.maximum(err, _masked(v_clipped - ret, m) ** 2)
    return 0.5 * token_mean(err, m, denom)
