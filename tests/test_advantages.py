"""Group-relative advantages and GAE against hand-computed values."""
import math

import pytest
import torch

from rl.advantages import gae, group_advantages


def test_group_advantages_mean_only_non_contiguous_groups():
    # groups (shuffled, non-contiguous labels):
    #   g7: rewards [1, 0]       mean 1/2 -> [+1/2, -1/2]
    #   g9: rewards [0, 1, 1]    mean 2/3 -> [-2/3, +1/3, +1/3]
    #   g3: rewards [.5, .5]     all equal -> invalid, 0
    #   g5: rewards [1, 1]       all equal -> invalid, 0
    groups = torch.tensor([9, 7, 3, 9, 7, 5, 3, 9, 5])
    rewards = torch.tensor([0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 0.5, 1.0, 1.0])
    adv, valid = group_advantages(rewards, groups)
    expected = torch.tensor([-2 / 3, 0.5, 0.0, 1 / 3, -0.5, 0.0, 0.0, 1 / 3, 0.0])
    assert torch.allclose(adv, expected, atol=1e-7)
    assert valid.tolist() == [True, True, False, True, True, False, False, True, False]
    assert adv.dtype == rewards.dtype and valid.dtype == torch.bool


def test_group_advantages_std_normalised():
    # g7 [1, 0]: deviations +-1/2, unbiased var = (1/4 + 1/4) / 1 = 1/2, std = 0.70711 -> +-0.70711
    # g9 [0, 1, 1]: deviations -2/3, 1/3, 1/3; var = (4/9 + 1/9 + 1/9) / 2 = 1/3, std = 0.57735
    #   -> -2/3 / 0.57735 = -1.15470, 1/3 / 0.57735 = 0.57735
    groups = torch.tensor([7, 7, 9, 9, 9])
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    adv, valid = group_advantages(rewards, groups, normalize_std=True)
    assert torch.allclose(adv, torch.tensor([0.70711, -0.70711, -1.15470, 0.57735, 0.57735]), atol=1e-4)
    assert valid.all()


def test_group_advantages_zero_variance_is_exact_zero_and_singletons_invalid():
    rewards = torch.tensor([0.1, 0.1, 0.1, 0.7])
    groups = torch.tensor([0, 0, 0, 1])  # group 1 has one member: no comparison possible
    for norm in (False, True):
        adv, valid = group_advantages(rewards, groups, normalize_std=norm)
        assert torch.equal(adv, torch.zeros(4)) and not valid.any()


def test_group_advantages_empty_and_shape_errors():
    adv, valid = group_advantages(torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert adv.numel() == 0 and valid.numel() == 0
    with pytest.raises(ValueError):
        group_advantages(torch.zeros(3), torch.zeros(2, dtype=torch.long))


def test_group_advantages_sum_to_zero_per_group_large():
    g = torch.arange(64).repeat_interleave(8)
    r = torch.rand(512, generator=torch.Generator().manual_seed(0))
    adv, valid = group_advantages(r, g)
    assert valid.all()
    sums = torch.zeros(64).index_add_(0, g, adv)
    assert sums.abs().max() < 1e-5


def test_gae_hand_computed():
    # rewards [0, 0, 1], V = [.5, .6, .7], bootstrap 0, gamma 1, lam .5
    # t=2: delta = 1 + 0 - .7 = .3                  A2 = .3
    # t=1: delta = 0 + .7 - .6 = .1                  A1 = .1 + .5 * .3  = .25
    # t=0: delta = 0 + .6 - .5 = .1                  A0 = .1 + .5 * .25 = .225
    # returns = A + V = [.725, .85, 1.0]
    adv, ret = gae(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, 0.6, 0.7]), gamma=1.0, lam=0.5)
    assert torch.allclose(adv, torch.tensor([0.225, 0.25, 0.3]), atol=1e-6)
    assert torch.allclose(ret, torch.tensor([0.725, 0.85, 1.0]), atol=1e-6)
    # lam = 1, gamma = 1: A_t = R - V_t, returns all equal the final reward
    adv, ret = gae(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, 0.6, 0.7]), gamma=1.0, lam=1.0)
    assert torch.allclose(adv, torch.tensor([0.5, 0.4, 0.3]), atol=1e-6)
    assert torch.allclose(ret, torch.ones(3), atol=1e-6)


def test_gae_dones_cut_bootstrap_and_recursion():
    # two episodes back to back; values has T+1 entries, the bootstrap 9 is cut by done at the end
    # ep1: r [0, 1], V [.2, .4] -> A = [1 - .2, 1 - .4] = [.8, .6]; ep2: r [0, 1], V [.3, .6] -> [.7, .4]
    adv, ret = gae(torch.tensor([0.0, 1.0, 0.0, 1.0]), torch.tensor([0.2, 0.4, 0.3, 0.6, 9.0]),
                   torch.tensor([False, True, False, True]), gamma=1.0, lam=1.0)
    assert torch.allclose(adv, torch.tensor([0.8, 0.6, 0.7, 0.4]), atol=1e-6)
    assert torch.allclose(ret, torch.tensor([1.0, 1.0, 1.0, 1.0]), atol=1e-6)


def test_gae_bootstrap_discount_and_batch():
    # no done, V = [0, 0], bootstrap V_2 = 5, gamma .9, lam 1
    # A1 = 0 + .9 * 5 - 0 = 4.5;  A0 = (0 + .9 * 0 - 0) + .9 * 1 * 4.5 = 4.05
    adv, _ = gae(torch.zeros(2), torch.tensor([0.0, 0.0, 5.0]), gamma=0.9, lam=1.0)
    assert torch.allclose(adv, torch.tensor([4.05, 4.5]), atol=1e-6)
    adv_b, _ = gae(torch.zeros(2, 2), torch.zeros(2, 2), gamma=0.9, lam=1.0, bootstrap=torch.tensor([5.0, 0.0]))
    assert torch.allclose(adv_b, torch.tensor([[4.05, 4.5], [0.0, 0.0]]), atol=1e-6)
    with pytest.raises(ValueError):
        gae(torch.zeros(3), torch.zeros(5))
    assert not math.isnan(float(adv.sum()))
