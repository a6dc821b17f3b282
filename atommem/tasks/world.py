"""A tiny world of people, places and portable objects, simulated fact by fact (shared by qa2 and qa3).

Owns: `World` (the state, the consistency rules, the fact sentences with the reason each one was allowed) and
`simulate` (a random but consistent story). Knows nothing about background text or questions' wording.

Rules, enforced here so every generated story is consistent:
- a person must have moved at least once (have a known location) before picking anything up;
- a person picks up only a free object that is either unseen so far or lying in the room the person is in;
- a person drops only an object they hold; a dropped object stays in the room where it was dropped;
- when a holder moves, the objects they hold move too.
Trail of an object: the rooms it has been in, in order; a room is appended whenever the object's room changes
(first pickup puts it in the taker's room; afterwards it follows its holder).

Run `python -m atommem.tasks.world` to print a simulated story.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from atommem.tasks.vocab import DROP_VERBS, MOVE_VERBS, TAKE_VERBS


@dataclass
class ObjectState:
    """Where an object is, who holds it, and why it is where it is (as fact numbers)."""

    room: str | None = None
    holder: str | None = None
    trail: list[str] = field(default_factory=list)
    trail_cause: list[int] = field(default_factory=list)  # fact that put the object in trail[i]
    trail_link: list[int | None] = field(default_factory=list)  # fact that explains that cause (take or move)
    last_take: int | None = None  # fact number of the pickup by the current (or last) holder
    last_drop: int | None = None
    drop_move: int | None = None  # the dropper's latest move before the drop


@dataclass
class World:
    """State of the people and objects after the facts so far; `facts` are the sentences in story order."""

    people: list[str]
    objects: list[str]
    places: list[str]
    location: dict[str, str | None] = field(default_factory=dict)
    last_move: dict[str, int | None] = field(default_factory=dict)
    things: dict[str, ObjectState] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)

    def __post_init__(self):
        for p in self.people:
            self.location.setdefault(p, None)
            self.last_move.setdefault(p, None)
        for o in self.objects:
            self.things.setdefault(o, ObjectState())

    def held_by(self, person: str) -> list[str]:
        return [o for o, s in self.things.items() if s.holder == person]

    def _enter(self, obj: str, room: str, cause: int, link: int | None) -> None:
        state = self.things[obj]
        state.room = room
        if not state.trail or state.trail[-1] != room:
            state.trail.append(room)
            state.trail_cause.append(cause)
            state.trail_link.append(link)

    def move(self, person: str, place: str, verb: str = "went") -> int:
        if place == self.location[person]:
            raise ValueError(f"{person} is already in the {place}")
        index = len(self.facts)
        self.facts.append(f"{person} {verb} to the {place}.")
        self.location[person] = place
        self.last_move[person] = index
        for obj in self.held_by(person):
            self._enter(obj, place, index, self.things[obj].last_take)
        return index

    def can_take(self, person: str, obj: str) -> bool:
        state = self.things[obj]
        here = self.location[person]
        return here is not None and state.holder is None and state.room in (None, here)

    def take(self, person: str, obj: str, verb: str = "picked up") -> int:
        if not self.can_take(person, obj):
            raise ValueError(f"{person} cannot pick up the {obj} now")
        index = len(self.facts)
        self.facts.append(f"{person} {verb} the {obj}.")
        state = self.things[obj]
        state.holder = person
        state.last_take = index
        self._enter(obj, self.location[person], index, self.last_move[person])
        return index

    def drop(self, person: str, obj: str, verb: str = "dropped") -> int:
        state = self.things[obj]
        if state.holder != person:
            raise ValueError(f"{person} does not hold the {obj}")
        index = len(self.facts)
        self.facts.append(f"{person} {verb} the {obj}.")
        state.holder = None
        state.last_drop = index
        state.drop_move = self.last_move[person]
        return index

    def located_objects(self) -> list[str]:
        """Objects whose room is known (they have been picked up at least once)."""
        return [o for o in self.objects if self.things[o].room is not None]

    def where_support(self, obj: str) -> list[int]:
        """Fact numbers that establish an object's current room."""
        state = self.things[obj]
        if state.holder is not None:
            needed = {state.last_take, self.last_move[state.holder]}
        else:
            needed = {state.last_drop, state.drop_move}
        return sorted(i for i in needed if i is not None)

    def before_support(self, obj: str, idx: int) -> list[int]:
        """Fact numbers that establish trail[idx - 1] and trail[idx] of an object."""
        state = self.things[obj]
        needed = {state.trail_cause[idx], state.trail_link[idx], state.trail_cause[idx - 1], state.trail_link[idx - 1]}
        return sorted(i for i in needed if i is not None)


def simulate(rng: random.Random, n_facts: int, people: list[str], objects: list[str], places: list[str],
             carry_bias: float = 0.0, max_held: int = 2) -> World:
    """A random consistent story of exactly `n_facts` facts.

    Each step picks a kind (move, pickup, drop) among those possible, then one such action uniformly. With
    `carry_bias` > 0, a move is that often made by someone who holds something, which lengthens trails.
    """
    world = World(list(people), list(objects), list(places))
    weights = {"move": 0.5, "take": 0.3, "drop": 0.2}
    for _ in range(n_facts):
        takes = [(p, o) for p in world.people if len(world.held_by(p)) < max_held
                 for o in world.objects if world.can_take(p, o)]
        drops = [(p, o) for o in world.objects for p in [world.things[o].holder] if p is not None]
        options = {"move": True, "take": bool(takes), "drop": bool(drops)}
        kinds = [k for k in weights if options[k]]
        kind = rng.choices(kinds, weights=[weights[k] for k in kinds])[0]
        if kind == "take":
            person, obj = takes[rng.randrange(len(takes))]
            world.take(person, obj, rng.choice(TAKE_VERBS))
        elif kind == "drop":
            person, obj = drops[rng.randrange(len(drops))]
            world.drop(person, obj, rng.choice(DROP_VERBS))
        else:
            holders = [p for p in world.people if world.held_by(p)]
            unplaced = [p for p in world.people if world.location[p] is None]
            if holders and rng.random() < carry_bias:
                person = rng.choice(holders)
            elif unplaced and rng.random() < 0.5:
                person = rng.choice(unplaced)
            else:
                person = rng.choice(world.people)
            place = rng.choice([pl for pl in world.places if pl != world.location[person]])
            world.move(person, place, rng.choice(MOVE_VERBS))
    return world


if __name__ == "__main__":
    from atommem.tasks.vocab import OBJECTS, PEOPLE, PLACES

    r = random.Random(0)
    w = simulate(r, 12, r.sample(PEOPLE, 3), r.sample(OBJECTS, 3), r.sample(PLACES, 4), carry_bias=0.5)
    print("\n".join(w.facts))
    for o, s in w.things.items():
        print(o, s.room, s.holder, s.trail)
