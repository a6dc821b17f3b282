"""PPO / KL / entropy / SFT / value losses against hand-computed values, and gradient-direction checks."""
import math

import pytest
import torch

from rl.losses import entropy_bonus, kl_k3, ppo_clip_loss, sft_loss, value_loss

LN = math.log


def _hand_case():
    # clip_low .2, clip_high .28, dual clip 3. Per token (rho, A) -> objective J -> loss -J:
    #   a: rho 1.5, A +1: min(1.5, clip->1.28)           = 1.28  -> -1.28   (upper clip active)
    #   b: rho 0.5, A +1: min(0.5, 0.8)                  = 0.5   -> -0.5
    #   c: rho 0.5, A -1: min(-0.5, -0.8) = -0.8; max(-0.8, -3) -> +0.8   (lower clip active)
    #   d: rho 5.0, A -1: min(-5, -1.28) = -5;  max(-5, -3)     -> +3.0   (dual clip active)
    #   e: rho 1.1, A -2: min(-2.2, -2.2) = -2.2; max(-2.2, -6) -> +2.2
    #   f: masked (garbage: -inf logp, NaN advantage)
    # token mean over 5 valid tokens: (-1.28 - 0.5 + 0.8 + 3 + 2.2) / 5 = 4.22 / 5 = 0.844
    logp_old = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]])
    log_ratio = torch.tensor([[LN(1.5), LN(0.5), LN(0.5)], [LN(5.0), LN(1.1), 0.0]])
    logp_new = (logp_old + log_ratio).clone()
    logp_new[1, 2] = -math.inf
    logp_new.requires_grad_(True)
    adv = torch.tensor([[1.0, 1.0, -1.0], [-1.0, -2.0, math.nan]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    return logp_new, logp_old, adv, mask


def test_ppo_clip_loss_hand_computed_value_stats_and_grad():
    logp_new, logp_old, adv, mask = _hand_case()
    loss, stats = ppo_clip_loss(logp_new, logp_old, adv, mask, 0.2, 0.28, 3.0)
    assert loss.item() == pytest.approx(0.844, abs=1e-6)
    assert stats["clip_frac_low"] == pytest.approx(0.2)   # token c
    assert stats["clip_frac_high"] == pytest.approx(0.2)  # token a
    assert stats["dual_clip_frac"] == pytest.approx(0.2)  # token d
    # approx_kl = mean(-log rho) = -ln(1.5 * .5 * .5 * 5 * 1.1) / 5 = -ln(2.0625) / 5 = -0.144784
    assert stats["approx_kl"] == pytest.approx(-0.144784, abs=1e-5)
    assert stats["ratio_mean"] == pytest.approx(8.6 / 5, abs=1e-5)  # (1.5 + .5 + .5 + 5 + 1.1) / 5
    assert stats["ratio_max"] == pytest.approx(5.0, abs=1e-5)
    loss.backward()
    # d loss / d logp_new = (d loss_tok / d log rho) / 5; clipped tokens a, c, d have zero gradient;
    #   b: loss_tok = -rho A -> -0.5 * 1 / 5 = -0.1;   e: -rho A = -1.1 * -2 = 2.2 -> 2.2 / 5 = 0.44
    expected = torch.tensor([[0.0, -0.1, 0.0], [0.0, 0.44, 0.0]])
    assert torch.allclose(logp_new.grad, expected, atol=1e-6)
    assert torch.isfinite(logp_new.grad).all()


def test_ppo_clip_loss_row_advantages_broadcast():
    # rows advantages (B,) = [+2, -1]; all ratios 1: loss = mean(-A over tokens) = (-2 -2 +1) / 3 = -1
    logp = torch.zeros(2, 2, requires_grad=True)
    mask = torch.tensor([[True, True], [True, False]])
    loss, stats = ppo_clip_loss(logp, torch.zeros(2, 2), torch.tensor([2.0, -1.0]), mask)
    assert loss.item() == pytest.approx(-1.0)
    assert stats["approx_kl"] == 0.0 and stats["clip_frac_low"] == 0.0
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-2 / 3, -2 / 3], [1 / 3, 0.0]]))


def test_positive_advantage_raises_logp_negative_lowers():
    logits = torch.zeros(2, 4, requires_grad=True)  # two rows, 4-token vocab
    tokens = torch.tensor([1, 2])
    logp_old = torch.log_softmax(logits, -1).gather(1, tokens[:, None]).detach()  # (2, 1)
    adv = torch.tensor([1.0, -1.0])
    logp_new = torch.log_softmax(logits, -1).gather(1, tokens[:, None])
    loss, _ = ppo_clip_loss(logp_new, logp_old, adv, torch.ones(2, 1, dtype=torch.bool))
    loss.backward()
    with torch.no_grad():
        after = torch.log_softmax(logits - 0.5 * logits.grad, -1).gather(1, tokens[:, None])
    assert after[0, 0] > logp_old[0, 0]  # A > 0: more likely
    assert after[1, 0] < logp_old[1, 0]  # A < 0: less likely


@pytest.mark.parametrize("log_ratio,adv,clipped", [
    (LN(1.3), 1.0, True), (LN(1.27), 1.0, False),     # upper bound 1.28 for A > 0
    (LN(0.79), -1.0, True), (LN(0.81), -1.0, False),  # lower bound 0.8 for A < 0
    (LN(0.5), 1.0, False), (LN(1.5), -1.0, False),    # the other side is never clipped (pessimistic bound)
])
def test_clipping_stops_gradient_beyond_range(log_ratio, adv, clipped):
    logp = torch.tensor([[log_ratio]], requires_grad=True)
    loss, _ = ppo_clip_loss(logp, torch.zeros(1, 1), torch.tensor([adv]), torch.ones(1, 1, dtype=torch.bool))
    loss.backward()
    if clipped:
        assert logp.grad.item() == 0.0
    else:
        assert logp.grad.item() == pytest.approx(-adv * math.exp(log_ratio))


def test_dual_clip_bounds_loss_for_huge_ratio_negative_advantage():
    # A = -2, rho = e^10 (and e^50, clamped internally): unbounded loss would be rho * 2; dual clip gives 3 * 2 = 6
    for lr in (10.0, 50.0):
        logp = torch.tensor([[lr]], requires_grad=True)
        loss, stats = ppo_clip_loss(logp, torch.zeros(1, 1), torch.tensor([-2.0]), torch.ones(1, 1, dtype=torch.bool))
        assert loss.item() == pytest.approx(6.0)
        assert stats["dual_clip_frac"] == 1.0
        loss.backward()
        assert logp.grad.item() == 0.0
    # without dual clip the same token's loss is rho * |A|
    loss, _ = ppo_clip_loss(torch.tensor([[LN(10.0)]]), torch.zeros(1, 1), torch.tensor([-2.0]),
                            torch.ones(1, 1, dtype=torch.bool), dual_clip=None)
    assert loss.item() == pytest.approx(20.0, rel=1e-5)
    with pytest.raises(ValueError):
        ppo_clip_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1, dtype=torch.bool),
                      dual_clip=0.5)


def test_denom_makes_microbatches_sum_to_full_batch():
    logp_new, logp_old, adv, mask = _hand_case()
    full, _ = ppo_clip_loss(logp_new, logp_old, adv, mask)
    parts = [ppo_clip_loss(logp_new[i:i + 1], logp_old[i:i + 1], adv[i:i + 1], mask[i:i + 1], denom=5)[0]
             for i in range(2)]
    assert (parts[0] + parts[1]).item() == pytest.approx(full.item(), abs=1e-6)


def test_empty_mask_gives_zero_loss_with_grad():
    logp = torch.zeros(1, 2, requires_grad=True)
    loss, stats = ppo_clip_loss(logp, torch.zeros(1, 2), torch.ones(1), torch.zeros(1, 2, dtype=torch.bool))
    assert loss.item() == 0.0 and stats["ratio_max"] == 1.0
    loss.backward()
    assert torch.equal(logp.grad, torch.zeros(1, 2))


def test_kl_k3_hand_computed_and_grad():
    # token 1: new 0, ref ln2: d = ln2  -> e^d - d - 1 = 2 - .693147 - 1 = .306853
    # token 2: new ln2, ref 0: d = -ln2 -> .5 + .693147 - 1 = .193147;  mean = .25 (third token masked)
    new = torch.tensor([[0.0, LN(2.0), 7.0]], requires_grad=True)
    ref = torch.tensor([[LN(2.0), 0.0, -math.inf]])
    mask = torch.tensor([[True, True, False]])
    kl = kl_k3(new, ref, mask)
    assert kl.item() == pytest.approx(0.25, abs=1e-6)
    kl.backward()
    # d k3 / d new = 1 - e^d, over 2 tokens: (1 - 2) / 2 = -.5, (1 - .5) / 2 = .25
    assert torch.allclose(new.grad, torch.tensor([[-0.5, 0.25, 0.0]]))
    assert kl_k3(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3, dtype=torch.bool)).item() == 0.0


def test_entropy_bonus_and_sft_loss_hand_computed():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    ent = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert entropy_bonus(ent, mask).item() == pytest.approx(7 / 3)  # (1 + 2 + 4) / 3
    logp = torch.tensor([[-1.0, -2.0, -math.inf], [-3.0, math.nan, 0.0]], requires_grad=True)
    loss = sft_loss(logp, mask)
    assert loss.item() == pytest.approx(2.0)  # (1 + 2 + 3) / 3
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-1 / 3, -1 / 3, 0.0], [-1 / 3, 0.0, 0.0]]))


def test_sft_step_increases_logp():
    logits = torch.zeros(1, 5, requires_grad=True)
    before = torch.log_softmax(logits, -1)[0, 3].item()
    sft_loss(torch.log_softmax(logits, -1)[:, 3:4], torch.ones(1, 1, dtype=torch.bool)).backward()
    assert torch.log_softmax(logits - logits.grad, -1)[0, 3].item() > before


def test_value_loss_hand_computed():
    # V = [1, 2, .5], R = [1.5, 1, .5], V_old = [1, 1.5, 0], clip .2
    # unclipped squared errors: .25, 1, 0
    # clipped V: [1 + 0, 1.5 + .2, 0 + .2] = [1, 1.7, .2] -> squared errors .25, .49, .09
    # max per token: .25, 1, .09 -> mean 1.34 / 3, times .5 = .223333
    v = torch.tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    ret = torch.tensor([[1.5, 1.0, 0.5]])
    old = torch.tensor([[1.0, 1.5, 0.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    loss = value_loss(v, ret, mask, old_values=old, clip=0.2)
    assert loss.item() == pytest.approx(0.223333, abs=1e-6)
    loss.backward()
    # grads / token: .5 * 2 (V - R) / 3 for the unclipped max (tokens 1, 2); token 3 clipped -> 0
    assert torch.allclose(v.grad, torch.tensor([[-1 / 6, 1 / 3, 0.0]]))
    # without old values: .5 * (.25 + 1 + 0) / 3 = .208333
    assert value_loss(v, ret, mask).item() == pytest.approx(0.208333, abs=1e-6)
