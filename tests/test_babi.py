"""The bAbI-format reader, on files written here: well-formed stories, embedding in background, malformed files.

Run: .venv/bin/python -m pytest tests/test_babi.py -q
"""
import pytest

from atommem.tasks.babi import BabiFormatError, babi_episode, parse_babi, read_babi
from atommem.tasks.episode import count_tokens
from atommem.tasks.haystack import Haystack

GOOD = """\
1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Sandra moved to the garden.
6 Where is Daniel? \thallway\t4
1 Sandra got the football there.
2 Sandra journeyed to the office.
3 Where is the football?\toffice\t1 2
4 Sandra dropped the football.
5 Sandra went to the kitchen.
6 Where was the football before the office?\tbathroom\t1 2
"""


def write(tmp_path, text, name="qa.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_one_episode_per_question(tmp_path):
    episodes = read_babi(write(tmp_path, GOOD))
    assert [len(e.questions) for e in episodes] == [1, 1, 1, 1]
    first, second, third, fourth = episodes
    assert first.family == "babi" and first.sentences == ["Mary moved to the bathroom.", "John went to the hallway."]
    assert first.is_fact == [True, True]
    assert first.questions[0].text == "Where is Mary?" and first.questions[0].answer == "bathroom"
    assert first.questions[0].support == [0]
    assert second.sentences[-1] == "Sandra moved to the garden." and len(second.sentences) == 4
    assert second.questions[0].support == [2]  # line 4 is the third statement (line 3 was a question)
    assert third.sentences == ["Sandra got the football there.", "Sandra journeyed to the office."]
    assert third.questions[0].support == [0, 1]
    assert len(fourth.sentences) == 4 and fourth.questions[0].support == [0, 1]


def test_embedding_in_background(tmp_path):
    path = write(tmp_path, GOOD)
    plain = read_babi(path)
    for target in (256, 1024):
        embedded = read_babi(path, target_tokens=target, seed=3)
        for e, p in zip(embedded, plain):
            assert e.facts() == p.sentences
            assert abs(e.n_tokens() - target) <= 0.02 * target
            q, pq = e.questions[0], p.questions[0]
            assert [e.sentences[i] for i in q.support] == [p.sentences[i] for i in pq.support]
            assert e.target_tokens == target
        assert [e.seed for e in embedded] == [3, 4, 5, 6]
    assert read_babi(path, target_tokens=512, seed=1)[2] == read_babi(path, target_tokens=512, seed=1)[2]


def test_embedding_in_a_user_haystack(tmp_path):
    book = write(tmp_path, "The river rose slowly that spring. Boats waited by the bridge. " * 20, "book.txt")
    ep = read_babi(write(tmp_path, GOOD), haystack=Haystack.from_file(book), target_tokens=300)[0]
    background = {s for s, f in zip(ep.sentences, ep.is_fact) if not f}
    assert background == {"The river rose slowly that spring.", "Boats waited by the bridge."}
    assert sum(count_tokens(s) for s in ep.sentences) == ep.n_tokens()


def test_haystack_without_length_is_refused(tmp_path):
    with pytest.raises(ValueError, match="target_tokens"):
        read_babi(write(tmp_path, GOOD), haystack=Haystack())


@pytest.mark.parametrize("text,line,expected", [
    ("1 Mary moved to the bathroom.\nMary went to the garden.\n", 2, "starting with its number"),
    ("1 Mary moved to the bathroom.\n3 John went to the office.\n2 Where is Mary?\tbathroom\t1\n", 3, "above 3"),
    ("2 Mary moved to the bathroom.\n", 1, "1 to start a story"),
    ("1 Mary moved to the bathroom.\n2 Where is Mary?\t\t1\n", 2, "has no answer"),
    ("1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\tone\n", 2, "found 'one'"),
    ("1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\t7\n", 2, "found '7'"),
    ("1 Mary went to the hall.\n2 Where is Mary?\thall\t1\n3 Where is Mary?\thall\t2\n", 3, "found '2'"),
    ("1 Mary went to the hall.\n2 Where is Mary?\thall\t1\n1 Where is John?\thall\t1\n", 3, "found '1'"),
])
def test_malformed_files_name_file_and_line(tmp_path, text, line, expected):
    path = write(tmp_path, text)
    with pytest.raises(BabiFormatError) as info:
        read_babi(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: expected ")
    assert expected in message


def test_unreadable_files(tmp_path):
    with pytest.raises(BabiFormatError, match="does not exist"):
        read_babi(tmp_path / "missing.txt")
    (tmp_path / "bin.txt").write_bytes(b"1 \xff\xfe\n")
    with pytest.raises(BabiFormatError, match="UTF-8"):
        read_babi(tmp_path / "bin.txt")
    with pytest.raises(BabiFormatError, match="at least one question"):
        read_babi(write(tmp_path, "1 Mary went to the hall.\n"))


def test_two_step_reading_matches_read_babi(tmp_path):
    path = write(tmp_path, GOOD)
    items = parse_babi(path)
    assert [item.line for item in items] == [3, 6, 9, 12]
    assert [babi_episode(item, None, 300, 7 + i) for i, item in enumerate(items)] == read_babi(path, None, 300, 7)
    with pytest.raises(ValueError, match="target_tokens"):
        babi_episode(items[0], Haystack())
