"""The table of generated task families: one name per family, one call to make an episode.

Owns: `FAMILIES` and `generate(family, target_tokens, seed, **kw)`. Every family's generator has the signature
`generate(target_tokens, seed, n_facts=None, haystack=None, n_questions=1) -> Episode`, is deterministic in
`seed`, and uses only its own `random.Random(seed)`.

Run `python -m atommem.tasks.registry qa2 1k 0` to print one episode's facts and questions.
"""
from __future__ import annotations

import importlib
import sys

from atommem.tasks.episode import Episode, parse_length

FAMILIES = ("qa1", "qa2", "qa3", "vt", "kv")
DESCRIPTIONS = {
    "qa1": "where is a person (one supporting fact)",
    "qa2": "where is an object carried by people (two supporting facts)",
    "qa3": "where was an object before a place (three supporting facts)",
    "vt": "which variables hold a value (chains of copies)",
    "kv": "what does a locker hold (overwrites and removals)",
}


def generate(family: str, target_tokens: int, seed: int, **kw) -> Episode:
    """One episode of `family` whose context is about `target_tokens` long (see `episode.count_tokens`)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown task family {family!r}; choose one of: {', '.join(FAMILIES)}")
    module = importlib.import_module(f"atommem.tasks.{family}")
    return module.generate(target_tokens, seed, **kw)


if __name__ == "__main__":
    fam, length, seed = (sys.argv[1:] + ["qa1", "512", "0"][len(sys.argv) - 1:])[:3]
    ep = generate(fam, parse_length(length), int(seed))
    print(f"{ep.family}: {ep.n_tokens()} tokens, {len(ep.sentences)} sentences")
    print("\n".join(ep.facts()))
    for q in ep.questions:
        print(q.text, "->", q.answer)
