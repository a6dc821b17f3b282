"""Episode records, the length measure, the family registry and answer scoring.

Run: .venv/bin/python -m pytest tests/test_tasks_episode.py -q
"""
import json

import pytest

from atommem.tasks.episode import Episode, Question, count_tokens, parse_length
from atommem.tasks.registry import FAMILIES, generate
from atommem.tasks.scoring import exact_match, normalize, partial_score, score_answer


def test_count_tokens():
    assert count_tokens("Where is Mary?") == 4
    assert count_tokens("VAR QXZAB = VAR ABTRE.") == 6
    assert count_tokens("Locker K417 was emptied.") == 5
    assert count_tokens("") == 0
    a, b = "Hugo went to the attic.", "The sky brightened."
    assert count_tokens(a + " " + b) == count_tokens(a) + count_tokens(b)


@pytest.mark.parametrize("text,value", [("512", 512), ("1k", 1024), ("4K", 4096), ("16k", 16384),
                                        ("128k", 131072), ("1m", 1048576), (" 2k ", 2048), ("1.5k", 1536), (300, 300)])
def test_parse_length(text, value):
    assert parse_length(text) == value


@pytest.mark.parametrize("text", ["", "k", "4q", "-1k", "0", "1kk", "four"])
def test_parse_length_rejects(text):
    with pytest.raises(ValueError):
        parse_length(text)


def test_json_round_trip_through_a_json_line():
    ep = generate("qa2", 512, 3, n_questions=2)
    line = json.dumps(ep.to_json())
    back = Episode.from_json(json.loads(line))
    assert back == ep and back.context() == ep.context()
    assert back.facts() == ep.facts() and back.fact_indices() == [i for i, f in enumerate(ep.is_fact) if f]


def test_from_json_rejects_malformed_records():
    good = Episode("babi", ["A b c."], [True], [Question("Q?", "a", [0])]).to_json()
    for broken in ({**good, "sentences": None}, {k: v for k, v in good.items() if k != "questions"},
                   {**good, "is_fact": [True, False]},
                   {**good, "questions": [{"text": "Q?", "answer": "a", "support": [5]}]}):
        with pytest.raises(ValueError):
            Episode.from_json(broken)


def test_registry():
    assert FAMILIES == ("qa1", "qa2", "qa3", "vt", "kv")
    with pytest.raises(ValueError, match="qa1, qa2, qa3, vt, kv"):
        generate("qa9", 512, 0)


@pytest.mark.parametrize("pred,gold,score", [
    ("The Kitchen.", "kitchen", 1.0), ("  kitchen ", "kitchen", 1.0), ("a garden", "the garden", 1.0),
    ("QXZAB  abtre", "QXZAB ABTRE", 1.0), ("apple, football", "apple,football", 1.0), ("nothing.", "nothing", 1.0),
    ("kitchen garden", "kitchen", 0.0), ("", "kitchen", 0.0), ("ABTRE QXZAB", "QXZAB ABTRE", 0.0),
])
def test_exact_match(pred, gold, score):
    assert exact_match(pred, gold) == score


@pytest.mark.parametrize("pred,gold,family,score", [
    ("ABTRE QXZAB", "QXZAB ABTRE", "vt", 1.0), ("abtre, qxzab.", "QXZAB ABTRE", "vt", 1.0),
    ("ABTRE QXZAB", "QXZAB ABTRE", "qa1", 0.0), ("QXZAB", "QXZAB ABTRE", "vt", 0.0),
    ("QXZAB ABTRE ABTRE", "QXZAB ABTRE", "vt", 0.0), ("QXZAB ABTRE ZZTOP", "QXZAB ABTRE", "vt", 0.0),
    ("kitchen", "kitchen", "qa1", 1.0),
])
def test_vt_is_scored_as_a_set_and_the_rest_in_order(pred, gold, family, score):
    assert score_answer(pred, gold, family) == score


@pytest.mark.parametrize("pred,gold,family,score", [
    ("ABTRE QXZAB", "QXZAB ABTRE", "vt", 1.0), ("QXZAB", "QXZAB ABTRE", "vt", 2 / 3),     # 2 * 1 / (1 + 2)
    ("QXZAB ABTRE ZZTOP", "QXZAB ABTRE", "vt", 0.8), ("QXZAB ABTRE ABTRE", "QXZAB ABTRE", "vt", 0.8),
    ("QXZAB ABTRX CC DD EE", "QXZAB ABTRE CC DD EE", "vt", 0.8), ("", "QXZAB", "vt", 0.0), ("", "", "vt", 1.0),
    ("kitchen garden", "kitchen", "qa1", 0.0), ("The kitchen", "kitchen", "qa1", 1.0),
])
def test_partial_score_gives_list_answers_the_f1_of_their_words(pred, gold, family, score):
    assert partial_score(pred, gold, family) == pytest.approx(score)
    assert partial_score(pred, gold, family) >= score_answer(pred, gold, family)


def test_normalize():
    assert normalize("  The  Old, Red-Barn!  ") == "old red barn"
    assert normalize("An apple a day") == "apple day"
