"""GRPO's answer-step groups (rl/answer_branch.py): which states are branched, how the branches are scored, and
which rows come back."""
import pytest

from atommem.agent import AgentConfig, run_episodes
from atommem.policy import Action
from atommem.tasks.registry import generate
from atommem.tasks.scoring import score_answer
from atommem.teacher import TeacherPolicy
from rl import answer_branch
from rl.config import TrainConfig

pytestmark = pytest.mark.usefixtures("reference_kernels")


def test_answer_of_takes_the_first_answer_and_nothing_else():
    assert answer_branch.answer_of("<read> Mary</read><answer> kitchen</answer><answer> hall</answer>") == "kitchen"
    assert answer_branch.answer_of("<read> Mary</read>") == ""
    assert answer_branch.answer_of("garbage <answer") == ""


def test_answer_states_are_each_questions_final_answer_step():
    episodes = [generate("qa2", 400, 5, n_questions=2), generate("vt", 400, 6, n_questions=2)]
    trajs = run_episodes(episodes, TeacherPolicy(), AgentConfig(focus=True, answer_focus=True))
    states = answer_branch.answer_states(trajs)
    assert len(states) == 4
    for (obs, gold, family), (ep, q) in zip(states, [(e, q) for e in episodes for q in e.questions]):
        assert obs.phase == "answer" and obs.ask == q.text and gold == q.answer and family == ep.family
        # the teacher answers right from exactly this observation
        assert score_answer(answer_branch.answer_of(TeacherPolicy().act([obs])[0].text), q.answer, family) == 1.0


class _FakePolicy:
    """Greedy: the teacher. Sampling: the teacher's answer on even draws, a wrong one on odd draws for vt only."""

    def __init__(self, model, tok, sampling):
        self.greedy, self.calls = sampling.greedy, 0

    def act(self, observations):
        out = []
        for obs, action in zip(observations, TeacherPolicy().act(observations)):
            text = action.text
            if not self.greedy and obs.phase == "answer" and "variables" in obs.ask and self.calls % 2:
                text = "<answer> WRONG</answer>"
            self.calls += 1
            out.append(Action(text, [1, 2], [3, 4], [-0.1, -0.2]))
        return out


def test_answer_groups_keep_only_groups_whose_scores_differ(monkeypatch):
    monkeypatch.setattr(answer_branch, "ModelPolicy", _FakePolicy)
    cfg = TrainConfig.preset_named("smoke", families=("qa1", "vt"), rl_answer_tasks=4, group_size=4,
                                   train_tokens=300, focus=True, answer_focus=True)
    rows, stats = answer_branch.answer_groups(cfg, model=None, tok=None, it=0, tasks=list(range(4)))
    assert stats["answer_states"] == 4                      # one question per task, each answered by the teacher
    assert stats["answer_groups_informative"] == 2          # the two vt groups: half right, half wrong
    assert len(rows) == 8 and sorted(r[3] for r in rows) == [-0.5] * 4 + [0.5] * 4
    assert abs(stats["answer_reward"] - 0.75) < 1e-6        # qa1 all right, vt half right


def test_grpo_logs_answer_groups_and_updates_with_their_rows(tmp_path, smoke_data, monkeypatch):
    import torch
    import rl.grpo as grpo
    from rl.metrics import MetricsLogger, read_metrics
    from rl.pipeline import build_model
    cfg, tok, _ = smoke_data
    cfg = TrainConfig.preset_named("smoke", rl_iters=1, rl_tasks=2, group_size=2, rl_answer_tasks=3)
    seen = {}

    def fake_groups(cfg_, model, tok_, it, tasks):
        seen["tasks"] = tasks
        return [([1, 2, 3], [4, 5], [-0.7, -0.7], 1.0), ([1, 2, 3], [6, 5], [-0.7, -0.7], -1.0)], \
            {"answer_states": 1, "answer_groups_informative": 1, "answer_reward": 0.5}

    monkeypatch.setattr(grpo, "answer_groups", fake_groups)
    model = build_model(cfg, tok.vocab_size)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grpo.run_grpo(cfg, model, tok, tmp_path / "rl", MetricsLogger(tmp_path / "m.jsonl"), progress=False)
    log = [m for m in read_metrics(tmp_path / "m.jsonl") if "reward" in m]
    assert seen["tasks"] == [0, 1, 2] and log[0]["answer_rows"] == 2 and log[0]["answer_states"] == 1
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items()), "answer rows move the model"
