"""Free-form background sentences: varied shapes, common English words, made-up words, numbers, capitals and
punctuation, so that a policy learns that what is not a fact is background, not that background is the filler
grammar's few templates.

Owns: `ProseGrammar`. A policy trained on the filler grammar alone took a licence text given as background for
facts (0.567 exact match at 2k against 0.947 with the filler; bench/RESULTS.md, twentieth round). These
sentences are not meant to read well; they are meant to look like many texts at once (legal clauses, notes,
headings, lists). Like the filler they never use a word of `vocab.forbidden_background_words` (no fact verb, name,
place or object of the task families), so nothing here can be read as a fact; `tests/test_tasks_haystack.py` checks.

Run `python -m atommem.tasks.prose` to print a few sentences.
"""
from __future__ import annotations

import random

from atommem.tasks.vocab import forbidden_background_words, pseudo_word

_FUNCTION = ("the", "a", "this", "that", "each", "every", "any", "some", "no", "such", "its", "their", "our", "your",
             "of", "in", "on", "for", "with", "by", "from", "under", "without", "within", "upon", "about", "against",
             "between", "through", "during", "and", "or", "but", "if", "unless", "because", "although", "whether",
             "while", "so", "it", "they", "we", "you", "he", "she", "these", "those", "one", "not", "also", "only",
             "even", "however", "therefore", "thus", "often", "never", "always", "as", "at", "than", "to", "all")
_CONTENT = ("is", "are", "be", "shall", "may", "must", "can", "will", "should", "does", "has", "have", "made",
            "said", "gave", "seemed", "means", "includes", "applies", "provides", "requires", "states", "keeps",
            "shows", "remains", "follows", "becomes", "uses", "covers", "allows", "grants", "makes", "asks", "says",
            "work", "program", "license", "copy", "source", "code", "terms", "rights", "section", "notice", "party",
            "version", "system", "data", "letter", "report", "meeting", "question", "answer", "reason", "idea",
            "method", "result", "problem", "example", "number", "order", "rule", "law", "paper", "year", "day",
            "hand", "word", "side", "case", "part", "point", "free", "public", "general", "other", "same", "new",
            "old", "full", "whole", "certain", "particular", "modified", "original", "written", "legal", "simple",
            "clear", "common", "small", "large", "early", "late", "final", "people", "company", "government",
            "court", "market", "money", "history", "science", "music", "energy", "water", "light", "power", "city",
            "country", "world", "family", "friend", "student", "teacher", "doctor", "chapter", "table", "figure",
            "page", "line", "text", "author", "reader", "user", "owner", "holder", "patent", "warranty", "damages",
            "liability", "agreement", "contract", "permission", "condition", "purpose", "fee", "price", "service")
_OPEN_CLOSE = (("(", ")"), ('"', '"'), ("[", "]"))
_ENDS = (".", ".", ".", ".", "?", "!", ":", ";")


class ProseGrammar:
    """Draws sentences of 3-30 words from the lists above, with made-up and capitalised words, numbers, acronyms,
    commas and bracketed asides."""

    def __init__(self):
        banned = forbidden_background_words()
        self._function = [w for w in _FUNCTION if w not in banned]
        self._content = [w for w in _CONTENT if w not in banned]
        self.banned = banned

    def word(self, rng: random.Random) -> str:
        """One word: a function or content word, a made-up word, a number or an acronym."""
        r = rng.random()
        if r < 0.42:
            return rng.choice(self._function)
        if r < 0.82:
            return rng.choice(self._content)
        if r < 0.90:
            while (w := pseudo_word(rng)) in self.banned:
                pass
            return w.capitalize() if rng.random() < 0.5 else w
        if r < 0.95:
            return str(rng.choice((rng.randint(0, 99), rng.randint(100, 9999), rng.randint(1800, 2030))))
        if r < 0.98:
            while (w := "".join(rng.choice("ABCDEFGHIKLMNOPRSTUW") for _ in range(rng.randint(2, 4)))).lower() \
                    in self.banned:
                pass
            return w
        return rng.choice(self._content).capitalize()

    def sentence(self, rng: random.Random) -> str:
        words = [self.word(rng) for _ in range(rng.randint(3, 30))]
        if rng.random() < 0.2:                       # a bracketed or quoted aside
            i = rng.randrange(len(words))
            j = rng.randint(i, min(len(words) - 1, i + 4))
            left, right = rng.choice(_OPEN_CLOSE)
            words[i], words[j] = left + words[i], words[j] + right
        for i in range(len(words) - 1):
            if rng.random() < 0.08:
                words[i] += ","
        text = " ".join(words) + rng.choice(_ENDS)
        return text[0].upper() + text[1:]


if __name__ == "__main__":
    grammar = ProseGrammar()
    rng = random.Random(0)
    for _ in range(10):
        print(grammar.sentence(rng))
