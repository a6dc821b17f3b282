"""Answer-step groups for GRPO (`rl_answer_tasks` > 0): the greedy policy's own answer states, each answered G times.

Why: a whole-episode group differs in reward only where some rollout goes wrong, and a policy trained on a perfect
teacher is sharp, so most groups are all-equal and a rollout costs a whole episode (bench/RESULTS.md, nineteenth
round). Many of the errors left are in the answer itself, with the memory right: a list of names copied from the
entries in view with one name skipped or repeated (twenty-first round). The answer step can be branched where it
is decided: each iteration runs `rl_answer_tasks` fresh training tasks once with the greedy policy (families in
turn, GRPO's lengths and question visibility), takes the observation of each question's final answer step (the one
whose action answered), samples `group_size` actions for it at GRPO's temperature, and scores each with the
episode's own scorer against that question's answer (the reward the whole episode would get for that question).
Groups whose scores differ give rows with advantage = score - group mean; the rest are skipped.

Departure, said plainly: a branch is one step. A sampled action that reads instead of answering would, in the
agent, read and answer on a later step; here it scores as the empty answer. The states are the greedy policy's,
not the sampling one's, so the branch starts where the deployed policy actually is. Knows the agent, the policy
and the scorers; the update is GRPO's (rl/grpo.py).
"""
from __future__ import annotations

import random

import torch

from atommem.agent import run_episodes
from atommem.model_policy import ModelPolicy, SamplingConfig
from atommem.ops import Answer, parse_ops
from atommem.tasks.registry import generate
from atommem.tasks.scoring import partial_score, score_answer
from rl.advantages import group_advantages
from rl.data import agent_config, decoding, haystack_of, training_seed


def answer_of(text: str) -> str:
    """The answer an action gives: its first answer operation's text, "" when it has none."""
    for op in parse_ops(text).ops:
        if isinstance(op, Answer):
            return op.text
    return ""


def answer_states(trajectories) -> list[tuple]:
    """(observation, gold answer, family) for the final step of every question that the action answered."""
    states = []
    for traj in trajectories:
        q = 0
        for step in traj.steps:
            if step.phase != "answer" or not step.advanced:
                continue
            if any(isinstance(op, Answer) for op in step.ops) and q < len(traj.episode.questions):
                states.append((step.observation, traj.episode.questions[q].answer, traj.episode.family))
            q += 1
    return states


def answer_groups(cfg, model, tok, it: int, tasks: list[int]) -> tuple[list[tuple], dict]:
    """Rows (obs_ids, action_ids, logprobs, advantage) of iteration `it`'s informative answer groups, from the
    answer tasks numbered `tasks` (this process's share of 0 .. rl_answer_tasks - 1), and their statistics."""
    rng = random.Random(f"answer-{cfg.seed}-{it}")
    top = cfg.rl_tokens or cfg.train_tokens
    lengths = [rng.randint(top // 2, top) for _ in range(cfg.rl_answer_tasks)]
    visible = rng.random() >= cfg.hidden_question_frac
    hay = haystack_of(cfg)
    episodes = []
    for t in tasks:
        family = cfg.families[(it * cfg.rl_answer_tasks + t) % len(cfg.families)]
        episodes.append(generate(family, lengths[t], training_seed(cfg, 93, it * cfg.rl_answer_tasks + t),
                                 haystack=hay))
    greedy = ModelPolicy(model, tok, decoding(cfg, cfg.rl_constrained))
    trajs = run_episodes(episodes, greedy, agent_config(cfg, visible))
    states = answer_states(trajs)
    stats = {"answer_states": len(states), "answer_groups_informative": 0, "answer_reward": 0.0}
    if not states:
        return [], stats
    sampler = ModelPolicy(model, tok, SamplingConfig(greedy=False, temperature=cfg.temperature,
                                                    max_action_tokens=cfg.max_action_tokens,
                                                    constrained=cfg.rl_constrained,
                                                    seed=cfg.seed * 1000 + it + 500_009 + (tasks[0] if tasks else 0)))
    G = cfg.group_size
    actions = sampler.act([obs for obs, _, _ in states for _ in range(G)])
    score = partial_score if cfg.rl_reward == "partial" else score_answer
    rewards = torch.tensor([score(answer_of(actions[i * G + g].text), gold, family)
                            for i, (_, gold, family) in enumerate(states) for g in range(G)], dtype=torch.float32)
    groups = torch.arange(len(states)).repeat_interleave(G)
    adv, valid = group_advantages(rewards, groups, cfg.normalize_std)
    rows = [(a.obs_ids, a.action_ids, a.logprobs, float(ad))
            for a, ad, ok in zip(actions, adv.tolist(), valid.tolist()) if ok and a.action_ids]
    stats["answer_groups_informative"] = int(valid.view(-1, G)[:, 0].sum())
    stats["answer_reward"] = rewards.mean().item()
    return rows, stats
