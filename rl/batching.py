"""Rows to tensors, and the log-probabilities of action tokens: shared by SFT and GRPO.

A row is an observation followed by an action. Rows are right-padded into (B, T); only the action positions go
through the output head, so a batch costs one trunk pass plus a head over (B, A) positions, A = longest action.
"""
from __future__ import annotations

import random

import torch
import torch.nn.functional as F


def collate(rows, pad_id: int = 0):
    """rows: objects with obs_ids/action_ids -> idx (B, T), pos (B, A), targets (B, A), mask (B, A) bool."""
    B = len(rows)
    T = max(len(r.obs_ids) + len(r.action_ids) for r in rows)
    A = max(len(r.action_ids) for r in rows)
    idx = torch.full((B, T), pad_id, dtype=torch.long)
    pos = torch.zeros((B, A), dtype=torch.long)
    targets = torch.zeros((B, A), dtype=torch.long)
    mask = torch.zeros((B, A), dtype=torch.bool)
    for b, r in enumerate(rows):
        seq = r.obs_ids + r.action_ids
        idx[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        n, a = len(r.obs_ids), len(r.action_ids)
        pos[b, :a] = torch.arange(n - 1, n + a - 1)          # the position that predicts each action token
        targets[b, :a] = torch.tensor(r.action_ids, dtype=torch.long)
        mask[b, :a] = True
    return idx, pos, targets, mask


def action_logprobs(model, idx, pos, targets, temperature: float = 1.0, with_entropy: bool = False, hidden=None):
    """Log-probs (B, A) of the action tokens (and their entropies), differentiable. `hidden`: the trunk's output
    for idx when the caller already has it."""
    h = model.hidden(idx) if hidden is None else hidden                 # (B, T, C)
    h = h.gather(1, pos.unsqueeze(-1).expand(-1, -1, h.shape[-1]))     # (B, A, C)
    logits = model.head(h).float() / temperature                        # (B, A, V)
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)       # (B, A)
    if not with_entropy:
        return logp, None
    entropy = -(logp_all.exp() * logp_all).sum(-1)                      # (B, A)
    return logp, entropy


def observation_logprobs(model, hidden, idx, obs_lens, stride: int = 1, offset: int = 0):
    """Log-probs (N,) of observation tokens after the first, all rows flattened (the dense auxiliary loss of SFT:
    the observation repeats names and codes, so predicting it trains the copying the actions need). With stride
    s > 1 only the positions p with (p + offset) % s == 0 go through the output head (a 1/s sample of them)."""
    T = idx.shape[1]
    p = torch.arange(T - 1, device=idx.device)
    predicts = (p + 1)[None, :] < torch.as_tensor(obs_lens, device=idx.device)[:, None]
    if stride > 1:
        predicts &= ((p + offset) % stride == 0)[None, :]
    logits = model.head(hidden[:, :-1][predicts]).float()               # (N, V)
    return F.log_softmax(logits, dim=-1).gather(-1, idx[:, 1:][predicts].unsqueeze(-1)).squeeze(-1)


def observation_targets(obs_len: int, stride: int = 1, offset: int = 0) -> int:
    """How many positions of an observation of obs_len tokens observation_logprobs scores."""
    return len(range((-offset) % stride, obs_len - 1, stride))


def length_batches(rows, batch_size: int, rng: random.Random):
    """Shuffled batches of rows of similar length (sort within pools of 50 batches), as lists of indices."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: len(rows[i]))
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches
