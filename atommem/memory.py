"""The CRUD memory engine: one episode's long-term store, scratchpad, persistent query and shown list.

Owns: entries with stable ids, retrieval of the top-k entries for the current query, the six atomic operations of
atommem/ops.py applied to that state, the counters the training curves plot, and snapshot/save/load. Knows nothing
about models, tokenizers, rendering, phases or rewards (numpy only; the agent renders `refresh_view()`'s entries
and intercepts answers itself).

Contract (ARCHITECTURE.md section 2):
- `read(q)` replaces the persistent query; the view changes only at the next `refresh_view()`, which the agent
  calls once per observation. Update/delete positions are 1-based positions in THAT list until the next refresh.
  The list holds stable ids, so deleting position 1 does not renumber position 2, and a position whose entry is
  gone since the refresh is an error: it never reaches another entry.
- Bad operations never raise: each returns one short error line (shown to the policy next step) and is counted.
  Over-long text is cut and applied WITH an error line. An exact duplicate create is allowed but counted.
- Retrieval: the top-k entries by cosine(query, entry), score > min_score only, ties (equal up to 1e-5) broken by
  recency, the most recently created/updated first. `on_full="evict"` evicts the oldest created entry.

Design choices:
- Vectors and exact top-k search live in `atommem.embed.VectorIndex` (a transposed float32 matrix read only at the
  query's non-zero rows, argpartition over the entries that score > min_score: ~0.3 ms per read at 10^5 entries,
  bench/bench_engine.py); this file keeps ids, texts, positions and counters.
- The clock ticks on every create and update; `Entry.updated` is the recency used for ties.
- `snapshot()` stores texts, not vectors: restoring re-embeds, so files stay small and embedder-agnostic.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from atommem.embed import Embedder, HashingEmbedder, VectorIndex
from atommem.ops import OP_TAGS, Answer, Create, Delete, Read, Scratch, Update

FORMAT = "atommem-memory"
VERSION = 1
WRITE_KINDS = ("create", "read", "update", "delete", "scratch")
REJECT_KINDS = (*OP_TAGS, "unknown")
REASONS = ("empty", "position", "gone", "full", "too_long", "phase", "unknown")


class MemoryFileError(ValueError):
    """A memory file that cannot be loaded: missing, not JSON, not ours, or another version."""


@dataclass
class MemoryConfig:
    top_k: int = 3
    capacity: int | None = None     # max live entries; None = unbounded
    on_full: str = "refuse"         # "refuse": create fails with an error; "evict": the oldest entry goes
    scratch_limit: int = 256        # chars; longer scratch text is cut (and an error line says so)
    entry_limit: int = 200          # chars per entry or query; longer is cut (and an error line says so)
    min_score: float = 1e-6         # entries with cosine <= min_score are never shown

    def __post_init__(self):
        if self.top_k < 0 or (self.capacity is not None and self.capacity < 1):
            raise ValueError(f"need top_k >= 0 and capacity >= 1 or None, got {self.top_k}, {self.capacity}")
        if self.on_full not in ("refuse", "evict"):
            raise ValueError(f"on_full must be 'refuse' or 'evict', got {self.on_full!r}")
        if self.scratch_limit < 1 or self.entry_limit < 1:
            raise ValueError("scratch_limit and entry_limit must be >= 1")


@dataclass(frozen=True)
class Entry:
    id: int         # stable, unique, never reused
    text: str
    created: int    # clock value at creation (the clock ticks on every create and update)
    updated: int    # clock value at the last write (== created until updated)


def _zeros(kinds) -> dict:
    return dict.fromkeys(kinds, 0)


@dataclass
class MemoryStats:
    applied: dict = field(default_factory=lambda: _zeros(WRITE_KINDS))    # ops that took effect, by kind
    rejected: dict = field(default_factory=lambda: _zeros(REJECT_KINDS))  # ops with no effect, by kind
    reasons: dict = field(default_factory=lambda: _zeros(REASONS))        # every error line, by reason
    duplicates: int = 0             # creates of a text already in the store (allowed)
    evictions: int = 0
    size_history: list = field(default_factory=list)  # store size after each step (end_step)
    peak_size: int = 0

    @property
    def errors(self) -> int:
        return sum(self.reasons.values())

    @property
    def calls(self) -> int:
        return sum(self.applied.values()) + sum(self.rejected.values())


def _as_str(text) -> str:
    if isinstance(text, str):
        return text.strip()
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", errors="replace").strip()
    return str(text).strip()


class MemoryEngine:
    """One store + scratchpad + query; see the module docstring for the contract."""

    def __init__(self, config: MemoryConfig | None = None, embedder: Embedder | None = None):
        self.config = config if config is not None else MemoryConfig()
        self.embedder = embedder if embedder is not None else HashingEmbedder()
        self._embed_query = getattr(self.embedder, "embed_query", self.embedder.embed)
        self.dim = int(self.embedder.dim)
        self.scratch = ""
        self.query = ""
        self.shown: list[int] = []      # stable ids of the last refreshed view, position i+1 -> shown[i]
        self.stats = MemoryStats()
        self._entries: OrderedDict[int, Entry] = OrderedDict()  # insertion order
        self._texts: Counter = Counter()                        # live text -> count (duplicate detection)
        self._next_id = 0
        self._clock = 0
        self._index = VectorIndex(self.dim)                     # entry id -> vector, recency = entry.updated
        self._qcache: tuple[str, np.ndarray] | None = None

    # -- read-only views -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def get(self, entry_id: int) -> Entry | None:
        return self._entries.get(entry_id)

    def shown_entries(self) -> list[Entry | None]:
        """The last refreshed list, None where an entry is gone since."""
        return [self._entries.get(i) for i in self.shown]

    # -- vectors and search --------------------------------------------------------------------------------------
    def _vectors(self, texts: list[str], query: bool = False) -> np.ndarray:
        fn = self._embed_query if query else self.embedder.embed
        return np.asarray(fn(texts), dtype=np.float32).reshape(len(texts), self.dim)  # (n, dim)

    def _top(self, q: np.ndarray, k: int) -> list[int]:
        return self._index.top(q, k, self.config.min_score)

    def search(self, query: str, k: int | None = None) -> list[Entry]:
        """Top-k entries for any query, without touching the state (for baselines and benchmarks)."""
        q = self._vectors([_as_str(query)], query=True)[0]
        return [self._entries[i] for i in self._top(q, self.config.top_k if k is None else k)]

    def refresh_view(self, k: int | None = None) -> list[Entry]:
        """Recompute the shown list (top `k`, default `config.top_k`) for the persistent query; positions in
        update/delete refer to it."""
        if not self.query:
            self.shown = []
            return []
        if self._qcache is None or self._qcache[0] != self.query:
            self._qcache = (self.query, self._vectors([self.query], query=True)[0])
        self.shown = self._top(self._qcache[1], self.config.top_k if k is None else k)
        return [self._entries[i] for i in self.shown]

    # -- error bookkeeping ---------------------------------------------------------------------------------------
    def _reject(self, kind: str, reason: str, message: str) -> str:
        self.stats.rejected[kind] += 1
        self.stats.reasons[reason] += 1
        return message

    def _clip(self, kind: str, text: str, limit: int) -> tuple[str, str | None]:
        if len(text) <= limit:
            return text, None
        return text[:limit].rstrip(), f"{kind}: text cut to {limit} chars"

    def _applied(self, kind: str, warning: str | None) -> str | None:
        self.stats.applied[kind] += 1
        if warning is not None:
            self.stats.reasons["too_long"] += 1
        return warning

    def _resolve(self, kind: str, pos) -> tuple[int | None, str | None]:
        """Stable id at a shown position, or an error line."""
        if not isinstance(pos, (int, np.integer)) or isinstance(pos, bool):
            return None, self._reject(kind, "position", f"{kind}: position must be a number")
        if not self.shown:
            return None, self._reject(kind, "position", f"{kind}: no memory entries are shown")
        if not 1 <= pos <= len(self.shown):
            return None, self._reject(kind, "position", f"{kind}: position {pos} not in 1-{len(self.shown)}")
        entry_id = self.shown[pos - 1]
        if entry_id not in self._entries:
            return None, self._reject(kind, "gone", f"{kind}: entry {pos} was already removed")
        return entry_id, None

    # -- the operations ------------------------------------------------------------------------------------------
    def _drop(self, entry_id: int) -> None:
        entry = self._entries.pop(entry_id)
        self._texts[entry.text] -= 1
        if self._texts[entry.text] <= 0:
            del self._texts[entry.text]
        self._index.remove(entry_id)

    def create(self, text: str) -> str | None:
        text = _as_str(text)
        if not text:
            return self._reject("create", "empty", "create: empty text")
        text, warning = self._clip("create", text, self.config.entry_limit)
        cap = self.config.capacity
        if cap is not None and len(self) >= cap:
            if self.config.on_full == "refuse":
                return self._reject("create", "full", f"create: memory full ({cap} entries)")
            self._drop(next(iter(self._entries)))               # evict the oldest created entry
            self.stats.evictions += 1
        if self._texts[text] > 0:
            self.stats.duplicates += 1
        self._clock += 1
        entry = Entry(self._next_id, text, self._clock, self._clock)
        self._next_id += 1
        self._entries[entry.id] = entry
        self._texts[text] += 1
        self._index.add(entry.id, self._vectors([text])[0], entry.updated)
        self.stats.peak_size = max(self.stats.peak_size, len(self))
        return self._applied("create", warning)

    def read(self, query: str) -> str | None:
        query = _as_str(query)
        if not query:
            return self._reject("read", "empty", "read: empty query")
        self.query, warning = self._clip("read", query, self.config.entry_limit)
        return self._applied("read", warning)

    def clear_query(self) -> None:
        """Empty the persistent query (nothing is shown); not a policy op, not counted."""
        self.query = ""

    def update(self, pos: int, text: str) -> str | None:
        entry_id, err = self._resolve("update", pos)
        if err is not None:
            return err
        text = _as_str(text)
        if not text:
            return self._reject("update", "empty", "update: empty text")
        text, warning = self._clip("update", text, self.config.entry_limit)
        old = self._entries[entry_id]
        self._texts[old.text] -= 1
        if self._texts[old.text] <= 0:
            del self._texts[old.text]
        self._clock += 1
        self._entries[entry_id] = replace(old, text=text, updated=self._clock)  # keeps its insertion place
        self._texts[text] += 1
        self._index.set(entry_id, self._vectors([text])[0], self._clock)
        return self._applied("update", warning)

    def delete(self, pos: int) -> str | None:
        entry_id, err = self._resolve("delete", pos)
        if err is not None:
            return err
        self._drop(entry_id)
        return self._applied("delete", None)

    def set_scratch(self, text: str) -> str | None:
        self.scratch, warning = self._clip("scratch", _as_str(text), self.config.scratch_limit)
        return self._applied("scratch", warning)

    def apply(self, op) -> str | None:
        """Apply one op; None on success, else the error line."""
        if isinstance(op, Create):
            return self.create(op.text)
        if isinstance(op, Read):
            return self.read(op.query)
        if isinstance(op, Update):
            return self.update(op.index, op.text)
        if isinstance(op, Delete):
            return self.delete(op.index)
        if isinstance(op, Scratch):
            return self.set_scratch(op.text)
        if isinstance(op, Answer):
            return self._reject("answer", "phase", "answer outside the answer phase")
        return self._reject("unknown", "unknown", f"unknown operation {type(op).__name__[:20]}")

    def apply_all(self, ops) -> list[str]:
        """Apply ops left to right; the error lines in order."""
        return [err for err in map(self.apply, ops) if err is not None]

    def end_step(self) -> None:
        """Record the store size after a step (the agent calls this once per step)."""
        self.stats.size_history.append(len(self))

    # -- persistence ---------------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """Complete JSON-serialisable state; vectors are recomputed on restore."""
        return {
            "format": FORMAT, "version": VERSION, "config": asdict(self.config),
            "next_id": self._next_id, "clock": self._clock,
            "scratch": self.scratch, "query": self.query, "shown": list(self.shown),
            "entries": [asdict(e) for e in self._entries.values()],
            "stats": asdict(self.stats),
        }

    def restore(self, data: dict) -> None:
        """Replace the whole state by a snapshot; on a bad snapshot raise MemoryFileError and change nothing."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise MemoryFileError("not an AtomMem memory snapshot")
        if data.get("version") != VERSION:
            raise MemoryFileError(f"unsupported memory format version {data.get('version')!r} (expected {VERSION})")
        try:
            fresh = _rebuild(data, self.embedder)
        except MemoryFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MemoryFileError(f"corrupt memory snapshot: {type(exc).__name__}: {exc}"[:200]) from exc
        self.__dict__.update(fresh.__dict__)

    def save(self, path) -> None:
        """Write the snapshot as JSON atomically (temp file in the same folder, then os.replace)."""
        # Own writer, not model.checkpoint.write_bytes_atomic: the engine must not import the model package (torch).
        path = os.fspath(path)
        text = json.dumps(self.snapshot())
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".memory-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path, embedder: Embedder | None = None) -> "MemoryEngine":
        """Read a file written by save(); MemoryFileError says what is wrong with it."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                raw = f.read()
        except FileNotFoundError:
            raise MemoryFileError(f"memory file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MemoryFileError(f"cannot read memory file {path}: {exc}") from None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise MemoryFileError(f"not valid JSON ({exc.msg}, line {exc.lineno}): {path}") from None
        engine = cls(embedder=embedder)
        try:
            engine.restore(data)
        except MemoryFileError as exc:
            raise MemoryFileError(f"{exc}: {path}") from None
        return engine


def _int(x) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"expected an integer, got {type(x).__name__}")
    return x


def _str(x) -> str:
    if not isinstance(x, str):
        raise TypeError(f"expected a string, got {type(x).__name__}")
    return x


def _counts(saved: dict, kinds) -> dict:
    out = _zeros(kinds)
    out.update({_str(k): _int(v) for k, v in saved.items()})
    return out


def _rebuild(data: dict, embedder: Embedder) -> MemoryEngine:
    """A new engine holding the snapshot's state (validated)."""
    engine = MemoryEngine(MemoryConfig(**data["config"]), embedder)
    entries = [Entry(_int(e["id"]), _str(e["text"]), _int(e["created"]), _int(e["updated"])) for e in data["entries"]]
    if len({e.id for e in entries}) != len(entries):
        raise MemoryFileError("corrupt memory snapshot: duplicate entry ids")
    engine._next_id, engine._clock = _int(data["next_id"]), _int(data["clock"])
    if entries and engine._next_id <= max(e.id for e in entries):
        raise MemoryFileError("corrupt memory snapshot: id counter behind the entries")
    engine.scratch, engine.query = _str(data["scratch"]), _str(data["query"])
    engine.shown = [_int(i) for i in data["shown"]]
    for start in range(0, len(entries), 1024):                 # batches bound the (n, dim) temporary
        chunk = entries[start:start + 1024]
        for entry, vec in zip(chunk, engine._vectors([e.text for e in chunk])):
            engine._entries[entry.id] = entry
            engine._texts[entry.text] += 1
            engine._index.add(entry.id, vec, entry.updated)
    s = data["stats"]
    engine.stats = MemoryStats(
        applied=_counts(s["applied"], WRITE_KINDS), rejected=_counts(s["rejected"], REJECT_KINDS),
        reasons=_counts(s["reasons"], REASONS), duplicates=_int(s["duplicates"]), evictions=_int(s["evictions"]),
        size_history=[_int(x) for x in s["size_history"]], peak_size=_int(s["peak_size"]))
    return engine
