"""Divergence credit for GRPO (`rl_credit="divergence"`): an episode's advantage goes only on the steps where it
first parted from a sibling of its group whose reward differs.

Why: the rollouts of one task see the same observations for as long as their actions agree (the environment is
deterministic given the actions). Up to their first differing step their rows are identical, and with advantages
that sum to zero over the group their gradients cancel. After it, a failing rollout's steps are mostly right
actions in an episode already lost; the paper's credit puts the negative advantage on them too, which pushes good
behaviour down. That noise grows with the step size and is what made larger steps drift in every measurement so
far (bench/RESULTS.md, nineteenth and twenty-fifth rounds). For each pair of trajectories of a group with
different rewards, this credit keeps the one step where the two first differ: both actions were taken from the same
observation, the better one with its positive advantage and the worse one with its negative advantage, a
contrast at the decision that made the difference.

Departure from the paper, said plainly: the other steps of an informative group carry no gradient at all (the
paper gives every step of an episode that episode's advantage). A step counts once however many pairs share it.
Pure functions over trajectories (anything with `.steps[j].action.action_ids`); no model, no tokenizer.
"""
from __future__ import annotations

CREDITS = ("episode", "divergence")


def check_credit(kind: str) -> None:
    if kind not in CREDITS:
        raise ValueError(f"rl_credit must be one of {', '.join(CREDITS)}, got {kind!r}")


def first_difference(a, b) -> int | None:
    """The index of the first step whose sampled action ids differ between trajectories a and b; None when one
    trajectory's actions are a prefix of the other's (no step where both acted differently)."""
    for j, (sa, sb) in enumerate(zip(a.steps, b.steps)):
        if sa.action.action_ids != sb.action.action_ids:            # lists of sampled token ids
            return j
    return None


def divergence_steps(trajectories, groups, rewards) -> list[set[int]]:
    """For each trajectory, the indices of the steps at which it first differs from a trajectory of the same group
    with a different reward (empty where every sibling has the same reward)."""
    members: dict = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    keep: list[set[int]] = [set() for _ in trajectories]
    for idx in members.values():
        for x, i in enumerate(idx):
            for j in idx[x + 1:]:
                if rewards[i] == rewards[j]:
                    continue
                k = first_difference(trajectories[i], trajectories[j])
                if k is not None:
                    keep[i].add(k)
                    keep[j].add(k)
    return keep
