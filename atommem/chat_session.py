"""An interactive memory session: the episode loop of atommem/agent.py, one user turn at a time.

Owns `ChatSession` (one long-lived `MemoryEngine`, the agent settings, a policy) and `Event` (one line of what
happened: an applied operation, an error, or the observation the policy saw). Knows nothing about terminals,
colours or commands; atommem/cli_chat.py is the face (`atommem-cli chat --help`).

How a turn maps onto the episode contract (ARCHITECTURE.md section 2):
- `feed(text)`: the text is the context of a one-episode run with no questions. Its sentences are all marked as
  facts (the user's statements are the facts), cut into chunks by `make_chunks`, and read with the reading-phase
  rules of `EpisodeRun`: a step that reads re-observes the chunk (at most `max_rereads` times), the query is
  cleared when a chunk ends.
- `ask(question)`: a one-question episode with no context: the answer phase of `EpisodeRun` (the policy may read
  up to `max_answer_reads` times, then answers; no answer counts as "").
- Both drive the real `EpisodeRun` (observe, policy.act, step), not a copy of it. The only change is that the
  run's engine is the session's, kept across turns (`EpisodeRun(..., engine=...)`). Error lines of a turn's last
  step are shown at the next turn's first step, as between chunks of one episode.
- Static workflows work too: `append`/`rag` store the fed sentences themselves, `full` shows what was fed so far.

Try it: `printf 'Mary went to the kitchen.\\nWhere is Mary?\\n' | atommem-cli chat --policy teacher`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from atommem.agent import AgentConfig, EpisodeRun
from atommem.memory import MemoryConfig, MemoryEngine
from atommem.observation import render
from atommem.ops import Create, Delete, Read, Scratch, Update
from atommem.policy import Policy
from atommem.tasks.episode import Episode, Question
from atommem.workflows import get_workflow

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SIGNS = {"create": "+", "update": "~", "delete": "-", "read": "?", "scratch": "*", "answer": "=", "error": "!"}


@dataclass
class Event:
    """One thing that happened during a turn, in order."""

    kind: str                      # create | update | delete | read | scratch | answer | error | observe
    text: str                      # entry text, query, scratchpad, answer, error line, or rendered observation
    entry_id: int | None = None    # the engine's stable id (create, update, delete)

    def line(self) -> str:
        """Plain one-line form: `+ #4 Mary: kitchen`, `? Mary`, `= kitchen`, `! error` (observe: the text)."""
        if self.kind == "observe":
            return self.text
        ref = "" if self.kind not in ("create", "update", "delete") else \
            ("#? " if self.entry_id is None else f"#{self.entry_id} ")
        text = self.text
        if not text:
            text = {"scratch": "(cleared)", "answer": "(no answer)"}.get(self.kind, "")
        return f"{_SIGNS[self.kind]} {ref}{text}"


def split_sentences(text: str) -> list[str]:
    """'A went to b. Where is A?' -> ['A went to b.', 'Where is A?'] (whitespace collapsed)."""
    text = " ".join(text.split())
    return [s for s in _SENTENCE_END.split(text) if s] if text else []


def split_turn(line: str) -> list[tuple[str, str]]:
    """A user line as ("feed", statements) and ("ask", question) parts, in order. `/ask TEXT` is one question (a
    missing `?` is added); otherwise every sentence ending in `?` is a question, and the statements between
    questions are fed together."""
    line = line.strip()
    if line.lower().startswith("/ask"):
        question = line[4:].strip()
        if question and not question.endswith("?"):
            question += "?"
        return [("ask", question)] if question else []
    parts: list[tuple[str, str]] = []
    pending: list[str] = []
    for sentence in split_sentences(line):
        if sentence.endswith("?"):
            if pending:
                parts.append(("feed", " ".join(pending)))
                pending = []
            parts.append(("ask", sentence))
        else:
            pending.append(sentence)
    if pending:
        parts.append(("feed", " ".join(pending)))
    return parts


class ChatSession:
    """One engine + agent settings + policy; `feed` and `ask` run the episode loop and report events.

    `listener`, if set, is called with each event as it happens (the returned lists hold the same events)."""

    def __init__(self, policy: Policy, config: AgentConfig | None = None, engine: MemoryEngine | None = None,
                 listener: Callable[[Event], None] | None = None):
        self.policy, self.listener = policy, listener
        self.config = config if config is not None else AgentConfig()
        self.workflow = get_workflow(self.config.workflow)
        self.engine = engine if engine is not None else self.new_engine()
        self.history: list[str] = []        # fed sentences, kept only where the workflow shows the context
        self._errors: list[str] = []        # error lines of the last step, shown at the next one
        self._next_id = self.engine.snapshot()["next_id"]

    # -- the store ------------------------------------------------------------------------------------------------
    def new_engine(self) -> MemoryEngine:
        """An empty engine configured as `EpisodeRun` configures its own."""
        wf, cfg = self.workflow, self.config
        return MemoryEngine(MemoryConfig(top_k=wf.top_k or cfg.top_k, capacity=wf.capacity or cfg.capacity,
                                         on_full=cfg.on_full))

    def reset(self) -> None:
        """Forget everything: empty store, scratchpad, query and history."""
        self._use(self.new_engine())
        self.history = []

    def save(self, path) -> None:
        """Write the store to a JSON file (MemoryEngine.save; OSError on an unwritable path)."""
        self.engine.save(path)

    def load(self, path) -> None:
        """Replace the store by a saved one; MemoryFileError (the session unchanged) on a bad file."""
        self._use(MemoryEngine.load(path, embedder=self.engine.embedder))

    def _use(self, engine: MemoryEngine) -> None:
        self.engine, self._errors = engine, []
        self._next_id = engine.snapshot()["next_id"]

    # -- turns ----------------------------------------------------------------------------------------------------
    def feed(self, text: str) -> list[Event]:
        """Read statements into memory; the events of every step."""
        sentences = split_sentences(text)
        if not sentences:
            return []
        if self.workflow.show_context:
            self.history += sentences
        episode = Episode("chat", sentences, [True] * len(sentences), [])
        events, run = self._start(episode)
        self._drive(run, events)
        return events

    def ask(self, question: str) -> tuple[str, list[Event]]:
        """Answer one question from memory: (answer, events)."""
        question = " ".join(question.split())
        context = self.history if self.workflow.show_context else []
        episode = Episode("chat", list(context), [True] * len(context), [Question(question, "")])
        events, run = self._start(episode)
        self._drive(run, events)
        return (run.answers[0] if run.answers else ""), events

    def _start(self, episode: Episode) -> tuple[list[Event], _TurnRun]:
        run = EpisodeRun(episode, self.config, self.engine)
        events: list[Event] = []
        first = self._next_id
        self._next_id = self.engine.snapshot()["next_id"]
        if self._next_id != first:  # `append` / `rag`: the loop stored the sentences itself
            for entry in self.engine.entries():
                if entry.id >= first:
                    self._emit(events, Event("create", entry.text, entry.id))
        run.errors = self._errors
        return events, run

    def _emit(self, events: list[Event], event: Event) -> None:
        events.append(event)
        if self.listener is not None:
            self.listener(event)

    def _drive(self, run: _TurnRun, events: list[Event]) -> None:
        while not run.done:
            obs = run.observe()
            shown = self.engine.shown_entries()         # what positions in update/delete refer to
            self._emit(events, Event("observe", render(obs)))
            step = run.step(obs, self.policy.act([obs])[0])
            for op in step.ops:
                self._emit(events, self._describe(op, shown))
            for err in step.errors:
                self._emit(events, Event("error", err))
        self._errors = list(run.errors)

    def _describe(self, op, shown: list) -> Event:
        """The event of one applied op: a create gets the next stable id, an update or delete names the entry
        shown at its position when the policy acted."""
        if isinstance(op, Create):
            self._next_id += 1
            return Event("create", op.text, self._next_id - 1)
        if isinstance(op, (Update, Delete)):
            entry = shown[op.index - 1] if 0 < op.index <= len(shown) else None
            text = op.text if isinstance(op, Update) else (entry.text if entry else "")
            return Event(op.kind, text, entry.id if entry else None)
        if isinstance(op, Read):
            return Event("read", op.query)
        if isinstance(op, Scratch):
            return Event("scratch", op.text)
        return Event("answer", op.text)
