"""Answer scoring: normalised exact match, the only reward signal of the project.

Owns: `normalize` (lowercase; punctuation becomes a space; the articles a, an, the are dropped; whitespace is
collapsed) and `exact_match(prediction, answer) -> 1.0 | 0.0`. Punctuation becomes a space rather than vanishing
so that list answers such as "apple,football" and "apple, football" compare equal.

Run `python -m atommem.tasks.scoring "The Kitchen." kitchen` to score one pair.
"""
from __future__ import annotations

import re
import string
import sys

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = frozenset({"a", "an", "the"})


def normalize(text: str) -> str:
    words = _PUNCT.sub(" ", text.lower()).split()
    return " ".join(w for w in words if w not in _ARTICLES)


def exact_match(prediction: str, answer: str) -> float:
    return 1.0 if normalize(prediction) == normalize(answer) else 0.0


if __name__ == "__main__":
    print(exact_match(sys.argv[1], sys.argv[2]))
