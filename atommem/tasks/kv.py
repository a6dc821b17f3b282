"""kv, a ledger of lockers with overwrites and removals: "What does locker K hold?" asks for its current item.

Owns the kv generator. Lockers are named by a capital letter and 3 digits ("K417"); items are objects from
`vocab.py`. Facts: "Locker {K} now holds the {item}." (sets or overwrites) and "Locker {K} was emptied."
(removal). Each episode has 3-6 lockers, at least two overwrites (an item replaced by a different one) and at least
one removal. Answer: the current item, or "nothing" after a removal; each question's locker is chosen to end empty
with probability 1/4, so about a quarter of answers are "nothing". Support: the last fact about the locker.

Run `python -m atommem.tasks.kv 512 0` to print an episode.
"""
from __future__ import annotations

import random
import string
import sys

from atommem.tasks.episode import Episode, Question
from atommem.tasks.haystack import Haystack, assemble_episode, default_fact_count
from atommem.tasks.vocab import pick_objects

EMPTY = None
NOTHING = "nothing"
EMPTY_RATE = 0.25
MAX_TRIES = 200


def _codes(rng: random.Random, n: int) -> list[str]:
    codes: list[str] = []
    while len(codes) < n:
        code = f"{rng.choice(string.ascii_uppercase)}{rng.randint(100, 999)}"
        if code not in codes:
            codes.append(code)
    return codes


def _history(rng: random.Random, n: int, items: list[str], end_empty: bool | None) -> list[str | None]:
    """States of one locker after each of its n facts: an item or EMPTY; never EMPTY twice or an item twice in a row.

    end_empty: True forces the last state EMPTY (n >= 2), False forces an item, None leaves it free.
    """
    states: list[str | None] = [rng.choice(items)]
    for j in range(1, n):
        prev = states[-1]
        last, before_last = j == n - 1, j == n - 2
        can_empty = prev is not EMPTY and not (last and end_empty is False) and not (before_last and end_empty)
        must_empty = last and end_empty is True
        if must_empty or (can_empty and rng.random() < 0.3):
            states.append(EMPTY)
        else:
            states.append(rng.choice([i for i in items if i != prev]))
    return states


def _fewest_facts(n_questions: int, ends_empty: list[bool]) -> int:
    """The fewest facts for a ledger: every locker once, a removal for each locker asked to end empty, and two
    overwrites. If none ends empty, a removal costs one fact on a locker not asked about (item, emptied), or two
    when every locker is asked about (item, emptied, item: an asked locker may not end empty)."""
    removal = 0 if any(ends_empty) else 1 if n_questions < 3 else 2
    return max(3, n_questions) + sum(ends_empty) + 2 + removal


def _sentence(key: str, state: str | None) -> str:
    return f"Locker {key} was emptied." if state is EMPTY else f"Locker {key} now holds the {state}."


def generate(target_tokens: int, seed: int, n_facts: int | None = None, haystack: Haystack | None = None,
             n_questions: int = 1) -> Episode:
    rng = random.Random(seed)
    defaulted = n_facts is None
    if defaulted:
        n_facts = default_fact_count(target_tokens, rng, low=8, high=12, floor=max(6, n_questions + 3))
    if n_facts < 6 or n_questions < 1 or n_questions > min(6, n_facts - 3):
        raise ValueError(f"kv needs n_facts >= 6 and 1 <= n_questions <= min(6, n_facts - 3), "
                         f"got n_facts={n_facts}, n_questions={n_questions}")
    ends_empty = [rng.random() < EMPTY_RATE for _ in range(n_questions)]  # drawn once: retries keep the rate
    if defaulted:
        n_facts = max(n_facts, _fewest_facts(n_questions, ends_empty))
    for _ in range(MAX_TRIES):
        n_lockers = rng.randint(max(3, n_questions), min(6, n_facts - 3))
        keys = _codes(rng, n_lockers)
        items = pick_objects(rng, rng.randint(5, 9))
        asked = rng.sample(keys, n_questions)
        end_empty: dict[str, bool | None] = {k: None for k in keys}
        for k, flag in zip(asked, ends_empty):
            end_empty[k] = flag
        counts = {k: 1 + (end_empty[k] is True) for k in keys}
        spare = n_facts - sum(counts.values())
        if spare < 0:
            continue
        weights = [2.0 if k in asked else 1.0 for k in keys]
        for k in rng.choices(keys, weights=weights, k=spare):
            counts[k] += 1
        histories = {k: _history(rng, counts[k], items, end_empty[k]) for k in keys}
        overwrites = sum(a is not EMPTY and b is not EMPTY for h in histories.values() for a, b in zip(h, h[1:]))
        removals = sum(s is EMPTY for h in histories.values() for s in h)
        if overwrites >= 2 and removals >= 1:
            break
    else:
        raise ValueError(f"could not build a kv ledger with {n_facts} facts and {n_questions} question(s)")
    owners = [k for k in keys for _ in range(counts[k])]
    rng.shuffle(owners)  # a uniform interleaving that keeps each locker's own order
    cursor = {k: 0 for k in keys}
    facts, last = [], {}
    for k in owners:
        last[k] = len(facts)
        facts.append(_sentence(k, histories[k][cursor[k]]))
        cursor[k] += 1
    questions = [Question(f"What does locker {k} hold?", histories[k][-1] or NOTHING, [last[k]]) for k in asked]
    return assemble_episode("kv", facts, questions, target_tokens, seed, rng, haystack)


if __name__ == "__main__":
    ep = generate(int(sys.argv[1]) if len(sys.argv) > 1 else 512, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print("\n".join(ep.facts()))
    for q in ep.questions:
        print(q)
