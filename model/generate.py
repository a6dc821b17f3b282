"""Batched sampling from a GPT with a KV cache, and differentiable scoring of given tokens.

Owns two functions:
    generate(model, prompts, ...)  ragged prompts -> one Generation per prompt (token ids, log-probs, stopped)
    score(model, input_ids, mask)  log p(x_t | x_<t) and the entropy at masked positions, differentiable
`generate` records, for every sampled token y_t, log softmax(z_t / tau)[y_t] of the *unfiltered* logits z_t
(tau = 1 under greedy decoding), which is exactly what `score` recomputes with the same tau; the RL loss
relies on that identity. Top-k / top-p only decide which tokens may be drawn.

A `constraint` (any object with `allows(prompt_index, token) -> bool` and `advance(prompt_index, token)`) may refuse
tokens: a refused pick is replaced by the most likely allowed token among the CONSTRAINT_CANDIDATES most likely
(greedy), or by a draw from the allowed ones among them (sampling); when none is allowed the pick stands. The
recorded log-prob stays that of the unfiltered softmax, as for top-k / top-p.

Knows nothing about tokenizers, memory operations or the trainer. The model only needs `prefill`,
`decode_step`, `hidden`, `head`, `device` and a `config` with max_seq_len / n_layers / n_heads / head_dim.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from model.kv_cache import KVCache


CACHE_CHUNK = 32  # positions the KV cache grows by: most actions end well before max_new_tokens
CONSTRAINT_CANDIDATES = 32  # tokens a constraint may choose from when it refuses a pick


@dataclass
class Generation:
    token_ids: list[int] = field(default_factory=list)  # sampled tokens, the stop token included if produced
    logprobs: list[float] = field(default_factory=list)  # log-prob of each sampled token (see module docstring)
    stopped: bool = False  # True when the last token is a stop id


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the smallest nucleus of mass >= top_p.

    logits (B, V). top_k <= 0 and top_p >= 1 disable the filters. The most likely token always survives.
    """
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly more likely tokens
        drop_sorted = mass_before >= top_p  # keeps the first token whose cumulative mass reaches top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                greedy: bool = False, generator: torch.Generator | None = None):
    """Pick one token per row. logits (B, V) -> (tokens (B,), logprobs (B,) under the unfiltered softmax)."""
    logits = logits.float()
    if greedy:
        tokens = logits.argmax(dim=-1)  # (B,)
        logp = torch.log_softmax(logits, dim=-1)
    else:
        scaled = logits / temperature
        logp = torch.log_softmax(scaled, dim=-1)  # (B, V)
        probs = torch.softmax(filter_logits(scaled, top_k, top_p), dim=-1)
        if generator is not None and generator.device != probs.device:
            probs = probs.to(generator.device)  # e.g. a CPU generator for a model on the GPU
        tokens = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(logits.device)  # (B,)
    return tokens, logp.gather(1, tokens[:, None]).squeeze(1)


def enforce(constraint, rows: list[int], logits: torch.Tensor, tokens: torch.Tensor, logps: torch.Tensor,
            temperature: float = 1.0, greedy: bool = False, generator: torch.Generator | None = None):
    """Replace each pick `constraint` refuses (see module docstring), then advance it. rows[i]: the prompt index of
    logits row i. Returns (tokens, logps)."""
    picks = tokens.tolist()
    refused = [i for i, (r, t) in enumerate(zip(rows, picks)) if not constraint.allows(r, t)]
    if refused:
        scaled = logits[refused].float() / (1.0 if greedy else temperature)  # (R, V)
        logp_all = torch.log_softmax(scaled, dim=-1)
        top = torch.topk(logp_all, min(CONSTRAINT_CANDIDATES, logp_all.shape[-1]), dim=-1)
        new_logps = logps.clone()
        for j, i in enumerate(refused):
            ok = [(t, lp) for t, lp in zip(top.indices[j].tolist(), top.values[j].tolist())
                  if constraint.allows(rows[i], t)]
            if not ok:
                continue
            if greedy or len(ok) == 1:
                pick = 0
            else:
                weights = torch.tensor([lp for _, lp in ok]).exp()
                cpu_generator = generator if generator is not None and generator.device.type == "cpu" else None
                pick = int(torch.multinomial(weights, 1, generator=cpu_generator))
            picks[i] = ok[pick][0]
            new_logps[i] = ok[pick][1]
        tokens, logps = torch.tensor(picks, dtype=tokens.dtype, device=tokens.device), new_logps
    for r, t in zip(rows, picks):
        constraint.advance(r, t)
    return tokens, logps


def _check_args(model, prompts, max_new_tokens, temperature, top_k, top_p, greedy):
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if not greedy and not temperature > 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    if top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"need top_k >= 0 and 0 < top_p <= 1, got top_k={top_k}, top_p={top_p}")
    limit = model.config.max_seq_len
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompt {i} is empty; every prompt needs at least one token")
        if len(p) + max_new_tokens > limit:
            raise ValueError(
                f"prompt {i} has {len(p)} tokens; with max_new_tokens={max_new_tokens} that is "
                f"{len(p) + max_new_tokens} > max_seq_len={limit}. Shorten the prompt or max_new_tokens.")


def length_groups(n_rows: int, max_groups: int, min_rows: int = 8) -> list[tuple[int, int]]:
    """Split rows 0..n_rows-1 (sorted by prompt length) into contiguous [start, stop) groups of near-equal size:
    as many as max_groups, none smaller than min_rows (one group when n_rows < 2 * min_rows)."""
    g = max(1, min(max_groups, n_rows // max(1, min_rows)))
    bounds = [round(i * n_rows / g) for i in range(g + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:])]


def _prefill_grouped(model, prompts: list[list[int]], order: list[int], cache: KVCache, max_groups: int):
    """Prefill cache row r with prompts[order[r]] (order sorts the prompts by length); return logits (B, V).

    Rows of similar length are prefilled together, each group right-padded only to its own longest prompt, into a
    view of the one cache: padding every row to the batch's longest prompt would compute ~1.6x the real tokens
    on agent observations, four groups ~1.2x.
    """
    device = model.device
    parts = []
    for start, stop in length_groups(len(order), max_groups):
        rows = [prompts[i] for i in order[start:stop]]
        lengths = torch.tensor([len(p) for p in rows], dtype=torch.long)
        idx = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)  # right-padded with token 0
        for b, p in enumerate(rows):
            idx[b, : len(p)] = torch.tensor(p, dtype=torch.long)
        view = cache.rows(start, stop)
        parts.append(model.prefill(idx.to(device), lengths.to(device), view))  # (B_g, V)
        cache.set_rows(start, view)
    return torch.cat(parts)


@torch.inference_mode()
def generate(model, prompts: list[list[int]], max_new_tokens: int, stop_ids: set[int] | int | None = None,
             temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, greedy: bool = False,
             generator: torch.Generator | None = None, prefill_groups: int = 4, constraint=None) -> list[Generation]:
    """Sample up to max_new_tokens per prompt; a row ends (and leaves the batch) at its first stop id.

    Prompts may have different lengths: they are sorted by length, prefilled in up to `prefill_groups` passes of
    similar lengths (1: one right-padded pass), then decoded one token per step with the KV cache. With the same
    generator state the result is reproducible.
    """
    _check_args(model, prompts, max_new_tokens, temperature, top_k, top_p, greedy)
    if prefill_groups < 1:
        raise ValueError(f"prefill_groups must be >= 1, got {prefill_groups}")
    results = [Generation() for _ in prompts]
    if not prompts or max_new_tokens == 0:
        return results
    stops = {stop_ids} if isinstance(stop_ids, int) else set(stop_ids or ())
    device = model.device
    B = len(prompts)
    T = max(len(p) for p in prompts)
    full = T + max_new_tokens - 1  # the most positions a row can need: its last token is never fed back
    cache = KVCache.for_model(model.config, B, min(full, T + CACHE_CHUNK), device=device,
                              dtype=next(model.parameters()).dtype)  # grows by CACHE_CHUNK as decoding goes on
    stop_tensor = torch.tensor(sorted(stops), dtype=torch.long, device=device)
    active = sorted(range(B), key=lambda b: len(prompts[b]))  # result index of each cache row
    logits = _prefill_grouped(model, prompts, active, cache, prefill_groups)  # (B, V)
    for step in range(max_new_tokens):
        tokens, logps = sample_next(logits, temperature, top_k, top_p, greedy, generator)
        if constraint is not None:
            tokens, logps = enforce(constraint, active, logits, tokens, logps, temperature, greedy, generator)
        done = torch.isin(tokens, stop_tensor)  # (B_active,)
        for row, (tok, lp, d) in enumerate(zip(tokens.tolist(), logps.tolist(), done.tolist())):
            res = results[active[row]]
            res.token_ids.append(tok)
            res.logprobs.append(lp)
            res.stopped = d
        if step == max_new_tokens - 1:
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)  # (B_keep,)
            if keep.numel() == 0:
                break
            cache.keep(keep)
            tokens = tokens.index_select(0, keep)
            active = [active[i] for i in keep.tolist()]
        if T + step >= cache.max_len:  # the longest row writes at position T + step
            cache.grow(min(full, cache.max_len + CACHE_CHUNK))
        logits = model.decode_step(tokens, cache)
    return results


def score(model, input_ids: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0):
    """Log-probs and entropies of given tokens under the model, differentiable.

    input_ids (B, T) long; mask (B, T) bool with mask[:, 0] False. Returns (logprobs, entropy), both
    (B, T) float32: logprobs[b, t] = log softmax(z[b, t-1] / tau)[input_ids[b, t]] and entropy[b, t] the
    entropy of that same distribution, where mask is True, and 0 elsewhere. The output head runs only at
    the masked positions (actions are usually a small part of each row).
    """
    if input_ids.shape != mask.shape or input_ids.dim() != 2:
        raise ValueError(f"input_ids and mask must both be (B, T), got {tuple(input_ids.shape)} and {tuple(mask.shape)}")
    if bool(mask[:, 0].any()):
        raise ValueError("mask[:, 0] must be False: the first token has no context to be scored from")
    B, T = input_ids.shape
    rows, cols = mask.to(torch.bool).nonzero(as_tuple=True)  # (N,) each: scored positions
    hidden = model.hidden(input_ids)  # (B, T, C)
    logits = model.head(hidden[rows, cols - 1]).float() / temperature  # (N, V): position t-1 predicts t
    logp_all = F.log_softmax(logits, dim=-1)  # (N, V)
    logp = logp_all.gather(1, input_ids[rows, cols].unsqueeze(1)).squeeze(1)  # (N,)
    entropy = -(logp_all.exp() * logp_all).sum(-1)  # (N,)
    zeros = logp.new_zeros(B, T)
    return zeros.index_put((rows, cols), logp), zeros.index_put((rows, cols), entropy)
