"""The ablation runner's table, plot and its refusal to mix budgets (no training here)."""
import json

import pytest

from rl.ablations import check_run, main, mean_of, plot, run_minutes, table

FAMILIES = ("qa1", "kv")
LABELS = ["512", "2k"]
ROWS = {("atommem", "teacher"): {"qa1": {"512": 1.0, "2k": 1.0}, "kv": {"512": 1.0, "2k": 0.9}},
        ("atommem", "sft"): {"qa1": {"512": 0.8, "2k": 0.6}, "kv": {"512": 0.4, "2k": 0.2}},
        ("append", "teacher"): {"qa1": {"512": 1.0, "2k": 1.0}, "kv": {"512": 0.7}}}


def test_mean_skips_missing_cells():
    assert mean_of(ROWS[("atommem", "sft")], FAMILIES, LABELS) == pytest.approx(0.5)
    assert mean_of(ROWS[("append", "teacher")], FAMILIES, LABELS) == pytest.approx(0.9)


def test_table_rows_cells_and_minutes():
    text = table(ROWS, FAMILIES, LABELS, {"atommem": 12.4})
    lines = text.splitlines()
    assert lines[0].startswith("| workflow | policy | qa1 512 | qa1 2k | kv 512 | kv 2k | mean | minutes |")
    assert lines[3] == "| atommem | sft | 0.80 | 0.60 | 0.40 | 0.20 | 0.500 | 12 |"
    assert lines[2].endswith("| 0.975 | - |")           # a teacher row has no training time
    assert "| append | teacher | 1.00 | 1.00 | 0.70 | - | 0.900 | - |" in lines


def test_plot_writes_png(tmp_path):
    plot(ROWS, FAMILIES, LABELS, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_minutes_spans_the_metrics_log(tmp_path):
    assert run_minutes(tmp_path) is None
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"time": t}) + "\n" for t in (100.0, 160.0, 400.0)))
    assert run_minutes(tmp_path) == pytest.approx(5.0)


def test_refuses_a_run_of_another_preset_or_workflow(tmp_path):
    run = tmp_path / "atommem"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"preset": "tiny", "workflow": "atommem"}))
    with pytest.raises(SystemExit, match="under preset 'tiny'"):
        check_run(run, "atommem", "ablate")
    check_run(run, "atommem", "tiny")                      # same budget: accepted
    with pytest.raises(SystemExit, match="not 'append'"):
        check_run(run, "append", "tiny")
    with pytest.raises(SystemExit, match="unknown workflow"):
        main(["--workflows", "atommem,nonsense", "--out", str(tmp_path / "other")])


def test_parallel_jobs_deal_unfinished_workflows(tmp_path, monkeypatch):
    import rl.ablations as ab
    calls = []

    class FakeProc:
        def __init__(self, cmd, env, stdout, stderr):
            calls.append((cmd, env["OMP_NUM_THREADS"]))

        def wait(self):
            return 1 if "cap8" in calls[-1][0][-2] else 0

    monkeypatch.setattr(ab.subprocess, "Popen", FakeProc)
    monkeypatch.setattr(ab.os, "cpu_count", lambda: 4)
    (tmp_path / "rag").mkdir()
    (tmp_path / "rag" / "results.json").write_text("{}")
    ab.train_in_parallel(["atommem", "rag", "memagent", "no-update"], "ablate", tmp_path, 2)
    shares = [cmd[cmd.index("--workflows") + 1] for cmd, _ in calls]
    assert shares == ["atommem,no-update", "memagent"]              # finished ones skipped, dealt in turn
    assert all(threads == "2" and "--train-only" in cmd for cmd, threads in calls)
    assert (tmp_path / "jobs").is_dir()
    calls.clear()
    with pytest.raises(SystemExit, match="failed"):
        ab.train_in_parallel(["cap8"], "ablate", tmp_path, 3)
