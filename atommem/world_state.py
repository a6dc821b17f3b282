"""The canonical memory entries a good agent keeps, and how each kind of fact changes them.

This is the knowledge the scripted teacher (atommem/teacher.py) acts on; the learned policy only ever sees its
effects, as text. A state is a dict from a key (a person, an object, a value, a locker) to a value string, and each
key is stored as one entry `key: value`:

    Mary: kitchen                    where a person is
    football: Mary | kitchen         who holds an object ("nobody" when free) | the room it is in
    football kitchen: garden         where the object came from on its latest arrival in a room
    QXZAB: 48213                     the value a variable holds (one entry per variable)
    K417: lamp                       what a locker holds (no entry when emptied)

Keeping the object's room up to date when its holder moves, and writing an arrival entry each time it enters a room,
makes every question a single lookup and a copy: `Where is the football?` is the object entry's room, `Where was
the football before the kitchen?` the value of `football kitchen` (a later arrival in the kitchen writes a newer
entry, and retrieval shows the newest of equal matches first). An earlier design kept the whole trail of rooms in
the object's entry: each move copied a growing list, and the answer to `before` meant finding the room preceding
the last mention of another, which a small policy got wrong a third of the time (bench/RESULTS.md). vt likewise
keeps one short entry per variable (a copy reads the source's entry and writes `NEW: value`), not the value's whole
chain of variables, whose copy on every update was vt's main error (bench/RESULTS.md, tenth round); the question
`Which variables hold the value 48213?` reads the value and gathers every entry that holds it (the answer phase
shows more entries, atommem/agent.py `answer_top_k`; vt answers are scored as a set, atommem/tasks/scoring.py).
Knows nothing about engines, models or training.
"""
from __future__ import annotations

NOBODY = "nobody"


def format_entry(key: str, value: str) -> str:
    return f"{key}: {value}".rstrip()


def parse_entry(text: str) -> tuple[str, str] | None:
    key, sep, value = text.partition(":")
    if not sep or not key.strip() or len(key.split()) > 3:
        return None
    return key.strip(), value.strip()


def parse_state(texts: list[str]) -> dict[str, str]:
    """Entries (first occurrence of a key wins: the engine shows the best match first)."""
    state: dict[str, str] = {}
    for text in texts:
        parsed = parse_entry(text)
        if parsed and parsed[0] not in state:
            state[parsed[0]] = parsed[1]
    return state


def _split_object(value: str) -> tuple[str, str]:
    holder, _, room = value.partition("|")
    return holder.strip() or NOBODY, room.strip()


def _join_object(holder: str, room: str) -> str:
    return f"{holder} | {room}".rstrip()


def arrival_key(obj: str, room: str) -> str:
    return f"{obj} {room}"


def is_arrival_entry(text: str) -> bool:
    """Whether an entry's text is an arrival entry (`football kitchen: garden`: the only keys of two words)."""
    parsed = parse_entry(text)
    return parsed is not None and len(parsed[0].split()) == 2


def _is_object(value: str) -> bool:
    return "|" in value


def apply_event(state: dict[str, str], ev) -> dict[str, str]:
    """The state after one fact (a new dict; unknown event kinds change nothing)."""
    new = dict(state)
    kind = ev.kind
    if kind == "move":
        new[ev.who] = ev.where
        for key, value in state.items():
            if _is_object(value):
                holder, room = _split_object(value)
                if holder == ev.who and room != ev.where:
                    new[key] = _join_object(holder, ev.where)
                    if room:
                        new[arrival_key(key, ev.where)] = room
    elif kind in ("take", "drop"):
        holder = ev.who if kind == "take" else NOBODY
        room = _split_object(state[ev.obj])[1] if ev.obj in state and _is_object(state[ev.obj]) else ""
        here = state.get(ev.who, "")
        if not room and here and not _is_object(here):
            room = here
        new[ev.obj] = _join_object(holder, room)
    elif kind == "vt_set":
        new[ev.var] = ev.value
    elif kind == "vt_copy":
        if ev.src in state:
            new[ev.var] = state[ev.src]
    elif kind == "kv_set":
        new[ev.key] = ev.item
    elif kind == "kv_clear":
        new.pop(ev.key, None)
    return new


def read_stages(ev) -> list[str]:
    """The queries that bring the entries an event needs into view, tried in order."""
    kind = ev.kind
    if kind == "move":
        return [ev.who]
    if kind in ("take", "drop"):
        return [ev.obj, f"{ev.who} {ev.obj}"]
    if kind == "vt_copy":
        return [ev.src]
    if kind in ("kv_set", "kv_clear"):
        return [ev.key]
    if kind == "vt_set":
        # The variable's own name: nothing to look up, but the read brings its sentence into the focus, so the
        # value is copied from right before the action rather than from a chunk with other assignments in it.
        return [ev.var]
    return []


def ready(ev, state: dict[str, str], stage: int) -> bool:
    """Whether the entries in view after `stage` reads are enough to apply the event."""
    if ev.kind in ("take", "drop") and stage == 1:
        return ev.obj in state
    return True


_QUESTION_KEY_FIELD = {"where_person": "who", "where_object": "obj", "vt_holders": "value", "kv_get": "key"}


def question_key(q) -> str:
    """The key a question is about (what to read before answering)."""
    if q.kind == "where_before":
        return arrival_key(q.obj, q.place)
    return getattr(q, _QUESTION_KEY_FIELD[q.kind])


def answer_from(state: dict[str, str], q) -> str:
    """The answer a state gives to a parsed question ("" when it cannot tell)."""
    kind = q.kind
    if kind == "vt_holders":  # every variable that holds the value, in the state's order
        return " ".join(key for key, held in state.items() if held == q.value)
    value = state.get(question_key(q))
    if kind == "kv_get":
        return value if value else "nothing"
    if value is None:
        return ""
    if kind in ("where_person", "where_before"):
        return value
    if kind == "where_object":
        return _split_object(value)[1]
    return ""
