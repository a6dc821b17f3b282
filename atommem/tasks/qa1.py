"""qa1, single supporting fact: people move between places; "Where is P?" asks for P's latest place.

Owns the qa1 generator. Facts: "{P} {went|moved|travelled|journeyed|walked|ran} to the {L}." with 3-5 people per
episode; a person never "moves" to where they already are. Answer: the place of P's last move; support: that fact.
Question targets are distinct people, preferring those who moved at least twice (so an older place is a distractor).

Run `python -m atommem.tasks.qa1 512 0` to print an episode.
"""
from __future__ import annotations

import random
import sys

from atommem.tasks.episode import Episode, Question
from atommem.tasks.haystack import Haystack, assemble_episode, default_fact_count
from atommem.tasks.vocab import MOVE_VERBS, pick_people, pick_places


def generate(target_tokens: int, seed: int, n_facts: int | None = None, haystack: Haystack | None = None,
             n_questions: int = 1) -> Episode:
    rng = random.Random(seed)
    if n_facts is None:
        n_facts = default_fact_count(target_tokens, rng, floor=n_questions)
    if n_questions < 1 or n_facts < n_questions:
        raise ValueError(f"qa1 needs 1 <= n_questions <= n_facts, got n_questions={n_questions}, n_facts={n_facts}")
    n_people = min(rng.randint(3, 5), n_facts)
    if n_questions > n_people:
        if n_questions > min(5, n_facts):
            raise ValueError(f"qa1 asks about at most 5 people, got n_questions={n_questions}")
        n_people = n_questions
    people = pick_people(rng, n_people)
    places = pick_places(rng, rng.randint(5, 8))
    # everyone moves at least once; the rest of the moves go to random people
    movers = people + [rng.choice(people) for _ in range(n_facts - n_people)]
    rng.shuffle(movers)
    where: dict[str, str | None] = {p: None for p in people}
    last: dict[str, int] = {}
    moves: dict[str, int] = {p: 0 for p in people}
    facts = []
    for person in movers:
        place = rng.choice([pl for pl in places if pl != where[person]])
        last[person] = len(facts)
        moves[person] += 1
        where[person] = place
        facts.append(f"{person} {rng.choice(MOVE_VERBS)} to the {place}.")
    ranked = sorted(people, key=lambda p: (moves[p] < 2, rng.random()))
    questions = [Question(f"Where is {p}?", where[p], [last[p]]) for p in ranked[:n_questions]]
    return assemble_episode("qa1", facts, questions, target_tokens, seed, rng, haystack)


if __name__ == "__main__":
    ep = generate(int(sys.argv[1]) if len(sys.argv) > 1 else 512, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print("\n".join(ep.facts()))
    for q in ep.questions:
        print(q)
