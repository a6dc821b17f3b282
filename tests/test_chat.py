"""`atommem-cli chat` and ChatSession: piped scripting, slash commands, checkpoint errors, a real terminal, and a
learned (untrained) checkpoint end to end. Run: `pytest -q tests/test_chat.py`."""
import json
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from atommem.agent import AgentConfig
from atommem.chat_session import ChatSession, split_turn
from atommem.cli import main
from atommem.teacher import TeacherPolicy

torch.set_num_threads(1)
pytestmark = pytest.mark.usefixtures("reference_kernels")


def _chat(lines: list[str], *args: str):
    return CliRunner().invoke(main, ["chat", *args], input="".join(line + "\n" for line in lines))


def _teacher(lines: list[str]):
    res = _chat(lines, "--policy", "teacher")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and "\x1b[" not in res.output  # plain when piped
    return res.output.splitlines()


# -- the session, without a terminal ---------------------------------------------------------------------------------
def test_split_turn():
    assert split_turn("Mary went to the kitchen. Where is Mary? John ran to the office.") == [
        ("feed", "Mary went to the kitchen."), ("ask", "Where is Mary?"), ("feed", "John ran to the office.")]
    assert split_turn("/ask Where is Mary") == [("ask", "Where is Mary?")]
    assert split_turn("  ") == [] and split_turn("/ask") == []


def test_session_reports_each_op_with_stable_ids():
    session = ChatSession(TeacherPolicy())
    lines = [e.line() for e in session.feed("Mary went to the kitchen. Locker K417 now holds the lamp.")
             if e.kind != "observe"]
    assert lines == ["? Mary", "+ #0 Mary: kitchen", "? K417", "+ #1 K417: lamp"]
    events = session.feed("Mary went to the garden. Locker K417 was emptied.")
    assert [e.line() for e in events if e.kind in ("update", "delete")] == ["~ #0 Mary: garden", "- #1 K417: lamp"]
    assert all("<question></question>" in e.text for e in events if e.kind == "observe")  # questions hidden
    answer, events = session.ask("Where is Mary?")
    assert answer == "garden" and events[-1].line() == "= garden"
    assert "<ask> Where is Mary?</ask>" in events[0].text
    assert [e.text for e in session.engine.entries()] == ["Mary: garden"]
    assert session.engine.query == ""                     # cleared when the question ends


def test_session_long_text_is_chunked_and_ids_continue_after_load(tmp_path):
    session = ChatSession(TeacherPolicy(), AgentConfig(chunk_tokens=8))
    people = ["Mary", "John", "Sandra", "Daniel"]
    events = session.feed(" ".join(f"{p} went to the kitchen." for p in people))
    assert sum(e.kind == "observe" and "<query></query>" in e.text for e in events) == 4  # 4 chunks
    assert [e.entry_id for e in events if e.kind == "create"] == [0, 1, 2, 3]
    session.save(tmp_path / "m.json")
    other = ChatSession(TeacherPolicy())
    other.load(tmp_path / "m.json")
    assert [e.entry_id for e in other.feed("Bill went to the office.") if e.kind == "create"] == [4]
    assert other.ask("Where is Sandra?")[0] == "kitchen"


def test_session_static_workflow_stores_by_itself():
    session = ChatSession(TeacherPolicy(), AgentConfig(workflow="append"))
    events = session.feed("Mary went to the kitchen. Mary went to the garden.")
    assert [e.line() for e in events] == ["+ #0 Mary went to the kitchen.", "+ #1 Mary went to the garden."]
    assert session.ask("Where is Mary?")[0] == "garden"


# -- piped use -------------------------------------------------------------------------------------------------------
def test_piped_statements_then_question():
    out = _teacher(["Mary went to the kitchen.", "John picked up the football. John went to the garden.",
                    "Where is Mary?", "Where is the football?"])
    assert "+ #0 Mary: kitchen" in out and "? Mary" in out and "~ #1 football: John | garden" in out
    assert [line for line in out if line.startswith("= ")] == ["= kitchen", "= garden"]
    assert not any(line.startswith(">") for line in out)  # no prompt when piped


def test_mem_lists_entries_and_scratchpad():
    out = _teacher(["Mary went to the kitchen.", "VAR ABCDE = 12345.", "/mem"])
    assert "memory: 2 entries (top-k 3)" in out
    assert any(line.split() == ["#0", "Mary:", "kitchen"] for line in out)
    assert any(line.split() == ["#1", "ABCDE:", "12345"] for line in out)
    assert "scratchpad: (empty)" in out


def test_save_reset_load_restores(tmp_path):
    path = tmp_path / "memory.json"
    out = _teacher(["Mary went to the kitchen.", f"/save {path}", "/reset", "Where is Mary?", f"/load {path}",
                    "Where is Mary?", "/trace on", "/ask Where is Mary"])
    assert path.exists() and "memory cleared" in out
    answers = [line for line in out if line.startswith("= ")]
    assert answers == ["= unknown", "= kitchen", "= kitchen"]
    assert any(line.startswith("  | <question>") and "<ask> Where is Mary?</ask>" in line for line in out)


def test_bad_memory_file_is_one_error_line_and_the_chat_goes_on(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    out = _teacher(["Mary went to the kitchen.", f"/load {bad}", f"/load {tmp_path / 'missing.json'}",
                    "/save", f"/save {tmp_path / 'no' / 'dir.json'}", "Where is Mary?"])
    errors = [line for line in out if line.startswith("! ")]
    assert len(errors) == 4 and "not valid JSON" in errors[0] and "not found" in errors[1]
    assert "usage: /save FILE" in errors[2] and "cannot save" in errors[3]
    assert out[-1] == "= kitchen"


def test_unknown_command_and_help_and_quit():
    out = _teacher(["/frobnicate", "/help", "/quit", "Where is Mary?"])
    assert "! unknown command /frobnicate: type /help for the list" in out
    assert any("/save FILE" in line for line in out)
    assert not any(line.startswith("= ") for line in out)  # nothing runs after /quit


def test_missing_checkpoint_exits_2(tmp_path):
    res = _chat(["Where is Mary?"], "--ckpt", str(tmp_path / "nope"))
    assert res.exit_code == 2 and "make train" in res.output and "--policy teacher" in res.output
    assert len(res.output.strip().splitlines()) == 1


# -- a learned checkpoint (an untrained smoke model: answers may be wrong, the loop must run) -----------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from atommem.model_policy import save_policy
    from rl.config import TrainConfig
    from rl.data import agent_config, teacher_trajectories, train_tokenizer, training_episodes
    from rl.pipeline import build_model
    cfg = TrainConfig.preset_named("smoke")
    trajs = teacher_trajectories(cfg, training_episodes(cfg, 6, stream=1))
    tok = train_tokenizer(cfg, trajs)
    directory = tmp_path_factory.mktemp("ckpt") / "policy"
    save_policy(directory, build_model(cfg, tok.vocab_size), tok, agent_config(cfg).to_dict(),
                max_action_tokens=37, constrained=True)
    return directory


def test_policy_keeps_the_decoding_it_was_trained_for(checkpoint, tmp_path):
    import shutil
    from atommem.model_policy import OLD_MAX_ACTION_TOKENS, load_policy
    sampling = load_policy(checkpoint)[0].sampling
    assert sampling.max_action_tokens == 37 and sampling.constrained
    older = tmp_path / "policy"
    shutil.copytree(checkpoint, older)
    meta = json.loads((older / "agent.json").read_text())
    del meta["max_action_tokens"], meta["constrained"]  # written before the cap and the constraint were saved
    (older / "agent.json").write_text(json.dumps(meta))
    sampling = load_policy(older)[0].sampling
    assert sampling.max_action_tokens == OLD_MAX_ACTION_TOKENS and not sampling.constrained


def test_learned_checkpoint_end_to_end(checkpoint, tmp_path):
    res = _chat(["Mary went to the kitchen. John moved to the office.", "Where is Mary?", "/mem",
                 f"/save {tmp_path / 'm.json'}"], "--ckpt", str(checkpoint), "--top-k", "4", "--trace")
    assert res.exit_code == 0, res.output
    out = res.output.splitlines()
    assert "Traceback" not in res.output
    assert sum(line.startswith("= ") for line in out) == 1          # one answer line, even if empty
    assert any(line.startswith("  | <question>") for line in out)
    assert "memory:" in res.output and "(top-k 4)" in res.output and (tmp_path / "m.json").exists()


@pytest.mark.parametrize("breakage", ["garbage agent.json", "other version", "garbage weights"])
def test_corrupted_checkpoint_exits_2_without_traceback(checkpoint, tmp_path, breakage):
    import shutil
    broken = tmp_path / "policy"
    shutil.copytree(checkpoint, broken)
    if breakage == "garbage agent.json":
        (broken / "agent.json").write_text("\x00garbage{{")
    elif breakage == "other version":
        (broken / "agent.json").write_text(json.dumps({"format": "atommem-policy", "version": 99, "agent": {}}))
    else:
        (broken / "model.safetensors").write_bytes(b"not a tensor file")
    res = _chat(["Where is Mary?"], "--ckpt", str(broken))
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.output.startswith("error: ")
    assert len(res.output.strip().splitlines()) == 1


def test_checkpoint_with_unknown_agent_settings_exits_2(checkpoint, tmp_path):
    import shutil
    broken = tmp_path / "policy"
    shutil.copytree(checkpoint, broken)
    meta = json.loads((broken / "agent.json").read_text())
    meta["agent"]["warp_drive"] = True
    (broken / "agent.json").write_text(json.dumps(meta))
    res = _chat(["Where is Mary?"], "--ckpt", str(broken))
    assert res.exit_code == 2 and "do not fit this version" in res.output and "Traceback" not in res.output


# -- a real terminal -------------------------------------------------------------------------------------------------
def _read_until(fd: int, needle: bytes, seen: bytearray, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:          # the child closed the terminal
                return needle in seen
            if not data:
                return needle in seen
            seen += data
    return needle in seen


def _wait_exit(pid: int, timeout: float = 20.0, kill: bool = True) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    if not kill:
        return None
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


@pytest.mark.parametrize("leave", [b"\x04", b"\x03"], ids=["ctrl-d", "ctrl-c"])
def test_terminal_prompt_answer_and_clean_exit(leave):
    cli = str(Path(sys.executable).parent / "atommem-cli")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TERM": "dumb"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the chat on a pseudo-terminal
        # Ctrl-C as a terminal session has it: a test run started in the background inherits SIGINT ignored
        # (POSIX shells ignore it for `cmd &`), and the chat would then never see the key
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execve(cli, [cli, "chat", "--policy", "teacher"], env)
    try:
        seen = bytearray()
        assert _read_until(fd, b"> ", seen), seen
        os.write(fd, b"Mary went to the kitchen.\n")
        assert _read_until(fd, b"Mary: kitchen", seen), seen
        os.write(fd, b"Where is Mary?\n")
        assert _read_until(fd, b"= kitchen", seen), seen
        assert b"\x1b[" in seen                       # coloured on a terminal
        after = bytearray(seen[seen.rindex(b"= kitchen"):])
        assert _read_until(fd, b"> ", after), seen     # the prompt again after the answer
        code = None
        time.sleep(0.5)     # let the line editor settle: a Ctrl-C that lands before it waits for input can be lost
        tries = 5
        for _ in range(tries):  # a key pressed while the line editor is still settling is retried, as a person would
            os.write(fd, leave)
            _read_until(fd, b"never printed", seen, timeout=3.0)  # drain until the child exits
            code = _wait_exit(pid, timeout=3.0 if _ < tries - 1 else 20.0, kill=_ == tries - 1)
            if code is not None:
                break
        assert code == 0, seen
        assert b"Traceback" not in seen
    finally:
        os.close(fd)


@pytest.mark.parametrize("flag,expected", [(None, True), ("--free", False), ("--constrained", True)])
def test_eval_decodes_as_the_checkpoint_or_the_flag_says(checkpoint, monkeypatch, flag, expected):
    from click.testing import CliRunner

    from atommem.cli import main
    from atommem.model_policy import ModelPolicy
    seen, act = set(), ModelPolicy.act
    monkeypatch.setattr(ModelPolicy, "act", lambda self, obs: seen.add(self.sampling.constrained) or act(self, obs))
    args = ["eval", "--ckpt", str(checkpoint), "--task", "kv", "--lengths", "256", "--n", "2", "--workers", "1"]
    res = CliRunner().invoke(main, args + ([flag] if flag else []))
    assert res.exit_code == 0, res.output
    assert seen == {expected}
