"""qa2, two supporting facts: people carry objects between places; "Where is the O?" asks for the object's room.

Owns the qa2 generator; the world rules (who may pick up what, objects following their holder) are in `world.py`.
Facts: moves "{P} {went|...} to the {L}.", pickups "{P} {picked up|took|grabbed|got} the {O}." and drops
"{P} {dropped|put down|discarded|left} the {O}.", with 2-4 people and 2-4 objects per episode.
Answer: the holder's current room if the object is held, else the room where it was dropped. Support: the last
pickup (or drop) of the object and the holder's (or dropper's) move that fixes that room. Only objects with a known
room are asked about, preferring objects that have been carried from one room to another.

Run `python -m atommem.tasks.qa2 512 0` to print an episode.
"""
from __future__ import annotations

import random
import sys

from atommem.tasks.episode import Episode, Question
from atommem.tasks.haystack import Haystack, assemble_episode, default_fact_count
from atommem.tasks.vocab import pick_objects, pick_people, pick_places
from atommem.tasks.world import World, simulate

MAX_TRIES = 200


def build_world(rng: random.Random, n_facts: int, n_objects_min: int, carry_bias: float, ready) -> World:
    """Simulate stories until `ready(world)` holds; raises ValueError if it never does."""
    for _ in range(MAX_TRIES):
        people = pick_people(rng, rng.randint(2, 4))
        objects = pick_objects(rng, rng.randint(max(2, n_objects_min), max(4, n_objects_min)))
        places = pick_places(rng, rng.randint(4, 6))
        world = simulate(rng, n_facts, people, objects, places, carry_bias=carry_bias)
        if ready(world):
            return world
    raise ValueError(f"could not build a story with {n_facts} facts that supports the requested questions; "
                     f"use more facts or fewer questions")


def generate(target_tokens: int, seed: int, n_facts: int | None = None, haystack: Haystack | None = None,
             n_questions: int = 1) -> Episode:
    rng = random.Random(seed)
    if n_facts is None:
        n_facts = default_fact_count(target_tokens, rng, low=7, high=11, floor=2 * n_questions)
    if n_questions < 1 or n_facts < 2 * n_questions:
        raise ValueError(f"qa2 needs n_questions >= 1 and n_facts >= 2 * n_questions, "
                         f"got n_questions={n_questions}, n_facts={n_facts}")
    world = build_world(rng, n_facts, n_questions, 0.3, lambda w: len(w.located_objects()) >= n_questions)
    located = world.located_objects()
    ranked = sorted(located, key=lambda o: (len(world.things[o].trail) < 2, rng.random()))
    questions = []
    for obj in ranked[:n_questions]:
        questions.append(Question(f"Where is the {obj}?", world.things[obj].room, world.where_support(obj)))
    return assemble_episode("qa2", world.facts, questions, target_tokens, seed, rng, haystack)


if __name__ == "__main__":
    ep = generate(int(sys.argv[1]) if len(sys.argv) > 1 else 512, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print("\n".join(ep.facts()))
    for q in ep.questions:
        print(q)
