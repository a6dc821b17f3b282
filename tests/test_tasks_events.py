"""The fact and question parser: every template of every family, bAbI tasks 1-3 phrasings, and background text.

Run: .venv/bin/python -m pytest tests/test_tasks_events.py -q
"""
import random

import pytest

from atommem.tasks.events import Event, QuestionSpec, parse_fact, parse_question
from atommem.tasks.haystack import Haystack
from atommem.tasks.registry import FAMILIES, generate
from atommem.tasks.vocab import DROP_VERBS, MOVE_VERBS, OBJECTS, PEOPLE, PLACES, TAKE_VERBS


@pytest.mark.parametrize("verb", MOVE_VERBS)
def test_move_templates(verb):
    for who, where in zip(PEOPLE, PLACES):
        assert parse_fact(f"{who} {verb} to the {where}.") == Event("move", who=who, where=where)


@pytest.mark.parametrize("verb", TAKE_VERBS)
def test_take_templates(verb):
    for who, obj in zip(PEOPLE, OBJECTS):
        assert parse_fact(f"{who} {verb} the {obj}.") == Event("take", who=who, obj=obj)


@pytest.mark.parametrize("verb", DROP_VERBS)
def test_drop_templates(verb):
    for who, obj in zip(PEOPLE, OBJECTS):
        assert parse_fact(f"{who} {verb} the {obj}.") == Event("drop", who=who, obj=obj)


def test_vt_and_kv_templates():
    assert parse_fact("VAR QXZAB = 40213.") == Event("vt_set", var="QXZAB", value="40213")
    assert parse_fact("VAR ABTRE = VAR QXZAB.") == Event("vt_copy", var="ABTRE", src="QXZAB")
    assert parse_fact("Locker K417 now holds the lantern.") == Event("kv_set", key="K417", item="lantern")
    assert parse_fact("Locker K417 was emptied.") == Event("kv_clear", key="K417")


BABI_FACTS = {
    "Mary moved to the bathroom.": Event("move", who="Mary", where="bathroom"),
    "John went to the hallway.": Event("move", who="John", where="hallway"),
    "Sandra journeyed to the garden.": Event("move", who="Sandra", where="garden"),
    "Daniel travelled to the office.": Event("move", who="Daniel", where="office"),
    "Daniel went back to the office.": Event("move", who="Daniel", where="office"),
    "Mary got the football there.": Event("take", who="Mary", obj="football"),
    "John picked up the apple there.": Event("take", who="John", obj="apple"),
    "Daniel grabbed the milk there.": Event("take", who="Daniel", obj="milk"),
    "Sandra took the football there.": Event("take", who="Sandra", obj="football"),
    "Mary dropped the football.": Event("drop", who="Mary", obj="football"),
    "John put down the apple.": Event("drop", who="John", obj="apple"),
    "Daniel discarded the milk.": Event("drop", who="Daniel", obj="milk"),
    "Sandra left the football.": Event("drop", who="Sandra", obj="football"),
}


@pytest.mark.parametrize("text", sorted(BABI_FACTS))
def test_babi_fact_phrasings(text):
    assert parse_fact(text) == BABI_FACTS[text]
    assert parse_fact("  " + text + " ") == BABI_FACTS[text]  # stray whitespace is tolerated
    assert parse_question(text) is None


QUESTIONS = {
    "Where is Mary?": QuestionSpec("where_person", who="Mary"),
    "Where is Wilhelmina ?": QuestionSpec("where_person", who="Wilhelmina"),
    "Where is the football?": QuestionSpec("where_object", obj="football"),
    "Where is the lantern?": QuestionSpec("where_object", obj="lantern"),
    "Where was the football before the bathroom?": QuestionSpec("where_before", obj="football", place="bathroom"),
    "Which variables hold the value 40213?": QuestionSpec("vt_holders", value="40213"),
    "What does locker K417 hold?": QuestionSpec("kv_get", key="K417"),
}


@pytest.mark.parametrize("text", sorted(QUESTIONS))
def test_question_forms(text):
    assert parse_question(text) == QUESTIONS[text]
    assert parse_fact(text) is None


def test_object_question_is_never_read_as_a_person():
    assert parse_question("Where is the Mary?") == QuestionSpec("where_object", obj="Mary")
    assert parse_question("Where is the?") is None


@pytest.mark.parametrize("family", FAMILIES)
def test_every_generated_sentence_reads_as_its_role(family):
    kinds = {"qa1": {"move"}, "qa2": {"move", "take", "drop"}, "qa3": {"move", "take", "drop"},
             "vt": {"vt_set", "vt_copy"}, "kv": {"kv_set", "kv_clear"}}[family]
    question_kind = {"qa1": "where_person", "qa2": "where_object", "qa3": "where_before", "vt": "vt_holders",
                     "kv": "kv_get"}[family]
    for seed in range(10):
        ep = generate(family, 1024, seed, n_questions=2)
        for s, is_fact in zip(ep.sentences, ep.is_fact):
            event = parse_fact(s)
            assert (event is not None) == is_fact, s
            assert event is None or event.kind in kinds
        assert all(parse_question(q.text).kind == question_kind for q in ep.questions)


def test_background_parses_as_nothing():
    for s in Haystack().sample(random.Random(5), 1000):
        assert parse_fact(s) is None and parse_question(s) is None, s


@pytest.mark.parametrize("text", ["", "Mary.", "Mary went to kitchen.", "VAR qxzab = 1.", "Locker 417 was emptied.",
                                  "Where is?", "Mary went to the kitchen", "The wind moved to the east quickly."])
def test_near_misses_parse_as_none(text):
    assert parse_fact(text) is None
