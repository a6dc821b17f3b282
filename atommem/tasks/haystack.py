"""Background text and the assembly of facts into a context of a chosen length.

Owns: `Haystack` (a source of background sentences: built-in filler templates, free-form prose and the other
shapes of real files, or any UTF-8 text a user supplies), `assemble` (hide facts, in order, at random positions
among background until the context is within 2% of the target length), `assemble_episode` (the same, plus mapping
each question's support from fact numbers to sentence indices) and `default_fact_count` (how many facts a family
uses at a given length).
Knows nothing about what the facts say; the grammars live in `filler.py`, `prose.py` and `shapes.py`.

Lengths are measured with `episode.count_tokens`. Background is produced lazily, one sentence at a time, so a
1M-token context costs one pass over about 80k short sentences.

Run `python -m atommem.tasks.haystack [FILE]` to print a few background sentences.
"""
from __future__ import annotations

import math
import random
import re
import sys
from pathlib import Path
from typing import Iterator, Sequence

from atommem.tasks.episode import Episode, Question, count_tokens
from atommem.tasks.events import parse_fact, parse_question
from atommem.tasks.filler import FillerGrammar
from atommem.tasks.prose import ProseGrammar
from atommem.tasks.shapes import ShapesGrammar

_TOKEN_SPANS = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MAX_PIECE_WORDS = 40  # a "sentence" of a user text longer than this is cut into pieces of this many words
TOLERANCE = 0.02  # relative length error allowed by `assemble`
# built-in background: these shares of free-form sentences (prose.py) and of other shapes (shapes.py: rules, code,
# markup, paths, tables, dialogue, letters outside ASCII); the rest are filler templates (filler.py)
PROSE_SHARE = 0.35
SHAPES_SHARE = 0.25


class HaystackError(ValueError):
    """A background source could not be built (missing, empty or non-text file)."""


class Haystack:
    """A source of background sentences.

    `Haystack()` uses the built-in background (fresh random sentences: from the filler grammar's templates,
    free-form ones, `prose.py`, and lines of other shapes, `shapes.py`). `Haystack.from_file(path)` and
    `Haystack.from_text(text)` use a user's text: it is split into sentences, any sentence that would read as a
    fact or a question is dropped, and `stream` walks the text in order from a random starting sentence.
    """

    def __init__(self, sentences: Sequence[str] | None = None, name: str = "filler"):
        self.name = name
        self._sentences = list(sentences) if sentences is not None else None
        self._grammar = FillerGrammar() if sentences is None else None
        self._prose = ProseGrammar() if sentences is None else None
        self._shapes = ShapesGrammar() if sentences is None else None
        if self._sentences is not None and not self._sentences:
            raise HaystackError(f"haystack {name!r} has no usable sentences")

    @classmethod
    def from_text(cls, text: str, name: str = "text") -> "Haystack":
        if not text.strip():
            raise HaystackError(f"haystack {name} is empty")
        return cls(split_sentences(text), name=name)

    @classmethod
    def from_file(cls, path: str | Path) -> "Haystack":
        path = Path(path)
        if not path.exists():
            raise HaystackError(f"haystack file not found: {path}")
        if not path.is_file():
            raise HaystackError(f"haystack path is not a file: {path}")
        raw = path.read_bytes()
        if b"\x00" in raw:
            raise HaystackError(f"haystack file is not text (it contains NUL bytes): {path}")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise HaystackError(f"haystack file is not UTF-8 text (byte {err.start}): {path}") from None
        if not text.strip():
            raise HaystackError(f"haystack file is empty: {path}")
        sentences = split_sentences(text)
        if not sentences:
            raise HaystackError(f"haystack file has no usable sentences (need at least 3 tokens each): {path}")
        return cls(sentences, name=str(path))

    def stream(self, rng: random.Random) -> Iterator[str]:
        """An endless stream of background sentences drawn with `rng`."""
        if self._grammar is not None:
            filler, prose, shapes = self._grammar.sentence, self._prose.sentence, self._shapes.line
            while True:
                r = rng.random()
                yield prose(rng) if r < PROSE_SHARE else shapes(rng) if r < PROSE_SHARE + SHAPES_SHARE \
                    else filler(rng)
        sentences = self._sentences
        i = rng.randrange(len(sentences))
        while True:
            yield sentences[i]
            i = (i + 1) % len(sentences)

    def sample(self, rng: random.Random, n: int) -> list[str]:
        stream = self.stream(rng)
        return [next(stream) for _ in range(n)]


def split_sentences(text: str) -> list[str]:
    """Cut free text into sentences of at least 3 tokens; pieces that parse as facts or questions are dropped."""
    out = []
    for piece in _SENTENCE_END.split(" ".join(text.split())):
        words = piece.split()
        for start in range(0, len(words), _MAX_PIECE_WORDS):
            chunk = " ".join(words[start:start + _MAX_PIECE_WORDS])
            if chunk and chunk[-1] not in ".!?\"')]":
                chunk += "."
            if count_tokens(chunk) < 3 or parse_fact(chunk) or parse_question(chunk):
                continue
            out.append(chunk)
    return out


def _truncate(sentence: str, max_tokens: int) -> str | None:
    """The sentence cut after a word so that it has at most `max_tokens` tokens, closed by a period."""
    spans = [(m.start(), m.end(), m.group()[0].isalnum() or m.group()[0] == "_")
             for m in _TOKEN_SPANS.finditer(sentence)]
    keep = min(max_tokens - 1, len(spans))
    while keep > 0 and not spans[keep - 1][2]:
        keep -= 1
    if keep == 0:
        return None
    return sentence[:spans[keep - 1][1]] + "."


def assemble(facts: list[str], target_tokens: int, rng: random.Random,
             haystack: Haystack | None = None) -> tuple[list[str], list[bool], list[int]]:
    """Hide `facts` (kept in order) at random positions among background sentences.

    Returns (sentences, is_fact, fact_indices), where fact_indices[i] is the sentence index of facts[i]. The total
    `count_tokens` length ends within 2% of `target_tokens` (within 1 token for very short targets). Raises
    ValueError when the facts alone are longer than the target.
    """
    haystack = haystack or Haystack()
    fact_tokens = sum(count_tokens(f) for f in facts)
    if fact_tokens > target_tokens:
        raise ValueError(f"the {len(facts)} facts alone take {fact_tokens} tokens, more than the target of "
                         f"{target_tokens}; use a longer length or fewer facts")
    budget = target_tokens - fact_tokens
    slack = int(TOLERANCE * target_tokens)
    stream = haystack.stream(rng)
    background: list[str] = []
    used = 0
    while used < budget:
        room = budget - used
        sentence = next(stream)
        n = count_tokens(sentence)
        if n > room:  # near the end: look for a sentence that fits, else shorten one, else stop if close enough
            for _ in range(40):
                sentence = next(stream)
                n = count_tokens(sentence)
                if n <= room:
                    break
            else:
                sentence = None if room <= slack else _truncate(sentence, room)
                if sentence is None:
                    break
                n = count_tokens(sentence)
        background.append(sentence)
        used += n
    slots = sorted(rng.sample(range(len(background) + len(facts)), len(facts)))
    sentences: list[str] = []
    is_fact: list[bool] = []
    fact_indices: list[int] = []
    b = 0
    for i, slot in enumerate(slots):
        take = slot - len(sentences)
        sentences.extend(background[b:b + take])
        b += take
        fact_indices.append(len(sentences))
        sentences.append(facts[i])
    sentences.extend(background[b:])
    is_fact = [False] * len(sentences)
    for i in fact_indices:
        is_fact[i] = True
    return sentences, is_fact, fact_indices


def assemble_episode(family: str, facts: list[str], questions: list[Question], target_tokens: int, seed: int | None,
                     rng: random.Random, haystack: Haystack | None = None) -> Episode:
    """`assemble`, then an Episode whose question supports (given as fact numbers) become sentence indices."""
    sentences, is_fact, fact_indices = assemble(facts, target_tokens, rng, haystack)
    mapped = [Question(q.text, q.answer, sorted(fact_indices[i] for i in set(q.support))) for q in questions]
    return Episode(family, sentences, is_fact, mapped, seed=seed, target_tokens=target_tokens)


def default_fact_count(target_tokens: int, rng: random.Random, low: int = 6, high: int = 10, cap: int = 20,
                       floor: int = 1) -> int:
    """A fact count drawn from [low, high] at 512 tokens, growing by about 1 to 1.5 per doubling, at most `cap`.

    Very short targets get fewer facts (about one per 24 tokens) so facts stay sparse among background, but never
    fewer than `floor` (the family's minimum for the questions asked).
    """
    doublings = max(0.0, math.log2(max(target_tokens, 1) / 512))
    hi = min(cap, high + round(1.5 * doublings), max(2, target_tokens // 24))
    lo = min(hi, low + round(doublings))
    return max(floor, rng.randint(lo, hi))


if __name__ == "__main__":
    source = Haystack.from_file(sys.argv[1]) if len(sys.argv) > 1 else Haystack()
    for line in source.sample(random.Random(0), 8):
        print(line)
