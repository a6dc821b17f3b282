"""The SFT loss: on the action tokens only, the dense observation loss (every position or a stride of them), the
weight of the decision tokens, and bf16 autocast against fp32."""
import pytest
import torch

from rl.config import TrainConfig
from rl.metrics import MetricsLogger
from rl.pipeline import build_model
from rl.sft import run_sft

pytestmark = pytest.mark.usefixtures("reference_kernels")


def test_sft_rows_put_the_loss_on_actions_only(smoke_data):
    cfg, tok, rows = smoke_data
    from atommem.observation import END_TOKEN
    from rl.batching import collate
    end = tok.token_id(END_TOKEN)
    assert all(r.action_ids[-1] == end for r in rows)
    idx, pos, targets, mask = collate(rows[:8])
    for b, r in enumerate(rows[:8]):
        assert targets[b][mask[b]].tolist() == r.action_ids
        assert idx[b, pos[b, 0] + 1].item() == r.action_ids[0]


def test_observation_logprobs_match_a_full_forward_pass(smoke_data):
    """The dense auxiliary loss scores exactly the observation tokens after the first of every row."""
    cfg, tok, rows = smoke_data
    from rl.batching import collate, observation_logprobs
    torch.manual_seed(0)
    model = build_model(cfg, tok.vocab_size).eval()
    batch = rows[:6]
    idx = collate(batch)[0]
    with torch.no_grad():
        got = observation_logprobs(model, model.hidden(idx), idx, [len(r.obs_ids) for r in batch])
        full = torch.log_softmax(model(idx).double(), -1)
    want = torch.cat([full[b, torch.arange(len(r.obs_ids) - 1), torch.tensor(r.obs_ids[1:])]
                      for b, r in enumerate(batch)])
    assert got.shape == want.shape == (sum(len(r.obs_ids) - 1 for r in batch),)
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4)


def test_observation_logprobs_with_a_stride_score_every_sth_position(smoke_data):
    """With stride s and offset o, exactly the positions p with (p + o) % s == 0 are scored, each as in the full
    pass, and observation_targets counts them (the loss's denominator)."""
    cfg, tok, rows = smoke_data
    from rl.batching import collate, observation_logprobs, observation_targets
    torch.manual_seed(0)
    model = build_model(cfg, tok.vocab_size).eval()
    batch = rows[:6]
    idx = collate(batch)[0]
    lens = [len(r.obs_ids) for r in batch]
    with torch.no_grad():
        h = model.hidden(idx)
        full = observation_logprobs(model, h, idx, lens)
        starts = [0] + list(torch.tensor([n - 1 for n in lens]).cumsum(0))
        for stride, offset in ((3, 0), (3, 7), (2, 1), (5, 4)):
            got = observation_logprobs(model, h, idx, lens, stride, offset)
            want = torch.cat([full[starts[b]:starts[b + 1]][[p for p in range(n - 1) if (p + offset) % stride == 0]]
                              for b, n in enumerate(lens)])
            assert got.shape == want.shape == (sum(observation_targets(n, stride, offset) for n in lens),)
            assert 0 < got.numel() < full.numel()
            torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="obs_loss_stride"):
        run_sft(TrainConfig.from_dict({**cfg.to_dict(), "obs_loss_stride": 0}), model, rows, None, None, progress=False)


def test_observation_loss_trains_and_lowers_the_observation_loss(tmp_path, smoke_data):
    cfg, tok, rows = smoke_data
    from rl.batching import collate, observation_logprobs

    def obs_nll(model):
        batch = rows[:16]
        idx = collate(batch)[0]
        with torch.no_grad():
            return -observation_logprobs(model, model.hidden(idx), idx, [len(r.obs_ids) for r in batch]).mean().item()

    losses = {}
    for w in (0.0, 1.0):
        torch.manual_seed(0)
        model = build_model(cfg, tok.vocab_size)
        run_sft(TrainConfig.from_dict({**cfg.to_dict(), "obs_loss": w, "sft_steps": 20}), model, rows,
                tmp_path / f"w{w}", MetricsLogger(tmp_path / f"w{w}.jsonl"), progress=False)
        losses[w] = obs_nll(model)
    assert losses[1.0] < losses[0.0] - 0.5


def test_decision_weight_scales_exactly_the_decision_tokens(smoke_data):
    """Action loss with decision_weight w = plain loss + (w - 1) x (the decision tokens' share), by hand."""
    cfg, tok, rows = smoke_data
    from rl.batching import action_logprobs, collate
    from rl.data import decision_token_ids
    from rl.sft import _batch_loss
    ids = decision_token_ids(tok)
    assert len(set(ids)) == 7 and tok.token_id("<end>") in ids
    torch.manual_seed(0)
    model = build_model(cfg, tok.vocab_size).eval()
    batch = [r for r in rows if len(r.action_ids) > 2][:8]
    with torch.no_grad():
        _, plain = _batch_loss(model, batch)
        _, same = _batch_loss(model, batch, 0.0, ids, 1.0)
        _, weighted = _batch_loss(model, batch, 0.0, ids, 3.0)
        idx, pos, targets, mask = collate(batch)
        logp, _ = action_logprobs(model, idx, pos, targets)
    is_decision = torch.isin(targets, torch.tensor(ids)) & mask
    n = mask.sum()
    assert 0 < is_decision.sum() < n
    torch.testing.assert_close(same, plain)
    torch.testing.assert_close(weighted, plain + 2.0 * (-logp[is_decision].sum() / n), atol=1e-5, rtol=1e-5)


def test_cpu_bf16_loss_and_gradients_agree_with_fp32(smoke_data):
    """`cpu_bf16`: the SFT loss in bf16 autocast stays within bf16 rounding of the fp32 loss, its gradients point
    the same way, and the weights stay fp32. Where the CPU lacks native bf16 the switch must change nothing."""
    cfg, tok, rows = smoke_data
    from rl import distributed as dist
    from rl.sft import _batch_loss
    torch.manual_seed(1)
    model = build_model(cfg, tok.vocab_size)
    batch = rows[:16]
    losses, grads = {}, {}
    for bf16 in (False, True):
        model.zero_grad(set_to_none=True)
        _, loss = _batch_loss(model, batch, 0.5, None, 1.0, cpu_bf16=bf16)
        loss.backward()
        losses[bf16] = loss.detach()
        grads[bf16] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    if not dist.cpu_bf16_supported():
        assert isinstance(dist.autocast("cpu", cpu_bf16=True), type(dist.autocast("cpu")))
        torch.testing.assert_close(losses[True], losses[False])
        return
    assert isinstance(dist.autocast("cpu", cpu_bf16=True), torch.autocast)
    assert not torch.equal(losses[True], losses[False])            # bf16 really ran
    torch.testing.assert_close(losses[True], losses[False], rtol=2e-2, atol=0)
    cosine = torch.nn.functional.cosine_similarity(grads[True], grads[False], dim=0)
    assert cosine > 0.99, cosine
