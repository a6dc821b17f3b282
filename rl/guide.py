"""Teacher-guided GRPO groups (`rl_guide`): the scripted teacher's run of a group's task joins the group.

Why: a policy trained on a perfect teacher is sharp. Where its greedy answer is wrong, its sampled rollouts mostly
fail the same way, so their group is all-equal and carries no signal (bench/RESULTS.md, nineteenth round): the
errors left are the ones sampling does not find a way around. With `rl_guide`, each group also holds the teacher's
own trajectory on the same task (the same episode, the same question visibility), scored with the same reward, as
in mixed-policy GRPO (off-policy guidance, after LUFFY, Yan et al. 2025). A group whose rollouts all fail now has
one success: the teacher's steps get a positive advantage, the rollouts' a negative one.

Departures, said plainly: the teacher joins only where it solves the task (reward 1), as SFT imitates only
episodes the teacher got right. Its tokens' "old" log-probs are the current policy's, computed before the update,
so the ratio is 1 on the first pass and the teacher's rows get the gradient A * grad log pi (imitation weighted by
the advantage); the true behaviour probability of a scripted action is 1, whose ratio would be pi itself and give
next to no gradient where the policy is wrong, the very steps the guide is for. Knows the teacher, the agent loop
and the row format; the update is GRPO's (rl/grpo.py).
"""
from __future__ import annotations

import torch

from atommem.agent import Trajectory, run_episodes
from atommem.teacher import TeacherPolicy
from rl.batching import action_logprobs, collate
from rl.data import step_row


def guide_trajectories(cfg, model, tok, episodes: list, agent) -> list[Trajectory]:
    """The teacher's trajectory on each episode, every step's action carrying the token ids the policy would read
    and write and the current policy's log-probs of those tokens (at GRPO's temperature)."""
    trajs = run_episodes(episodes, TeacherPolicy(), agent)
    steps = [s for t in trajs for s in t.steps]
    rows = [step_row(cfg, tok, s) for s in steps]
    dev = model.device
    with torch.no_grad():
        for start in range(0, len(rows), cfg.rl_microbatch):
            mb = rows[start:start + cfg.rl_microbatch]
            idx, pos, targets, mask = (t.to(dev) for t in collate(mb))
            logp, _ = action_logprobs(model, idx, pos, targets, cfg.temperature)
            for b, (row, step) in enumerate(zip(mb, steps[start:start + cfg.rl_microbatch])):
                step.action.obs_ids = row.obs_ids
                step.action.action_ids = row.action_ids
                step.action.logprobs = logp[b, : len(row.action_ids)].float().tolist()
    return trajs
