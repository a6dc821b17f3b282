"""Constrained decoding: which tokens an ActionConstraint refuses, and that the teacher never needs a refused one."""
import pytest

from atommem.agent import AgentConfig, run_episodes
from atommem.action_constraint import FORMAT_WORDS, WORD, ActionConstraint, TokenTable
from atommem.observation import END_TOKEN, render, special_tokens
from atommem.teacher import TeacherPolicy
from atommem.tasks.registry import FAMILIES, generate

CREATE, READ, READ_END, END, CHUNK, BR, UE, DE, FEB, SPACE, S, QUOTE, TMP, OAMP, NOBODY = range(15)
TABLE = TokenTable(["<create>", "<read>", "</read>", "<end>", "<chunk>", "Br", "ue", "de", "feb", " ", "S", "'",
                    "tmp", "oamp", "nobody"], frozenset({CREATE, READ, READ_END, END, CHUNK}))


def _constraint(*observations, opened=True):
    c = ActionConstraint(TABLE, list(observations) or ["<chunk> Bruedefeb met Soamp.</chunk>"])
    if opened:
        for row in range(len(c.states)):
            c.advance(row, READ)
    return c


def _write(c, tokens, row=0):
    for t in tokens:
        assert c.allows(row, t)
        c.advance(row, t)


def test_a_word_may_end_only_when_it_is_a_whole_observation_word():
    c = _constraint()
    _write(c, [SPACE, BR, UE, DE])
    assert c.allows(0, FEB) and not c.allows(0, READ_END) and not c.allows(0, SPACE)  # "Bruede" is no word
    _write(c, [FEB])
    assert c.allows(0, READ_END) and c.allows(0, SPACE)


def test_a_word_no_observation_word_starts_with_is_refused():
    c = _constraint()
    assert not c.allows(0, TMP) and c.allows(0, S) and c.allows(0, NOBODY)  # "nobody": a format word
    _write(c, [S])
    assert not c.allows(0, QUOTE) and c.allows(0, OAMP)   # "S'..." would end the word "S"


def test_after_a_refused_token_the_word_is_unchecked_until_it_ends():
    c = _constraint()
    c.advance(0, TMP)                                      # taken although refused
    assert c.allows(0, OAMP) and c.allows(0, SPACE)        # the rest of "tmp..." is not checked again
    _write(c, [OAMP, SPACE])
    assert not c.allows(0, TMP)                            # the next word is


def test_operations_are_well_formed_one_after_another():
    c = _constraint(opened=False)
    assert c.allows(0, READ) and c.allows(0, END) and c.allows(0, SPACE)
    assert not c.allows(0, READ_END) and not c.allows(0, S) and not c.allows(0, CHUNK)  # nothing outside an op
    _write(c, [READ, SPACE, S, OAMP])
    assert not c.allows(0, END) and not c.allows(0, CREATE) and not c.allows(0, CHUNK)  # the read is open
    c.advance(0, CHUNK)                                    # a stray observation tag taken anyway is ignored
    _write(c, [READ_END, END])


def test_each_prompt_has_its_own_words_and_state():
    c = _constraint("<chunk> Bruedefeb</chunk>", "<chunk> Soamp</chunk>")
    assert c.allows(0, BR) and not c.allows(1, BR)
    assert c.allows(1, S) and not c.allows(0, S)
    _write(c, [BR], row=0)
    assert c.states[0].partial == "Br" and c.states[1].partial == ""


def test_token_table_marks_special_tokens():
    from model.tokenizer import Tokenizer
    tok = Tokenizer.train(["Mary went to the kitchen."] * 20, vocab_size=300, special_tokens=special_tokens())
    table = TokenTable.of(tok)
    assert len(table.texts) == tok.vocab_size and len(table.special) == len(special_tokens())
    assert table.texts[tok.token_id("<create>")] == "<create>" and tok.token_id("<end>") in table.special
    assert "".join(table.texts[i] for i in tok.encode("Mary went")) == "Mary went"


def _first_refused(c, row, tokens):
    """The first token of `tokens` that `c` refuses on row `row` (None: all allowed), advancing through the rest."""
    for t in tokens:
        if not c.allows(row, t):
            return t
        c.advance(row, t)
    return None


@pytest.fixture(scope="module")
def teacher_steps():
    """(rendered observation, teacher action) of every step of a few episodes per family, and a tokenizer."""
    from model.tokenizer import Tokenizer
    steps = {}

    class Recorder:
        name = "recorder"

        def act(self, observations):
            actions = TeacherPolicy().act(observations)
            steps.setdefault(family, []).extend((render(o), a.text) for o, a in zip(observations, actions))
            return actions

    for family in FAMILIES:
        episodes = [generate(family, length, 7_000 + i) for length in (512, 2048) for i in range(3)]
        run_episodes(episodes, Recorder(), AgentConfig(focus=True, answer_focus=True))
    texts = [t for pairs in steps.values() for pair in pairs for t in pair]
    return steps, Tokenizer.train(texts, vocab_size=600, special_tokens=special_tokens())


@pytest.mark.parametrize("family", FAMILIES)
def test_the_constraint_allows_every_teacher_action(family, teacher_steps):
    """If this fails, the teacher writes something the constraint refuses (a new word of the memory format
    belongs in FORMAT_WORDS)."""
    steps, tok = teacher_steps
    pairs = steps[family]
    c = ActionConstraint(TokenTable.of(tok), [obs for obs, _ in pairs])
    refused = [(action, tok.decode([t])) for row, (_, action) in enumerate(pairs)
               if (t := _first_refused(c, row, tok.encode(action) + [tok.token_id(END_TOKEN)])) is not None]
    assert len(pairs) > 20 and sum(bool(a) for _, a in pairs) > 10 and not refused, refused[:3]


def test_the_constraint_refuses_a_broken_copy_of_a_teacher_action(teacher_steps):
    steps, tok = teacher_steps
    obs, action = next((o, a) for o, a in steps["vt"] if "<create>" in a)
    c = ActionConstraint(TokenTable.of(tok), [obs])
    assert _first_refused(c, 0, tok.encode(action)) is None
    c = ActionConstraint(TokenTable.of(tok), [obs])
    assert _first_refused(c, 0, tok.encode(action.replace(":", ": Q9Z", 1))) is not None  # no observation word
