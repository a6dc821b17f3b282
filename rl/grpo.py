"""GRPO on the final answer's reward, written here (no trainer library).

Each iteration draws `rl_tasks` episodes and runs each `group_size` times with the current policy, sampling at
`temperature`, in one lockstep batch with the KV cache (on a CPU, one per worker process: `workers`,
atommem/parallel.py). The sampled token ids and their log-probs are kept as they were sampled. For episode i
of group g with reward r_i (mean exact match over its questions):

    A_i = r_i - mean_{j in g} r_j                   (divided by the group's std only with normalize_std)

and A_i is put on every generated token of every step of episode i; each step is its own row. Groups whose rewards
are all equal carry no signal and are skipped (counted). Loss over the sampled rows' action tokens:

    L = - token_mean( max( min(rho A, clip(rho, 1 - 0.2, 1 + 0.28) A), 3 A ) if A < 0 else min(...) )
        + kl_coef * KL_k3(pi || pi_ref) - entropy_coef * H(pi),   rho = pi(a | o) / pi_old(a | o)

(rl/losses.py). One optimizer step per iteration, or `rl_minibatches` steps on disjoint slices of the rows (the
ratio moves off 1 after the first, so the clip acts), repeated for `ppo_epochs` passes.
The optimizer is `rl_optimizer`: AdamW, or plain SGD. A dozen updates is all a CPU budget affords, and from a fresh
state Adam's first steps move every parameter by about lr * sign(gradient): the parameters that carry the reward's
signal and the many that carry only sampling noise alike. SGD moves each in proportion to its gradient
(bench/RESULTS.md, eleventh round, measures both).
Departures from the paper, said plainly: at most `rl_max_rows` rows per update are used, drawn uniformly from the
iteration's steps (an unbiased estimate of the same objective, to bound the cost on a CPU); the reference model for
the KL term is the SFT checkpoint and is only built when kl_coef > 0; with `rl_sure_prob` p > 0, steps whose
every sampled token had probability >= p are left out before that draw (their gradient is at most 1 - p of a
token's; most steps of an episode are such certain "nothing to do" or read steps), so the rows drawn are the ones
that carry the signal; with `rl_reward="partial"` a list answer (vt) earns the F1 of its names instead of 0 or
1 (the evaluation keeps exact match); `rl_tokens` sets the tasks' context length apart from SFT's; with
`rl_screen` k > 1, each task is the one of k candidates the greedy policy scores lowest (after DAPO's dynamic
sampling, which keeps drawing until groups differ: here the draw is screened once, at the cost of k greedy
episodes per task, so that rollouts go where the policy still errs); with `rl_focus`, each iteration's task
families are drawn in proportion to how often each family's groups have been informative so far (task_families),
not in turn; with `rl_pool` n > 0, the greedy policy first runs n fresh training tasks once, and every
iteration's tasks come from those it fails (screen_pool; the pool is saved with each checkpoint), because a task the
greedy policy solves almost never gives a group whose rewards differ; with `rl_write_penalty` p > 0, a step whose
entries are wrong when the agent leaves its chunk (atommem.step_errors.wrong_writes: the true state replayed from
the episode's facts, a reward the environment can compute, no teacher involved) has p per wrong entry taken off
its advantage, in every group, informative or not: a step-level signal where the answer's reward is all-equal;
with `rl_answer_tasks` n > 0, n more fresh tasks per iteration run greedily and each question's answer step is
answered group_size times (rl/answer_branch.py), a one-step branch where a whole episode is the paper's group;
with `rl_guide`, the scripted teacher's trajectory of each task joins its group (rl/guide.py), so a group whose
rollouts all fail still has one success to learn from; with `rl_credit="divergence"`, an episode's advantage goes
only on the steps where it first differs from a sibling with another reward (rl/divergence.py).
Data-parallel (rl/distributed.py): each process rolls out whole groups of its share of the tasks, keeps rows of its
own groups, and divides its token loss by the global token count; the summed gradients are the one-process ones
(with `rl_minibatches` > 1, each process slices its own rows, so the slices differ from one process's).
"""
from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from atommem.model_policy import ModelPolicy, SamplingConfig
from atommem.parallel import run_episodes
from atommem.step_errors import wrong_writes
from atommem.tasks.registry import generate
from atommem.tasks.scoring import partial_score
from rl import distributed as dist
from rl.advantages import group_advantages
from rl.answer_branch import answer_groups
from rl.batching import action_logprobs, collate
from rl.data import agent_config, decoding, episode_workers, haystack_of, training_seed
from rl.divergence import check_credit, divergence_steps
from rl.guide import guide_trajectories
from rl.losses import entropy_bonus, kl_k3, ppo_clip_loss
from rl.sft import check_finite, make_optimizer
from rl.train_state import latest_checkpoint, load_train_state, save_checkpoint


@dataclass
class RLRow:
    obs_ids: list[int]
    action_ids: list[int]
    old_logprobs: list[float]
    advantage: float
    guide: bool = False        # a step of the teacher's trajectory (rl_guide), not of a rollout


def task_families(cfg, it: int, seen: dict | None = None) -> list[str]:
    """The family of each of iteration `it`'s rl_tasks tasks: in turn, or with `rl_focus` and `seen` (family ->
    [informative groups, groups] so far), drawn with weight (informative + 1) / (groups + 2), so that rollouts go
    where rewards still differ within a group (a family the policy always or never solves teaches nothing)."""
    task_it = 0 if cfg.rl_fixed_tasks else it
    if not (cfg.rl_focus and seen):
        return [cfg.families[(task_it * cfg.rl_tasks + t) % len(cfg.families)] for t in range(cfg.rl_tasks)]
    weights = [(seen.get(f, [0, 0])[0] + 1) / (seen.get(f, [0, 0])[1] + 2) for f in cfg.families]
    return random.Random(f"focus-{cfg.seed}-{task_it}").choices(cfg.families, weights, k=cfg.rl_tasks)


def screen_pool(cfg, model, tok) -> list[list]:
    """The task pool of `rl_pool` = n: n fresh training tasks (families in turn, lengths as GRPO's, the questions
    visible in every other one), each run once by the greedy policy; the ones it does not solve, shuffled, as
    [family, length, seed, visible] (an episode is a function of the first three, so the pool is saved in a
    checkpoint as these few numbers). Every process screens the whole pool (the same greedy answers)."""
    rng = random.Random(cfg.seed * 7 + 99_991)
    hay = haystack_of(cfg)
    top = cfg.rl_tokens or cfg.train_tokens
    cands = [[cfg.families[i % len(cfg.families)], rng.randint(top // 2, top), training_seed(cfg, 92, i), i % 2 == 0]
             for i in range(cfg.rl_pool)]
    greedy = ModelPolicy(model, tok, decoding(cfg, cfg.rl_constrained))
    failed = []
    for visible in (True, False):
        mine = [c for c in cands if c[3] == visible]
        trajs = run_episodes([generate(f, n, s, haystack=hay) for f, n, s, _ in mine], greedy,
                             agent_config(cfg, visible), episode_workers(cfg))
        failed += [c for c, tr in zip(mine, trajs) if episode_reward(tr, cfg.rl_reward) < 1.0]
    rng.shuffle(failed)
    return failed


def pool_tasks(cfg, pool: list[list], it: int) -> tuple[list[list], bool]:
    """Iteration `it`'s rl_tasks tasks from the pool: the iteration's question visibility is drawn as for fresh
    tasks (an empty side takes the other side's); of that visibility, the families the pool holds in turn, and each
    family's tasks in turn, cycling. Families take equal turns however few of their tasks failed: measured, a pool
    drawn in proportion (mostly vt and qa3) raised those and let qa2, with no rollouts of its own, fall."""
    visible = random.Random(cfg.seed * 7 + it).random() >= cfg.hidden_question_frac
    side = [c for c in pool if c[3] == visible] or pool
    by_family = [[c for c in side if c[0] == f] for f in dict.fromkeys(c[0] for c in side)]
    out = []
    for t in range(it * cfg.rl_tasks, (it + 1) * cfg.rl_tasks):
        tasks = by_family[t % len(by_family)]
        out.append(tasks[t // len(by_family) % len(tasks)])
    return out, side[0][3]


def rollout_batch(cfg, model, tok, it: int, families: list[str] | None = None, pool: list[list] | None = None):
    """G rollouts of each of rl_tasks fresh training episodes (this process's share of them, whole groups);
    returns (trajectories, group ids). With rl_screen = k > 1, each task is the one of k fresh candidates (same
    family and length) that the greedy policy scores lowest (the first of equals). With a non-empty `pool`
    (rl_pool, screen_pool), the tasks are the pool's instead of fresh ones. With rl_guide, the teacher's
    trajectories of the tasks it solves follow the rollouts, one per group at most (rl/guide.py)."""
    task_it = 0 if cfg.rl_fixed_tasks else it      # rl_fixed_tasks: iteration 0's tasks, sampled afresh
    rng = random.Random(cfg.seed * 7 + task_it)
    hay = haystack_of(cfg)
    k = max(1, cfg.rl_screen) if not pool else 1
    candidates, groups = [], []
    mine = dist.shard(range(cfg.rl_tasks))
    families = families or task_families(cfg, it)
    top = cfg.rl_tokens or cfg.train_tokens
    pooled, visible = pool_tasks(cfg, pool, task_it) if pool else (None, None)
    for t in range(cfg.rl_tasks):
        family = families[t]
        length = rng.randint(top // 2, top)
        if t not in mine:
            continue
        task = task_it * cfg.rl_tasks + t
        if pooled:
            family, length, seed, _ = pooled[t]
            candidates.append([generate(family, length, seed, haystack=hay)])
        else:
            seeds = [training_seed(cfg, 90, task)] + [training_seed(cfg, 91, task * k + c) for c in range(1, k)]
            candidates.append([generate(family, length, seed, haystack=hay) for seed in seeds])
        groups += [t] * cfg.group_size
    if visible is None:
        visible = rng.random() >= cfg.hidden_question_frac
    agent = agent_config(cfg, visible)
    if k > 1:
        greedy = ModelPolicy(model, tok, decoding(cfg, cfg.rl_constrained))
        scores = [episode_reward(tr, cfg.rl_reward)
                  for tr in run_episodes([ep for cands in candidates for ep in cands], greedy, agent,
                                         episode_workers(cfg))]
        chosen = [cands[min(range(k), key=lambda c: scores[i * k + c])] for i, cands in enumerate(candidates)]
    else:
        chosen = [cands[0] for cands in candidates]
    policy = ModelPolicy(model, tok, SamplingConfig(greedy=False, temperature=cfg.temperature,
                                                   max_action_tokens=cfg.max_action_tokens,
                                                   constrained=cfg.rl_constrained,
                                                   seed=cfg.seed * 1000 + it + mine[0] * 1_000_003))
    trajs = run_episodes([ep for ep in chosen for _ in range(cfg.group_size)], policy, agent, episode_workers(cfg))
    if cfg.rl_guide:                     # rl/guide.py: the teacher's run joins its group where it solves the task
        guides = guide_trajectories(cfg, model, tok, chosen, agent)
        solved = [(g, t) for g, t in zip(guides, groups[:: cfg.group_size]) if g.reward >= 1.0]
        trajs += [g for g, _ in solved]
        groups = groups + [t for _, t in solved]
    return trajs, groups


def rollout_count(groups, cfg) -> int:
    """How many of rollout_batch's trajectories are the policy's rollouts: group_size per group, first; rl_guide's
    teacher runs, if any, follow them."""
    return len(set(groups)) * cfg.group_size


REWARDS = ("exact", "partial")


def check_reward(kind: str) -> None:
    if kind not in REWARDS:
        raise ValueError(f"rl_reward must be one of {', '.join(REWARDS)}, got {kind!r}")


def episode_reward(traj, kind: str) -> float:
    """The reward GRPO learns from: the episode's own (mean exact match over its questions), or with "partial"
    the mean of `partial_score` over them (list answers earn the F1 of their words)."""
    check_reward(kind)
    if kind == "exact":
        return traj.reward
    qs = traj.episode.questions
    scores = [partial_score(a, q.answer, traj.episode.family) for a, q in zip(traj.answers, qs)]
    return sum(scores) / len(scores) if scores else 0.0


def rows_from(trajectories, groups, cfg, wrong: list[list[int]] | None = None):
    """(rows of the informative groups, rewards, skipped groups, sure rows left out). With rl_write_penalty p > 0,
    a step that leaves n wrong entries (atommem.step_errors.wrong_writes) has p * n taken off its advantage, and
    such steps are rows even in a skipped group (`wrong`: each trajectory's wrong_writes, if already counted).
    Trajectories past the groups' rollouts (rollout_count) are rl_guide's teacher runs: their rows are marked
    `guide`. With rl_credit="divergence", an informative group's rows are only its trajectories' credited steps
    (rl/divergence.py divergence_steps)."""
    rewards = torch.tensor([episode_reward(t, cfg.rl_reward) for t in trajectories], dtype=torch.float32)
    adv, valid = group_advantages(rewards, torch.tensor(groups), cfg.normalize_std)
    check_credit(cfg.rl_credit)
    credited = divergence_steps(trajectories, groups, rewards.tolist()) if cfg.rl_credit == "divergence" else None
    sure = math.log(cfg.rl_sure_prob) if cfg.rl_sure_prob > 0 else math.inf
    rows, n_sure = [], 0
    n_own = rollout_count(groups, cfg)
    if cfg.rl_write_penalty > 0 and wrong is None:
        wrong = [wrong_writes(t) for t in trajectories]
    for i, (traj, a, ok) in enumerate(zip(trajectories, adv.tolist(), valid.tolist())):
        if not ok and cfg.rl_write_penalty <= 0:
            continue
        step_wrong = wrong[i] if cfg.rl_write_penalty > 0 else [0] * len(traj.steps)
        for j, (s, w) in enumerate(zip(traj.steps, step_wrong)):
            if not s.action.action_ids or not (ok or w):
                continue
            if credited is not None and j not in credited[i] and not w:
                continue
            if min(s.action.logprobs) >= sure:  # every token all but certain: next to no gradient
                n_sure += 1
                continue
            rows.append(RLRow(s.action.obs_ids, s.action.action_ids, s.action.logprobs,
                              (a if ok else 0.0) - cfg.rl_write_penalty * w, guide=i >= n_own))
    n_groups = len(set(groups))
    skipped = n_groups - len({g for g, ok in zip(groups, valid.tolist()) if ok})
    return rows, rewards, skipped, n_sure


def _count_groups(seen: dict, families: list[str], rewards: list[float], groups) -> None:
    """Add this iteration's groups to `seen` (family -> [informative, groups]), over every process."""
    by_task: dict[int, set] = {}
    for reward, g in zip(rewards, groups):
        by_task.setdefault(g, set()).add(reward)
    for family in sorted(set(families)):
        tasks = [t for t, f in enumerate(families) if f == family]
        informative = sum(len(by_task[t]) > 1 for t in tasks if t in by_task)
        informative = sum(dist.all_gather_ints(informative))
        old = seen.get(family, [0, 0])
        seen[family] = [old[0] + informative, old[1] + len(tasks)]


# over processes; the rest: means
SUMMED = ("skipped_groups", "rows", "sure_rows", "guides", "guide_rows", "agent_steps_per_s", "tokens_per_s",
          "answer_states", "answer_groups_informative", "answer_rows")


def _pad(values: list[list[float]], A: int) -> torch.Tensor:
    out = torch.zeros(len(values), A)
    for b, v in enumerate(values):
        out[b, : len(v)] = torch.tensor(v)
    return out


def policy_update(cfg, model, ref_model, opt, rows: list[RLRow]) -> dict:
    """`ppo_epochs` passes over the rows, each pass `rl_minibatches` optimizer steps on disjoint slices of them."""
    n_mb = max(1, cfg.rl_minibatches)   # not clamped to len(rows): every process takes the same number of steps
    bounds = [len(rows) * i // n_mb for i in range(n_mb + 1)]
    slices = [rows[bounds[i]:bounds[i + 1]] for i in range(n_mb)]
    n_all = sum(len(r.action_ids) for r in rows)
    denoms = [sum(len(r.action_ids) for r in sl) for sl in slices]
    if dist.world() > 1:   # rows are this process's share: the token mean is over every process's tokens
        n_all = sum(dist.all_gather_ints(n_all))
        denoms = [sum(dist.all_gather_ints(d)) for d in denoms]
    dev = model.device
    stats_sum: dict = {}
    for _ in range(cfg.ppo_epochs):
        for part, n_tokens in zip(slices, denoms):
            opt.zero_grad(set_to_none=True)
            for start in range(0, len(part), cfg.rl_microbatch):
                mb = part[start:start + cfg.rl_microbatch]
                idx, pos, targets, mask = (t.to(dev) for t in collate(mb))
                with dist.autocast(dev):
                    logp, ent = action_logprobs(model, idx, pos, targets, cfg.temperature, with_entropy=True)
                old = _pad([r.old_logprobs for r in mb], logp.shape[1]).to(dev)
                adv = torch.tensor([r.advantage for r in mb]).to(dev)
                loss, stats = ppo_clip_loss(logp, old, adv, mask, cfg.clip_low, cfg.clip_high, cfg.dual_clip,
                                            denom=max(n_tokens, 1))
                if cfg.kl_coef > 0:
                    with torch.no_grad(), dist.autocast(dev):
                        ref_logp, _ = action_logprobs(ref_model, idx, pos, targets, cfg.temperature)
                    kl = kl_k3(logp, ref_logp, mask, denom=max(n_tokens, 1))
                    loss = loss + cfg.kl_coef * kl
                    stats["kl_ref"] = kl.item() * n_tokens / max(int(mask.sum()), 1)
                ent_mean = entropy_bonus(ent.detach(), mask).item()
                if cfg.entropy_coef > 0:
                    loss = loss - cfg.entropy_coef * entropy_bonus(ent, mask, denom=max(n_tokens, 1))
                check_finite(loss, "rl", 0)
                loss.backward()
                w = int(mask.sum()) / max(n_all, 1)
                for k, v in {**stats, "entropy": ent_mean}.items():
                    stats_sum[k] = stats_sum.get(k, 0.0) + w * float(v) / cfg.ppo_epochs
            dist.sum_gradients(model)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).item()
            opt.step()
    stats_sum = dist.reduce_metrics(stats_sum, sum_keys=tuple(stats_sum))   # token-weighted: sum over processes
    stats_sum["grad_norm"] = grad_norm
    return stats_sum


def run_grpo(cfg, model, tok, ckpt_dir, logger, evaluate=None, resume: bool = False, progress: bool = True):
    check_reward(cfg.rl_reward)                      # before any rollout, not at the first reward
    check_credit(cfg.rl_credit)
    if cfg.rl_tasks < dist.world():
        raise ValueError(f"rl_tasks={cfg.rl_tasks} < {dist.world()} processes: every process needs a whole group")
    opt = make_optimizer(model, cfg.rl_lr, 0.0, cfg.rl_optimizer)
    ref_model = copy.deepcopy(model).eval() if cfg.kl_coef > 0 else None
    it = 0
    seen: dict = {}                                   # family -> [informative groups, groups], for rl_focus
    pool: list[list] = []                            # rl_pool: the tasks the greedy SFT policy fails
    last = latest_checkpoint(ckpt_dir) if resume else None
    if last is not None:
        tensors, loop = load_train_state(last, opt)
        model.load_state_dict(tensors)
        it = loop["step"]
        seen = loop.get("family_groups", {})
        pool = loop.get("pool", [])
    elif cfg.rl_pool > 0:
        t0 = time.time()
        model.eval()
        pool = screen_pool(cfg, model, tok)
        if dist.is_main():
            logger.log("rl", 0, pool_tasks=len(pool), pool_greedy_accuracy=1 - len(pool) / cfg.rl_pool,
                       pool_screen_s=time.time() - t0)
            if not pool:
                print("[grpo] the greedy policy solves every pool task: fresh tasks instead", flush=True)
    bar = tqdm(total=cfg.rl_iters, initial=it, desc="grpo", disable=not progress or not dist.is_main(),
               dynamic_ncols=True)
    while it < cfg.rl_iters:
        t0 = time.time()
        model.eval()
        families = task_families(cfg, it, seen)
        trajs, groups = rollout_batch(cfg, model, tok, it, families, pool)
        t_roll = time.time() - t0
        n_roll = rollout_count(groups, cfg)                 # the policy's rollouts; the teacher's guides follow
        wrong = [wrong_writes(t) for t in trajs]
        rows, rewards, skipped, n_sure = rows_from(trajs, groups, cfg, wrong)
        _count_groups(seen, families, rewards[:n_roll].tolist(), groups[:n_roll])
        own = trajs[:n_roll]
        metrics = {"reward": rewards[:n_roll].mean().item(), "skipped_groups": skipped, "rows": len(rows),
                   "sure_rows": n_sure, "guides": len(trajs) - n_roll,
                   "rollout_s": t_roll, "agent_steps_per_s": sum(len(t.steps) for t in own) / t_roll,
                   "wrong_writes": sum(map(sum, wrong[:n_roll])) / n_roll}
        if cfg.rl_reward != "exact":
            metrics["reward/exact"] = sum(t.reward for t in own) / n_roll
        for key in own[0].stats:
            metrics[key] = sum(t.stats[key] for t in own) / n_roll
        answer_rows = []
        if cfg.rl_answer_tasks > 0:                   # rl/answer_branch.py: its rows come on top of the quota
            raw, answer_stats = answer_groups(cfg, model, tok, it, list(dist.shard(range(cfg.rl_answer_tasks))))
            answer_rows = [RLRow(*r) for r in raw]
            metrics.update(answer_stats, answer_rows=len(answer_rows))
        guide_rows = [r for r in rows if r.guide]                # rl_guide: every teacher row joins the update
        rows = [r for r in rows if not r.guide]
        metrics["guide_rows"] = len(guide_rows)
        counts = dist.all_gather_ints(len(rows))
        if sum(counts) or sum(dist.all_gather_ints(len(answer_rows) + len(guide_rows))):
            random.Random(f"rows-{cfg.seed}-{it}").shuffle(rows)   # a function of the iteration: resumable
            rows = rows[: dist.row_quota(counts, cfg.rl_max_rows)] + guide_rows + answer_rows
            model.train()
            t1 = time.time()
            metrics.update(policy_update(cfg, model, ref_model, opt, rows))
            n_tok = sum(len(r) for r in (r.obs_ids + r.action_ids for r in rows))
            metrics["tokens_per_s"] = n_tok * cfg.ppo_epochs / (time.time() - t1)
            model.eval()
        metrics = dist.reduce_metrics(metrics, weight=len(trajs), sum_keys=SUMMED)
        it += 1
        if not dist.is_main():
            continue
        if evaluate is not None and (it % max(1, cfg.rl_iters // 4) == 0 or it == cfg.rl_iters):
            metrics.update(evaluate(model))
        logger.log("rl", it, **metrics)
        bar.update(1)
        bar.set_postfix(reward=f"{metrics['reward']:.3f}", skipped=metrics["skipped_groups"])
        if it % max(1, cfg.rl_iters // 4) == 0 or it == cfg.rl_iters:
            save_checkpoint(ckpt_dir, it, model_tensors=model.state_dict(), optimizer=opt,
                            loop_state={"stage": "rl", "step": it, "family_groups": seen, "pool": pool})
    bar.close()
    dist.barrier()
    model.eval()
    return model
