"""The background's other shapes (atommem/tasks/shapes.py): every shape occurs, none can be read as a fact or a
question, none uses a word of the task families, and the bytes of non-ASCII text occur.

Run: .venv/bin/python -m pytest tests/test_tasks_shapes.py -q
"""
import random
import re

from atommem.tasks.episode import count_tokens
from atommem.tasks.events import parse_fact, parse_question
from atommem.tasks.shapes import ShapesGrammar
from atommem.tasks.vocab import forbidden_background_words


def test_every_shape_occurs_and_none_is_a_fact_or_a_task_word():
    grammar = ShapesGrammar()
    rng = random.Random(0)
    by_shape = {shape.__name__: [shape(rng) for _ in range(400)] for shape in grammar._shapes}
    assert len(by_shape) >= 9
    lines = [grammar.line(rng) for _ in range(4000)]
    forbidden = forbidden_background_words()
    for text in lines + [t for ts in by_shape.values() for t in ts]:
        assert not {w.lower() for w in re.findall(r"\w+", text)} & forbidden, text
    assert not any(parse_fact(t) or parse_question(t) for t in lines)
    for name, texts in by_shape.items():
        assert len(set(texts)) > 100, f"{name} repeats itself"
        assert all(t.strip() for t in texts), f"{name} made an empty line"


def test_shapes_cover_the_characters_real_files_use():
    grammar = ShapesGrammar()
    rng = random.Random(1)
    text = " ".join(grammar.line(rng) for _ in range(4000))
    for ch in "=|~*`<>{}[]_#/\\:;\"'@$%&+-!?":
        assert ch in text, ch
    high = {b for b in text.encode("utf-8") if b > 127}
    assert len(high) >= 70, "UTF-8 lead and continuation bytes of accented, Greek and Cyrillic letters and signs"
    assert re.search(r"={20,}", text) and re.search(r"https://www\.\w+\.\w+/", text)
    assert max(count_tokens(grammar.line(rng)) for _ in range(500)) <= 30
