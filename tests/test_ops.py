"""The operation language: examples of every op and every error, and properties (never raises, roundtrip)."""
import time

import pytest
from hypothesis import given, settings, strategies as st

from atommem.ops import (MAX_ERRORS, MAX_INPUT_CHARS, OP_TAGS, Answer, Create, Delete, Read, Scratch, Update,
                         format_ops, parse_ops)


def test_tags_and_kinds():
    assert OP_TAGS == ("create", "read", "update", "delete", "scratch", "answer")
    assert [c.kind for c in (Create, Read, Update, Delete, Scratch, Answer)] == list(OP_TAGS)


@pytest.mark.parametrize("text, op", [
    ("<create>Mary: kitchen</create>", Create("Mary: kitchen")),
    ("<read>football</read>", Read("football")),
    ("<update>2: John: office</update>", Update(2, "John: office")),
    ("<update>1: Mary: kitchen</update>", Update(1, "Mary: kitchen")),  # split at the FIRST colon
    ("<update> 3 :  x </update>", Update(3, "x")),
    ("<delete>4</delete>", Delete(4)),
    ("<delete> 12 </delete>", Delete(12)),
    ("<scratch>seen 3 facts</scratch>", Scratch("seen 3 facts")),
    ("<scratch></scratch>", Scratch("")),
    ("<scratch>   </scratch>", Scratch("")),
    ("<answer> kitchen </answer>", Answer("kitchen")),
    ("<CREATE>x</CREATE>", Create("x")),
    ("<create>a < b and c > d</create>", Create("a < b and c > d")),  # no tag token: plain text
])
def test_each_op(text, op):
    res = parse_ops(text)
    assert res.ops == [op] and res.errors == [] and res.ok


def test_several_ops_whitespace_between():
    text = " <create>a</create>\n\n<read>b</read>  <delete>1</delete>\t"
    assert parse_ops(text).ops == [Create("a"), Read("b"), Delete(1)]
    assert parse_ops(text).errors == []


@pytest.mark.parametrize("text, error", [
    ("<update>x: y</update>", "update: index 'x' is not a number"),
    ("<delete>two</delete>", "delete: index 'two' is not a number"),
    ("<delete>0</delete>", "delete: index must be 1 or more"),
    ("<delete>-2</delete>", "delete: index must be 1 or more"),
    ("<delete>" + "9" * 5000 + "</delete>", "delete: index too large"),
    ("<delete>²</delete>", "delete: index '²' is not a number"),
    ("<delete></delete>", "delete: missing index"),
    ("<update>no colon</update>", "update: expected 'index: text'"),
    ("<update>1:   </update>", "update: empty text"),
    ("<create>  </create>", "create: empty text"),
    ("<read></read>", "read: empty query"),
    ("<answer></answer>", "answer: empty text"),
    ("<read>q", "unclosed <read>"),
    ("<foo>bar</foo>", "unknown tag <foo>"),
    ("hello", "stray text outside tags"),
    ("</create>", "stray </create>"),
    (12, "input is not text"),
])
def test_errors(text, error):
    res = parse_ops(text)
    assert res.ops == [] and error in res.errors
    assert all(len(e) < 80 for e in res.errors)


def test_recovery_keeps_valid_ops_in_order():
    res = parse_ops("junk<create>a</create><foo>x</foo><create>b<read>q</read></create><delete>z</delete>"
                    "<answer>yes</answer><update>1")
    assert res.ops == [Create("a"), Read("q"), Answer("yes")]
    assert res.errors == ["stray text outside tags", "unknown tag <foo>", "unclosed <create>", "stray </create>",
                          "delete: index 'z' is not a number", "unclosed <update>"]


def test_unknown_tag_alone_is_one_error():
    assert parse_ops("<foo>bar</foo><create>x</create>").errors == ["unknown tag <foo>"]


def test_bytes_are_decoded_with_replacement():
    res = parse_ops(b"\xff\xfe<create>caf\xc3\xa9</create>")
    assert res.ops == [Create("café")] and res.errors == ["stray text outside tags"]


def test_errors_are_capped_and_deduplicated():
    res = parse_ops("".join(f"<t{i}>" for i in range(50)) + "<x>" * 20)
    assert len(res.errors) == MAX_ERRORS + 1 and res.errors[-1].startswith("... and")
    assert parse_ops("<x>" * 20).errors == ["unknown tag <x>"]


def test_huge_input_is_cut_and_linear():
    unit = "<create>Mary went to the kitchen</create>"
    text = unit * 100_000  # 4 MB
    t0 = time.perf_counter()
    res = parse_ops(text)
    assert time.perf_counter() - t0 < 1.0
    assert f"input too long: cut at {MAX_INPUT_CHARS} chars" in res.errors
    assert len(res.ops) == MAX_INPUT_CHARS // len(unit)
    t0 = time.perf_counter()
    parse_ops("<create>" + "<" * 10**6)  # adversarial: many tag starts, none complete
    parse_ops("<" * MAX_INPUT_CHARS)
    assert time.perf_counter() - t0 < 1.0


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.text(alphabet="<>/: 1xcreatdupnswh\n")))
def test_never_raises(raw):
    res = parse_ops(raw)
    assert isinstance(res.ops, list) and isinstance(res.errors, list)
    assert all(isinstance(e, str) and len(e) < 80 for e in res.errors)
    assert len(res.errors) <= MAX_ERRORS + 1


_clean = st.text(min_size=1, max_size=40).map(lambda s: s.replace("<", "").replace(">", "").strip()).filter(bool)
_index = st.integers(min_value=1, max_value=10**9 - 1)
_op = st.one_of(
    st.builds(Create, _clean), st.builds(Read, _clean), st.builds(Update, _index, _clean), st.builds(Delete, _index),
    st.builds(Scratch, st.one_of(st.just(""), _clean)), st.builds(Answer, _clean))


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, max_size=8))
def test_format_parse_roundtrip(ops):
    res = parse_ops(format_ops(ops))
    assert res.ops == ops and res.errors == []


def test_format_exact_syntax():
    ops = [Create("a"), Read("b"), Update(1, "Mary: kitchen"), Delete(2), Scratch(""), Answer("c")]
    assert format_ops(ops) == ("<create> a</create><read> b</read><update> 1: Mary: kitchen</update>"
                               "<delete> 2</delete><scratch></scratch><answer> c</answer>")
