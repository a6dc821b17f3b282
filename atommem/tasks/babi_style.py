"""Stories in the vocabulary and phrasing of the published bAbI tasks 1-3, written as bAbI-format text.

Owns: `babi_style_text` (one family's stories as the text of a bAbI-format file) and `PUBLISHED_*` word lists.
The generated families never use the published names (Mary, John, Sandra, Daniel: `vocab.BABI_WORDS`), so these
stories test what a user's bAbI file tests: whether a policy copies names it has never seen, in the published
phrasing ("went back to", "got the milk there"). The stories are simulated here with `world.py`'s rules (they are
not the published data, which nothing in the project downloads); `read_babi` reads them like any user's file.

Run `python -m atommem.tasks.babi_style qa2 3` to print three qa2 stories.
"""
from __future__ import annotations

import random
import re
import sys

from atommem.tasks.qa3 import before
from atommem.tasks.world import simulate

PUBLISHED_PEOPLE = ("Mary", "John", "Sandra", "Daniel")
PUBLISHED_PLACES = ("bathroom", "hallway", "garden", "office", "kitchen", "bedroom")
PUBLISHED_OBJECTS = ("football", "apple", "milk")
_MOVES = ("moved", "went", "journeyed", "travelled", "went back")
_MOVE = re.compile(r"^(\w+) [a-z ]+? to the (\w+)\.$")
_TAKE = re.compile(r"^(\w+ (?:picked up|took|grabbed|got) the \w+)\.$")
FAMILIES = ("qa1", "qa2", "qa3")


def _phrase(fact: str, rng: random.Random) -> str:
    """The published wording: its five move verbs, and "there" after half the pickups."""
    move = _MOVE.match(fact)
    if move:
        return f"{move.group(1)} {rng.choice(_MOVES)} to the {move.group(2)}."
    take = _TAKE.match(fact)
    if take and rng.random() < 0.5:
        return f"{take.group(1)} there."
    return fact


def _story(family: str, rng: random.Random) -> tuple[list[str], str, str, list[int]]:
    """One story's statements, its question, answer and supporting statement indices."""
    while True:
        if family == "qa1":
            world = simulate(rng, rng.randint(2, 12), list(PUBLISHED_PEOPLE), [], list(PUBLISHED_PLACES))
            moved = [p for p in PUBLISHED_PEOPLE if world.location[p] is not None]
            person = rng.choice(moved)
            return world.facts, f"Where is {person}?", world.location[person], [world.last_move[person]]
        world = simulate(rng, rng.randint(6, 18), list(PUBLISHED_PEOPLE), list(PUBLISHED_OBJECTS),
                         list(PUBLISHED_PLACES), carry_bias=0.3 if family == "qa2" else 0.6)
        if family == "qa2" and world.located_objects():
            obj = rng.choice(world.located_objects())
            return world.facts, f"Where is the {obj}?", world.things[obj].room, world.where_support(obj)
        travelled = [o for o in world.objects if len(world.things[o].trail) >= 2]
        if family == "qa3" and travelled:
            obj = rng.choice(travelled)
            trail = world.things[obj].trail
            idx, answer = before(trail, trail[rng.randrange(1, len(trail))])
            return (world.facts, f"Where was the {obj} before the {trail[idx]}?", answer,
                    world.before_support(obj, idx))


def babi_style_text(family: str, n_stories: int, seed: int = 0) -> str:
    """`n_stories` stories of one family (qa1, qa2 or qa3), one question each, as bAbI-format lines."""
    if family not in FAMILIES:
        raise ValueError(f"babi_style_text: family must be one of {', '.join(FAMILIES)}, got {family!r}")
    rng = random.Random(seed)
    lines = []
    for _ in range(n_stories):
        facts, question, answer, support = _story(family, rng)
        lines += [f"{i + 1} {_phrase(fact, rng)}" for i, fact in enumerate(facts)]
        lines.append(f"{len(facts) + 1} {question}\t{answer}\t{' '.join(str(i + 1) for i in support)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(babi_style_text(sys.argv[1] if len(sys.argv) > 1 else "qa1", int(sys.argv[2]) if len(sys.argv) > 2 else 2),
          end="")
