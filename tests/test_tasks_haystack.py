"""Background text and assembly: the filler's vocabulary, user files, length accuracy and fact order.

Run: .venv/bin/python -m pytest tests/test_tasks_haystack.py -q
"""
import random
import re
from collections import Counter

import pytest

from atommem.tasks.episode import count_tokens
from atommem.tasks.events import parse_fact, parse_question
from atommem.tasks.haystack import (PROSE_SHARE, SHAPES_SHARE, Haystack, HaystackError, assemble,
                                    default_fact_count)
from atommem.tasks.registry import generate
from atommem.tasks.vocab import forbidden_background_words

BOOK = (
    "The lighthouse keeper counted the waves every evening. He wrote their number in a ledger! "
    "Was it madness, or only habit? Nobody in the harbour could say. "
    "Mary went to the kitchen. Where is the football? "  # fact- and question-like: must be dropped
    "Ships came and went with the seasons, and the keeper grew old among his lamps and logbooks. "
)


def test_filler_avoids_every_reserved_word():
    forbidden = forbidden_background_words()
    sentences = Haystack().sample(random.Random(0), 5000)
    words = {w.lower() for s in sentences for w in re.findall(r"\w+", s)}
    assert not words & forbidden
    assert not any(parse_fact(s) or parse_question(s) for s in sentences)
    assert len(set(sentences)) > 2500, "the filler should not repeat itself much"
    assert {w for s in sentences for w in re.findall(r"\d+|[A-Z]{2,}", s)}   # numbers and acronyms occur
    assert any(ord(c) > 127 for s in sentences for c in s)                # and letters outside ASCII (shapes.py)


def test_builtin_background_mixes_its_three_sources_in_their_shares():
    hay = Haystack()
    hay._grammar.sentence = lambda rng: "filler"
    hay._prose.sentence = lambda rng: "prose"
    hay._shapes.line = lambda rng: "shapes"
    counts = Counter(hay.sample(random.Random(3), 20000))
    assert abs(counts["prose"] / 20000 - PROSE_SHARE) < 0.02
    assert abs(counts["shapes"] / 20000 - SHAPES_SHARE) < 0.02
    assert abs(counts["filler"] / 20000 - (1 - PROSE_SHARE - SHAPES_SHARE)) < 0.02


def test_user_text_is_split_filtered_and_read_in_order(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(BOOK, encoding="utf-8")
    hay = Haystack.from_file(path)
    sentences = hay.sample(random.Random(1), 12)
    assert "Mary went to the kitchen." not in sentences
    assert "Where is the football?" not in sentences
    assert "Was it madness, or only habit?" in sentences
    unique = list(dict.fromkeys(sentences))
    assert len(unique) == 5  # the text is walked in order and wraps around
    start = sentences[0]
    assert sentences[5] == start


def test_user_text_with_huge_sentences_still_hits_length(tmp_path):
    path = tmp_path / "run_on.txt"
    path.write_text(" ".join(f"word{i}" for i in range(3000)), encoding="utf-8")
    hay = Haystack.from_file(path)
    rng = random.Random(0)
    assert all(count_tokens(s) <= 41 for s in hay.sample(rng, 100))
    for target in (100, 333, 512, 2000):
        sentences, is_fact, _ = assemble(["Hugo went to the attic."], target, random.Random(target), hay)
        total = sum(count_tokens(s) for s in sentences)
        assert abs(total - target) <= max(1, 0.02 * target)


@pytest.mark.parametrize("content,reason", [
    (None, "not found"), (b"", "empty"), (b"   \n\t ", "empty"), (b"abc\x00def. more text here.", "not text"),
    (b"\xff\xfe\xfa bad bytes here.", "not UTF-8"), (b"hi", "no usable sentences"),
])
def test_user_file_errors_are_clear(tmp_path, content, reason):
    path = tmp_path / "hay.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(HaystackError, match=reason):
        Haystack.from_file(path)
    with pytest.raises(HaystackError, match="not a file"):
        Haystack.from_file(tmp_path)


@pytest.mark.parametrize("target", [64, 512, 1024, 4096, 16384])
def test_assemble_keeps_order_and_length(target):
    facts = [f"Hugo went to the room{i}." for i in range(6)]
    rng = random.Random(target)
    sentences, is_fact, where = assemble(facts, target, rng)
    assert [sentences[i] for i in where] == facts and where == sorted(where)
    assert [i for i, f in enumerate(is_fact) if f] == where
    assert abs(sum(count_tokens(s) for s in sentences) - target) <= max(1, 0.02 * target)
    again = assemble(facts, target, random.Random(target))
    assert again == (sentences, is_fact, where)


def test_assemble_refuses_facts_longer_than_target():
    with pytest.raises(ValueError, match="facts alone take 12 tokens"):
        assemble(["Hugo went to the attic.", "Vera ran to the cellar."], 10, random.Random(0))


def test_generators_accept_a_user_haystack(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(BOOK * 3, encoding="utf-8")
    hay = Haystack.from_file(path)
    ep = generate("qa1", 1024, 0, haystack=hay)
    background = {s for s, f in zip(ep.sentences, ep.is_fact) if not f}
    assert background <= set(hay.sample(random.Random(0), 10))
    assert abs(ep.n_tokens() - 1024) <= 0.02 * 1024


def test_default_fact_count_grows_gently():
    rng = random.Random(0)
    at = {n: [default_fact_count(n, rng) for _ in range(200)] for n in (512, 4096, 131072, 1 << 20)}
    assert min(at[512]) == 6 and max(at[512]) == 10
    assert sum(at[4096]) > sum(at[512]) and max(at[1 << 20]) <= 20
    assert max(default_fact_count(64, rng) for _ in range(50)) <= 2
    assert default_fact_count(64, rng, floor=5) == 5
