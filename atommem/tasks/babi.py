"""Reader for files in the published bAbI format, optionally hidden in background text like the generators.

Owns: `read_babi`, `parse_babi` + `babi_episode` (the same in two lazy steps), `BabiItem`, `BabiFormatError`.
Knows nothing about generation beyond `haystack.assemble_episode`.

Format: every line is `N text`, where N counts lines from 1 within a story and restarts at 1 for the next story.
A question line is `N question<TAB>answer<TAB>supporting line numbers` (space-separated). Each question becomes one
episode (family "babi") whose facts are the story's statements before it, in order; the question's support line
numbers become indices into those sentences. Blank lines are ignored. A malformed file raises BabiFormatError
with `file:line: what was expected`.

Run `python -m atommem.tasks.babi FILE` to print the first episode read from FILE.
"""
from __future__ import annotations

import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from atommem.tasks.episode import Episode, Question
from atommem.tasks.haystack import Haystack, assemble_episode

_LINE = re.compile(r"^(\d+)\s+(\S.*)$")
_SHAPE = "'N question<TAB>answer<TAB>supporting line numbers'"


class BabiFormatError(ValueError):
    """A bAbI-format file that does not follow the format; the message starts with `file:line:`."""


@dataclass
class BabiItem:
    """One question line: the story's statements before it and the question (support = statement indices)."""

    statements: list[str]
    question: Question
    line: int


def _parse(path: Path, text: str) -> list[BabiItem]:
    out = []
    statements: list[str] = []
    line_to_statement: dict[int, int] = {}
    previous = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{lineno}"
        if not raw.strip():
            continue
        match = _LINE.match(raw.strip("\r\n").lstrip())
        if not match:
            raise BabiFormatError(f"{where}: expected a line starting with its number, 'N text', found {raw[:40]!r}")
        number, rest = int(match.group(1)), match.group(2)
        if number == 1:
            statements, line_to_statement = [], {}
        elif number <= previous or previous == 0:
            expected = "1 to start a story" if previous == 0 else f"a number above {previous} (or 1 for a new story)"
            raise BabiFormatError(f"{where}: expected line number {expected}, found {number}")
        previous = number
        if "\t" not in rest:
            line_to_statement[number] = len(statements)
            statements.append(rest.strip())
            continue
        fields = rest.split("\t")
        question = fields[0].strip()
        answer = fields[1].strip() if len(fields) > 1 else ""
        if not question or not answer:
            raise BabiFormatError(f"{where}: expected {_SHAPE}, but the line has no "
                                  f"{'answer' if question else 'question'}")
        support = []
        for token in (fields[2].split() if len(fields) > 2 else []):
            if not token.isdigit() or int(token) not in line_to_statement:
                raise BabiFormatError(f"{where}: expected supporting ids that are numbers of earlier statement "
                                      f"lines of this story, found {token!r}")
            support.append(line_to_statement[int(token)])
        out.append(BabiItem(list(statements), Question(question, answer, sorted(set(support))), lineno))
    return out


def parse_babi(path: str | Path) -> list[BabiItem]:
    """Every question of a bAbI-format file, validated; cheap (no background is made here)."""
    path = Path(path)
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise BabiFormatError(f"{path}:0: expected a bAbI-format file, but it {problem}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise BabiFormatError(f"{path}:0: expected UTF-8 text, found a bad byte at offset {err.start}") from None
    items = _parse(path, text)
    if not items:
        raise BabiFormatError(f"{path}:0: expected at least one question line ({_SHAPE}), found none")
    return items


def babi_episode(item: BabiItem, haystack: Haystack | None = None, target_tokens: int | None = None,
                 seed: int = 0) -> Episode:
    """The episode of one question: its statements alone, or hidden in background when `target_tokens` is set."""
    if target_tokens is None:
        if haystack is not None:
            raise ValueError("a bAbI haystack needs target_tokens (the context length to fill)")
        return Episode("babi", list(item.statements), [True] * len(item.statements), [item.question])
    return assemble_episode("babi", item.statements, [item.question], target_tokens, seed, random.Random(seed),
                            haystack)


def read_babi(path: str | Path, haystack: Haystack | None = None, target_tokens: int | None = None,
              seed: int = 0) -> list[Episode]:
    """One Episode per question of a bAbI-format file.

    Without `target_tokens` the context is the story's statements alone. With it, each episode's statements are
    hidden among background sentences (from `haystack`, the built-in filler by default) up to that length; the
    i-th episode uses random.Random(seed + i) and records that seed.
    """
    if haystack is not None and target_tokens is None:
        raise ValueError("read_babi: a haystack needs target_tokens (the context length to fill)")
    return [babi_episode(item, haystack, target_tokens, seed + i) for i, item in enumerate(parse_babi(path))]


if __name__ == "__main__":
    first = read_babi(sys.argv[1])[0]
    print("\n".join(first.sentences))
    print(first.questions[0])
