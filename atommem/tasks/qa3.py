"""qa3, three supporting facts: "Where was the O before the L?" asks for the room an object was in before L.

Owns the qa3 generator; the world and object trails come from `world.py` (shared with qa2). The trail of an object
is the list of rooms it has been in, appended whenever its room changes. The question names a room L that occurs
in the trail at index >= 1; with idx the LAST such index, the answer is trail[idx - 1]. Stories are simulated with
a bias towards moving while holding something, and resampled until enough objects have trails of length >= 2.
Support: the facts that put the object into trail[idx - 1] and trail[idx], each with the pickup or move that
explains it.

Run `python -m atommem.tasks.qa3 512 0` to print an episode.
"""
from __future__ import annotations

import random
import sys

from atommem.tasks.episode import Episode, Question
from atommem.tasks.haystack import Haystack, assemble_episode, default_fact_count
from atommem.tasks.qa2 import build_world


def before(trail: list[str], place: str) -> tuple[int, str]:
    """(idx, answer) for "before the place": idx is the last index >= 1 where place occurs in the trail."""
    idx = max(i for i in range(1, len(trail)) if trail[i] == place)
    return idx, trail[idx - 1]


def generate(target_tokens: int, seed: int, n_facts: int | None = None, haystack: Haystack | None = None,
             n_questions: int = 1) -> Episode:
    rng = random.Random(seed)
    if n_facts is None:
        n_facts = default_fact_count(target_tokens, rng, low=8, high=12, cap=24, floor=3 * n_questions)
    if n_questions < 1 or n_facts < 3 * n_questions:
        raise ValueError(f"qa3 needs n_questions >= 1 and n_facts >= 3 * n_questions, "
                         f"got n_questions={n_questions}, n_facts={n_facts}")

    def travelled(world):
        return [o for o in world.objects if len(world.things[o].trail) >= 2]

    world = build_world(rng, n_facts, n_questions, 0.6, lambda w: len(travelled(w)) >= n_questions)
    questions = []
    for obj in rng.sample(travelled(world), n_questions):
        trail = world.things[obj].trail
        place = trail[rng.randrange(1, len(trail))]
        idx, answer = before(trail, place)
        questions.append(Question(f"Where was the {obj} before the {place}?", answer, world.before_support(obj, idx)))
    return assemble_episode("qa3", world.facts, questions, target_tokens, seed, rng, haystack)


if __name__ == "__main__":
    ep = generate(int(sys.argv[1]) if len(sys.argv) > 1 else 512, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print("\n".join(ep.facts()))
    for q in ep.questions:
        print(q)
