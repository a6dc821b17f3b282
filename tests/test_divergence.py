"""Divergence credit (rl/divergence.py): which steps of a group's trajectories keep their advantage."""
import math
from types import SimpleNamespace as NS

import pytest

from rl.config import TrainConfig
from rl.divergence import check_credit, divergence_steps, first_difference


def _traj(reward, *actions):
    """A trajectory whose step j sampled the action ids actions[j] (each token at probability 0.5)."""
    steps = [NS(action=NS(obs_ids=[7, j], action_ids=list(a), logprobs=[math.log(0.5)] * len(a)))
             for j, a in enumerate(actions)]
    return NS(reward=reward, steps=steps)


def test_first_difference_is_the_first_step_whose_ids_differ():
    a = _traj(1.0, [1], [2, 3], [4])
    assert first_difference(a, _traj(0.0, [1], [2, 5], [4])) == 1
    assert first_difference(a, _traj(0.0, [9], [2, 3], [4])) == 0
    assert first_difference(a, _traj(0.0, [1], [2, 3])) is None      # a prefix: no step where both differ


def test_divergence_steps_pair_only_siblings_with_other_rewards():
    trajs = [_traj(1.0, [1], [2], [3]),      # group 0: the success
             _traj(0.0, [1], [5], [3]),      # differs from it at step 1
             _traj(0.0, [6], [2], [3]),      # differs from it at step 0
             _traj(1.0, [1], [2], [8]),      # same reward as 0: not paired with it; vs 1 at step 1, vs 2 at step 0
             _traj(0.0, [1], [2], [3]),      # group 1: all equal
             _traj(0.0, [4], [2], [3])]
    keep = divergence_steps(trajs, [0, 0, 0, 0, 1, 1], [t.reward for t in trajs])
    assert keep == [{0, 1}, {1}, {0}, {0, 1}, set(), set()]


def test_rows_from_keeps_only_the_credited_steps():
    from rl.grpo import rows_from
    trajs = [_traj(1.0, [1], [2], [3]), _traj(0.0, [1], [5], [3]), _traj(1.0, [1], [2], [3]),
             _traj(1.0, [1], [2], [3])]
    groups = [0, 0, 1, 1]
    rows, _, skipped, _ = rows_from(trajs, groups, TrainConfig())
    assert (len(rows), skipped) == (6, 1)                            # the paper's credit: every step of group 0
    rows, _, skipped, _ = rows_from(trajs, groups, TrainConfig(rl_credit="divergence"))
    assert skipped == 1
    assert [(r.action_ids, r.advantage) for r in rows] == [([2], 0.5), ([5], -0.5)]
    assert all(r.obs_ids == [7, 1] for r in rows)                    # both from the step where they parted
    with pytest.raises(ValueError, match="rl_credit"):
        rows_from(trajs, groups, TrainConfig(rl_credit="steps"))
    with pytest.raises(ValueError, match="divergence"):
        check_credit("")
