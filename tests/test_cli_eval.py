"""`atommem-cli eval`: output as specified (table, then one JSON line with accuracies in [0, 1]), clear errors."""
import json

import pytest

from click.testing import CliRunner

from atommem.cli import main

pytestmark = pytest.mark.usefixtures("reference_kernels")


def test_eval_teacher_prints_table_and_final_json(tmp_path):
    res = CliRunner().invoke(main, ["eval", "--policy", "teacher", "--task", "qa1,kv", "--lengths", "256,512",
                                    "--n", "3", "--seed", "123", "--out", str(tmp_path), "--trace", "1"])
    assert res.exit_code == 0, res.output
    last = json.loads(res.output.strip().splitlines()[-1])
    assert set(last["accuracy"]) == {"qa1", "kv"}
    assert all(0.0 <= v <= 1.0 for row in last["accuracy"].values() for v in row.values())
    assert set(last["accuracy"]["qa1"]) == {"256", "512"}
    assert "| task |" in res.output and "answers" in res.output
    assert (tmp_path / "accuracy.png").exists() and (tmp_path / "results.json").exists()


def test_eval_missing_checkpoint_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(main, ["eval", "--ckpt", str(tmp_path / "nope"), "--task", "qa1", "--n", "1"])
    assert res.exit_code == 2 and "make train" in res.output


def test_eval_bad_task_and_length():
    assert CliRunner().invoke(main, ["eval", "--policy", "teacher", "--task", "qa9"]).exit_code == 2
    assert CliRunner().invoke(main, ["eval", "--policy", "teacher", "--lengths", "abc"]).exit_code == 2
    res = CliRunner().invoke(main, ["eval", "--policy", "teacher", "--workers", "-1"])
    assert res.exit_code == 2 and "--workers" in res.output
