"""The scripted teacher: a good policy, written by hand, that produces trajectories for supervised fine-tuning.

It sees exactly what a learned policy sees (an `Observation`), plus the task's marks of which sentences are facts;
it never knows which facts answer the question, and it acts only on the chunk in view and the entries shown. Its
actions are a pure function of the observation, so a model can imitate them step for step.

How it uses the operations (workflow `atommem`):
- A chunk with no fact: no operation (the loop moves on).
- For each fact, in order: `read` the key the fact is about (a fresh vt value: its variable, which brings the
  sentence into focus), so that the engine's retrieval brings that key's entry
  (and, for a person, the objects they hold) into view; then write what changed: `update i` an entry in view,
  `create` a key that has none, `delete` what became false. The same action reads the key of the next fact in the
  chunk, if any; a step that reads stays on the chunk, one that does not moves on.
- Which fact it is working on follows from the current query alone (the query is cleared on each new chunk). Facts
  about one key are applied together, unless a fact about another name in between must come first (a person
  takes an object, then moves): the later ones then get a read of their own, `read KEY again`.
- Answer phase: `read` the question's key, then `answer` from entry values (world_state.answer_from).
Static workflows: `memagent` keeps the same state as `key: value; ...` in the scratchpad and rewrites all of it after
every chunk (MemAgent's overwrite memory), `no-store` rewrites it only when a chunk holds a fact; answer-only
workflows (`append`, `rag`, `full`) replay the facts they are shown.
"""
from __future__ import annotations

from atommem.observation import Observation
from atommem.policy import Action
from atommem.ops import Create, Delete, Read, Scratch, Update, Answer, format_ops
from atommem.tasks.events import parse_fact, parse_question
from atommem.world_state import (answer_from, apply_event, format_entry, parse_state, question_key,
                                 read_stages, ready)

SCRATCH_SEP = "; "


def chunk_events(obs: Observation) -> list:
    """The parsed facts of the observation's chunk, in order."""
    events = []
    for text, is_fact in zip(obs.chunk, obs.chunk_is_fact):
        ev = parse_fact(text) if is_fact else None
        if ev is not None:
            events.append(ev)
    return events


def _positions(memory: list[str]) -> dict[str, int]:
    pos: dict[str, int] = {}
    for i, text in enumerate(memory, 1):
        key = text.partition(":")[0].strip()
        pos.setdefault(key, i)
    return pos


def _diff(view: dict[str, str], new: dict[str, str], pos: dict[str, int], allowed) -> list:
    """Operations that turn the entries in view into the new state."""
    ops = []
    for key, value in new.items():
        text = format_entry(key, value)
        if key not in view:
            ops.append(Create(text))
        elif view[key] != value:
            if "update" in allowed:
                ops.append(Update(pos[key], text))
            else:  # no-update: replace the entry
                ops += [Delete(pos[key]), Create(text)]
    for key in view:
        if key not in new:
            if "delete" in allowed:
                ops.append(Delete(pos[key]))
            elif "update" in allowed:  # no-delete: mark it empty instead
                ops.append(Update(pos[key], format_entry(key, "nothing")))
    return ops


AGAIN = "again"  # a second read of a key within one chunk says so (a stopword to retrieval: it shows the same entries)


def _names(ev) -> set[str]:
    return {v for v in (getattr(ev, f, None) for f in ("who", "obj", "var", "src", "key")) if v}


def _groups(events: list) -> list[tuple[list[str], list]]:
    """(read stages, facts) per group, in the order they are applied. A fact joins the latest group of the key it
    reads first, so that all facts about one key are applied together once that key is in view, unless a fact of
    the chunk between that group's last fact and this one shares a name with it: then the order matters (a person
    who takes an object and then moves carries it along), and the fact opens a group of its own whose reads add
    AGAIN to the key, so that the current query still names the group in progress without ambiguity. A fact that
    reads nothing is a group of its own."""
    groups: list[tuple[list[str], list]] = []
    last: list[int] = []                    # per group: the index of its last fact
    latest: dict[str, int] = {}             # key -> its latest group
    repeats: dict[str, int] = {}
    for i, ev in enumerate(events):
        stages = read_stages(ev)
        key = stages[0] if stages else None
        g = latest.get(key)
        if g is not None and not any(_names(e) & _names(ev) for e in events[last[g] + 1:i]):
            groups[g][1].append(ev)
            last[g] = i
            continue
        if key is not None:
            n = repeats[key] = repeats.get(key, -1) + 1
            stages = [s + f" {AGAIN}" * n for s in stages]
            latest[key] = len(groups)
        groups.append((stages, [ev]))
        last.append(i)
    return groups


def _locate(groups: list[tuple[list[str], list]], query: str) -> tuple[int, int]:
    """(group index, reads already done for it) implied by the current query; (0, 0) on a fresh chunk."""
    for g, (stages, _) in enumerate(groups):
        if query in stages:
            return g, stages.index(query) + 1
    return 0, 0


def _read_phase_store(obs: Observation) -> list:
    groups = _groups(chunk_events(obs))
    if not groups:
        return []
    g, done = _locate(groups, obs.query)
    view = parse_state(obs.memory)
    pos = _positions(obs.memory)
    ops: list = []
    while g < len(groups):
        stages, facts = groups[g]
        if done < len(stages) and (done == 0 or not ready(facts[0], view, done)):
            return ops + [Read(stages[done])]
        new = view
        for ev in facts:
            new = apply_event(new, ev)
        ops += _diff(view, new, pos, obs.allowed)
        g, done, view, pos = g + 1, 0, {}, {}
    return ops


def _scratch_state(scratch: str) -> dict[str, str]:
    return parse_state([part for part in scratch.split(SCRATCH_SEP) if part])


def _read_phase_scratch(obs: Observation) -> list:
    events = chunk_events(obs)
    if not events and not (obs.rewrite and obs.scratch):
        return []
    state = _scratch_state(obs.scratch)
    for ev in events:
        state = apply_event(state, ev)
    return [Scratch(SCRATCH_SEP.join(format_entry(k, v) for k, v in state.items()))]


def _replay(sentences: list[str]) -> dict[str, str]:
    state: dict[str, str] = {}
    for text in sentences:
        ev = parse_fact(text)
        if ev is not None:
            state = apply_event(state, ev)
    return state


def _answer_phase(obs: Observation) -> list:
    q = parse_question(obs.ask)
    if q is None:
        return [Answer("unknown")]
    if "read" in obs.allowed:
        key = question_key(q)
        if obs.query != key:
            return [Read(key)]
        return [Answer(answer_from(parse_state(obs.memory), q) or "unknown")]
    if obs.chunk:                      # full context in view
        state = _replay(obs.chunk)
    elif obs.memory:                   # retrieved sentences, best (and, among equals, newest) first
        state = _replay(list(reversed(obs.memory)))
    else:
        state = _scratch_state(obs.scratch)
    return [Answer(answer_from(state, q) or "unknown")]


def teacher_ops(obs: Observation) -> list:
    """The teacher's operations for one observation."""
    if obs.phase == "answer":
        return _answer_phase(obs)
    if obs.allowed & {"create", "update"}:
        return _read_phase_store(obs)
    if "scratch" in obs.allowed:
        return _read_phase_scratch(obs)
    return []


class TeacherPolicy:
    """Policy interface over `teacher_ops` (batched for symmetry with the learned policy)."""

    name = "teacher"

    def act(self, observations: list[Observation]) -> list[Action]:
        return [Action(text=format_ops(teacher_ops(obs))) for obs in observations]
