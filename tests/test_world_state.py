"""The teacher's canonical entries: object rooms, arrival entries, and the one lookup each question needs."""
from atommem.memory import MemoryEngine
from atommem.tasks.events import parse_fact, parse_question
from atommem.world_state import answer_from, apply_event, format_entry, parse_state, question_key


def _replay(sentences: list[str]) -> dict[str, str]:
    state: dict[str, str] = {}
    for text in sentences:
        state = apply_event(state, parse_fact(text))
    return state


def test_a_carried_object_gets_its_room_and_an_arrival_entry():
    state = _replay(["Mary went to the garden.", "Mary got the football there.", "John went to the office.",
                     "Mary went to the kitchen."])
    assert state["Mary"] == "kitchen" and state["John"] == "office"
    assert state["football"] == "Mary | kitchen"
    assert state["football kitchen"] == "garden"
    assert "football garden" not in state          # its first room has no "before"
    assert "football office" not in state          # John moved, not the holder


def test_a_dropped_object_stays_and_later_moves_do_not_touch_it():
    state = _replay(["Mary went to the garden.", "Mary got the football there.", "Mary went to the kitchen.",
                     "Mary dropped the football.", "Mary went to the office."])
    assert state["football"] == "nobody | kitchen"
    assert "football office" not in state


def test_the_latest_arrival_answers_before_and_the_room_answers_where():
    state = _replay(["Sam went to the hallway.", "Sam took the apple.", "Sam went to the kitchen.",
                     "Sam went to the cellar.", "Sam went to the kitchen."])
    before = parse_question("Where was the apple before the kitchen?")
    assert question_key(before) == "apple kitchen"
    assert answer_from(state, before) == "cellar"   # the last visit came from the cellar, the first from the hallway
    assert answer_from(state, parse_question("Where is the apple?")) == "kitchen"


def test_retrieval_shows_the_newest_arrival_entry_first():
    engine = MemoryEngine()
    for text in ["apple kitchen: hallway", format_entry("apple", "Sam | kitchen"), "apple cellar: kitchen",
                 "apple kitchen: cellar", "Sam: kitchen"]:
        assert engine.create(text) is None
    shown = [e.text for e in engine.search("apple kitchen")]
    assert shown[0] == "apple kitchen: cellar"
    assert "apple kitchen: hallway" in shown[1:]


def test_vt_keeps_one_entry_per_variable_and_the_answer_gathers_them():
    state = _replay(["VAR QXZAB = 48213.", "VAR KLMNO = 90001.", "VAR ABTRE = VAR QXZAB.", "VAR ZZTOP = VAR ABTRE.",
                     "VAR PQRST = VAR KLMNO."])
    assert state == {"QXZAB": "48213", "KLMNO": "90001", "ABTRE": "48213", "ZZTOP": "48213", "PQRST": "90001"}
    q = parse_question("Which variables hold the value 48213?")
    assert question_key(q) == "48213"
    assert answer_from(state, q) == "QXZAB ABTRE ZZTOP"
    assert apply_event({}, parse_fact("VAR ABTRE = VAR QXZAB.")) == {}   # the source is not in view: nothing to copy


def test_reading_a_value_shows_its_variables_newest_first_and_the_teacher_answers_from_them():
    engine = MemoryEngine()
    for text in ["QXZAB: 48213", "KLMNO: 90001", "ABTRE: 48213", "ZZTOP: 48213"]:
        assert engine.create(text) is None
    shown = [e.text for e in engine.search("48213", k=6)]
    assert shown == ["ZZTOP: 48213", "ABTRE: 48213", "QXZAB: 48213"]
    q = parse_question("Which variables hold the value 48213?")
    assert answer_from(parse_state(shown), q) == "ZZTOP ABTRE QXZAB"
