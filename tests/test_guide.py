"""Teacher-guided GRPO groups (rl/guide.py): the teacher's steps as policy rows, and where they join the groups."""
import math

import pytest
import torch

from atommem.agent import run_episodes
from atommem.observation import END_TOKEN
from atommem.policy import Action
from atommem.tasks.registry import generate
from atommem.teacher import TeacherPolicy
from rl.batching import action_logprobs, collate
from rl.config import TrainConfig
from rl.data import agent_config
from rl.guide import guide_trajectories

pytestmark = pytest.mark.usefixtures("reference_kernels")


def test_guide_steps_carry_the_teachers_tokens_and_the_policys_logprobs(smoke_data):
    from rl.pipeline import build_model
    cfg, tok, _ = smoke_data
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "temperature": 1.5, "rl_microbatch": 5})
    torch.manual_seed(0)
    model = build_model(cfg, tok.vocab_size).eval()
    episodes = [generate("qa1", 250, 11), generate("kv", 250, 12)]
    trajs = guide_trajectories(cfg, model, tok, episodes, agent_config(cfg))
    plain = run_episodes(episodes, TeacherPolicy(), agent_config(cfg))
    assert [t.reward for t in trajs] == [t.reward for t in plain] == [1.0, 1.0]
    steps = [s for t in trajs for s in t.steps]
    assert len(steps) > 5 and any(s.action.text for s in steps)
    for s in steps:
        assert s.action.action_ids[-1] == tok.token_id(END_TOKEN)
        assert tok.decode(s.action.action_ids[:-1]) == s.action.text
        assert s.action.obs_ids == tok.encode(s.text)[-(cfg.max_seq_len - cfg.max_action_tokens):]
        assert len(s.action.logprobs) == len(s.action.action_ids) and all(lp < 0 for lp in s.action.logprobs)
    # each log-prob is the policy's at GRPO's temperature, row by row (not batched with others)
    for s in steps[:4]:
        idx, pos, targets, _ = collate([s.action])
        with torch.no_grad():
            logp, _ = action_logprobs(model, idx, pos, targets, cfg.temperature)
        assert logp[0].tolist() == pytest.approx(s.action.logprobs, abs=1e-4)


class _FailingPolicy:
    """Every rollout answers wrong: a group of the policy alone is all-equal."""

    def __init__(self, model, tok, sampling):
        pass

    def act(self, observations):
        return [Action("<answer> nowhere</answer>" if o.phase == "answer" else "", [1, 2], [3], [math.log(0.5)])
                for o in observations]


def test_guides_join_their_group_and_make_an_all_wrong_group_informative(monkeypatch):
    import rl.grpo as grpo
    from rl.grpo import rows_from
    monkeypatch.setattr(grpo, "ModelPolicy", _FailingPolicy)

    built = []

    def fake_guides(cfg, model, tok, episodes, agent):
        built.append(len(episodes))
        out = run_episodes(episodes, TeacherPolicy(), agent)
        for t in out:
            for s in t.steps:
                s.action.obs_ids, s.action.action_ids, s.action.logprobs = [1, 2], [7], [math.log(0.25)]
        out[1].scores = [0.0]                      # the teacher fails task 1: it must not join that group
        return out

    monkeypatch.setattr(grpo, "guide_trajectories", fake_guides)
    cfg = TrainConfig.preset_named("smoke", families=("qa1",), rl_tasks=3, group_size=2, rl_guide=True)
    trajs, groups = grpo.rollout_batch(cfg, model=None, tok=None, it=0)
    assert groups == [0, 0, 1, 1, 2, 2, 0, 2]
    assert [t.reward for t in trajs] == [0.0] * 6 + [1.0, 1.0]
    assert trajs[6].episode is trajs[0].episode and trajs[7].episode is trajs[4].episode
    rows, rewards, skipped, _ = rows_from(trajs, groups, cfg)
    assert skipped == 1                            # task 1: its two rollouts fail and no guide joined
    teacher_rows = [r for r in rows if r.guide]
    assert teacher_rows and all(r.action_ids == [7] and r.advantage == pytest.approx(2 / 3) for r in teacher_rows)
    assert all(r.advantage == pytest.approx(-1 / 3) for r in rows if not r.guide)
    trajs, groups = grpo.rollout_batch(TrainConfig.preset_named("smoke", families=("qa1",), rl_tasks=3,
                                                                group_size=2), model=None, tok=None, it=0)
    assert built == [3] and len(trajs) == 6 and groups == [0, 0, 1, 1, 2, 2]   # without rl_guide: no guide


def test_grpo_with_guides_updates_an_untrained_policy_from_the_teachers_rows(tmp_path, smoke_data):
    import rl.grpo as grpo
    from rl.metrics import MetricsLogger, read_metrics
    from rl.pipeline import build_model
    cfg, tok, _ = smoke_data
    cfg = TrainConfig.preset_named("smoke", rl_iters=1, rl_tasks=2, group_size=2, rl_guide=True,
                                   max_action_tokens=24)
    torch.manual_seed(0)
    model = build_model(cfg, tok.vocab_size)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grpo.run_grpo(cfg, model, tok, tmp_path / "rl", MetricsLogger(tmp_path / "m.jsonl"), progress=False)
    log = [m for m in read_metrics(tmp_path / "m.jsonl") if "reward" in m]
    # an untrained policy fails every task, so only the teachers' runs make the groups informative
    assert log[0]["reward"] == 0.0 and log[0]["guides"] == 2 and log[0]["skipped_groups"] == 0
    assert log[0]["guide_rows"] > cfg.rl_max_rows        # the teacher's rows all join, beyond the rollouts' quota
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
