"""`atommem-cli chat`: talk to a memory agent, and watch every memory operation as it happens.

Owns the terminal side only: options, loading the policy, reading lines (a `> ` prompt on a terminal, plain lines
when piped), the slash commands, and printing events (coloured on a terminal, plain when piped). The turn logic
lives in atommem/chat_session.py.

    atommem-cli chat                       # the trained policy in runs/latest (`make train` makes one)
    atommem-cli chat --policy teacher      # the scripted teacher, no checkpoint needed
    printf 'Mary went to the kitchen.\\nWhere is Mary?\\n' | atommem-cli chat --policy teacher
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from atommem.agent import AgentConfig
from atommem.chat_session import ChatSession, Event, split_turn

_COLOURS = {"create": "green", "update": "yellow", "delete": "red", "read": "cyan", "scratch": "magenta",
            "answer": "bright_white", "error": "bright_red"}
HELP = """\
Type statements to remember (one chunk per line) or questions ending in '?'. Commands:
  /ask TEXT        ask TEXT as a question ('?' added if missing)
  /mem             show the stored entries (with their ids) and the scratchpad
  /reset           forget everything
  /save FILE       write the memory to a JSON file
  /load FILE       replace the memory by a saved file
  /trace on|off    show the observation the policy saw before each action
  /help            this text
  /quit            leave (Ctrl-D and Ctrl-C too)
Operation lines: + create  ~ update  - delete  ? read  * scratchpad  = answer  ! error"""


def _fail(message: str) -> None:
    click.echo("error: " + " ".join(str(message).split())[:400], err=True)
    sys.exit(2)


def _session(policy_kind: str, ckpt: str, top_k: int | None) -> ChatSession:
    """The session for the chosen policy, or a one-line error and exit status 2."""
    if policy_kind == "teacher":
        from atommem.teacher import TeacherPolicy
        policy, settings = TeacherPolicy(), {}
    else:
        if not Path(ckpt).exists():
            _fail(f"no trained policy at {ckpt}: run `make train` to train one (or pass --ckpt DIR), "
                  f"or try the scripted teacher with --policy teacher")
        from atommem.model_policy import PolicyLoadError, load_policy
        try:
            policy, settings = load_policy(ckpt)
        except PolicyLoadError as err:
            _fail(err)
    try:
        config = AgentConfig(**settings)
        if top_k is not None:
            config.top_k = top_k
        return ChatSession(policy, config)  # checks the workflow name and the engine settings
    except (TypeError, ValueError) as err:
        _fail(f"the agent settings in {ckpt}/agent.json do not fit this version: {err}")


class _Chat:
    """The read-eval-print loop around one ChatSession."""

    def __init__(self, session: ChatSession, trace: bool, interactive: bool):
        self.session, self.trace, self.interactive = session, trace, interactive
        session.listener = self.show

    def show(self, event: Event) -> None:
        """Print one event as it happens (the session's listener)."""
        if event.kind == "observe":
            if self.trace:
                for line in event.line().splitlines():
                    click.echo(click.style("  | " + line, dim=True))
        else:
            click.echo(click.style(event.line(), fg=_COLOURS[event.kind], bold=event.kind == "answer" or None))

    def say(self, text: str, error: bool = False) -> None:
        click.echo(click.style("! " + text, fg=_COLOURS["error"]) if error else text)

    def show_memory(self) -> None:
        engine = self.session.engine
        entries = engine.entries()
        self.say(f"memory: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} (top-k {engine.config.top_k})")
        width = len(str(max((e.id for e in entries), default=0))) + 1
        for e in entries:
            self.say(f"  {('#' + str(e.id)).rjust(width)}  {e.text}")
        self.say(f"scratchpad: {engine.scratch or '(empty)'}")

    def command(self, line: str) -> bool:
        """Run one slash command; False to leave."""
        name, _, arg = line.partition(" ")
        name, arg = name.lower(), arg.strip()
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/help":
            self.say(HELP)
        elif name == "/mem":
            self.show_memory()
        elif name == "/reset":
            self.session.reset()
            self.say("memory cleared")
        elif name in ("/save", "/load"):
            self.save_or_load(name, arg)
        elif name == "/trace":
            if arg.lower() in ("on", "off"):
                self.trace = arg.lower() == "on"
            elif arg:
                self.say("usage: /trace on|off", error=True)
            self.say(f"trace {'on' if self.trace else 'off'}")
        else:
            self.say(f"unknown command {name}: type /help for the list", error=True)
        return True

    def save_or_load(self, name: str, path: str) -> None:
        from atommem.memory import MemoryFileError
        if not path:
            self.say(f"usage: {name} FILE", error=True)
            return
        try:
            if name == "/save":
                self.session.save(path)
                self.say(f"saved {len(self.session.engine)} entries to {path}")
            else:
                self.session.load(path)
                self.say(f"loaded {len(self.session.engine)} entries from {path}")
        except (MemoryFileError, OSError) as err:
            what = "cannot save" if name == "/save" else "cannot load"
            self.say(f"{what}: {' '.join(str(err).split())}"[:300], error=True)

    def handle(self, line: str) -> bool:
        """One input line; False to leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/") and not line.lower().startswith("/ask"):
            return self.command(line)
        parts = split_turn(line)
        if not parts:
            self.say("usage: /ask QUESTION", error=True)
        for kind, text in parts:
            if kind == "feed":
                self.session.feed(text)
            elif not any(e.kind == "answer" for e in self.session.ask(text)[1]):
                self.show(Event("answer", ""))  # the policy gave none: the question still gets its line
        return True

    def read_line(self) -> str | None:
        if self.interactive:
            return input("> ")
        line = sys.stdin.readline()
        return line if line else None

    def loop(self) -> None:
        if self.interactive:
            try:
                import readline  # noqa: F401  (line editing and history for input())
            except ImportError:
                pass
            name = getattr(self.session.policy, "name", "policy")
            self.say(f"AtomMem chat ({name} policy, workflow {self.session.config.workflow}). "
                     f"State facts, ask questions ending in '?', /help for commands, Ctrl-D to leave.")
        try:
            while True:
                line = self.read_line()
                if line is None or not self.handle(line):
                    break
        except (EOFError, KeyboardInterrupt):
            if self.interactive:
                click.echo()
        except BrokenPipeError:  # `| head`: the reader left; leave quietly too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@click.command("chat")
@click.option("--ckpt", default="runs/latest", show_default=True, type=click.Path(),
              help="Policy directory of a trained run (`make train` writes runs/latest).")
@click.option("--policy", "policy_kind", default="model", show_default=True,
              type=click.Choice(["model", "teacher"]),
              help="The trained checkpoint, or the scripted teacher (no checkpoint needed).")
@click.option("--trace", is_flag=True, help="Print the observation the policy saw before each action.")
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="Entries shown per read [default: the checkpoint's setting].")
def chat(ckpt, policy_kind, trace, top_k):
    """Talk to a memory agent and watch its memory operations.

    Each line you type is either context or a question. Statements ("Mary went to the kitchen.") are read as
    one chunk: the policy stores, updates or deletes entries as it sees fit. A line ending in '?' (or
    "/ask TEXT") is answered from memory. Every operation is printed as it happens:

    \b
      + #4 Mary: kitchen     create (entry id 4)
      ~ #2 Mary: garden      update of entry 2
      - #1 Mary: kitchen     delete of entry 1
      ? Mary                 read (retrieve entries about Mary)
      * text                 scratchpad overwritten
      = kitchen              the answer
      ! error text           a rejected operation

    Commands: /mem, /reset, /save FILE, /load FILE, /trace on|off, /help, /quit.
    The teacher understands sentences such as "Mary went to the kitchen.", "John picked up the football.",
    "Locker K417 now holds the lamp.", "VAR ABCDE = 12345." and questions such as "Where is Mary?",
    "Where is the football?", "What does locker K417 hold?".

    \b
    Scripting: lines can be piped in; the prompt is shown on a terminal only.
      printf 'Mary went to the kitchen.\\nWhere is Mary?\\n' | atommem-cli chat --policy teacher
    """
    _Chat(_session(policy_kind, ckpt, top_k), trace, sys.stdin.isatty()).loop()
