"""The episode record shared by every task family, plus the length measure used everywhere.

Owns: `Question`, `Episode` (with JSON round trip), `count_tokens` and `parse_length`.
Knows nothing about how episodes are generated, tokenised by a model, or played by an agent.

Length convention. An episode's length is `count_tokens(episode.context())`, where

    count_tokens(text) = number of matches of  \\w+ | [^\\w\\s]  in text

i.e. every run of word characters is one token and every other non-space character is one token. The measure is
independent of any model tokenizer, and it is additive over sentences joined by spaces, which is how the context
is built. Questions are not counted: they are shown separately from the context.

Run `python -m atommem.tasks.episode 4k` to print a parsed length.
"""
from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass, field

_TOKEN = re.compile(r"\w+|[^\w\s]")
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
_SUFFIX = {"": 1, "k": 1024, "m": 1024 * 1024}


def count_tokens(text: str) -> int:
    """Tokenizer-agnostic length: word runs and single punctuation marks each count as one token."""
    return len(_TOKEN.findall(text))


def parse_length(text: str | int) -> int:
    """'512' -> 512, '1k' -> 1024, '16k' -> 16384, '128k' -> 131072, '1m' -> 1048576 (binary multiples)."""
    if isinstance(text, int):
        value = text
    else:
        match = _LENGTH.match(str(text))
        if not match:
            raise ValueError(f"cannot read length {text!r}: expected a number with an optional k or m suffix "
                             f"(512, 4k, 1m)")
        value = int(round(float(match.group(1)) * _SUFFIX[match.group(2).lower()]))
    if value <= 0:
        raise ValueError(f"length must be positive, got {text!r}")
    return value


@dataclass
class Question:
    """One question about an episode; `support` indexes `Episode.sentences` (the facts that answer it)."""

    text: str
    answer: str
    support: list[int] = field(default_factory=list)


@dataclass
class Episode:
    """A context (facts hidden among background sentences) and the questions asked after reading it."""

    family: str
    sentences: list[str]
    is_fact: list[bool]
    questions: list[Question]
    seed: int | None = None
    target_tokens: int | None = None

    def __post_init__(self):
        if len(self.sentences) != len(self.is_fact):
            raise ValueError(f"episode has {len(self.sentences)} sentences but {len(self.is_fact)} is_fact flags")

    def context(self) -> str:
        """The whole context as one string: the sentences joined by single spaces."""
        return " ".join(self.sentences)

    def n_tokens(self) -> int:
        """Length of the context under `count_tokens` (additive over the sentences)."""
        return sum(count_tokens(s) for s in self.sentences)

    def facts(self) -> list[str]:
        """The fact sentences, in story order."""
        return [s for s, f in zip(self.sentences, self.is_fact) if f]

    def fact_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.is_fact) if f]

    def to_json(self) -> dict:
        """A plain dict (lists, strings, ints, bools, None) suitable for one JSON line."""
        return {
            "family": self.family,
            "sentences": list(self.sentences),
            "is_fact": [bool(f) for f in self.is_fact],
            "questions": [asdict(q) for q in self.questions],
            "seed": self.seed,
            "target_tokens": self.target_tokens,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Episode":
        """Inverse of `to_json`; raises ValueError naming the missing or malformed field."""
        try:
            questions = [Question(str(q["text"]), str(q["answer"]), [int(i) for i in q.get("support", [])])
                         for q in d["questions"]]
            episode = cls(family=str(d["family"]), sentences=[str(s) for s in d["sentences"]],
                          is_fact=[bool(f) for f in d["is_fact"]], questions=questions,
                          seed=d.get("seed"), target_tokens=d.get("target_tokens"))
        except (KeyError, TypeError) as err:
            raise ValueError(f"not an episode record: missing or malformed field {err}") from None
        for q in episode.questions:
            if any(not 0 <= i < len(episode.sentences) for i in q.support):
                raise ValueError(f"question {q.text!r} has a support index outside the "
                                 f"{len(episode.sentences)} sentences")
        return episode


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["512", "1k", "128k", "1m"]:
        print(arg, parse_length(arg))
