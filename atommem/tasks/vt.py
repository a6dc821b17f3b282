"""vt, variable tracking (after RULER): follow a value through chains of variable copies.

Owns the vt generator. Variables are 5 random capital letters, values 5-digit numbers. A chain starts with
"VAR {X} = {N}." and continues with copies "VAR {Y} = VAR {X}." where X is already in the chain (usually its
latest variable). One target chain (start + 2-5 copies) and 1-2 distractor chains with other values are
interleaved at random, each keeping its own order; every variable is assigned exactly once.
Question "Which variables hold the value {N}?"; answer: the chain's variables in assignment order, joined by
single spaces (scored as a set, as RULER scores vt: atommem/tasks/scoring.py). Support: every fact of the chain.
The fact count follows `default_fact_count` (distractor chains absorb what the target chain does not use). With
n_questions > 1, further questions ask about distractor chains.

Run `python -m atommem.tasks.vt 512 0` to print an episode.
"""
from __future__ import annotations

import random
import string
import sys

from atommem.tasks.episode import Episode, Question
from atommem.tasks.haystack import Haystack, assemble_episode, default_fact_count


def _names(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = "".join(rng.choice(string.ascii_uppercase) for _ in range(5))
        if name not in names:
            names.append(name)
    return names


def _chain_sizes(rng: random.Random, n_facts: int, n_questions: int) -> list[int]:
    """Fact counts per chain; the first is the target chain (3..6 facts, i.e. start + 2..5 copies)."""
    n_chains = max(1 + rng.randint(1, 2), n_questions)
    if n_facts < 3 + (n_chains - 1):
        n_chains = n_facts - 2
        if n_chains < max(2, n_questions):
            raise ValueError(f"vt needs n_facts >= {3 + max(1, n_questions - 1)} for {n_questions} question(s), "
                             f"got n_facts={n_facts}")
    target = rng.randint(3, min(6, n_facts - (n_chains - 1)))
    sizes = [target] + [1] * (n_chains - 1)
    for _ in range(n_facts - sum(sizes)):
        sizes[rng.randrange(1, n_chains)] += 1
    return sizes


def generate(target_tokens: int, seed: int, n_facts: int | None = None, haystack: Haystack | None = None,
             n_questions: int = 1) -> Episode:
    rng = random.Random(seed)
    if n_questions < 1:
        raise ValueError(f"vt needs n_questions >= 1, got {n_questions}")
    if n_facts is None:
        n_facts = default_fact_count(target_tokens, rng, floor=3 + max(1, n_questions - 1))
    sizes = _chain_sizes(rng, n_facts, n_questions)
    names = iter(_names(rng, sum(sizes)))
    values = rng.sample(range(10000, 100000), len(sizes))
    chains: list[list[str]] = []  # per chain: its fact sentences, in order
    members: list[list[str]] = []  # per chain: its variables, in assignment order
    for size, value in zip(sizes, values):
        first = next(names)
        facts, chain = [f"VAR {first} = {value}."], [first]
        for _ in range(size - 1):
            src = chain[-1] if rng.random() < 0.7 else rng.choice(chain)
            var = next(names)
            facts.append(f"VAR {var} = VAR {src}.")
            chain.append(var)
        chains.append(facts)
        members.append(chain)
    # random interleaving that keeps each chain's order: draw a chain with probability ~ facts left
    owners = [c for c, size in enumerate(sizes) for _ in range(size)]
    rng.shuffle(owners)
    cursor = [0] * len(sizes)
    facts, where = [], [[] for _ in sizes]
    for c in owners:
        where[c].append(len(facts))
        facts.append(chains[c][cursor[c]])
        cursor[c] += 1
    questions = [Question(f"Which variables hold the value {values[c]}?", " ".join(members[c]), where[c])
                 for c in range(n_questions)]
    return assemble_episode("vt", facts, questions, target_tokens, seed, rng, haystack)


if __name__ == "__main__":
    ep = generate(int(sys.argv[1]) if len(sys.argv) > 1 else 512, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print("\n".join(ep.facts()))
    for q in ep.questions:
        print(q)
