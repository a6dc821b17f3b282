"""The CRUD engine: each op, stable positions, capacity, retrieval order, persistence, and random op sequences."""
import json
import os

import numpy as np
import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from atommem.embed import HashingEmbedder
from atommem.memory import Entry, MemoryConfig, MemoryEngine, MemoryFileError
from atommem.ops import Answer, Create, Delete, Read, Scratch, Update, parse_ops


def _engine(*texts, **cfg) -> MemoryEngine:
    eng = MemoryEngine(MemoryConfig(**cfg))
    for t in texts:
        assert eng.create(t) is None
    return eng


def _view(eng, query=None) -> list[str]:
    if query is not None:
        eng.read(query)
    return [e.text for e in eng.refresh_view()]


def test_create_read_refresh():
    eng = _engine("Mary: kitchen", "John: office")
    assert len(eng) == 2 and [e.id for e in eng.entries()] == [0, 1]
    assert eng.entries()[0] == Entry(0, "Mary: kitchen", 1, 1)
    assert _view(eng) == []  # empty query shows nothing
    assert eng.read("  Mary ") is None and eng.query == "Mary"
    assert eng.shown == []  # the view changes only at the next refresh
    assert _view(eng) == ["Mary: kitchen"] and eng.shown == [0]
    eng.clear_query()
    assert _view(eng) == [] and eng.stats.applied["read"] == 1


def test_update_and_delete_address_the_shown_list():
    eng = _engine("Mary: kitchen", "Mary: garden", "Mary: hall", "John: office")
    assert _view(eng, "Mary") == ["Mary: hall", "Mary: garden", "Mary: kitchen"]  # ties: most recent first
    assert eng.delete(1) is None
    assert eng.update(2, "Mary: attic") is None  # position 2 is still "Mary: garden": no renumbering
    assert eng.delete(1) == "delete: entry 1 was already removed"
    assert eng.update(1, "x") == "update: entry 1 was already removed"
    assert [e.text for e in eng.entries()] == ["Mary: kitchen", "Mary: attic", "John: office"]
    assert eng.update(4, "x") == "update: position 4 not in 1-3"
    assert eng.delete(0) == "delete: position 0 not in 1-3"
    assert eng.delete("1") == "delete: position must be a number"
    assert _view(eng) == ["Mary: attic", "Mary: kitchen"]  # the updated entry is now the most recent
    assert eng.stats.reasons["gone"] == 2 and eng.stats.reasons["position"] == 3
    eng.clear_query()
    eng.refresh_view()
    assert eng.delete(1) == "delete: no memory entries are shown"


def test_empty_text_truncation_and_scratch():
    eng = _engine(entry_limit=10, scratch_limit=5)
    assert eng.create("   ") == "create: empty text" and len(eng) == 0
    assert eng.read("") == "read: empty query"
    assert eng.create("abcdefghijKLMNOP") == "create: text cut to 10 chars"
    assert eng.entries()[0].text == "abcdefghij"  # applied, with an error line
    assert eng.set_scratch("123456789") == "scratch: text cut to 5 chars" and eng.scratch == "12345"
    assert eng.set_scratch("") is None and eng.scratch == ""
    _view(eng, "abcdefghij")
    assert eng.update(1, " ") == "update: empty text"
    s = eng.stats
    assert s.applied == {"create": 1, "read": 1, "update": 0, "delete": 0, "scratch": 2}
    assert s.rejected["create"] == s.rejected["read"] == s.rejected["update"] == 1
    assert s.reasons["too_long"] == 2 and s.reasons["empty"] == 3 and s.errors == 5 and s.calls == 7


def test_capacity_refuse_and_evict():
    eng = _engine("a: 1", "b: 2", capacity=2)
    assert eng.create("c: 3") == "create: memory full (2 entries)" and len(eng) == 2
    assert eng.stats.reasons["full"] == 1
    eng = _engine("ann: 1", "bob: 2", capacity=2, on_full="evict")
    assert _view(eng, "ann") == ["ann: 1"]
    assert eng.create("cid: 3") is None
    assert [e.text for e in eng.entries()] == ["bob: 2", "cid: 3"] and eng.stats.evictions == 1
    assert eng.delete(1) == "delete: entry 1 was already removed"  # the evicted entry was shown
    with pytest.raises(ValueError):
        MemoryConfig(on_full="drop")
    with pytest.raises(ValueError):
        MemoryConfig(capacity=0)


def test_min_score_and_key_field_ranking():
    eng = _engine("football: Mary | garden", "Mary: kitchen", "John: office", "Daniel: hall", top_k=3)
    assert _view(eng, "Mary") == ["Mary: kitchen", "football: Mary | garden"]  # unrelated never shown
    assert _view(eng, "the of") == []  # a query with no features shows nothing
    assert _view(eng, "Sandra") == []
    eng.config.min_score = 0.5
    assert _view(eng, "Mary") == ["Mary: kitchen"]


def test_top_k_and_recency_ties_after_update():
    eng = _engine(*[f"apple: {i}" for i in range(6)], top_k=2)
    assert _view(eng, "apple") == ["apple: 5", "apple: 4"]
    eng.config.top_k = 6
    _view(eng)
    assert eng.update(6, "apple: 0b") is None  # position 6 is the oldest
    eng.config.top_k = 2
    assert _view(eng) == ["apple: 0b", "apple: 5"]


def test_duplicates_allowed_but_counted_and_search_is_pure():
    eng = _engine("Mary: kitchen", "Mary: kitchen")
    assert len(eng) == 2 and eng.stats.duplicates == 1
    assert [e.id for e in eng.search("Mary", k=5)] == [1, 0]
    assert eng.shown == [] and eng.query == ""


def test_apply_dispatch_answer_and_unknown():
    eng = MemoryEngine()
    errs = eng.apply_all(parse_ops("<create>Mary: kitchen</create><read>Mary</read><scratch>s</scratch>"
                                   "<answer>kitchen</answer>").ops + [object()])
    assert errs == ["answer outside the answer phase", "unknown operation object"]
    assert eng.scratch == "s" and eng.query == "Mary"
    assert eng.refresh_view()[0].text == "Mary: kitchen"
    assert eng.apply(Update(1, "Mary: hall")) is None and eng.apply(Delete(1)) is None and len(eng) == 0
    assert eng.stats.rejected["answer"] == 1 and eng.stats.rejected["unknown"] == 1


def test_end_step_history_and_peak():
    eng = MemoryEngine()
    for ops in (["ann: 1", "bob: 2"], ["cid: 3"]):
        for t in ops:
            eng.create(t)
        eng.end_step()
    eng.read("ann")
    eng.refresh_view()
    eng.delete(1)
    eng.end_step()
    assert eng.stats.size_history == [2, 3, 2] and eng.stats.peak_size == 3


class _DenseToy:
    """A dense embedder without embed_query: the engine must accept any Embedder."""
    dim = 16

    def embed(self, texts):
        out = np.ones((len(texts), 16), np.float32)
        for i, t in enumerate(texts):
            out[i, len(t) % 16] += 10.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_pluggable_embedder():
    eng = MemoryEngine(MemoryConfig(top_k=1), embedder=_DenseToy())
    for t in ("ab", "abc", "abcd"):
        eng.create(t)
    assert _view(eng, "xyz") == ["abc"]


def test_save_load_roundtrip(tmp_path):
    eng = _engine("Mary: kitchen", "John: office", "café: ☕", capacity=5, top_k=2)
    _view(eng, "Mary")
    eng.set_scratch("two facts")
    eng.delete(2)
    eng.end_step()
    path = tmp_path / "mem.json"
    eng.save(path)
    assert os.listdir(tmp_path) == ["mem.json"]  # no temp file left behind
    back = MemoryEngine.load(path)
    assert back.snapshot() == eng.snapshot()
    assert back.update(1, "Mary: hall") is None and back.entries()[0].text == "Mary: hall"
    assert back.create("x") is None and back.entries()[-1].id == 3  # the id counter survived
    assert [e.text for e in back.refresh_view()] == ["Mary: hall"]


@pytest.mark.parametrize("content, message", [
    (None, "memory file not found"),
    ("{not json", "not valid JSON"),
    (json.dumps({"hello": 1}), "not an AtomMem memory"),
    (json.dumps([1, 2]), "not an AtomMem memory"),
    ("VERSION", "unsupported memory format version 99"),
    ("ENTRIES", "corrupt memory snapshot"),
])
def test_load_errors(tmp_path, content, message):
    path = tmp_path / "mem.json"
    snap = _engine("a: 1").snapshot()
    if content == "VERSION":
        content = json.dumps({**snap, "version": 99})
    elif content == "ENTRIES":
        content = json.dumps({**snap, "entries": [{"id": "x"}]})
    if content is not None:
        path.write_text(content)
    with pytest.raises(MemoryFileError, match=message):
        MemoryEngine.load(path)


def test_failed_restore_changes_nothing():
    eng = _engine("a: 1")
    before = eng.snapshot()
    with pytest.raises(MemoryFileError):
        eng.restore({**before, "entries": [{"id": 0, "text": "x", "created": 1, "updated": 1}] * 2})
    assert eng.snapshot() == before


# -- random op sequences: never an exception, invariants always hold --------------------------------------------
_words = st.sampled_from(["Mary", "John", "kitchen", "garden", "football", "the", "", "  "])
_text = st.lists(_words, max_size=4).map(" ".join) | st.builds(lambda a, b: f"{a}: {b}", _words, _words)
_pos = st.integers(1, 3) | st.integers(-1, 6)


def _brute_top(eng) -> list[int]:
    """Reference top-k: score every entry with the embedder, sort by (rounded score, recency) descending."""
    if not eng.query or not len(eng):
        return []
    ents = eng.entries()
    scores = eng.embedder.embed([e.text for e in ents]) @ eng.embedder.embed_query([eng.query])[0]
    ranked = sorted((-round(float(s), 5), -e.updated, e.id) for e, s in zip(ents, scores) if s > eng.config.min_score)
    return [i for _, _, i in ranked[:eng.config.top_k]]


class EngineMachine(RuleBasedStateMachine):
    @initialize(cap=st.none() | st.integers(1, 6), evict=st.booleans(), k=st.sampled_from([3, 1, 2, 4, 0]))
    def setup(self, cap, evict, k):
        cfg = MemoryConfig(top_k=k, capacity=cap, on_full="evict" if evict else "refuse", entry_limit=24)
        self.eng = MemoryEngine(cfg, HashingEmbedder(dim=64))  # small dim: hash collisions get exercised too
        self.calls = 0
        self.seen_ids: set[int] = set()
        self.live: set[int] = set()

    def _call(self, result):
        self.calls += 1
        assert result is None or (isinstance(result, str) and 0 < len(result) < 80)

    @rule(text=_text)
    def create(self, text):
        self._call(self.eng.create(text))

    @rule(who=st.sampled_from(["Mary", "John"]), where=st.sampled_from(["kitchen", "garden", "football"]))
    def create_fact(self, who, where):
        self.create(f"{who}: {where}")

    @rule(query=_text)
    def read(self, query):
        self._call(self.eng.read(query))

    @rule(pos=_pos, text=_text)
    def update(self, pos, text):
        self._call(self.eng.update(pos, text))

    @rule(pos=_pos)
    def delete(self, pos):
        self._call(self.eng.delete(pos))

    @rule(text=_text)
    def scratch(self, text):
        self._call(self.eng.set_scratch(text))

    @rule(raw=st.text(max_size=40) | st.sampled_from(["<delete>1</delete>", "<update>2: Mary: x</update>"]))
    def parsed(self, raw):
        ops = parse_ops(raw).ops
        errs = self.eng.apply_all(ops)
        self.calls += len(ops)
        assert len(errs) <= len(ops)

    @rule()
    def refresh(self):
        view = self.eng.refresh_view()
        assert [e.id for e in view] == self.eng.shown == _brute_top(self.eng)

    @rule(query=st.sampled_from(["Mary", "John", "kitchen", "garden football"]))
    def look(self, query):  # what the agent does most: read, then observe the new view
        self.read(query)
        self.refresh()

    @rule()
    def step(self):
        self.eng.end_step()

    @invariant()
    def consistent(self):
        eng, s = self.eng, self.eng.stats
        ids = [e.id for e in eng.entries()]
        assert len(ids) == len(set(ids)) == len(eng) and ids == sorted(ids)
        assert eng.config.capacity is None or len(eng) <= eng.config.capacity
        assert s.calls == self.calls
        assert len(eng) == s.applied["create"] - s.applied["delete"] - s.evictions
        assert s.peak_size >= len(eng)
        assert len(eng.shown) <= eng.config.top_k
        assert len(eng._index) == len(eng)
        for pos, e in enumerate(eng.shown_entries(), 1):
            assert e is None or e.id == eng.shown[pos - 1]
        assert len(eng.scratch) <= eng.config.scratch_limit and len(eng.query) <= eng.config.entry_limit
        # ids are never reused: an id that left the store never comes back, new ids exceed every old one
        gone = self.seen_ids - self.live
        assert not gone & set(ids)
        assert all(i > max(self.seen_ids, default=-1) for i in set(ids) - self.seen_ids)
        self.live = set(ids)
        self.seen_ids |= self.live


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_restore_of_random_state_is_identical():
    rng = np.random.default_rng(3)
    eng = MemoryEngine(MemoryConfig(capacity=20, on_full="evict"))
    words = ["Mary", "John", "kitchen", "garden", "football"]
    for _ in range(200):
        a, b = rng.choice(words, 2)
        eng.apply([Create(f"{a}: {b}"), Read(str(a)), Update(int(rng.integers(1, 4)), f"{b}: {a}"),
                   Delete(int(rng.integers(1, 4))), Scratch(str(b)), Answer("x")][rng.integers(6)])
        if rng.random() < 0.3:
            eng.refresh_view()
    back = MemoryEngine()
    back.restore(json.loads(json.dumps(eng.snapshot())))
    assert back.snapshot() == eng.snapshot()
    assert back.refresh_view() == eng.refresh_view()


def test_engine_imports_no_model_code():
    import subprocess
    import sys
    code = ("import sys, atommem.memory, atommem.ops, atommem.embed;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'model', 'rl', 'triton')];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
