"""Benchmark of the memory engine: operations per second by kind, and read latency against store size.

Owns nothing but measurement; never asserts a timing. Prints a table, then one JSON line.

    .venv/bin/python bench/bench_engine.py [--max-size 1000000] [--dim 2048] [--ops-size 1000]

Three parts:
1. ops/s for each op kind (create, read, update, delete, scratch), plus refresh_view and parse_ops, on an engine
   holding `--ops-size` bAbI-like entries (`person17: kitchen garden`). Each op is timed alone (the refresh that
   makes a position valid is outside the timed call).
2. engine read latency: `read(new query)` + `refresh_view()` (query embedding + exact top-3), stores filled through
   `create` with real texts, up to ENGINE_MAX (10^5: filling costs ~50 us per entry through the public API);
   also the top-1 hit rate (the entry keyed by the queried name comes first), a quality check at scale.
3. index latency: `VectorIndex.top(q, 3)` alone from 10^2 to `--max-size`, filled with synthetic hashed vectors
   (one key bucket weight 2, four word buckets weight 1, three bigram buckets 0.5, random signs: the statistics of
   `HashingEmbedder` on unique facts) because embedding 10^6 texts in Python alone would take ~30 s.
   Cap: the matrix costs dim*4 bytes per entry (8 GB at 10^6 x 2048); sizes whose matrix would not fit in half of
   the available memory are skipped and listed as such in the JSON. If `faiss` is importable, an exact faiss
   IndexFlatIP search over the same vectors is timed beside it (sizes up to FAISS_MAX, since it holds its own dense
   copy). faiss is an optional extra for this comparison, not a dependency.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from atommem.embed import VectorIndex  # noqa: E402
from atommem.memory import MemoryConfig, MemoryEngine  # noqa: E402
from atommem.ops import parse_ops  # noqa: E402

ENGINE_MAX = 100_000
FAISS_MAX = 100_000
PLACES = ["kitchen", "garden", "hallway", "office", "bedroom", "bathroom", "attic", "cellar"]


def _fact(i: int) -> str:
    return f"person{i}: {PLACES[i % 8]} {PLACES[(i * 7 + 3) % 8]}"


def _rate(fn, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


def bench_ops(size: int) -> dict:
    eng = MemoryEngine(MemoryConfig(top_k=3))
    for i in range(size):
        eng.create(_fact(i))
    n = 2000
    out = {"create": _rate(lambda i: eng.create(_fact(size + i)), n),
           "read": _rate(lambda i: eng.read(f"person{i}"), n),
           "scratch": _rate(lambda i: eng.set_scratch(f"seen {i} facts"), n)}
    eng.read("person7")
    out["refresh_view"] = _rate(lambda i: eng.refresh_view(), n)
    eng.read("kitchen")  # matches a quarter of the store: the many-ties path
    out["refresh_view (ties)"] = _rate(lambda i: eng.refresh_view(), 500)
    timed, failed = {"update": [], "delete": []}, 0
    for kind in timed:
        for i in range(min(n, size)):
            eng.read(f"person{i}")  # bring entry i into view (untimed), then time the op on position 1
            eng.refresh_view()
            t0 = time.perf_counter()
            err = eng.update(1, f"person{i}: attic") if kind == "update" else eng.delete(1)
            timed[kind].append(time.perf_counter() - t0)
            failed += err is not None
    out.update({k: len(v) / sum(v) for k, v in timed.items()})
    out["failed update/delete"] = failed  # 0 expected: every timed op hit a live shown entry
    text = "<read>Mary</read><create>Mary: kitchen</create><update>1: John: garden</update><delete>2</delete>"
    out["parse_ops (4 ops)"] = _rate(lambda i: parse_ops(text), n)
    return out


def _median_ms(fn, queries) -> float:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def bench_engine_reads(sizes: list[int], reps: int = 50) -> tuple[dict, dict]:
    """Median ms of read+refresh, and how often the entry keyed by the queried name comes first."""
    out, hits, eng, filled = {}, {}, MemoryEngine(MemoryConfig(top_k=3)), 0
    rng = np.random.default_rng(0)
    for size in sizes:
        while filled < size:
            eng.create(_fact(filled))
            filled += 1
        queries = [f"person{int(j)}" for j in rng.integers(0, size, reps)]

        def read(q):
            eng.read(q)
            return eng.refresh_view()
        out[size] = _median_ms(read, queries)
        hits[size] = sum(read(q)[:1] != [] and read(q)[0].text.startswith(q + ":") for q in queries) / reps
    return out, hits


def _synthetic(rng, n: int, dim: int):
    """Bucket indices (n, 8) and values (n, 8) of unit hashed-fact vectors."""
    idx = rng.integers(0, dim, size=(n, 8))
    w = np.array([2.0, 1, 1, 1, 1, 0.5, 0.5, 0.5]) * rng.choice([-1.0, 1.0], size=(n, 8))
    return idx, (w / np.linalg.norm(w, axis=1, keepdims=True)).astype(np.float32)


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def bench_index_reads(sizes: list[int], dim: int, reps: int = 50) -> tuple[dict, dict, list]:
    try:
        import faiss  # optional comparison only
    except ImportError:
        faiss = None
    budget = _available_bytes() // 2
    fit = [s for s in sizes if s * dim * 4 <= budget]
    skipped = [s for s in sizes if s not in fit]
    if not fit:
        return {}, {}, skipped
    rng = np.random.default_rng(1)
    index = VectorIndex(dim, capacity=max(fit))  # preallocated: no doubling copy at 10^6
    idx, val = _synthetic(rng, max(fit), dim)
    buf = np.zeros(dim, dtype=np.float32)
    ours, theirs, filled = {}, {}, 0
    for size in fit:
        for i in range(filled, size):
            np.add.at(buf, idx[i], val[i])
            index.add(i, buf, i)
            buf[idx[i]] = 0.0
        filled = size
        queries = []
        for j in rng.integers(0, size, reps):  # the key query of a stored fact: its key and first word buckets
            q = np.zeros(dim, dtype=np.float32)
            q[idx[j, :2]] += np.array([2.0, 1.0], np.float32) / np.sqrt(5.0)
            queries.append(q)
        ours[size] = _median_ms(lambda q: index.top(q, 3), queries)
        if faiss is not None and size <= FAISS_MAX:
            dense = np.zeros((size, dim), dtype=np.float32)  # (n, dim)
            np.add.at(dense, (np.repeat(np.arange(size), 8), idx[:size].ravel()), val[:size].ravel())
            flat = faiss.IndexFlatIP(dim)
            flat.add(dense)
            del dense
            theirs[size] = _median_ms(lambda q: flat.search(q[None, :], 3), queries)
    return ours, theirs, skipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-size", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--ops-size", type=int, default=1000)
    args = ap.parse_args()
    sizes = [s for s in (100, 1_000, 10_000, 100_000, 1_000_000) if s <= args.max_size]
    t_start = time.perf_counter()

    ops = bench_ops(args.ops_size)
    print(f"ops per second, store of {args.ops_size} entries, HashingEmbedder(dim=2048)")
    print(f"{'op':<22}{'ops/s':>12}{'us/op':>10}")
    for k, v in ops.items():
        print(f"{k:<22}{v:>12,.0f}{1e6 / v:>10.1f}" if k != "failed update/delete" else f"{k:<22}{v:>12}")

    eng_ms, hits = bench_engine_reads([s for s in sizes if s <= ENGINE_MAX])
    idx_ms, faiss_ms, skipped = bench_index_reads(sizes, args.dim)
    print(f"\nread latency, median ms (top-3); engine = read+refresh_view at dim 2048, index/faiss at dim {args.dim}")
    print(f"{'entries':>10}{'engine':>10}{'index':>10}{'faiss':>10}{'top1 hit':>10}")
    for s in sizes:
        cells = [eng_ms.get(s), idx_ms.get(s), faiss_ms.get(s), hits.get(s)]
        print(f"{s:>10,}" + "".join(f"{c:>10.3f}" if c is not None else f"{'-':>10}" for c in cells))
    if skipped:
        print(f"skipped index sizes (matrix over half the available memory): {skipped}")
    total = time.perf_counter() - t_start
    print(f"total {total:.1f} s")
    print(json.dumps({"bench": "engine", "dim": args.dim, "ops_size": args.ops_size,
                      "ops_per_s": {k: round(v) for k, v in ops.items()},
                      "engine_read_ms": {str(k): round(v, 4) for k, v in eng_ms.items()},
                      "engine_top1_hit": {str(k): v for k, v in hits.items()},
                      "index_read_ms": {str(k): round(v, 4) for k, v in idx_ms.items()},
                      "faiss_flatip_ms": {str(k): round(v, 4) for k, v in faiss_ms.items()},
                      "skipped_sizes": skipped, "faiss": bool(faiss_ms), "seconds": round(total, 1)}))


if __name__ == "__main__":
    main()
