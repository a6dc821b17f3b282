"""Embedders and the vector index: determinism, normalisation, the key field, exact top-k with recency ties."""
import os
import subprocess
import sys

import numpy as np
import pytest

from atommem.embed import Embedder, HashingEmbedder, VectorIndex, key_words


def _cos(emb, query, texts):
    return emb.embed(texts) @ emb.embed_query([query])[0]


def test_protocol_shape_dtype_and_norms():
    emb = HashingEmbedder(dim=512)
    assert isinstance(emb, Embedder)
    out = emb.embed(["Mary went to the kitchen.", "", "the of a", "!!!", "x" * 1000])
    assert out.shape == (5, 512) and out.dtype == np.float32
    norms = np.linalg.norm(out, axis=1)
    np.testing.assert_allclose(norms[[0, 4]], 1.0, atol=1e-6)
    assert np.all(norms[1:4] == 0.0)  # no features -> zero vector
    assert emb.embed([]).shape == (0, 512)


def test_deterministic_across_processes():
    code = ("from atommem.embed import HashingEmbedder;"
            "v=HashingEmbedder().embed(['Mary: kitchen QXZAB 48213']);print(v.nonzero()[1].tolist(), v[v!=0].tolist())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1
    here = HashingEmbedder().embed(["Mary: kitchen QXZAB 48213"])
    assert outs.pop().strip() == f"{here.nonzero()[1].tolist()} {here[here != 0].tolist()}"


def test_key_words():
    assert key_words("Mary: kitchen") == ["mary"]
    assert key_words("football: Mary | garden kitchen") == ["football"]
    assert key_words("48213: QXZAB ABTRE") == ["48213"]
    assert key_words("the red box: hall") == ["the", "red", "box"]
    assert key_words("one two three four: x") == []  # too long to be a key
    assert key_words("no colon here") == [] and key_words(": x") == []


def test_key_field_beats_mention_in_value():
    emb = HashingEmbedder()
    s = _cos(emb, "Mary", ["Mary: kitchen", "football: Mary | garden kitchen", "John: office"])
    assert s[0] > s[1] > 0 and s[2] <= 1e-6
    s = _cos(emb, "48213", ["48213: QXZAB ABTRE", "99999: 48213 seen", "77777: QXZAB"])
    assert s[0] > s[1] > 0 and s[2] <= 1e-6


def test_exact_words_no_partial_matches():
    emb = HashingEmbedder()
    s = _cos(emb, "Mary", ["Marty: kitchen", "Maryland: office"])
    assert np.all(s <= 1e-6)
    s = _cos(emb, "QXZAB", ["QXZAC: 1", "qxzab: 2"])  # case-insensitive, exact word
    assert s[0] <= 1e-6 and s[1] > 0.5


def test_stopwords_and_bigrams():
    emb = HashingEmbedder()
    s = _cos(emb, "where is the football", ["football: garden", "the is where: a"])
    assert s[0] > 0.5 and s[1] <= 1e-6
    s = _cos(emb, "went kitchen", ["Mary went to the kitchen", "Mary went to the garden near a kitchen"])
    assert s[0] > s[1] > 0  # the phrase match (bigram over kept words) ranks first


def test_index_top_k_scores_and_recency_ties():
    rng = np.random.default_rng(0)
    index = VectorIndex(dim=64, capacity=2)  # forces growth
    vecs = rng.normal(size=(50, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    for i, v in enumerate(vecs):
        index.add(100 + i, v, recency=i)
    q = vecs[7]
    ref = np.argsort(-(vecs @ q), kind="stable")
    ref = [100 + int(i) for i in ref if vecs[i] @ q > 1e-6][:5]
    assert index.top(q, 5) == ref
    for key in (107, 100, 149):
        index.remove(key)
    assert len(index) == 47 and 107 not in index.top(q, 50)
    # identical vectors tie: the most recent stamp wins, whatever the insertion order
    tie = VectorIndex(dim=8)
    e = np.eye(8, dtype=np.float32)[0]
    for key, rec in [(1, 5), (2, 9), (3, 1), (4, 7)]:
        tie.add(key, e, rec)
    assert tie.top(e, 2) == [2, 4] and tie.top(e, 10) == [2, 4, 1, 3]
    tie.set(3, e, 10)
    assert tie.top(e, 1) == [3]
    assert tie.top(np.zeros(8, np.float32), 3) == [] and tie.top(e, 0) == []
    assert tie.top(-e, 3) == []  # negative scores are never shown


@pytest.mark.parametrize("nnz", [8, 48, 512])  # the three paths: row loop, gathered rows, full product
def test_index_query_paths_agree(nnz):
    rng = np.random.default_rng(1)
    index = VectorIndex(dim=512)
    mat = rng.normal(size=(30, 512)).astype(np.float32)
    for i, v in enumerate(mat):
        index.add(i, v, i)
    q = rng.normal(size=512).astype(np.float32)
    q[nnz:] = 0.0
    np.testing.assert_allclose(index.scores(q), mat @ q, rtol=1e-4, atol=1e-4)
