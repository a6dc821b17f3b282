"""Episodes in several worker processes: `run_episodes` with `workers` > 1 on a CPU.

Why: a lockstep batch of the small policy spends its time in many small matrix products (one decode step of ~100
rows) and in the engine's Python, and neither uses a second core well. Measured on 2 cores (bench/RESULTS.md,
thirtieth round): one decode step of 60 rows took 14.9 ms with 2 threads and 16.1 ms with 1; `make train`'s final
evaluation of one policy (300 episodes) 132-146 s in one process, 91 s in two, with the same answers. Not worth it
for the scripted teacher: its steps cost about what sending them back costs (unpickling the trajectories).

How: the episodes are dealt out in turn (episode i to worker i mod n, so long and short ones mix); each worker is a
fork of this process (the policy's weights are shared, nothing is copied or saved), uses one torch thread (so
`workers` should match the cores; a fork never re-enters the parent's OpenMP thread pool), runs
`agent.run_episodes` on its episodes, and sends back its trajectories without their episodes (the parent has them).
Trajectories come back in the input order. A policy with a sampling generator is reseeded per worker
(`policy.reseed(worker)`), so the workers never draw the same random numbers; results then depend on the number of
workers, as they do on the batch a policy sees. Progress reaches `progress` as episodes finish. `workers` = 0
means one per core (resolve_workers).

Falls back to one process where fork is not available, where the policy says it cannot be forked (a model on a GPU:
`policy.forkable` False), or for fewer than two episodes per worker. A worker's exception is raised here with its
traceback; a worker that dies (killed, out of memory) is an error, never a silent partial result.
Knows nothing about models or training: torch is touched only if this process has already imported it.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import sys
import traceback
import warnings

from atommem.agent import AgentConfig, Trajectory, run_episodes as run_lockstep


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                       # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int) -> int:
    """A `workers` setting as a count: 0 means one per core (default_workers); negative is an error."""
    if workers < 0:
        raise ValueError(f"workers must be 0 (one per core) or more, got {workers}")
    return workers or default_workers()


def usable_workers(policy, n_episodes: int, workers: int) -> int:
    """How many workers `run_episodes` will use: 1 where forking is impossible or pointless."""
    if workers <= 1 or "fork" not in mp.get_all_start_methods() or not getattr(policy, "forkable", True):
        return 1
    return max(1, min(workers, n_episodes // 2))


def run_episodes(episodes, policy, config: AgentConfig, workers: int = 1, progress=None) -> list[Trajectory]:
    """agent.run_episodes over `workers` forked processes (see the module docstring); the same result type."""
    n = usable_workers(policy, len(episodes), workers)
    if n == 1:
        return run_lockstep(episodes, policy, config, progress=progress)
    ctx = mp.get_context("fork")
    messages = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(w, n, episodes, policy, config, messages), daemon=True)
             for w in range(n)]
    with warnings.catch_warnings():             # Python 3.12+ warns on any fork of a threaded process; the
        warnings.simplefilter("ignore", DeprecationWarning)   # workers touch no lock of another thread
        for p in procs:
            p.start()
    shares: dict[int, list] = {}
    try:
        while len(shares) < n:
            try:
                kind, w, payload = messages.get(timeout=1.0)
            except queue.Empty:
                dead = [p for i, p in enumerate(procs) if i not in shares and not p.is_alive()]
                if dead and messages.empty():
                    raise RuntimeError(f"an episode worker died (exit code {dead[0].exitcode}) before it finished; "
                                       f"run with workers=1 to see the episodes in this process") from None
                continue
            if kind == "done" and progress is not None:
                progress(payload)
            elif kind == "error":
                raise RuntimeError(f"episode worker {w} failed:\n{payload}")
            elif kind == "result":
                shares[w] = payload
    finally:
        for p in procs:
            if p.is_alive() and len(shares) < n:
                p.terminate()
            p.join()
    out: list = [None] * len(episodes)
    for w, trajs in shares.items():
        for i, traj in zip(range(w, len(episodes), n), trajs):
            traj.episode = episodes[i]
            out[i] = traj
    return out


def _worker(w: int, n: int, episodes, policy, config, messages) -> None:
    logging.disable(logging.INFO)                # notices (which kernel runs) are the parent's, not once per fork
    try:
        if "torch" in sys.modules:               # one thread: a forked OpenMP pool must never be re-entered
            import torch
            torch.set_num_threads(1)
        if hasattr(policy, "reseed"):
            policy.reseed(w)
        mine = episodes[w::n]
        trajs = run_lockstep(mine, policy, config, progress=lambda k: messages.put(("done", w, k)))
        for traj in trajs:
            traj.episode = None                  # the parent holds the episodes
        messages.put(("result", w, trajs))
    except BaseException:                        # noqa: BLE001 (the parent raises it with this traceback)
        messages.put(("error", w, traceback.format_exc()))
