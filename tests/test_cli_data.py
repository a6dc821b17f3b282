"""`atommem-cli data`: JSON lines out, previews, bAbI input, and one-line failures with exit status 2.

Run: .venv/bin/python -m pytest tests/test_cli_data.py -q
"""
import json

import pytest
from click.testing import CliRunner

from atommem.cli import main
from atommem.cli_data import render_preview
from atommem.tasks.episode import Episode
from atommem.tasks.registry import generate

BABI = "1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary? \tbathroom\t1\n" \
       "1 Sandra got the football there.\n2 Sandra journeyed to the office.\n3 Where is the football?\toffice\t1 2\n"


def run(*args):
    return CliRunner().invoke(main, ["data", *map(str, args)])


def test_writes_json_lines_that_match_the_generator(tmp_path):
    out = tmp_path / "qa2.jsonl"
    result = run("--task", "qa2", "--length", "512", "--n", 3, "--seed", 5, "--out", out)
    assert result.exit_code == 0, result.output
    episodes = [Episode.from_json(json.loads(line)) for line in out.read_text().splitlines()]
    assert episodes == [generate("qa2", 512, 5 + i) for i in range(3)]


def test_stdout_and_options(tmp_path):
    result = run("--task", "kv", "--length", "1k", "--questions", 2, "--facts", 10)
    assert result.exit_code == 0
    ep = Episode.from_json(json.loads(result.stdout))
    assert ep.target_tokens == 1024 and len(ep.questions) == 2 and sum(ep.is_fact) == 10


def test_progress_bar_for_many_episodes(tmp_path):
    out = tmp_path / "many.jsonl"
    result = run("--task", "qa1", "--length", "256", "--n", 60, "--out", out)
    assert result.exit_code == 0
    assert len(out.read_text().splitlines()) == 60
    assert "60/60" in result.stderr


def test_preview_marks_facts_when_piped():
    result = run("--task", "qa3", "--length", "1k", "--preview")
    assert result.exit_code == 0
    ep = generate("qa3", 1024, 0)
    marked = [line for line in result.stdout.splitlines() if line.startswith(">> ")]
    assert len(marked) == sum(ep.is_fact)
    assert f"Q: {ep.questions[0].text}" in result.stdout and f"A: {ep.questions[0].answer}" in result.stdout
    assert "\x1b[" not in result.stdout and "{" not in result.stdout


def test_preview_uses_ansi_style_on_a_terminal():
    text = render_preview(generate("vt", 512, 1), color=True)
    assert "\x1b[1m" in text and ">> " not in text


def test_babi_input_with_and_without_background(tmp_path):
    babi = tmp_path / "qa.txt"
    babi.write_text(BABI)
    plain = run("--babi", babi)
    assert plain.exit_code == 0
    lines = [json.loads(line) for line in plain.stdout.splitlines()]
    assert [d["questions"][0]["answer"] for d in lines] == ["bathroom", "office"]
    book = tmp_path / "book.txt"
    book.write_text("The tide turned at noon. Gulls circled above the pier. " * 30)
    out = tmp_path / "babi.jsonl"
    result = run("--babi", babi, "--length", 512, "--haystack", book, "--n", 1, "--out", out)
    assert result.exit_code == 0, result.output
    ep = Episode.from_json(json.loads(out.read_text()))
    assert abs(ep.n_tokens() - 512) <= 11 and "The tide turned at noon." in ep.sentences


def test_help_describes_the_command():
    result = run("--help")
    assert result.exit_code == 0
    for word in ("--task", "--babi", "--haystack", "--preview", "qa3", "JSON lines", "Examples"):
        assert word in result.output


@pytest.mark.parametrize("args,reason", [
    (["--task", "qa9"], "'qa9'"),
    (["--task", "qa1", "--length", "4q"], "cannot read length"),
    (["--task", "qa1", "--length", "8"], "facts alone"),
    (["--task", "qa1", "--n", "0"], "--n"),
    (["--task", "qa1", "--bogus"], "--bogus"),
    ([], "exactly one of"),
    (["--task", "qa1", "--babi", "x.txt"], "exactly one of"),
    (["--task", "qa1", "--haystack", "missing.txt"], "not found"),
    (["--babi", "missing.txt"], "does not exist"),
    (["--task", "kv", "--facts", "2"], "n_facts >= 6"),
    (["--babi", "x.txt", "--facts", "3"], "apply to generated tasks"),
])
def test_failures_exit_2_with_one_line(tmp_path, args, reason):
    result = run(*args)
    assert result.exit_code == 2
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and result.stdout == ""


def test_malformed_babi_and_unwritable_out(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 Mary moved to the bathroom.\nMary went to the garden.\n")
    result = run("--babi", bad)
    assert result.exit_code == 2 and f"{bad}:2: expected" in result.stderr
    result = run("--task", "qa1", "--out", tmp_path / "no" / "such" / "dir.jsonl")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = run("--task", "qa1", "--haystack", empty)
    assert result.exit_code == 2 and "empty" in result.stderr
    result = run("--babi", bad, "--haystack", empty)
    assert result.exit_code == 2 and "--length" in result.stderr
