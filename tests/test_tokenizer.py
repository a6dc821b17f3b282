"""Tokenizer: exact roundtrip on arbitrary text, special tokens as single ids, save/load."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.tokenizer import Tokenizer

SPECIALS = ["<pad>", "<eos>", "<create>", "</create>", "<read>", "</read>", "<é ü>"]
CORPUS = [
    "John went to the kitchen. Mary picked up the football there.",
    "<create>Sandra journeyed to the garden.</create> <read>football</read>",
    "Where is the football?  The answer: hallway.\n\tindented line",
    "héllo wörld, naïve café 🎉🚀 日本語のテキスト",
] * 20


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train(CORPUS, vocab_size=400, special_tokens=SPECIALS)


def test_special_tokens_are_single_ids(tok):
    for i, s in enumerate(SPECIALS):
        assert tok.token_id(s) == i  # special tokens come first, in the given order
        assert tok.encode(s) == [i]
        assert tok.decode([i]) == s
    ids = tok.encode("a<create>b c</create>")
    assert tok.token_id("<create>") in ids and tok.token_id("</create>") in ids
    assert tok.encode("<creat") != [tok.token_id("<create>")]
    assert tok.special_tokens == SPECIALS
    with pytest.raises(KeyError):
        tok.token_id("<not-a-token>")


def test_vocab_and_learned_merges(tok):
    assert 256 + len(SPECIALS) < tok.vocab_size <= 400
    assert len(tok.encode("John went to the kitchen.")) < len("John went to the kitchen.")
    ids = tok.encode("\x00 unseen ☃ bytes \U0010ffff")
    assert all(0 <= i < tok.vocab_size for i in ids)


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_roundtrip_arbitrary_text(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(SPECIALS), st.text(max_size=12),
                                st.sampled_from([" ", "\n", "  x", "🎉", "\r\n"])), max_size=12))
def test_roundtrip_with_special_tokens(tok, parts):
    text = "".join(parts)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    n_special = sum(ids.count(tok.token_id(s)) for s in SPECIALS)
    assert n_special >= sum(p in SPECIALS for p in parts)


def test_save_and_load(tok, tmp_path):
    path = tmp_path / "deep" / "tokenizer.json"
    tok.save(path)
    back = Tokenizer.load(path)
    text = "<create>Mary 🎉 went</create>\n  <é ü>"
    assert back.encode(text) == tok.encode(text) and back.decode(back.encode(text)) == text
    assert back.vocab_size == tok.vocab_size and back.special_tokens == tok.special_tokens


def test_train_rejects_bad_arguments():
    with pytest.raises(ValueError, match="duplicate"):
        Tokenizer.train(CORPUS, 300, ["<a>", "<a>"])
    with pytest.raises(ValueError, match="smaller"):
        Tokenizer.train(CORPUS, 100, ["<a>"])


def test_upper_pairs_tokens(tmp_path):
    plain = Tokenizer.train(CORPUS, vocab_size=400, special_tokens=SPECIALS)
    paired = Tokenizer.train(CORPUS, vocab_size=400, special_tokens=SPECIALS, upper_pairs=True)
    assert paired.vocab_size == plain.vocab_size + 2 * 26 * 26
    text = "<memory> 45314: USCTA PIRHG</memory> VAR X = 7. Mary met NASA."
    ids = paired.encode(text)
    pieces = [paired.decode([i]) for i in ids]
    assert [" US", "CT", "A", " PI", "RH", "G"] == pieces[pieces.index(" US"):pieces.index(" US") + 6]
    assert " NA" in pieces and "SA" in pieces
    assert paired.encode(" Mary met John") == plain.encode(" Mary met John")  # a lone capital is untouched
    assert len(ids) < len(plain.encode(text)) and paired.decode(ids) == text
    paired.save(tmp_path / "t.json")
    back = Tokenizer.load(tmp_path / "t.json")
    assert back.encode(text) == ids and back.vocab_size == paired.vocab_size
