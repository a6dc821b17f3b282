"""generate() and score(): batched == one-at-a-time, seeded sampling, filters, log-probs, gradients."""
import math

import pytest
import torch

from model.config import GPTConfig
from model.generate import CACHE_CHUNK, Generation, filter_logits, generate, length_groups, sample_next, score
from model.gpt import GPT

V = 61


@pytest.fixture(autouse=True)
def _reference_kernels(monkeypatch):
    monkeypatch.setenv("ATOMMEM_KERNELS", "reference")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPT(GPTConfig.preset("smoke", vocab_size=V, max_seq_len=48))
    with torch.no_grad():  # sharpen the random model so greedy ties are impossible and outputs vary
        m.wte.weight.mul_(20.0)
    return m


def _prompts(seed=1, lengths=(5, 1, 12, 8, 3)):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, V, (n,), generator=g).tolist() for n in lengths]


def test_batched_greedy_equals_one_at_a_time(model):
    prompts = _prompts()
    free = [generate(model, [p], 10, stop_ids=set(), greedy=True)[0] for p in prompts]
    stop = free[0].token_ids[2]  # makes at least prompt 0 stop early
    singles = [generate(model, [p], 10, stop_ids={stop}, greedy=True)[0] for p in prompts]
    batched = generate(model, prompts, 10, stop_ids={stop}, greedy=True)
    assert [g.token_ids for g in batched] == [g.token_ids for g in singles]
    for a, b in zip(batched, singles):
        assert a.stopped == b.stopped
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert batched[0].stopped and batched[0].token_ids[-1] == stop and len(batched[0].token_ids) <= 3
    for g in batched:
        assert len(g.token_ids) == len(g.logprobs) <= 10
        assert g.stopped == (stop in g.token_ids)
        assert g.stopped or len(g.token_ids) == 10
        if g.stopped:
            assert g.token_ids.index(stop) == len(g.token_ids) - 1


def _context_model(conv: int) -> GPT:
    """A random model whose next token depends on the whole context (the `model` fixture mostly echoes its input):
    strong attention and MLP outputs, random convolution taps, logits sharpened by the final norm."""
    torch.manual_seed(2)
    m = GPT(GPTConfig.preset("smoke", vocab_size=V, max_seq_len=48, qkv_conv=conv, prev_token=bool(conv)))
    with torch.no_grad():
        for b in m.blocks:
            b.proj.weight.mul_(30.0)
            b.qkv.weight.mul_(3.0)
            b.mlp.down.weight.mul_(10.0)
            for t in getattr(b, "taps", None) or ():
                t.normal_()
        m.wte.weight.mul_(2.0)
        m.norm.mul_(8.0)
    return m


def _forward_logprobs(m: GPT, prompt: list[int], tokens: list[int]) -> list[float]:
    """log p(token | prompt, earlier tokens) from one cache-free forward pass (`score`)."""
    ids = torch.tensor([prompt + tokens])
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[0, len(prompt):] = True
    with torch.no_grad():
        ref, _ = score(m, ids, mask)
    return ref[0, len(prompt):].tolist()


def test_context_model_depends_on_more_than_the_last_token():
    m = _context_model(0)
    prompts = _prompts(seed=3, lengths=(9, 14, 20))
    flipped = [p[:-1][::-1] + p[-1:] for p in prompts]  # same last token, other context
    a = generate(m, prompts, 4, greedy=True)
    b = generate(m, flipped, 4, greedy=True)
    assert [g.token_ids for g in a] != [g.token_ids for g in b]


@pytest.mark.parametrize("conv", [0, 3])
def test_length_grouped_prefill_equals_a_full_forward_pass(conv):
    """Prompts of shuffled lengths prefilled in 4 length groups (views of one cache), then decoded with rows leaving
    the batch, give each prompt the log-probs a cache-free forward pass over prompt + generation gives."""
    m = _context_model(conv)
    lengths = torch.randint(1, 30, (37,), generator=torch.Generator().manual_seed(conv)).tolist()
    prompts = _prompts(seed=7, lengths=lengths)
    free = generate(m, prompts, 6, stop_ids=set(), greedy=True, prefill_groups=1)
    stop = free[5].token_ids[1]  # some rows stop early, and leave the batch in sorted order
    grouped = generate(m, prompts, 6, stop_ids={stop}, greedy=True, prefill_groups=4)
    assert any(g.stopped for g in grouped) and not all(g.stopped for g in grouped)
    for p, g, f in zip(prompts, grouped, free):
        assert g.token_ids == f.token_ids[: len(g.token_ids)]
        assert g.logprobs == pytest.approx(_forward_logprobs(m, p, g.token_ids), abs=1e-4)
    with pytest.raises(ValueError, match="prefill_groups"):
        generate(m, prompts, 2, prefill_groups=0)


def test_a_generation_longer_than_one_cache_chunk_equals_a_full_forward_pass():
    """40 new tokens: the KV cache grows past its first allocation (CACHE_CHUNK positions) while decoding."""
    m = _context_model(3)
    prompts = _prompts(seed=4, lengths=(5, 2, 4))
    assert 40 > CACHE_CHUNK
    for p, g in zip(prompts, generate(m, prompts, 40, stop_ids=set(), greedy=True)):
        assert len(g.token_ids) == 40
        assert g.logprobs == pytest.approx(_forward_logprobs(m, p, g.token_ids), abs=1e-4)


def test_length_groups_cover_every_row_once():
    assert length_groups(37, 4) == [(0, 9), (9, 18), (18, 28), (28, 37)]
    assert length_groups(15, 4) == [(0, 15)]  # fewer than 2 x 8 rows: one group
    assert length_groups(16, 4) == [(0, 8), (8, 16)]
    assert length_groups(1000, 4, min_rows=1) == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    assert length_groups(5, 1) == [(0, 5)]


def test_int_stop_id_and_zero_tokens(model):
    prompts = _prompts()
    first = generate(model, prompts, 1, stop_ids=None, greedy=True)
    again = generate(model, prompts, 4, stop_ids=first[1].token_ids[0], greedy=True)
    assert again[1].token_ids == first[1].token_ids and again[1].stopped
    assert generate(model, prompts, 0, stop_ids=0) == [Generation() for _ in prompts]


def test_seeded_sampling_is_reproducible():
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("smoke", vocab_size=V, max_seq_len=48))  # flat: samples vary
    prompts = _prompts()
    run = lambda seed: generate(model, prompts, 12, stop_ids=set(), temperature=1.3,
                                generator=torch.Generator().manual_seed(seed))
    a, b, c = run(7), run(7), run(8)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert [g.logprobs for g in a] == [g.logprobs for g in b]
    assert [g.token_ids for g in a] != [g.token_ids for g in c]


def test_prompt_too_long_raises(model):
    with pytest.raises(ValueError, match="max_seq_len=48"):
        generate(model, [[1] * 40, [2] * 3], 9, stop_ids=0)
    with pytest.raises(ValueError, match="empty"):
        generate(model, [[]], 2, stop_ids=0)


def test_runs_under_inference_mode(model, monkeypatch):
    seen = []
    original = model.decode_step

    def spy(tokens, cache):
        seen.append(torch.is_inference_mode_enabled())
        return original(tokens, cache)

    monkeypatch.setattr(model, "decode_step", spy)
    generate(model, _prompts(), 3, stop_ids=set())
    assert seen and all(seen)


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.05, 0.3, 0.15], [0.1, 0.2, 0.3, 0.4]]))
    kept = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept.tolist() == [[True, False, True, False], [False, False, True, True]]
    kept = torch.isfinite(filter_logits(logits, top_p=0.75))  # 0.5 + 0.3 reaches 0.75; 0.4 + 0.3 does not
    assert kept.tolist() == [[True, False, True, False], [False, True, True, True]]
    kept = torch.isfinite(filter_logits(logits, top_p=0.01))  # the best token always survives
    assert kept.tolist() == [[True, False, False, False], [False, False, False, True]]
    assert torch.equal(filter_logits(logits), logits)


def test_sampling_respects_filters():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 30, generator=g).repeat(2000, 1)  # (2000, 30)
    top3 = set(torch.topk(logits[0], 3).indices.tolist())
    tokens, logps = sample_next(logits, top_k=3, generator=g)
    assert set(tokens.tolist()) == top3
    torch.testing.assert_close(logps, torch.log_softmax(logits, -1).gather(1, tokens[:, None]).squeeze(1))
    probs = torch.softmax(logits[0], -1)
    order = torch.argsort(probs, descending=True)
    n = int((torch.cumsum(probs[order], 0) < 0.6).sum()) + 1  # smallest nucleus with mass >= 0.6
    tokens, _ = sample_next(logits, top_p=0.6, generator=g)
    assert set(tokens.tolist()) == set(order[:n].tolist())
    greedy, _ = sample_next(logits[:1], greedy=True)
    assert greedy.item() == order[0].item()


@pytest.mark.parametrize("greedy,temperature,top_k,top_p", [(True, 1.0, 0, 1.0), (False, 0.7, 5, 0.9), (False, 1.5, 0, 1.0)])
def test_generation_logprobs_equal_score(model, greedy, temperature, top_k, top_p):
    prompts = _prompts(seed=3)
    gens = generate(model, prompts, 8, stop_ids={0, 1, 2}, temperature=temperature, top_k=top_k, top_p=top_p,
                    greedy=greedy, generator=torch.Generator().manual_seed(5))
    seqs = [p + g.token_ids for p, g in zip(prompts, gens)]
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.bool)
    for b, (p, s) in enumerate(zip(prompts, seqs)):
        ids[b, : len(s)] = torch.tensor(s)
        mask[b, len(p): len(s)] = True
    logp, ent = score(model, ids, mask, temperature=1.0 if greedy else temperature)
    for b, (p, g) in enumerate(zip(prompts, gens)):
        assert logp[b, len(p): len(p) + len(g.token_ids)].tolist() == pytest.approx(g.logprobs, abs=1e-4)
    assert (logp[~mask] == 0).all() and (ent[~mask] == 0).all()
    assert (ent[mask] >= 0).all() and (ent[mask] <= math.log(V) + 1e-4).all()


def test_score_matches_manual_and_has_gradients():
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("smoke", vocab_size=V, max_seq_len=48))
    ids = torch.randint(0, V, (2, 9))
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[0, 3:] = True
    mask[1, 1:5] = True
    logp, ent = score(model, ids, mask, temperature=0.8)
    with torch.no_grad():
        lp_all = torch.log_softmax(model(ids) / 0.8, -1)  # (B, T, V)
    for b, t in mask.nonzero().tolist():
        torch.testing.assert_close(logp[b, t], lp_all[b, t - 1, ids[b, t]])
        torch.testing.assert_close(ent[b, t], -(lp_all[b, t - 1].exp() * lp_all[b, t - 1]).sum())
    (logp.sum() + 0.1 * ent.sum()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    with pytest.raises(ValueError, match="mask"):
        score(model, ids, torch.ones_like(mask))
    logp, ent = score(model, ids, torch.zeros_like(mask))  # nothing to score
    assert not logp.any() and not ent.any()


class _Below:
    """A constraint allowing tokens below `limit` (30 of 61: at least one is among any 32 candidates)."""

    def __init__(self, limit=30):
        self.limit, self.written = limit, {}

    def allows(self, row, token):
        return token < self.limit

    def advance(self, row, token):
        self.written.setdefault(row, []).append(token)


def test_a_constraint_picks_the_most_likely_allowed_token(model):
    prompts = _prompts(seed=4)
    free = generate(model, prompts, 10, stop_ids=set(), greedy=True)
    assert any(t >= 30 for g in free for t in g.token_ids)  # the constraint has something to refuse
    below = _Below()
    gens = generate(model, prompts, 10, stop_ids=set(), greedy=True, constraint=below)
    with torch.no_grad():
        for i, (p, g) in enumerate(zip(prompts, gens)):
            seq = list(p)
            for _ in range(10):  # reference: a full forward pass per token, refused logits masked
                logits = model.head(model.hidden(torch.tensor([seq]))[:, -1]).float()[0]
                logits[30:] = float("-inf")
                seq.append(int(logits.argmax()))
            assert g.token_ids == seq[len(p):] and below.written[i] == g.token_ids


@pytest.mark.parametrize("greedy,temperature", [(True, 1.0), (False, 1.3)])
def test_constrained_logprobs_equal_score(model, greedy, temperature):
    prompts = _prompts(seed=6)
    gens = generate(model, prompts, 8, stop_ids=set(), greedy=greedy, temperature=temperature,
                    generator=torch.Generator().manual_seed(2), constraint=_Below())
    assert all(t < 30 for g in gens for t in g.token_ids)
    seqs = [p + g.token_ids for p, g in zip(prompts, gens)]
    ids = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for b, (p, s) in enumerate(zip(prompts, seqs)):
        ids[b, : len(s)] = torch.tensor(s)
        mask[b, len(p): len(s)] = True
    logp, _ = score(model, ids, mask, temperature=temperature)
    for b, (p, g) in enumerate(zip(prompts, gens)):
        assert logp[b, len(p): len(p) + len(g.token_ids)].tolist() == pytest.approx(g.logprobs, abs=1e-4)
