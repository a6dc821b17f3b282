"""Reading fact and question sentences back into structured records (used by the scripted teacher).

Owns: `Event`, `QuestionSpec`, `parse_fact`, `parse_question`. Covers every template of the generated families
(qa1, qa2, qa3, vt, kv) and the phrasings of the published bAbI tasks 1-3 ("went back to", "got the X there").
Anything else, background sentences included, parses as None. Knows nothing about episodes or generation.

Event kinds and their fields:
    move(who, where)  take(who, obj)  drop(who, obj)  vt_set(var, value)  vt_copy(var, src)
    kv_set(key, item)  kv_clear(key)
Question kinds:
    where_person(who)  where_object(obj)  where_before(obj, place)  vt_holders(value)  kv_get(key)

"Where is the X?" (with an article) asks about an object; "Where is X?" about a person.
Run `python -m atommem.tasks.events "Mary got the football there."` to see a parse.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass

_NAME = r"(?P<who>[A-Z][a-zA-Z]*)"
_WORD = r"[A-Za-z][\w-]*"
_FACTS = (
    ("move", re.compile(rf"^{_NAME} (?:went|moved|travelled|traveled|journeyed|walked|ran)(?: back)? to the "
                        rf"(?P<where>{_WORD})\.$")),
    ("take", re.compile(rf"^{_NAME} (?:picked up|took|grabbed|got) the (?P<obj>{_WORD})(?: there)?\.$")),
    ("drop", re.compile(rf"^{_NAME} (?:dropped|put down|discarded|left) the (?P<obj>{_WORD})(?: there)?\.$")),
    ("vt_copy", re.compile(r"^VAR (?P<var>[A-Z]+) = VAR (?P<src>[A-Z]+)\.$")),
    ("vt_set", re.compile(r"^VAR (?P<var>[A-Z]+) = (?P<value>\d+)\.$")),
    ("kv_set", re.compile(r"^Locker (?P<key>[A-Z]\d+) now holds the (?P<item>\w+)\.$")),
    ("kv_clear", re.compile(r"^Locker (?P<key>[A-Z]\d+) was emptied\.$")),
)
_QUESTIONS = (
    ("where_object", re.compile(rf"^Where is the (?P<obj>{_WORD})\s*\?$")),
    ("where_person", re.compile(rf"^Where is {_NAME}\s*\?$")),
    ("where_before", re.compile(rf"^Where was the (?P<obj>{_WORD}) before the (?P<place>{_WORD})\s*\?$")),
    ("vt_holders", re.compile(r"^Which variables hold the value (?P<value>\d+)\s*\?$")),
    ("kv_get", re.compile(r"^What does locker (?P<key>[A-Z]\d+) hold\s*\?$")),
)


@dataclass
class Event:
    """One parsed fact; only the fields of its kind are set."""

    kind: str
    who: str | None = None
    where: str | None = None
    obj: str | None = None
    var: str | None = None
    value: str | None = None
    src: str | None = None
    key: str | None = None
    item: str | None = None


@dataclass
class QuestionSpec:
    """One parsed question; only the fields of its kind are set."""

    kind: str
    who: str | None = None
    obj: str | None = None
    place: str | None = None
    value: str | None = None
    key: str | None = None


def _clean(text: str) -> str:
    return " ".join(text.split())


def parse_fact(text: str) -> Event | None:
    """The event a fact sentence states, or None for anything that is not one of the known fact forms."""
    text = _clean(text)
    for kind, pattern in _FACTS:
        match = pattern.match(text)
        if match:
            return Event(kind=kind, **match.groupdict())
    return None


def parse_question(text: str) -> QuestionSpec | None:
    """The structured form of a question, or None for an unknown question form."""
    text = _clean(text)
    if text.startswith("Where is the "):  # an article means an object, never a person
        match = _QUESTIONS[0][1].match(text)
        return QuestionSpec("where_object", **match.groupdict()) if match else None
    for kind, pattern in _QUESTIONS[1:]:
        match = pattern.match(text)
        if match:
            return QuestionSpec(kind=kind, **match.groupdict())
    return None


if __name__ == "__main__":
    for sentence in sys.argv[1:]:
        print(parse_fact(sentence) or parse_question(sentence))
