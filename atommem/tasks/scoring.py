"""Answer scoring: normalised exact match, the only reward signal of the project.

Owns: `normalize` (lowercase; punctuation becomes a space; the articles a, an, the are dropped; whitespace is
collapsed), `exact_match(prediction, answer) -> 1.0 | 0.0`, `set_match` (the same words in any order, each as
often), `score_answer(prediction, answer, family)`, which the agent rewards with, and `partial_score`, a graded
variant a trainer may reward with instead (the F1 of the words for a list answer, exact match otherwise).
Punctuation becomes a space rather than vanishing so that list answers such as "apple,football" and
"apple, football" compare equal.
The families in `UNORDERED_FAMILIES` answer with a list whose order is not asked for: vt ("Which variables hold the
value N?"), which RULER also scores without regard to order. Every other family needs the exact words in order.

Run `python -m atommem.tasks.scoring "The Kitchen." kitchen [family]` to score one pair.
"""
from __future__ import annotations

import re
import string
import sys
from collections import Counter

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = frozenset({"a", "an", "the"})


def normalize(text: str) -> str:
    words = _PUNCT.sub(" ", text.lower()).split()
    return " ".join(w for w in words if w not in _ARTICLES)


UNORDERED_FAMILIES = frozenset({"vt"})


def exact_match(prediction: str, answer: str) -> float:
    return 1.0 if normalize(prediction) == normalize(answer) else 0.0


def set_match(prediction: str, answer: str) -> float:
    """1.0 when both hold the same words, each as many times, in any order ("A B" matches "B A", not "A B B")."""
    return 1.0 if sorted(normalize(prediction).split()) == sorted(normalize(answer).split()) else 0.0


def score_answer(prediction: str, answer: str, family: str) -> float:
    return set_match(prediction, answer) if family in UNORDERED_FAMILIES else exact_match(prediction, answer)


def word_f1(prediction: str, answer: str) -> float:
    """F1 of the two multisets of words: 2 * shared / (predicted + expected); 1.0 when both are empty."""
    pred, gold = normalize(prediction).split(), normalize(answer).split()
    if not pred or not gold:
        return float(pred == gold)
    shared = sum((Counter(pred) & Counter(gold)).values())
    return 2 * shared / (len(pred) + len(gold))


def partial_score(prediction: str, answer: str, family: str) -> float:
    """Graded credit: a list answer (UNORDERED_FAMILIES) earns the F1 of its words, so one misspelt name of five
    scores 0.8 rather than 0; every other answer is scored as by `score_answer`."""
    return word_f1(prediction, answer) if family in UNORDERED_FAMILIES else score_answer(prediction, answer, family)


if __name__ == "__main__":
    print(score_answer(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""))
