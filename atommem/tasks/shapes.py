"""Background lines in the shapes that real files have besides sentences: rules, headings, markup, code, paths and
addresses, table rows, dialogue and narration, and letters outside ASCII.

Owns: `ShapesGrammar`. A policy trained on filler templates and `prose.py`'s sentences alone took a plain-text
manual given as background for something to act on: a line of `=` brought out reads of its training background's
phrases, `if (a == b * c)` and `sqr = LongVariable * 2` were written as variables: its background had never held a `~`,
`*`, `/` or `=`, and no training text any byte above 127, whose embeddings then stay untrained (bench/RESULTS.md,
twenty-seventh round). These lines are made from the same word lists as `prose.py` and never hold a word of
`vocab.forbidden_background_words` (no fact verb, name, place or object of the task families), so nothing here
can be read as a fact; `tests/test_tasks_shapes.py` checks that, and that every shape occurs.

Run `python -m atommem.tasks.shapes` to print a few lines.
"""
from __future__ import annotations

import random

from atommem.tasks.episode import count_tokens
from atommem.tasks.events import parse_fact, parse_question
from atommem.tasks.prose import ProseGrammar

MAX_TOKENS = 30
_RULE_CHARS = "=-*~_#+.<>/"
_MARKS = (("|", "|"), ("*", "*"), ("`", "`"), ("'", "'"), ("<", ">"), ("{", "}"), ("[", "]"), ("_", "_"))
_LIST_HEADS = ("-", "*", ">", "#", "##", "//", "%", ";", "•", "1.", "2)", "a)", "(i)", "[3]", "Note:", "TODO:")
_OPERATORS = ("=", "==", "!=", "+=", "-=", ":=", "=>", "->", "<=", ">=", "*", "/", "+", "-", "%", "&&", "||", "<<")
_NARRATIVE_VERBS = ("said", "asked", "smiled", "glanced", "nodded", "laughed", "waited", "answered", "whispered",
                    "sighed", "turned away", "stood still", "wondered", "remembered", "frowned", "shrugged")
_PRONOUNS = ("He", "She", "They", "We", "I", "You", "It", "Nobody", "Everyone", "Someone")
_CONTRACTIONS = ("don't", "it's", "I'll", "won't", "can't", "they're", "you've", "isn't", "we'd", "that's")
_TLDS = ("org", "com", "net", "io", "edu", "de", "txt", "md", "py", "vim", "html", "json", "cfg")
# Letters and signs outside ASCII, so that the bytes of UTF-8 text (accents, dashes, curly quotes, Greek,
# Cyrillic) have all been seen in training.
_FOREIGN_LETTERS = ("àáâäãåçèéêëìíîïñòóôöõøùúûüýÿßæœ" "ąćęłńśźżčďěňřšťůž" "αβγδεζηθικλμνξοπρστυφχψω"
                    "абвгдежзийклмнопрстуфхцчшщыэюя")
_SIGNS = ("—", "–", "’", "‘", "“", "”", "…", "•", "°", "€", "£", "×", "±", "§", "©", "→", "½", "·", "«", "»")


class ShapesGrammar:
    """Draws one background line of a random shape (each `_shape` method below is one shape)."""

    def __init__(self):
        self._prose = ProseGrammar()
        self._shapes = [getattr(self, n) for n in sorted(dir(self)) if n.startswith("_shape_")]

    def line(self, rng: random.Random) -> str:
        """A line of at most MAX_TOKENS tokens (a longer one would fill a chunk alone and pack the facts closer)."""
        while True:
            text = rng.choice(self._shapes)(rng)
            if count_tokens(text) <= MAX_TOKENS and not parse_fact(text) and not parse_question(text):
                return text

    # words ---------------------------------------------------------------------------------------------------
    def _word(self, rng: random.Random) -> str:
        return self._prose.word(rng)

    def _lower(self, rng: random.Random) -> str:
        while not (w := self._word(rng).lower()).isalpha():
            pass
        return w

    def _identifier(self, rng: random.Random) -> str:
        parts = [self._lower(rng) for _ in range(rng.randint(1, 3))]
        style = rng.random()
        if style < 0.3:
            return "_".join(parts)
        if style < 0.6:
            return parts[0] + "".join(p.capitalize() for p in parts[1:])
        if style < 0.75:
            return "_".join(parts).upper()
        if style < 0.9:
            return "".join(p.capitalize() for p in parts)
        short = parts[0][:rng.randint(1, 3)]                   # an abbreviation: `fn`, `id`
        return short if short not in self._prose.banned else parts[0]

    def _words(self, rng: random.Random, lo: int, hi: int) -> str:
        return " ".join(self._word(rng) for _ in range(rng.randint(lo, hi)))

    def _foreign(self, rng: random.Random) -> str:
        return "".join(rng.choice(_FOREIGN_LETTERS) for _ in range(rng.randint(2, 9)))

    # shapes --------------------------------------------------------------------------------------------------
    def _shape_rule(self, rng: random.Random) -> str:
        rule = rng.choice(_RULE_CHARS) * rng.randint(3, 30)
        if rng.random() < 0.3:
            side = rule[:rng.randint(2, 6)]
            return f"{side} {self._words(rng, 1, 4).title()} {side}"
        return rule

    def _shape_heading(self, rng: random.Random) -> str:
        a, b, c = rng.randint(1, 12), rng.randint(1, 9), rng.randint(1, 9)
        number = rng.choice(("", f"{a}.", f"{a}.{b}", f"Chapter {rng.randint(1, 40)}", f"{a}.{b}.{c}"))
        title = self._words(rng, 1, 6)
        title = title.upper() if rng.random() < 0.5 else title.title()
        tag = f" *{self._lower(rng)}-{self._lower(rng)}*" if rng.random() < 0.4 else ""
        return f"{number} {title}{tag}".strip()

    def _shape_markup(self, rng: random.Random) -> str:
        words = self._words(rng, 4, 18).split()
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(words))
            left, right = rng.choice(_MARKS)
            inner = rng.choice((self._lower(rng), self._identifier(rng), f":{self._lower(rng)}",
                                f"CTRL-{rng.choice('ABCDEFGHIKLMNOPRSTUVWXYZ')}"))
            words[i] = left + inner + right
        head = rng.choice(_LIST_HEADS) + " " if rng.random() < 0.5 else ""
        return head + " ".join(words) + rng.choice(("", ".", ":", " ~", ";", ")"))

    def _shape_code(self, rng: random.Random) -> str:
        a, b, c = self._identifier(rng), self._identifier(rng), self._identifier(rng)
        n = rng.choice((str(rng.randint(0, 9999)), f"{rng.random() * 100:.2f}", f"0x{rng.randint(0, 65535):X}"))
        op = rng.choice(_OPERATORS)
        forms = (f"{a} {rng.choice(('=', '+=', ':='))} {b} {op} {n}", f"{a} = {b}({c}, {n})",
                 f"if ({a} {op} ({b} * {c}) / {n}) {{", f"for {a} in range({n}):", f"return {a}.{b}[{n}];",
                 f"let {a} = {b} {op} {c} ~", f"{a.upper()} = {n}", f"# {self._words(rng, 2, 8)}",
                 f"// {self._words(rng, 2, 8)}", f"def {a}({b}, {c}={n}):", f"}} else {{ {a}++; }}",
                 f"{a}: {n}, {b}: \"{c}\"", f"<{a} {b}=\"{n}\">{c}</{a}>", f"${a} -{rng.choice('lrvxn')} {b}.{c}")
        return rng.choice(forms)

    def _shape_address(self, rng: random.Random) -> str:
        a, b, c = self._lower(rng), self._lower(rng), self._identifier(rng)
        tld = rng.choice(_TLDS)
        forms = (f"https://www.{a}.{tld}/{b}/{c}", f"~/{a}/{b}/{c}.{tld}", f"/usr/{a}/{b}_{c}.{tld}",
                 f"{a}.{b}@{c}.{tld}", f"C:\\{a.title()}\\{b}.{tld}", f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}."
                 f"{rng.randint(0, 999)}", f"{rng.randint(1900, 2030)}-{rng.randint(1, 12):02d}-"
                 f"{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}")
        text = rng.choice(forms)
        return f"{self._words(rng, 1, 6)} {text}" if rng.random() < 0.5 else text

    def _shape_table(self, rng: random.Random) -> str:
        cells = [rng.choice((self._lower(rng), str(rng.randint(0, 9999)), self._identifier(rng)))
                 for _ in range(rng.randint(2, 5))]
        if rng.random() < 0.3:
            return f"{cells[0]} {'.' * rng.randint(3, 20)} {rng.randint(1, 400)}"
        sep = rng.choice(("|", "\t", "  ", ",", ";"))
        return sep.join(cells) if sep not in "|" else "| " + " | ".join(cells) + " |"

    def _shape_dialogue(self, rng: random.Random) -> str:
        open_q, close_q = rng.choice((('"', '"'), ("“", "”"), ("'", "'"), ("«", "»")))
        speech = f"{self._words(rng, 2, 10)} {rng.choice(_CONTRACTIONS)} {self._words(rng, 0, 6)}".strip()
        speech = speech[0].upper() + speech[1:] + rng.choice((",", "?", "!", "…", " —"))
        who = rng.choice(_PRONOUNS).lower() if rng.random() < 0.5 else self._speaker(rng)
        return f"{open_q}{speech}{close_q} {who} {rng.choice(_NARRATIVE_VERBS)}."

    def _shape_narration(self, rng: random.Random) -> str:
        who = rng.choice(_PRONOUNS) if rng.random() < 0.5 else self._speaker(rng)
        end = rng.choice((".", "...", "…", "!", f" — {self._words(rng, 1, 5)}.", f"; {self._words(rng, 2, 6)}."))
        return f"{who} {rng.choice(_NARRATIVE_VERBS)} {self._words(rng, 0, 8)}".rstrip() + end

    def _shape_foreign(self, rng: random.Random) -> str:
        words = [self._foreign(rng) if rng.random() < 0.5 else self._word(rng) for _ in range(rng.randint(3, 12))]
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(words))
            words[i] = rng.choice((words[i] + rng.choice(_SIGNS), rng.choice(_SIGNS) + words[i]))
        text = " ".join(words)
        return text[0].upper() + text[1:] + rng.choice((".", "…", ":", "!"))

    def _speaker(self, rng: random.Random) -> str:
        """A capitalised word, often a made-up one (never a name of the task families'): a name alone does not make
        a fact."""
        while (w := self._lower(rng)) in ("the", "a"):
            pass
        return rng.choice(("", "Mr. ", "Mrs. ", "Dr. ", "old ", "")) + w.capitalize()


if __name__ == "__main__":
    grammar = ShapesGrammar()
    rng = random.Random(0)
    for _ in range(20):
        print(grammar.line(rng))
