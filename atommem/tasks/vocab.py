"""Word lists for the generated task families: people, places, objects and the verbs of each fact kind, and the
fresh pseudo-words mixed with them.

The curated lists are pairwise disjoint (no word is both a place and an object, no name is an everyday word), so a
sentence's role is always clear; the background grammar in `haystack.py` must avoid every word here
(`tests/test_tasks_haystack.py` checks that). Lists of a few dozen words are small enough to memorise, and a policy
trained on them alone does: measured, one trained on the curated lists only fell from 0.56 to 0.26 mean exact match
when half the words were new (it wrote `Mirela` for `Mary`). So every episode draws each word, with even odds, from
its list or as a fresh pseudo-word (`pick`), and the policy has to copy what it reads.

Run `python -m atommem.tasks.vocab` to print the list sizes.
"""
from __future__ import annotations

import random
import re

from atommem.tasks.filler import TEMPLATES, WORDS

PEOPLE = (
    "Amara", "Bastian", "Celeste", "Dorian", "Elowen", "Fabian", "Greta", "Hugo", "Ingrid", "Jasper",
    "Kira", "Lorenzo", "Maren", "Nico", "Odile", "Pavel", "Quentin", "Rosalind", "Silas", "Tamsin",
    "Ulric", "Vera", "Wendell", "Xenia", "Yusuf", "Zora", "Anselm", "Beatrix", "Casimir", "Delphine",
    "Emeric", "Freya", "Gideon", "Hester", "Ivo", "Juno", "Kasper", "Liesel", "Magnus", "Noor",
    "Oskar", "Petra", "Rafferty", "Saskia", "Tobias", "Ursula", "Viggo", "Wilhelmina", "Yara", "Zeno",
    "Alma", "Bruno", "Clara", "Dmitri", "Esme", "Felix", "Gemma", "Henrik", "Isolde", "Joaquin",
    "Katya", "Leopold", "Mirela", "Nestor", "Ophelia", "Priya", "Reuben", "Sigrid", "Thea", "Umberto",
    "Anouk", "Benedikt", "Cosima", "Desmond", "Elif", "Florian", "Gustav", "Hanne", "Idris", "Jolene",
)

PLACES = (
    "kitchen", "boathouse", "cellar", "attic", "pantry", "library", "greenhouse", "workshop", "chapel", "garage",
    "studio", "nursery", "laundry", "ballroom", "conservatory", "gymnasium", "observatory", "stable", "barn",
    "lounge", "foyer", "veranda", "balcony", "basement", "bakery", "armory", "courtyard", "porch", "sauna",
    "terrace", "garden", "hallway", "bedroom", "bathroom", "office", "loft", "dungeon", "pavilion",
)

OBJECTS = (
    "lantern", "compass", "teapot", "violin", "umbrella", "notebook", "hammer", "kettle", "scarf", "telescope",
    "basket", "candle", "ladder", "mirror", "blanket", "trumpet", "wallet", "bucket", "pillow", "shovel",
    "saddle", "thimble", "anchor", "helmet", "satchel", "spoon", "globe", "harmonica", "whistle", "paintbrush",
    "envelope", "chessboard", "typewriter", "flask", "rope", "bell", "crown", "kite", "sponge", "tambourine",
    "microscope", "pitcher", "backpack", "goblet", "football", "apple", "milk", "hourglass", "padlock", "accordion",
)

# Fact verbs, exactly as the templates and the parser in `events.py` use them.
MOVE_VERBS = ("went", "moved", "travelled", "journeyed", "walked", "ran")
TAKE_VERBS = ("picked up", "took", "grabbed", "got")
DROP_VERBS = ("dropped", "put down", "discarded", "left")

# Words reserved by the fact templates of every family; background text must not contain them.
RESERVED_WORDS = frozenset(
    {w for phrase in MOVE_VERBS + TAKE_VERBS + DROP_VERBS for w in phrase.split()}
    | {"var", "locker", "holds", "hold", "emptied", "nothing", "back", "there", "where", "which", "variables"}
)

# The people and places of the published bAbI tasks 1-3, kept out of background text too.
BABI_WORDS = frozenset({"mary", "john", "sandra", "daniel", "bathroom", "hallway", "garden", "office",
                        "kitchen", "bedroom", "football", "apple", "milk"})


def forbidden_background_words() -> frozenset[str]:
    """Lower-case words that may never appear in a background sentence."""
    return frozenset(w.lower() for w in PEOPLE + PLACES + OBJECTS) | RESERVED_WORDS | BABI_WORDS


assert not set(PLACES) & set(OBJECTS), "a word is both a place and an object"
assert len(set(PEOPLE)) == len(PEOPLE) and len(set(PLACES)) == len(PLACES) and len(set(OBJECTS)) == len(OBJECTS)

# Pieces of fresh pseudo-words. Every letter of the alphabet, common clusters, digraphs and codas all occur, so every
# letter shape a user's file may use (`John`, `Sandra`, `Xavier`) has been copied in training; a generator of
# plain consonant-vowel syllables over 14 consonants left a policy unable to copy `Mary` or `John` (0.38 exact match
# on bAbI qa1 against 1.00 on its own qa1).
_ONSETS = tuple("bcdfghjklmnprstvwxyz")
_CLUSTERS = ("bl", "br", "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "kn", "ph", "pl", "pr", "qu", "sc", "sh",
             "sk", "sl", "sm", "sn", "sp", "st", "sw", "th", "tr", "tw", "wh")
_VOWELS = tuple("aeiouy")
_DIGRAPHS = ("ai", "au", "ea", "ee", "ei", "ia", "ie", "io", "oa", "oo", "ou", "ue")
_CODAS = tuple("bcdfgklmnprstxz") + ("ck", "ld", "ll", "lt", "mp", "nd", "ng", "nk", "nn", "nt", "rd", "rk", "rn",
                                    "rt", "sh", "ss", "st", "th")


def pseudo_word(rng, syllables: tuple[int, int] = (1, 3)) -> str:
    """A pronounceable made-up word (`tamoriv`, `Shandrek`, `quoyel`) of at least four letters: 1-3 syllables, each
    an onset (a single consonant, often; a cluster, sometimes; none, rarely) and a vowel or digraph, sometimes a
    final coda. Hundreds of millions of them, so a policy that meets one must copy it from the text."""
    while True:
        parts = []
        for i in range(rng.randint(*syllables)):
            r = rng.random()
            if r < 0.2:
                parts.append(rng.choice(_CLUSTERS))
            elif r < 0.9 or i > 0:
                parts.append(rng.choice(_ONSETS))
            parts.append(rng.choice(_DIGRAPHS) if rng.random() < 0.2 else rng.choice(_VOWELS))
        if rng.random() < 0.5:
            parts.append(rng.choice(_CODAS))
        word = "".join(parts)
        if len(word) >= 4 and word not in _COMMON_WORDS:
            return word


# English words a pseudo-word must never be: the background grammar's and the templates' own words.
_COMMON_WORDS = frozenset(_w.lower() for _w in re.findall(r"[A-Za-z]+", " ".join(
    list(TEMPLATES) + [w for words in WORDS.values() for w in words]
    + ["where", "was", "before", "after", "the", "what", "does", "which", "value", "holds", "have", "with", "that",
       "this", "then", "there", "into", "from", "went", "back", "over", "under", "empty", "none", "nothing"])))

_CURATED_LOWER = frozenset(w.lower() for w in PEOPLE + PLACES + OBJECTS) | RESERVED_WORDS | BABI_WORDS


def pick(rng, curated: tuple[str, ...], k: int, fresh_share: float = 0.5, capitalize: bool = False) -> list[str]:
    """k distinct words for one episode: each from the curated list, or (with probability fresh_share) a fresh
    pseudo-word never in any list. Curated words keep the stories readable; fresh ones make the families
    impossible to solve by recalling a closed vocabulary (names, places and objects must be copied)."""
    out: list[str] = []
    pool = list(curated)
    rng.shuffle(pool)
    while len(out) < k:
        if rng.random() < fresh_share:
            word = pseudo_word(rng)
            if word in _CURATED_LOWER:
                continue
            word = word.capitalize() if capitalize else word
        else:
            word = pool.pop()
        if word not in out:
            out.append(word)
    return out


def pick_people(rng, k: int) -> list[str]:
    return pick(rng, PEOPLE, k, capitalize=True)


def pick_places(rng, k: int) -> list[str]:
    return pick(rng, PLACES, k)


def pick_objects(rng, k: int) -> list[str]:
    return pick(rng, OBJECTS, k)


if __name__ == "__main__":
    print(f"{len(PEOPLE)} people, {len(PLACES)} places, {len(OBJECTS)} objects; pseudo-words like "
          + ", ".join(pseudo_word(random.Random(i)) for i in range(5)))
