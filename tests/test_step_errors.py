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
