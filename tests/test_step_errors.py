"""Teacher-forced step errors: zero for the teacher itself, every non-empty step for a policy that does nothing."""
from click.testing import CliRunner

from atommem.agent import AgentConfig
from atommem.cli import main
from atommem.evaluate import episodes_for
from atommem.policy import Action
from atommem.step_errors import step_errors
from atommem.teacher import TeacherPolicy


class DoNothing:
    def act(self, observations):
        return [Action(text="") for _ in observations]


def test_teacher_has_no_step_errors():
    cells = episodes_for(["qa1", "kv"], [256], 3, 77)
    report = step_errors(TeacherPolicy(), cells, AgentConfig())
    assert sum(report.total.values()) > 20
    assert report.rate() == 0.0 and not report.examples


def test_idle_policy_is_wrong_exactly_where_the_teacher_acts():
    cells = episodes_for(["kv"], [256], 3, 78)
    report = step_errors(DoNothing(), cells, AgentConfig())
    kinds = {kind for _, kind in report.total}
    assert {"read:none", "read:create", "answer:read", "answer:answer"} <= kinds
    for key, n in report.total.items():
        assert report.wrong[key] == (0 if key[1] == "read:none" else n), key
    assert report.examples[("kv", "answer:answer")][0][1] == ""
    assert 0.0 < report.rate("kv") < 1.0
    assert "| kv | read:create |" in report.markdown()


def test_eval_cli_prints_step_errors():
    res = CliRunner().invoke(main, ["eval", "--policy", "teacher", "--task", "qa1", "--lengths", "256", "--n", "2",
                                    "--step-errors"])
    assert res.exit_code == 0, res.output
    assert "teacher-forced steps that differ from the teacher: 0.000" in res.output


class CorruptFirstWrite:
    """The teacher, except that the first entry it writes gets the value `nowhere`."""

    def __init__(self):
        self.teacher, self.corrupted = TeacherPolicy(), None

    def act(self, observations):
        import re
        actions = self.teacher.act(observations)
        for a in actions:
            m = re.search(r"<(create|update)>(?:\s*\d+:)?\s*([^:<]+):\s*([^<]*)</\1>", a.text)
            if m and self.corrupted is None:
                self.corrupted = f"{m.group(2).strip()}: nowhere"
                a.text = a.text[:m.start(3)] + "nowhere" + a.text[m.end(3):]
        return actions


def test_wrong_writes_charge_only_the_step_that_left_an_entry_wrong():
    from atommem.agent import run_episodes
    from atommem.step_errors import wrong_writes
    from atommem.tasks.registry import generate
    eps = [generate(f, 512, s) for f in ("qa1", "qa2", "qa3", "vt", "kv") for s in range(12)]
    teacher = run_episodes(eps, TeacherPolicy(), AgentConfig())
    solved = [t for t in teacher if t.reward == 1.0]
    assert len(solved) >= 55 and all(sum(wrong_writes(t)) == 0 for t in solved)

    def rewrites(t):   # steps of one chunk that write the same key twice (the later write corrects the earlier)
        keys = {}
        for s in t.steps:
            for o in s.ops:
                if hasattr(o, "text") and ":" in o.text:
                    keys.setdefault((tuple(s.observation.chunk), o.text.split(":")[0]), []).append(o.text)
        return any(len(v) > 1 for v in keys.values())
    assert any(rewrites(t) for t in solved)   # so "not charged" above was tested, not vacuous
    for ep in eps[:12]:                       # qa1: the first entry written stays as written until the chunk ends
        policy = CorruptFirstWrite()
        traj = run_episodes([ep], policy, AgentConfig())[0]
        wrong = wrong_writes(traj)
        assert sum(wrong) == 1, (policy.corrupted, wrong)
        assert any(getattr(o, "text", None) == policy.corrupted for o in traj.steps[wrong.index(1)].ops)


def test_divergence_kind_names_how_two_actions_differ():
    from atommem.step_errors import divergence_kind
    assert divergence_kind("<read> Mary</read>", " <read> Mary</read> ") is None
    assert divergence_kind("<read> Mary</read>", "") == "extra"
    assert divergence_kind("", "<create> Mary: garden</create>") == "missed"
    assert divergence_kind("<create> Mary: garden</create>", "<update> 1: Mary: garden</update>") == "operation"
    assert divergence_kind("<create> Mary: garden</create><read> John</read>",
                           "<create> Mary: garden</create>") == "operation"
    assert divergence_kind("<create> Mary: gardn</create>", "<create> Mary: garden</create>") == "copy"


class WrongAnswers:
    """The teacher, except that every answer is `nowhere`."""

    def __init__(self):
        self.teacher = TeacherPolicy()

    def act(self, observations):
        import re
        actions = self.teacher.act(observations)
        for a in actions:
            a.text = re.sub(r"<answer>[^<]*</answer>", "<answer> nowhere</answer>", a.text)
        return actions


def _run(policy, cells):
    from atommem.agent import run_episodes
    return run_episodes([c[2] for c in cells], policy, AgentConfig())


def test_first_divergences_find_the_step_that_went_wrong():
    from atommem.step_errors import first_divergences
    cells = episodes_for(["qa1", "kv"], [256], 3, 79)
    assert not first_divergences(_run(TeacherPolicy(), cells)).first      # every episode right: nothing to explain
    idle = first_divergences(_run(DoNothing(), cells))
    assert sum(idle.failed.values()) == 6
    assert set(idle.first) == {("qa1", "read", "missed"), ("kv", "read", "missed")}
    assert idle.examples[("kv", "read", "missed")][0][1] == ""
    wrong = first_divergences(_run(WrongAnswers(), cells), labels=["a"] * 3 + ["b"] * 3)
    assert wrong.first == {("a", "answer", "copy"): 3, ("b", "answer", "copy"): 3}
    assert "| b | answer | the same operations, other text | 3 | 1.00 |" in wrong.markdown()


def test_an_episode_failed_in_agreement_with_the_teacher_has_no_departure():
    import dataclasses
    from atommem.step_errors import first_divergences
    cells = episodes_for(["qa1"], [256], 2, 80)
    ep = cells[0][2]
    moved = dataclasses.replace(ep, questions=[dataclasses.replace(q, answer="nowhere") for q in ep.questions])
    report = first_divergences(_run(TeacherPolicy(), [("qa1", 256, moved), cells[1]]))
    assert report.failed == {"qa1": 1} and report.first == {("qa1", "-", "none"): 1}
    assert "none: the teacher would have done the same" in report.markdown()


def test_eval_cli_prints_first_divergences():
    res = CliRunner().invoke(main, ["eval", "--policy", "teacher", "--task", "qa1", "--lengths", "256", "--n", "2",
                                    "--divergences", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "first departures from the teacher in the 0 episodes not fully right." in res.output
