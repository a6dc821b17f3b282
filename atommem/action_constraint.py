"""Constrained decoding of actions: well-formed operations whose every word is a word of the observation.

A small policy's commonest error is a broken copy: `<read> Bruede</read>` for `Bruedefeb`, `<answer> clain</answer>`
for `claint`, `S'tmp` for `Soamp`; a rarer one, a loop that writes observation tags (`</focus><act><read> ..`)
until the action's token limit (bench/RESULTS.md, thirty-second round). Every word the teacher writes is a word of
its observation or one of the few words of the memory format itself (FORMAT_WORDS; a test checks this on every task
family), and its actions are operations one after another. So decoding may refuse a token that would

- start a word no observation word starts with, or end a word that is not a whole observation word;
- open an operation inside another, close one that is not open, end the action (`<end>`) inside one, or write an
  observation tag (`<chunk>`, `<act>`, ...);
- write anything but white space between operations.

The policy still chooses every operation and which words to copy; the constraint only removes what could never be
right. Words are runs of ASCII letters and digits; any other character and every special token ends a word.

`ActionConstraint` implements the token filter of model/generate.py (`allows`, `advance`), with one state per
prompt: the operation open, and the part of the current word written so far. When decoding takes a refused token
anyway (none allowed among the most likely), the rest of that word is left unchecked, and a stray tag is ignored.
Knows nothing about models or training; the tokenizer is only asked for the text of each token.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from atommem.observation import END_TOKEN
from atommem.ops import OP_TAGS
from atommem.tasks.kv import NOTHING
from atommem.teacher import AGAIN
from atommem.world_state import NOBODY

WORD = re.compile(r"[A-Za-z0-9]+")
FORMAT_WORDS = frozenset({NOBODY, NOTHING, AGAIN})
OPENING = {f"<{tag}>": tag for tag in OP_TAGS}
CLOSING = {f"</{tag}>": tag for tag in OP_TAGS}
_UNCHECKED = None  # the state of a word that decoding began with a refused token


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@dataclass(frozen=True)
class TokenTable:
    texts: list[str]          # the text of every token id
    special: frozenset        # ids of the special tokens (tags, `<end>`, `<pad>`)

    @classmethod
    def of(cls, tokenizer) -> "TokenTable":
        names = set(tokenizer.special_tokens)
        pieces = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
        special = frozenset(i for i, piece in enumerate(pieces) if piece in names)
        return cls([piece if i in special else tokenizer.decode([i]) for i, piece in enumerate(pieces)], special)


@dataclass
class _State:
    open: str | None = None          # the operation being written
    partial: str | None = ""         # the current word so far (_UNCHECKED: not checked)


class ActionConstraint:
    """The operations and words each prompt may write: words of its observation text, plus `extra`."""

    def __init__(self, table: TokenTable, observations: list[str], extra=FORMAT_WORDS):
        self.table = table
        self.words = [set(WORD.findall(text)) | set(extra) for text in observations]
        self.prefixes = [{w[:i] for w in ws for i in range(1, len(w) + 1)} for ws in self.words]
        self.states = [_State() for _ in observations]

    def _special(self, state: _State, text: str) -> tuple[bool, str | None]:
        """(allowed, the operation open after the special token `text`)."""
        if text in OPENING:
            return state.open is None, OPENING[text]
        if text in CLOSING:
            return state.open == CLOSING[text], None
        if text == END_TOKEN:
            return state.open is None, None
        return False, state.open  # an observation tag or padding: never part of an action

    def _scan(self, row: int, token: int) -> tuple[bool, _State]:
        """(whether `token` keeps prompt `row`'s action well formed and its words observation words, next state)."""
        state, words, prefixes = self.states[row], self.words[row], self.prefixes[row]
        text = self.table.texts[token] if 0 <= token < len(self.table.texts) else ""
        ok, partial, open_ = True, state.partial, state.open
        if token in self.table.special:
            if partial and partial not in words:
                ok = False
            allowed, open_ = self._special(state, text)
            return ok and allowed, _State(open_, "")
        for ch in text:
            if not _is_word_char(ch):
                if partial and partial not in words:
                    ok = False
                partial = ""
                if open_ is None and not ch.isspace():
                    ok = False
            elif open_ is None:
                ok, partial = False, _UNCHECKED
            elif partial is not _UNCHECKED:
                partial += ch
                if partial not in prefixes:
                    ok, partial = False, _UNCHECKED
        return ok, _State(open_, partial)

    def allows(self, row: int, token: int) -> bool:
        return self._scan(row, token)[0]

    def advance(self, row: int, token: int) -> None:
        self.states[row] = self._scan(row, token)[1]
