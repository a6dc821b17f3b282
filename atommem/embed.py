"""Vectors for memory retrieval: the `Embedder` protocol, the default `HashingEmbedder`, and `VectorIndex`.

Owns: turning entry and query texts into L2-normalised float32 vectors whose dot product is the retrieval score,
and exact top-k search over such vectors. Knows nothing about entries, positions, ops, phases or models; the engine
(atommem/memory.py) takes any object with `dim` and `embed(texts)`, and uses `embed_query(texts)` for queries when
the object has it. Run `.venv/bin/python bench/bench_engine.py` for search latency against store size.

`HashingEmbedder` (default) needs no training and no download, and is deterministic across processes and machines.
Features of a text (lowercased `\\w+` words; stopwords dropped):
- unigram `w`, weight 1 (presence, not counts: entries are short facts and repeating a word is not more evidence);
- bigram `w1 w2` of adjacent kept words, weight `w_bigram` (0.5): rewards phrase matches without letting word order
  dominate single-word queries;
- KEY FIELD: an entry written `KEY: value` with a short key (1-3 words before the first colon, e.g. `Mary: kitchen`,
  `K417: lamp`) also gets `key:w` for each key word, weight `w_key` (2.0). Every query word produces both its
  plain feature and its key feature, so the query `Mary` scores `Mary: kitchen` (Mary is the key, cosine 0.89) far
  above `football: Mary | garden kitchen` (Mary only in the value, cosine 0.15). This is what lets a small policy
  keep one entry per entity and find it again by name: retrieval does the lookup.
Each feature is hashed with blake2b (never Python's salted `hash()`) to a bucket in [0, dim), the "hashing trick"
of Weinberger et al. (2009), without the usual random sign: with signs, two features of the SAME text that share a
bucket can cancel (we saw `key:lkiwk` erase `lkiwk` in a query, hiding the only matching entry); unsigned, a
collision can only add a little score to an unrelated entry. dim 8192 keeps such spurious matches rare (a handful
of features per entry), at 32 KB per stored entry.
Rows are L2-normalised; a text with no features (empty, only stopwords or punctuation) maps to the zero vector,
which scores 0 against everything and is therefore never shown.

No character n-grams, on purpose: the things the memory must find (names, places, codes like QXZAB) are exact
words, and n-grams would give `Mary` a partial match with `Marty` or `QXZAB` with `QXZAC`, pushing unrelated entries
into a top-3 view. The stopword list is short: words that carry meaning in the tasks (not, no, before, after,
pronouns) are kept.
"""
from __future__ import annotations

import hashlib
import re
from typing import Protocol, runtime_checkable

import numpy as np

STOPWORDS = frozenset(
    "the a an to is in of and or on at for with was were be been are it its this that as by from into "
    "did does do has have had then there where what which who again".split()   # again: atommem/teacher.py AGAIN
)
_WORD = re.compile(r"\w+")


@runtime_checkable
class Embedder(Protocol):
    """Anything with a width and a batch embedding; rows must be L2-normalised (or zero)."""

    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:  # (n, dim) float32
        ...


def content_words(text: str, stopwords: frozenset = STOPWORDS) -> list[str]:
    """Lowercased `\\w+` words of a text, stopwords dropped (what retrieval matches on)."""
    return [w for w in _WORD.findall(text.lower()) if w not in stopwords]


def key_words(text: str) -> list[str]:
    """Words of the short key before the first colon (1-3 words), else []."""
    head, colon, _ = text.partition(":")
    if not colon:
        return []
    words = _WORD.findall(head.lower())
    return words if 1 <= len(words) <= 3 else []


class HashingEmbedder:
    """Unsigned feature hashing of unigrams, bigrams and key fields; see the module docstring."""

    def __init__(self, dim: int = 8192, w_bigram: float = 0.5, w_key: float = 2.0,
                 stopwords: frozenset = STOPWORDS, cache_size: int = 200_000):
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.w_bigram = float(w_bigram)
        self.w_key = float(w_key)
        self.stopwords = frozenset(stopwords)
        self._cache: dict[str, tuple[int, float]] = {}
        self._cache_size = cache_size

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim}, w_bigram={self.w_bigram}, w_key={self.w_key})"

    # -- features ------------------------------------------------------------------------------------------------
    def _slot(self, feature: str) -> tuple[int, float]:
        """(bucket, sign) of a feature; stable across processes."""
        hit = self._cache.get(feature)
        if hit is None:
            h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8", "replace"), digest_size=8).digest(), "little")
            hit = (h % self.dim, 1.0)  # unsigned: a collision may add a little, never cancel a match
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[feature] = hit
        return hit

    def features(self, text: str, query: bool = False) -> dict[str, float]:
        """Feature -> weight. Entries get key features from their key field; queries from every word."""
        words = content_words(text, self.stopwords)
        feats: dict[str, float] = dict.fromkeys(words, 1.0)
        for a, b in zip(words, words[1:]):
            feats[f"{a} {b}"] = self.w_bigram
        keys = words if query else [w for w in key_words(text) if w not in self.stopwords]
        for w in keys:
            feats[f"key:{w}"] = self.w_key
        return feats

    # -- vectors -------------------------------------------------------------------------------------------------
    def _rows(self, texts: list[str], query: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (n, dim)
        for i, text in enumerate(texts):
            acc: dict[int, float] = {}
            for feat, weight in self.features(text, query).items():
                bucket, sign = self._slot(feat)
                acc[bucket] = acc.get(bucket, 0.0) + sign * weight
            norm = sum(v * v for v in sorted(acc.values())) ** 0.5
            if norm > 0.0:
                idx = np.fromiter(acc.keys(), dtype=np.int64, count=len(acc))
                val = np.fromiter(acc.values(), dtype=np.float64, count=len(acc))
                out[i, idx] = val / norm
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        """Entry vectors, (n, dim) float32, unit rows or zero rows."""
        return self._rows(list(texts), query=False)

    def embed_query(self, texts: list[str]) -> np.ndarray:
        """Query vectors: every word also matches as a key."""
        return self._rows(list(texts), query=True)


class VectorIndex:
    """Exact top-k cosine search over unit vectors keyed by int, with recency tie-breaks.

    Vectors live in one growable float32 matrix stored TRANSPOSED, (dim, capacity), column = vector. A query's
    scores are q @ M; a hashing query has a handful of non-zero buckets, so only those rows are gathered,
    q[nz] @ M[nz, :n], which is exact (every other term is zero) and reads m*n floats instead of dim*n: at 10^5
    vectors of dim 2048 that is ~1 MB instead of 800 MB (up to 32 rows: in-place axpy on row views, which also
    avoids BLAS threading, measured 25x slower than the loop at 10^6 on a loaded 2-core box). Dense queries take
    the full product. Removal swaps the last
    column into the hole so live columns stay contiguous; each slot remembers its non-zero rows, so writes touch
    only those. Cost: dim*4 bytes per vector (8 KB at dim 2048), fine for episode stores and for benchmarks up to
    ~10^6 vectors at a smaller dim; a sparse inverted index would be the next step beyond that.
    """

    def __init__(self, dim: int, capacity: int = 16):
        self.dim = int(dim)
        cap = max(1, int(capacity))
        self._mat = np.zeros((self.dim, cap), dtype=np.float32)  # (dim, cap): column s = vector of slot s
        self._key = np.zeros(cap, dtype=np.int64)                # (cap,) slot -> key
        self._recency = np.zeros(cap, dtype=np.int64)            # (cap,) slot -> recency stamp
        self._nz: list[np.ndarray] = []                          # slot -> non-zero rows of its column
        self._slot: dict[int, int] = {}                          # key -> slot

    def __len__(self) -> int:
        return len(self._nz)

    def _write(self, slot: int, vec: np.ndarray) -> None:
        self._mat[self._nz[slot], slot] = 0.0
        nz = np.flatnonzero(vec)
        self._mat[nz, slot] = vec[nz]
        self._nz[slot] = nz

    def add(self, key: int, vec: np.ndarray, recency: int) -> None:
        n = len(self._nz)
        if n == self._mat.shape[1]:
            mat = np.zeros((self.dim, 2 * n), dtype=np.float32)  # (dim, 2n)
            mat[:, :n] = self._mat
            self._mat = mat
            self._key, self._recency = np.resize(self._key, 2 * n), np.resize(self._recency, 2 * n)
        self._nz.append(np.empty(0, dtype=np.int64))
        self._write(n, vec)
        self._key[n], self._recency[n], self._slot[key] = key, recency, n

    def set(self, key: int, vec: np.ndarray, recency: int) -> None:
        slot = self._slot[key]
        self._write(slot, vec)
        self._recency[slot] = recency

    def remove(self, key: int) -> None:
        s, last = self._slot.pop(key), len(self._nz) - 1
        self._mat[self._nz[s], s] = 0.0
        if s != last:  # move the last column into the hole
            rows = self._nz[last]
            self._mat[rows, s] = self._mat[rows, last]
            self._mat[rows, last] = 0.0
            self._nz[s] = rows
            self._key[s], self._recency[s] = self._key[last], self._recency[last]
            self._slot[int(self._key[s])] = s
        self._nz.pop()

    def scores(self, q: np.ndarray) -> np.ndarray:
        """Dot products of q (dim,) with every live vector, in slot order: (n,)."""
        n, qnz = len(self._nz), np.flatnonzero(q)
        if len(qnz) <= 32:  # a few rows: axpy on row views, no copy and no BLAS threads (slow under load at 1e6)
            out = np.zeros(n, dtype=np.float32)                  # (n,)
            tmp = np.empty(n, dtype=np.float32)
            for r in qnz:
                out += np.multiply(self._mat[r, :n], q[r], out=tmp)
            return out
        if len(qnz) * 8 <= self.dim:
            return q[qnz] @ self._mat[qnz, :n]                   # (m,) @ (m, n) -> (n,)
        return q @ self._mat[:, :n]                              # (dim,) @ (dim, n) -> (n,)

    def top(self, q: np.ndarray, k: int, min_score: float = 1e-6, decimals: int = 5) -> list[int]:
        """Keys of the best k vectors with score > min_score, best first. Scores equal to `decimals` places are
        ties (float noise must not decide), broken by the higher recency stamp."""
        if len(self._nz) == 0 or k <= 0 or not np.any(q):
            return []
        scores = self.scores(q)
        cand = np.flatnonzero(scores > min_score)                # slots that may be shown; NaN never is
        if len(cand) == 0:
            return []
        key, rec = np.round(scores[cand], decimals), self._recency[cand]  # the O(n) work ends above
        if len(cand) > k:
            kth = key[np.argpartition(-key, k - 1)[k - 1]]       # k-th best score
            above = np.flatnonzero(key > kth)
            ties = np.flatnonzero(key == kth)
            need = k - len(above)
            if len(ties) > need:                                 # the most recent of the tied vectors
                ties = ties[np.argpartition(-rec[ties], need - 1)[:need]]
            sel = np.concatenate([above, ties])
        else:
            sel = np.arange(len(cand))
        sel = sel[np.lexsort((-rec[sel], -key[sel]))]            # score desc, then recency desc
        return [int(x) for x in self._key[cand[sel]]]
